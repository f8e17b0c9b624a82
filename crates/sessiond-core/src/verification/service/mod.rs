//! The verification service: every operation of both verification API generations and of the
//! hosted pages, over one aggregate. Dialects and pages call this; it decides.
//!
//! Keys and what they protect (threat model: docs/design/verification.md):
//! - The **results access key** (`rak_…`) is generated at creation, handed to the relying party
//!   (generation B: in the create response; both: through the browser at the end) and never
//!   stored. At rest there is only its keyed hash (to check it) and the public half of an X25519
//!   key derived from it; identity data and the relying party's provider input are sealed to that
//!   public key. So sessiond can write results without the key, and nobody holding the database
//!   and the master key can read them.
//! - The **launch token** carries the session id, the application and the results access key
//!   through the user's browser, sealed under the master key and bounded by the session's
//!   expiry. It is never stored. The first browser to open it is bound to it by a cookie; no
//!   other browser can use it afterwards.
//! - Each **attachment access key** (`att_….<secret>`) opens one attachment, sealed to a key
//!   derived from its secret; the keys live only inside the sealed identity data.

mod create;
mod lifecycle;
mod pages;
mod secrets;
mod urls;

pub use urls::{origin_of, redirect_allowed};

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::application::{Application, KeyEnvironment};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::store::Store;
use crate::vault::Vault;
use crate::verification::model::{
    Flow, Options, State, TransitionError, Verification, VerificationId,
};
use crate::verification::provider::{
    Choice, Collection, Ctx, FormField, LaunchMethod, Provider, Providers,
};

const MAX_PROVIDERS: usize = 100;
const MAX_URL: usize = 2048;
/// Refresh a hosted deep link this long before it expires, so a user never sees a dead link.
const DEEPLINK_REFRESH_MARGIN_SECS: u64 = 10;
const LAUNCH_CONTEXT: &str = "verification_launch";

fn results_context(id: &VerificationId) -> String {
    format!("verification_results:{id}")
}
fn input_context(id: &VerificationId) -> String {
    format!("verification_input:{id}")
}
fn attachment_context(id: &str) -> String {
    format!("verification_attachments:{id}")
}

fn finished_error(e: TransitionError) -> Error {
    match e {
        TransitionError::Finished(s) => Error::invalid(
            "session_id",
            format!("the session already finished ({})", s.as_str()),
        ),
        TransitionError::Invalid { from, to } => Error::invalid(
            "session_id",
            format!("the session cannot go from {} to {to}", from.as_str()),
        ),
    }
}

/// What a relying party asks for at creation.
#[derive(Debug, Clone, Default)]
pub struct NewVerification {
    pub flow: Option<Flow>,
    pub options: Options,
    /// Hosted and advanced flows: the one provider.
    pub provider: Option<String>,
    /// The provider input object: one member per provider, keyed by its `input_key`.
    pub provider_input: Option<Map<String, Value>>,
    /// Known identity data or recommendation hints (personal data: sealed at once).
    pub known_identity: Option<Value>,
}

/// Timing of a refreshable step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepRefresh {
    pub expires_at: Timestamp,
    pub refresh_after: Timestamp,
    pub ttl_secs: u64,
}

/// The next thing an advanced-flow client must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrationStep {
    pub method: LaunchMethod,
    pub content: String,
    pub refresh: Option<StepRefresh>,
}

/// A created session, with the secrets that exist only in this response.
pub struct Created {
    pub verification: Verification,
    pub results_access_key: Zeroizing<String>,
    pub launch_url: String,
    /// Advanced flow: the first step and how results are collected.
    pub next_step: Option<IntegrationStep>,
    pub collection: Option<Collection>,
}

/// A provider as the hosted pages list it.
#[derive(Debug, Clone)]
pub struct ProviderCard {
    pub id: String,
    pub name: String,
    pub description: String,
    pub logo: String,
}

/// What the relying party learns when the hosted pages end, and how it reaches it. How that is
/// spelled on the wire (query parameters, a `postMessage` payload) is the pages' business.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handoff {
    pub session_id: VerificationId,
    pub success: bool,
    /// The results access key; on success only.
    pub results_key: Option<String>,
    pub ending: Ending,
    pub channel: Channel,
}

/// How the session ended, as the relying party is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Complete,
    /// The user closed the flow.
    UserClosed,
    Failed,
}

/// How the outcome reaches the relying party.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Channel {
    /// The browser goes back to the relying party's redirect URL.
    Redirect(String),
    /// The page posts to the window that opened it (popup) or embeds it (iframe), for each of the
    /// application's allowed origins.
    PostMessage {
        to_parent: bool,
        origins: Vec<String>,
    },
}

/// What the hosted page shows.
#[derive(Debug, Clone)]
pub enum View {
    ChooseProvider(Vec<ProviderCard>),
    Form {
        provider: String,
        fields: Vec<FormField>,
        values: BTreeMap<String, String>,
        errors: BTreeMap<String, String>,
        can_go_back: bool,
    },
    ChooseSubProvider {
        provider: String,
        choices: Vec<Choice>,
        can_go_back: bool,
    },
    Deeplink {
        provider: String,
        content: String,
        expires_at: Timestamp,
    },
    /// Leave for an external provider.
    External(String),
    Finished {
        /// Why it did not succeed (`handoff.success` says whether it did).
        reason: Option<State>,
        handoff: Handoff,
    },
}

/// A hosted page to render.
pub struct Page {
    pub verification: Verification,
    pub application_name: String,
    pub view: View,
    /// Set this binding cookie (first open of the launch link).
    pub set_binding: Option<String>,
    /// The launch token, carried in every form.
    pub token: String,
    /// The anti-forgery token every form must return.
    pub csrf: String,
    /// The application's allowed redirect origins (for the page's security policy).
    pub allowed_origins: Vec<String>,
}

/// The launch URL's own parameters (appended by the browser SDKs).
#[derive(Debug, Clone, Default)]
pub struct LaunchParams {
    pub redirect_url: Option<String>,
    pub launch_mode: Option<String>,
    pub embed: Option<String>,
}

/// What the test wallet page shows.
pub struct WalletPrompt {
    pub application_name: String,
    pub verification: Verification,
    pub csrf: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct LaunchToken {
    s: String,
    a: String,
    k: String,
    e: i64,
}

pub struct VerificationService {
    store: Arc<dyn Store>,
    vault: Arc<Vault>,
    providers: Providers,
    public_url: String,
}

impl VerificationService {
    /// `public_url` is the absolute base URL browsers reach this server at (no trailing slash).
    pub fn new(
        store: Arc<dyn Store>,
        vault: Arc<Vault>,
        providers: Providers,
        public_url: impl Into<String>,
    ) -> Self {
        VerificationService {
            store,
            vault,
            providers,
            public_url: public_url.into().trim_end_matches('/').to_owned(),
        }
    }

    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    pub fn providers(&self) -> &Providers {
        &self.providers
    }

    /// Providers this application may use.
    pub fn available_providers<'a>(
        &'a self,
        app: &'a Application,
    ) -> impl Iterator<Item = &'a Arc<dyn Provider>> + 'a {
        self.providers
            .all()
            .filter(move |p| !p.info().test_only || app.environment == KeyEnvironment::Test)
    }

    fn provider_for(&self, app: &Application, id: &str, field: &str) -> Result<Arc<dyn Provider>> {
        self.available_providers(app)
            .find(|p| p.info().id == id)
            .cloned()
            .ok_or_else(|| Error::invalid(field, format!("unknown provider `{id}`")))
    }

    fn ctx(&self, v: &Verification, now: Timestamp) -> Ctx<'_> {
        Ctx {
            session: v.id.clone(),
            now,
            public_url: &self.public_url,
            callback_url: format!(
                "{}/verify/callback/{}/{}",
                self.public_url, v.application_id, v.id
            ),
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

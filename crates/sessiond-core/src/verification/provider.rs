//! Identity providers behind one small trait.
//!
//! A provider says what it needs ([`ProviderInfo`]) and answers four questions, each with a
//! [`Next`]: what to do given the relying party's input ([`Provider::begin`]), what to do with
//! the user's answer to a form or choice ([`Provider::submit`]), what a fresh deep link is
//! ([`Provider::refresh`]), and what an outside party's completion means ([`Provider::complete`]:
//! a wallet presenting, an identity provider's redirect callback). The core keeps the session,
//! the state machine, sealing and delivery; a provider never sees storage, keys or the clock
//! beyond [`Ctx`].
//!
//! Adding a real provider (for example an OpenID Connect identity provider) means implementing
//! this trait — `begin` answers [`Next::Redirect`] to the authorization endpoint, `complete`
//! exchanges the callback's code and maps the claims — and registering it in [`Providers`]; the
//! core and the dialects stay as they are.
//!
//! Contract: a provider puts personal data only into [`Outcome::Success`]. Anything else it
//! returns (form field names, choices, deep links) may be stored in clear.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::identity::Claims;
use super::model::{FailReason, VerificationId};
use crate::clock::Timestamp;

/// How a provider's step reaches the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LaunchMethod {
    /// Open a URL in a browser (the hosted pages or an external site).
    LaunchBrowser,
    /// Nothing to launch: results are ready (or arrive) without the user.
    None,
    /// Open a deep link on the user's phone (or show it as a QR code).
    DeeplinkToMobile,
    /// Show text to the user.
    ShowContent,
}

/// How the relying party learns the result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collection {
    PollResult,
    CaptureRedirect,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubProvider {
    pub id: &'static str,
    pub name: &'static str,
    pub description: &'static str,
}

/// What a provider is and needs. Static for a provider.
#[derive(Debug, Clone)]
pub struct ProviderInfo {
    pub id: &'static str,
    pub name: &'static str,
    pub subtext: &'static str,
    pub description: &'static str,
    /// File name of its logo among the hosted pages' assets.
    pub logo: &'static str,
    /// Usable only by test-mode applications (those created without `--live`).
    pub test_only: bool,
    /// Name of this provider's member in the relying party's provider input.
    pub input_key: Option<&'static str>,
    pub requires_input: bool,
    pub launch_method: LaunchMethod,
    pub collection: Collection,
    pub results_delayed_after_redirect: bool,
    /// Its content (a deep link) expires and must be refreshed.
    pub refreshable: bool,
    /// Whether it shows an interface of its own (anything but a plain redirect).
    pub has_interface: bool,
    pub supports_advanced: bool,
    pub geography: &'static [&'static str],
    pub sub_providers: Vec<SubProvider>,
    /// (field, availability: `Always` | `Sometimes` | `Never`).
    pub fields: &'static [(&'static str, &'static str)],
}

/// A field of a provider's input form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormField {
    pub name: &'static str,
    pub label: &'static str,
    pub hint: Option<&'static str>,
    pub required: bool,
    /// `text`, `numeric` (digits, `inputmode=numeric`) or `file` (an image upload).
    pub kind: &'static str,
    pub autocomplete: Option<&'static str>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub id: String,
    pub label: String,
    pub description: String,
}

/// A deep link with a one-time code in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deeplink {
    pub content: String,
    /// The one-time code the link carries; the core keeps only its keyed hash.
    pub code: String,
    pub ttl_secs: u64,
}

/// How a provider's verification ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Success(Box<Claims>),
    Failure(FailReason),
}

/// What happens next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Done(Outcome),
    /// Ask the user for input; `values` prefill it (from the relying party's input).
    Form {
        fields: Vec<FormField>,
        values: BTreeMap<String, String>,
        errors: BTreeMap<String, String>,
    },
    Choose(Vec<Choice>),
    Deeplink(Deeplink),
    /// Send the browser elsewhere (an external identity provider); it comes back through
    /// [`Provider::complete`].
    Redirect(String),
}

/// Bad relying-party input: the field (within the provider's input) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InputError {
    pub field: String,
    pub reason: String,
}

/// What a provider may know about the session it works for.
#[derive(Debug, Clone)]
pub struct Ctx<'a> {
    pub session: VerificationId,
    pub now: Timestamp,
    /// Absolute base URL of this server.
    pub public_url: &'a str,
    /// Absolute URL that returns to this session's [`Provider::complete`] (a deep link's landing
    /// page, an identity provider's redirect URI).
    pub callback_url: String,
}

pub trait Provider: Send + Sync {
    fn info(&self) -> &ProviderInfo;
    /// Starts with the relying party's input for this provider, if any.
    fn begin(&self, ctx: &Ctx<'_>, input: Option<&Map<String, Value>>) -> Result<Next, InputError>;
    /// The user's answer to this provider's form or choice. Bad answers come back as a form
    /// with `errors`, never as an error.
    fn submit(&self, ctx: &Ctx<'_>, fields: &BTreeMap<String, String>) -> Next;
    /// A fresh deep link, for providers whose content expires.
    fn refresh(&self, _ctx: &Ctx<'_>) -> Option<Deeplink> {
        None
    }
    /// An outside party finished the step (already authenticated by the core: a valid one-time
    /// code, or a callback bound to the session).
    fn complete(&self, _ctx: &Ctx<'_>, _params: &BTreeMap<String, String>) -> Option<Next> {
        None
    }
}

/// The providers a server offers.
#[derive(Clone, Default)]
pub struct Providers {
    list: Vec<Arc<dyn Provider>>,
}

impl Providers {
    pub fn new(list: Vec<Arc<dyn Provider>>) -> Self {
        Providers { list }
    }
    pub fn get(&self, id: &str) -> Option<&Arc<dyn Provider>> {
        self.list.iter().find(|p| p.info().id == id)
    }
    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn Provider>> {
        self.list.iter()
    }
}

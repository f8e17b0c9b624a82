//! The verification service: every operation of both Trinsic generations and of the hosted
//! pages, over one aggregate. Dialects and pages call this; it decides.
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

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use sessiond_crypto::recipient::{RecipientKey, seal_to};
use zeroize::Zeroizing;

use super::identity::{AttachmentContent, IdentityData};
use super::model::{
    DISCLOSED_FIELDS, Event, FailReason, Flow, Options, State, Step, TransitionError, Verification,
    VerificationId,
};
use super::provider::{
    Choice, Collection, Ctx, Deeplink, FormField, LaunchMethod, Next, Outcome, Provider, Providers,
};
use crate::application::{Application, KeyEnvironment};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::store::{Store, StoreError, StoredAttachment, VerificationOrder};
use crate::vault::Vault;

const RETRIES: usize = 5;
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
            "sessionId",
            format!("the session already finished ({})", s.as_str()),
        ),
        TransitionError::Invalid { from, to } => Error::invalid(
            "sessionId",
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

/// How the finished result reaches the relying party's frontend.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    /// Navigate to this URL (the redirect URL with `sessionId`, `resultsAccessKey`, `success`).
    Redirect(String),
    /// `postMessage(message)` to the opener (popup) or parent (iframe), for each allowed origin.
    PostMessage {
        target: &'static str,
        message: Value,
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
        success: bool,
        reason: Option<State>,
        delivery: Delivery,
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

/// Whether `url` is an absolute http(s) URL whose origin the application allows.
pub fn redirect_allowed(app: &Application, url: &str) -> bool {
    origin_of(url).is_some_and(|o| {
        app.settings
            .allowed_redirect_origins
            .iter()
            .any(|a| a.eq_ignore_ascii_case(&o))
    })
}

/// `scheme://host[:port]` of an absolute http(s) URL without credentials.
pub fn origin_of(url: &str) -> Option<String> {
    if url.len() > MAX_URL || url.chars().any(|c| c.is_control() || c == ' ') {
        return None;
    }
    let (scheme, rest) = url.split_once("://")?;
    if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    if authority.is_empty() || authority.contains('@') || authority.contains('\\') {
        return None;
    }
    Some(format!(
        "{}://{}",
        scheme.to_ascii_lowercase(),
        authority.to_ascii_lowercase()
    ))
}

fn append_query(url: &str, params: &[(&str, &str)]) -> String {
    let (base, fragment) = url
        .split_once('#')
        .map_or((url, None), |(b, f)| (b, Some(f)));
    let mut out = base.to_owned();
    for (k, v) in params {
        out.push(if out.contains('?') { '&' } else { '?' });
        out.push_str(k);
        out.push('=');
        out.push_str(&percent(v));
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

fn percent(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
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

    fn key_hash(&self, key: &str) -> [u8; 32] {
        self.vault.hasher().hash(&format!("rak:{key}"))
    }

    fn check_key(&self, v: &Verification, key: &str) -> Result<()> {
        if key.is_empty()
            || key.len() > 200
            || !self
                .vault
                .hasher()
                .verify(&format!("rak:{key}"), &v.results_key_hash)
        {
            return Err(Error::invalid(
                "resultsAccessKey",
                "does not match this session",
            ));
        }
        Ok(())
    }

    fn launch_url(&self, v: &Verification, key: &str) -> Result<String> {
        let t = LaunchToken {
            s: v.id.0.clone(),
            a: v.application_id.0.clone(),
            k: key.to_owned(),
            e: v.expires_at.as_millis(),
        };
        let plain =
            Zeroizing::new(serde_json::to_vec(&t).map_err(|e| Error::Internal(e.to_string()))?);
        let sealed = self.vault.seal(LAUNCH_CONTEXT, &plain);
        Ok(format!(
            "{}/verify/launch?t={}",
            self.public_url,
            URL_SAFE_NO_PAD.encode(sealed)
        ))
    }

    fn open_token(&self, token: &str, now: Timestamp) -> Result<LaunchToken> {
        let bad = || Error::Forbidden("this verification link is not valid".into());
        if token.len() > 4096 {
            return Err(bad());
        }
        let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?;
        let plain = self.vault.unseal(LAUNCH_CONTEXT, &raw).map_err(|_| bad())?;
        let t: LaunchToken = serde_json::from_slice(&plain).map_err(|_| bad())?;
        if now.as_millis() >= t.e {
            return Err(Error::Forbidden(
                "this verification link has expired".into(),
            ));
        }
        Ok(t)
    }

    /// The session a launch token names, without checking expiry (to pick its binding cookie).
    pub fn token_session(&self, token: &str) -> Option<VerificationId> {
        let raw = URL_SAFE_NO_PAD.decode(token).ok()?;
        let plain = self.vault.unseal(LAUNCH_CONTEXT, &raw).ok()?;
        let t: LaunchToken = serde_json::from_slice(&plain).ok()?;
        Some(VerificationId(t.s))
    }

    fn seal_identity(
        &self,
        v: &mut Verification,
        provider: &str,
        claims: super::identity::Claims,
        now: Timestamp,
    ) -> Result<Vec<StoredAttachment>> {
        let mut stored = Vec::new();
        let mut data = IdentityData {
            originating_provider_id: Some(provider.to_owned()),
            originating_sub_provider_id: claims.sub_provider.clone(),
            person: claims.person,
            document: claims.document,
            attachments: Vec::new(),
        };
        for a in claims.attachments {
            let id = sessiond_crypto::ids::new_id("att");
            let secret = Zeroizing::new(sessiond_crypto::random_bytes::<32>());
            let key = RecipientKey::derive(secret.as_ref());
            let content = Zeroizing::new(
                serde_json::to_vec(&AttachmentContent {
                    content_type: a.content_type,
                    content: a.content,
                })
                .map_err(|e| Error::Internal(e.to_string()))?,
            );
            let sealed = seal_to(&key.public(), &attachment_context(&id), &content)
                .map_err(|e| Error::Internal(e.to_string()))?;
            data.attachments.push((
                a.slot,
                format!("{id}.{}", URL_SAFE_NO_PAD.encode(secret.as_ref())),
            ));
            stored.push(StoredAttachment {
                id,
                application_id: v.application_id.clone(),
                verification_id: v.id.clone(),
                sealed,
                created_at: now,
            });
        }
        let plain =
            Zeroizing::new(serde_json::to_vec(&data).map_err(|e| Error::Internal(e.to_string()))?);
        v.results_sealed = Some(
            seal_to(&v.results_public_key, &results_context(&v.id), &plain)
                .map_err(|e| Error::Internal(e.to_string()))?,
        );
        v.sub_provider = data.originating_sub_provider_id;
        Ok(stored)
    }

    /// Applies a provider's outcome: success seals the identity data; failure records why.
    fn finish(
        &self,
        v: &mut Verification,
        outcome: Outcome,
        now: Timestamp,
    ) -> Result<Vec<StoredAttachment>> {
        let provider = v.provider.clone().unwrap_or_default();
        match outcome {
            Outcome::Success(claims) => {
                if v.state != State::InProgress {
                    v.apply(Event::Begin, now).map_err(finished_error)?;
                }
                v.apply(Event::Succeed, now).map_err(finished_error)?;
                self.seal_identity(v, &provider, *claims, now)
            }
            Outcome::Failure(r) => {
                v.apply(Event::Fail(r), now).map_err(finished_error)?;
                Ok(Vec::new())
            }
        }
    }

    fn set_deeplink(&self, v: &mut Verification, d: &Deeplink, now: Timestamp) -> StepRefresh {
        let expires_at = now.plus_secs(d.ttl_secs);
        v.step = Step::Deeplink {
            code_hash: hex(&self.vault.hasher().hash(&format!("deeplink:{}", d.code))),
            content_sealed: URL_SAFE_NO_PAD.encode(
                self.vault
                    .seal(&format!("verification_step:{}", v.id), d.content.as_bytes()),
            ),
            issued_at: now,
            expires_at,
        };
        v.updated_at = now;
        StepRefresh {
            expires_at,
            refresh_after: now.plus_secs(d.ttl_secs.saturating_sub(DEEPLINK_REFRESH_MARGIN_SECS)),
            ttl_secs: d.ttl_secs,
        }
    }

    fn validate_options(&self, app: &Application, o: &Options) -> Result<()> {
        if o.providers.len() > MAX_PROVIDERS {
            return Err(Error::invalid(
                "providers",
                format!("at most {MAX_PROVIDERS} providers"),
            ));
        }
        for p in &o.providers {
            self.provider_for(app, p, "providers")?;
        }
        if let Some(url) = &o.redirect_url
            && !redirect_allowed(app, url)
        {
            return Err(Error::invalid(
                "redirectUrl",
                "must be an absolute http(s) URL whose origin is one of the application's allowed redirect origins",
            ));
        }
        if o.launch_directly && o.providers.len() != 1 {
            return Err(Error::invalid(
                "providers",
                "exactly one provider is required when launching a provider directly",
            ));
        }
        if o.launch_directly && o.remember_me {
            return Err(Error::invalid(
                "enableRememberMe",
                "cannot be used when launching a provider directly",
            ));
        }
        if let Some(d) = &o.disclosed_fields
            && d.len() != DISCLOSED_FIELDS.len()
        {
            return Err(Error::Internal(
                "disclosed fields must have 12 entries".into(),
            ));
        }
        Ok(())
    }

    fn provider_input<'a>(
        provider: &dyn Provider,
        input: Option<&'a Map<String, Value>>,
    ) -> Result<Option<&'a Map<String, Value>>> {
        let Some(key) = provider.info().input_key else {
            return Ok(None);
        };
        match input.and_then(|m| m.get(key)) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(_) => Err(Error::invalid(
                format!("providerInput.{key}"),
                "must be an object",
            )),
        }
    }

    fn begin(
        &self,
        provider: &dyn Provider,
        ctx: &Ctx<'_>,
        input: Option<&Map<String, Value>>,
    ) -> Result<Next> {
        let member = Self::provider_input(provider, input)?;
        provider.begin(ctx, member).map_err(|e| {
            let key = provider.info().input_key.unwrap_or("providerInput");
            Error::invalid(format!("providerInput.{key}.{}", e.field), e.reason)
        })
    }

    /// Creates a session of any flow.
    pub async fn create(
        &self,
        app: &Application,
        req: NewVerification,
        now: Timestamp,
    ) -> Result<Created> {
        let flow = req
            .flow
            .ok_or_else(|| Error::Internal("flow missing".into()))?;
        let mut options = req.options;
        self.validate_options(app, &options)?;
        let key = Zeroizing::new(format!(
            "rak_{}",
            URL_SAFE_NO_PAD.encode(sessiond_crypto::random_bytes::<32>())
        ));
        let recipient = RecipientKey::derive(key.as_bytes());
        let id = VerificationId::new();
        let lifetime = app.settings.verification_session_lifetime_secs;
        let provider = match (&req.provider, flow) {
            (Some(p), _) => Some(self.provider_for(app, p, "provider")?),
            (None, Flow::Connect) if options.launch_directly => {
                Some(self.provider_for(app, &options.providers[0], "providers")?)
            }
            (None, Flow::Hosted | Flow::Advanced) => {
                return Err(Error::invalid("provider", "is required"));
            }
            (None, _) => None,
        };
        if let Some(input) = &req.provider_input {
            // Every member must name an available provider, and the chosen provider's member must
            // be valid now rather than when the user arrives.
            for k in input.keys() {
                if !self
                    .available_providers(app)
                    .any(|p| p.info().input_key == Some(k.as_str()))
                {
                    return Err(Error::invalid(
                        format!("providerInput.{k}"),
                        "is not the input of an available provider",
                    ));
                }
            }
        }
        let mut v = Verification {
            id: id.clone(),
            application_id: app.id.clone(),
            flow,
            state: State::Created,
            provider: provider.as_ref().map(|p| p.info().id.to_owned()),
            sub_provider: None,
            options: Options::default(),
            step: Step::Start,
            results_key_hash: self.key_hash(&key),
            results_public_key: recipient.public(),
            input_sealed: None,
            results_sealed: None,
            browser_binding: None,
            created_at: now,
            updated_at: now,
            expires_at: now.plus_secs(lifetime),
            finished_at: None,
            redacted_at: None,
            version: 1,
        };
        if req.provider_input.is_some() || req.known_identity.is_some() {
            let plain = Zeroizing::new(
                serde_json::to_vec(&json!({
                    "providerInput": req.provider_input,
                    "known": req.known_identity,
                }))
                .map_err(|e| Error::Internal(e.to_string()))?,
            );
            v.input_sealed = Some(
                seal_to(&v.results_public_key, &input_context(&id), &plain)
                    .map_err(|e| Error::Internal(e.to_string()))?,
            );
        }
        let ctx = self.ctx(&v, now);
        let mut attachments = Vec::new();
        let mut next_step = None;
        let mut collection = None;
        match (flow, &provider) {
            (Flow::Advanced, Some(p)) => {
                let info = p.info();
                if !info.supports_advanced {
                    return Err(Error::invalid(
                        "provider",
                        format!("`{}` does not support advanced sessions", info.id),
                    ));
                }
                let caps = |c: &str| options.capabilities.iter().any(|x| x == c);
                let next = self.begin(p.as_ref(), &ctx, req.provider_input.as_ref())?;
                let needs: Vec<&str> = match &next {
                    Next::Done(_) => vec!["PollResult"],
                    Next::Deeplink(_) if info.refreshable => {
                        vec!["DeeplinkToMobile", "PollResult", "RefreshStepContent"]
                    }
                    Next::Deeplink(_) => vec!["DeeplinkToMobile", "PollResult"],
                    Next::Redirect(_) => vec!["LaunchBrowser", "CaptureRedirect"],
                    // Forms and choices need an interface: only the hosted pages have one.
                    Next::Form { .. } | Next::Choose(_) => vec!["(hosted interface)"],
                };
                let missing: Vec<&str> = needs.iter().copied().filter(|c| !caps(c)).collect();
                let redirect_needed = matches!(next, Next::Redirect(_));
                if missing.is_empty() && !(redirect_needed && options.redirect_url.is_none()) {
                    v.apply(Event::Launch, now).map_err(finished_error)?;
                    match next {
                        Next::Done(outcome) => {
                            attachments = self.finish(&mut v, outcome, now)?;
                            next_step = Some(IntegrationStep {
                                method: LaunchMethod::None,
                                content: String::new(),
                                refresh: None,
                            });
                            collection = Some(Collection::PollResult);
                        }
                        Next::Deeplink(d) => {
                            v.apply(Event::Begin, now).map_err(finished_error)?;
                            let refresh = self.set_deeplink(&mut v, &d, now);
                            next_step = Some(IntegrationStep {
                                method: LaunchMethod::DeeplinkToMobile,
                                content: d.content,
                                refresh: info.refreshable.then_some(refresh),
                            });
                            collection = Some(Collection::PollResult);
                        }
                        Next::Redirect(url) => {
                            v.apply(Event::Begin, now).map_err(finished_error)?;
                            next_step = Some(IntegrationStep {
                                method: LaunchMethod::LaunchBrowser,
                                content: url,
                                refresh: None,
                            });
                            collection = Some(Collection::CaptureRedirect);
                        }
                        Next::Form { .. } | Next::Choose(_) => {}
                    }
                } else if options.fallback_to_hosted {
                    let mut gaps = Vec::new();
                    for c in ["LaunchBrowser", "CaptureRedirect"] {
                        if !caps(c) {
                            gaps.push(c);
                        }
                    }
                    if !gaps.is_empty() || options.redirect_url.is_none() {
                        return Err(Error::invalid(
                            "fallbackToHostedUI",
                            format!(
                                "falling back to the hosted interface needs a redirectUrl and the capabilities LaunchBrowser and CaptureRedirect{}",
                                if gaps.is_empty() {
                                    String::new()
                                } else {
                                    format!(" (missing: {})", gaps.join(", "))
                                }
                            ),
                        ));
                    }
                    options.fell_back = true;
                    collection = Some(Collection::CaptureRedirect);
                } else {
                    let what = if missing.contains(&"(hosted interface)") {
                        "its input is missing or incomplete, which only the hosted interface can collect; set fallbackToHostedUI".to_owned()
                    } else if missing.is_empty() {
                        "a redirectUrl is required".to_owned()
                    } else {
                        format!("missing capabilities: {}", missing.join(", "))
                    };
                    return Err(Error::invalid(
                        "capabilities",
                        format!("provider `{}` cannot run here: {what}", info.id),
                    ));
                }
            }
            (_, Some(p)) => {
                // Hosted and direct launches start when the user arrives; check the input now.
                self.begin(p.as_ref(), &ctx, req.provider_input.as_ref())?;
            }
            _ => {}
        }
        v.options = options;
        self.store.insert_verification(&v, &attachments).await?;
        let launch_url = self.launch_url(&v, &key)?;
        if next_step.is_none() && v.options.fell_back {
            next_step = Some(IntegrationStep {
                method: LaunchMethod::LaunchBrowser,
                content: launch_url.clone(),
                refresh: None,
            });
        }
        Ok(Created {
            verification: v,
            results_access_key: key,
            launch_url,
            next_step,
            collection,
        })
    }

    async fn load(
        &self,
        app: &crate::application::AppId,
        id: &VerificationId,
    ) -> Result<Verification> {
        self.store
            .get_verification(app, id)
            .await?
            .ok_or(Error::NotFound { kind: "session" })
    }

    /// A session with its state as of `now`.
    pub async fn get(
        &self,
        app: &Application,
        id: &VerificationId,
        now: Timestamp,
    ) -> Result<Verification> {
        let mut v = self.load(&app.id, id).await?;
        v.state = v.effective_state(now);
        Ok(v)
    }

    pub async fn list(
        &self,
        app: &Application,
        order: VerificationOrder,
        descending: bool,
        limit: u32,
        offset: u64,
        now: Timestamp,
    ) -> Result<(Vec<Verification>, u64)> {
        let (mut list, total) = self
            .store
            .list_verifications(&app.id, order, descending, limit, offset)
            .await?;
        for v in &mut list {
            v.state = v.effective_state(now);
        }
        Ok((list, total))
    }

    /// The session and, once it succeeded and unless redacted, its identity data.
    pub async fn results(
        &self,
        app: &Application,
        id: &VerificationId,
        key: &str,
        now: Timestamp,
    ) -> Result<(Verification, Option<IdentityData>)> {
        let mut v = self.load(&app.id, id).await?;
        self.check_key(&v, key)?;
        v.state = v.effective_state(now);
        let data = match &v.results_sealed {
            None => None,
            Some(sealed) => {
                let plain = RecipientKey::derive(key.as_bytes())
                    .open(&results_context(&v.id), sealed)
                    .map_err(|e| Error::Internal(format!("results of {}: {e}", v.id)))?;
                Some(serde_json::from_slice(&plain).map_err(|e| Error::Internal(e.to_string()))?)
            }
        };
        Ok((v, data))
    }

    /// Relying-party cancellation. Cancelling a cancelled session returns it unchanged.
    pub async fn cancel(
        &self,
        app: &Application,
        id: &VerificationId,
        now: Timestamp,
    ) -> Result<Verification> {
        for _ in 0..RETRIES {
            let mut v = self.load(&app.id, id).await?;
            if v.effective_state(now) == State::Cancelled {
                return Ok(v);
            }
            v.apply(Event::Cancel, now).map_err(finished_error)?;
            v.version += 1;
            match self.store.update_verification(&v, &[]).await {
                Ok(()) => return Ok(v),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Conflict)
    }

    /// Removes identity data, input and attachments for good; the record stays, marked redacted.
    /// An unfinished session is cancelled first, so nothing can be written after redaction.
    pub async fn redact(
        &self,
        app: &Application,
        id: &VerificationId,
        now: Timestamp,
    ) -> Result<Verification> {
        for _ in 0..RETRIES {
            let mut v = self.load(&app.id, id).await?;
            if !v.effective_state(now).is_terminal() {
                v.apply(Event::Cancel, now).map_err(finished_error)?;
            } else if !v.state.is_terminal() {
                v.state = State::Expired;
                v.finished_at = Some(v.expires_at);
            }
            v.results_sealed = None;
            v.input_sealed = None;
            v.step = Step::Finished;
            if v.redacted_at.is_none() {
                v.redacted_at = Some(now);
            }
            v.updated_at = now;
            v.version += 1;
            match self.store.redact_verification(&v).await {
                Ok(()) => return Ok(v),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Conflict)
    }

    /// An attachment's bytes, by its access key.
    pub async fn attachment(&self, app: &Application, key: &str) -> Result<AttachmentContent> {
        let missing = || Error::NotFound { kind: "attachment" };
        let (id, secret) = key.split_once('.').ok_or_else(missing)?;
        if !sessiond_crypto::ids::is_id(id, "att") || secret.len() > 64 {
            return Err(missing());
        }
        let secret = Zeroizing::new(URL_SAFE_NO_PAD.decode(secret).map_err(|_| missing())?);
        let stored = self
            .store
            .get_attachment(&app.id, id)
            .await?
            .ok_or_else(missing)?;
        let plain = RecipientKey::derive(&secret)
            .open(&attachment_context(id), &stored.sealed)
            .map_err(|_| missing())?;
        serde_json::from_slice(&plain).map_err(|e| Error::Internal(e.to_string()))
    }

    /// A fresh deep link for a session waiting on a refreshable step.
    pub async fn refresh_step(
        &self,
        app: &Application,
        id: &VerificationId,
        key: &str,
        now: Timestamp,
    ) -> Result<IntegrationStep> {
        for _ in 0..RETRIES {
            let mut v = self.load(&app.id, id).await?;
            self.check_key(&v, key)?;
            let state = v.effective_state(now);
            if state.is_terminal() {
                return Err(finished_error(TransitionError::Finished(state)));
            }
            let provider = v
                .provider
                .as_deref()
                .and_then(|p| self.providers.get(p))
                .cloned();
            let (Step::Deeplink { .. }, Some(provider)) = (&v.step, provider) else {
                return Err(Error::invalid(
                    "sessionId",
                    "the session has no refreshable step",
                ));
            };
            let Some(d) = provider.refresh(&self.ctx(&v, now)) else {
                return Err(Error::invalid(
                    "sessionId",
                    "the session has no refreshable step",
                ));
            };
            let refresh = self.set_deeplink(&mut v, &d, now);
            v.version += 1;
            match self.store.update_verification(&v, &[]).await {
                Ok(()) => {
                    return Ok(IntegrationStep {
                        method: LaunchMethod::DeeplinkToMobile,
                        content: d.content,
                        refresh: Some(refresh),
                    });
                }
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Conflict)
    }

    // ---- hosted pages ----

    fn binding_hash(&self, id: &VerificationId, binding: &str) -> [u8; 32] {
        self.vault.hasher().hash(&format!("binding:{id}:{binding}"))
    }

    fn csrf_for(&self, id: &VerificationId, binding: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.vault.hasher().hash(&format!("csrf:{id}:{binding}")))
    }

    fn open_input(&self, v: &Verification, key: &str) -> Result<Option<Map<String, Value>>> {
        let Some(sealed) = &v.input_sealed else {
            return Ok(None);
        };
        let plain = RecipientKey::derive(key.as_bytes())
            .open(&input_context(&v.id), sealed)
            .map_err(|e| Error::Internal(format!("input of {}: {e}", v.id)))?;
        let value: Value =
            serde_json::from_slice(&plain).map_err(|e| Error::Internal(e.to_string()))?;
        Ok(value
            .get("providerInput")
            .and_then(Value::as_object)
            .cloned())
    }

    fn delivery(&self, app: &Application, v: &Verification, key: &str) -> Delivery {
        let success = v.state == State::Success;
        let mode = v.options.launch_mode.as_deref();
        match (&v.options.redirect_url, mode) {
            (Some(url), None | Some("redirect")) => {
                let id = v.id.to_string();
                let mut params = vec![("sessionId", id.as_str())];
                if success {
                    params.push(("resultsAccessKey", key));
                }
                params.push(("success", if success { "true" } else { "false" }));
                Delivery::Redirect(append_query(url, &params))
            }
            _ => {
                let msg = match v.state {
                    State::Success => "complete",
                    State::Failed(FailReason::UserCanceled) => "user-closed",
                    _ => "failed",
                };
                let mut message = json!({
                    "success": success,
                    "msg": msg,
                    "sessionId": v.id.as_str(),
                });
                if success {
                    message["resultsAccessKey"] = Value::String(key.to_owned());
                }
                Delivery::PostMessage {
                    target: if mode == Some("iframe") {
                        "parent"
                    } else {
                        "opener"
                    },
                    message,
                    origins: app.settings.allowed_redirect_origins.clone(),
                }
            }
        }
    }

    fn cards(&self, app: &Application, v: &Verification) -> Vec<ProviderCard> {
        self.available_providers(app)
            .filter(|p| {
                v.options.providers.is_empty()
                    || v.options.providers.iter().any(|x| x == p.info().id)
            })
            .map(|p| ProviderCard {
                id: p.info().id.to_owned(),
                name: p.info().name.to_owned(),
                description: p.info().description.to_owned(),
                logo: p.info().logo.to_owned(),
            })
            .collect()
    }

    /// Turns a provider's answer into the session's next state and the page to show.
    fn advance(
        &self,
        app: &Application,
        v: &mut Verification,
        next: Next,
        key: &str,
        now: Timestamp,
    ) -> Result<(View, Vec<StoredAttachment>)> {
        let provider_name = v
            .provider
            .as_deref()
            .and_then(|p| self.providers.get(p))
            .map(|p| p.info().name.to_owned())
            .unwrap_or_default();
        let can_go_back = matches!(v.flow, Flow::Widget | Flow::Connect)
            && !v.options.launch_directly
            && self.cards(app, v).len() > 1;
        if !matches!(next, Next::Done(_)) && v.state != State::InProgress {
            v.apply(Event::Begin, now).map_err(finished_error)?;
        }
        Ok(match next {
            Next::Done(outcome) => {
                let atts = self.finish(v, outcome, now)?;
                (self.finished_view(app, v, key), atts)
            }
            Next::Form {
                fields,
                values,
                errors,
            } => {
                v.step = Step::Form;
                (
                    View::Form {
                        provider: provider_name,
                        fields,
                        values,
                        errors,
                        can_go_back,
                    },
                    Vec::new(),
                )
            }
            Next::Choose(choices) => {
                v.step = Step::ChooseSubProvider;
                (
                    View::ChooseSubProvider {
                        provider: provider_name,
                        choices,
                        can_go_back,
                    },
                    Vec::new(),
                )
            }
            Next::Deeplink(d) => {
                let r = self.set_deeplink(v, &d, now);
                (
                    View::Deeplink {
                        provider: provider_name,
                        content: d.content,
                        expires_at: r.expires_at,
                    },
                    Vec::new(),
                )
            }
            Next::Redirect(url) => (View::External(url), Vec::new()),
        })
    }

    fn finished_view(&self, app: &Application, v: &Verification, key: &str) -> View {
        View::Finished {
            success: v.state == State::Success,
            reason: (v.state != State::Success).then_some(v.state),
            delivery: self.delivery(app, v, key),
        }
    }

    /// The view for the session's current step (first arrival, reload, or after a write).
    fn current_view(
        &self,
        app: &Application,
        v: &mut Verification,
        key: &str,
        now: Timestamp,
    ) -> Result<(View, Vec<StoredAttachment>)> {
        let state = v.effective_state(now);
        if state.is_terminal() {
            v.state = state;
            return Ok((self.finished_view(app, v, key), Vec::new()));
        }
        let provider = v
            .provider
            .as_deref()
            .and_then(|p| self.providers.get(p))
            .cloned();
        match (&v.step, provider) {
            (
                Step::Deeplink {
                    content_sealed,
                    expires_at,
                    ..
                },
                Some(p),
            ) => {
                if now < expires_at.minus_secs(DEEPLINK_REFRESH_MARGIN_SECS)
                    && let Ok(raw) = URL_SAFE_NO_PAD.decode(content_sealed)
                    && let Ok(content) = self
                        .vault
                        .unseal(&format!("verification_step:{}", v.id), &raw)
                {
                    return Ok((
                        View::Deeplink {
                            provider: p.info().name.to_owned(),
                            content: String::from_utf8_lossy(&content).into_owned(),
                            expires_at: *expires_at,
                        },
                        Vec::new(),
                    ));
                }
                let next = match p.refresh(&self.ctx(v, now)) {
                    Some(d) => Next::Deeplink(d),
                    None => self.begin(p.as_ref(), &self.ctx(v, now), None)?,
                };
                self.advance(app, v, next, key, now)
            }
            (Step::ChooseProvider, _) | (Step::Start, None) => {
                let cards = self.cards(app, v);
                if let [only] = cards.as_slice()
                    && matches!(v.step, Step::Start)
                {
                    let p = self.provider_for(app, &only.id, "providers")?;
                    v.provider = Some(only.id.clone());
                    let input = self.open_input(v, key)?;
                    let next = self.begin(p.as_ref(), &self.ctx(v, now), input.as_ref())?;
                    return self.advance(app, v, next, key, now);
                }
                v.step = Step::ChooseProvider;
                Ok((View::ChooseProvider(cards), Vec::new()))
            }
            (_, Some(p)) => {
                let input = self.open_input(v, key)?;
                let next = self.begin(p.as_ref(), &self.ctx(v, now), input.as_ref())?;
                self.advance(app, v, next, key, now)
            }
            (_, None) => {
                v.step = Step::ChooseProvider;
                Ok((View::ChooseProvider(self.cards(app, v)), Vec::new()))
            }
        }
    }

    async fn page_session(
        &self,
        token: &str,
        now: Timestamp,
    ) -> Result<(LaunchToken, Application, Verification)> {
        let t = self.open_token(token, now)?;
        let app_id = crate::application::AppId(t.a.clone());
        let app = self
            .store
            .get_application(&app_id)
            .await?
            .ok_or(Error::NotFound { kind: "session" })?;
        let v = self.load(&app_id, &VerificationId(t.s.clone())).await?;
        Ok((t, app, v))
    }

    fn check_binding(&self, v: &Verification, binding: Option<&str>) -> Result<()> {
        let ok = match (&v.browser_binding, binding) {
            (Some(h), Some(b)) if b.len() <= 100 => {
                sessiond_crypto::ct::eq(&self.binding_hash(&v.id, b), h)
            }
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(Error::Forbidden(
                "this verification link is already in use in another browser".into(),
            ))
        }
    }

    async fn save(&self, v: &mut Verification, atts: &[StoredAttachment]) -> Result<()> {
        v.version += 1;
        self.store.update_verification(v, atts).await?;
        Ok(())
    }

    /// The user opened the launch link (or reloaded a page).
    pub async fn launch(
        &self,
        token: &str,
        binding: Option<&str>,
        params: LaunchParams,
        now: Timestamp,
    ) -> Result<Page> {
        let (t, app, mut v) = self.page_session(token, now).await?;
        let mut set_binding = None;
        let binding = match &v.browser_binding {
            None => {
                let b = URL_SAFE_NO_PAD.encode(sessiond_crypto::random_bytes::<32>());
                v.browser_binding = Some(self.binding_hash(&v.id, &b));
                if let Some(url) = params.redirect_url.filter(|u| !u.is_empty()) {
                    if !redirect_allowed(&app, &url) {
                        return Err(Error::invalid(
                            "redirectUrl",
                            "is not an allowed redirect origin of this application",
                        ));
                    }
                    v.options.redirect_url = Some(url);
                }
                v.options.launch_mode =
                    match (params.embed.as_deref(), params.launch_mode.as_deref()) {
                        (Some("iframe"), _) => Some("iframe".into()),
                        (_, Some(m @ ("redirect" | "popup"))) => Some(m.to_owned()),
                        _ => None,
                    };
                set_binding = Some(b.clone());
                b
            }
            Some(_) => {
                self.check_binding(&v, binding)?;
                binding.unwrap_or_default().to_owned()
            }
        };
        if !v.effective_state(now).is_terminal() {
            v.apply(Event::Launch, now).map_err(finished_error)?;
        }
        let before = v.clone();
        let (view, atts) = self.current_view(&app, &mut v, &t.k, now)?;
        if v != before || set_binding.is_some() {
            self.save(&mut v, &atts).await?;
        }
        Ok(Page {
            csrf: self.csrf_for(&v.id, &binding),
            verification: v,
            application_name: app.name.clone(),
            allowed_origins: app.settings.allowed_redirect_origins.clone(),
            view,
            set_binding,
            token: token.to_owned(),
        })
    }

    /// A form on a hosted page was submitted.
    pub async fn submit(
        &self,
        token: &str,
        binding: Option<&str>,
        csrf: &str,
        action: &str,
        fields: &BTreeMap<String, String>,
        now: Timestamp,
    ) -> Result<Page> {
        let (t, app, mut v) = self.page_session(token, now).await?;
        self.check_binding(&v, binding)?;
        let binding = binding.unwrap_or_default();
        let expected = self.csrf_for(&v.id, binding);
        if !sessiond_crypto::ct::eq(expected.as_bytes(), csrf.as_bytes()) {
            return Err(Error::Forbidden(
                "the form expired or did not come from this page; reload and try again".into(),
            ));
        }
        let state = v.effective_state(now);
        let (view, atts) = if state.is_terminal() {
            v.state = state;
            (self.finished_view(&app, &v, &t.k), Vec::new())
        } else {
            match action {
                "cancel" => {
                    v.apply(Event::Fail(FailReason::UserCanceled), now)
                        .map_err(finished_error)?;
                    (self.finished_view(&app, &v, &t.k), Vec::new())
                }
                "back"
                    if v.step != Step::ChooseProvider
                        && matches!(v.flow, Flow::Widget | Flow::Connect)
                        && !v.options.launch_directly =>
                {
                    v.provider = None;
                    v.step = Step::ChooseProvider;
                    v.updated_at = now;
                    (View::ChooseProvider(self.cards(&app, &v)), Vec::new())
                }
                "choose_provider" if v.step == Step::ChooseProvider => {
                    let chosen = fields.get("provider").map(String::as_str).unwrap_or("");
                    if !self.cards(&app, &v).iter().any(|c| c.id == chosen) {
                        (View::ChooseProvider(self.cards(&app, &v)), Vec::new())
                    } else {
                        let p = self.provider_for(&app, chosen, "provider")?;
                        v.provider = Some(chosen.to_owned());
                        let input = self.open_input(&v, &t.k)?;
                        let next = self.begin(p.as_ref(), &self.ctx(&v, now), input.as_ref())?;
                        self.advance(&app, &mut v, next, &t.k, now)?
                    }
                }
                "submit" if matches!(v.step, Step::Form | Step::ChooseSubProvider) => {
                    let p = v
                        .provider
                        .as_deref()
                        .and_then(|p| self.providers.get(p))
                        .cloned()
                        .ok_or_else(|| Error::Internal("form without provider".into()))?;
                    let next = p.submit(&self.ctx(&v, now), fields);
                    self.advance(&app, &mut v, next, &t.k, now)?
                }
                // A stale form (another tab moved on): show where the session is now.
                _ => self.current_view(&app, &mut v, &t.k, now)?,
            }
        };
        self.save(&mut v, &atts).await?;
        Ok(Page {
            csrf: self.csrf_for(&v.id, binding),
            verification: v,
            application_name: app.name.clone(),
            allowed_origins: app.settings.allowed_redirect_origins.clone(),
            view,
            set_binding: None,
            token: token.to_owned(),
        })
    }

    fn wallet_session_check(&self, v: &Verification, code: &str, now: Timestamp) -> Result<()> {
        let Step::Deeplink {
            code_hash,
            expires_at,
            ..
        } = &v.step
        else {
            return Err(Error::Forbidden(
                "this wallet link is no longer valid".into(),
            ));
        };
        let presented = hex(&self.vault.hasher().hash(&format!("deeplink:{code}")));
        if code.is_empty()
            || code.len() > 64
            || !sessiond_crypto::ct::eq(presented.as_bytes(), code_hash.as_bytes())
        {
            return Err(Error::Forbidden(
                "this wallet link is no longer valid".into(),
            ));
        }
        if now >= *expires_at {
            return Err(Error::Forbidden(
                "this wallet link has expired; refresh it and scan again".into(),
            ));
        }
        if v.effective_state(now).is_terminal() {
            return Err(Error::Forbidden(
                "this verification already finished".into(),
            ));
        }
        Ok(())
    }

    fn wallet_csrf(&self, id: &VerificationId, code: &str) -> String {
        URL_SAFE_NO_PAD.encode(
            self.vault
                .hasher()
                .hash(&format!("wallet-csrf:{id}:{code}")),
        )
    }

    /// The test wallet opened a deep link.
    pub async fn wallet_prompt(
        &self,
        app_id: &crate::application::AppId,
        id: &VerificationId,
        code: &str,
        now: Timestamp,
    ) -> Result<WalletPrompt> {
        let app = self
            .store
            .get_application(app_id)
            .await?
            .ok_or(Error::NotFound { kind: "session" })?;
        let v = self.load(app_id, id).await?;
        self.wallet_session_check(&v, code, now)?;
        Ok(WalletPrompt {
            application_name: app.name,
            csrf: self.wallet_csrf(&v.id, code),
            verification: v,
        })
    }

    /// The test wallet presented (`present`) or declined (`decline`).
    pub async fn wallet_complete(
        &self,
        app_id: &crate::application::AppId,
        id: &VerificationId,
        code: &str,
        csrf: &str,
        decision: &str,
        now: Timestamp,
    ) -> Result<Verification> {
        let mut v = self.load(app_id, id).await?;
        self.wallet_session_check(&v, code, now)?;
        if !sessiond_crypto::ct::eq(self.wallet_csrf(&v.id, code).as_bytes(), csrf.as_bytes()) {
            return Err(Error::Forbidden(
                "the form did not come from this page".into(),
            ));
        }
        let p = v
            .provider
            .as_deref()
            .and_then(|p| self.providers.get(p))
            .cloned()
            .ok_or_else(|| Error::Internal("deep link without provider".into()))?;
        let params = BTreeMap::from([("decision".to_owned(), decision.to_owned())]);
        let Some(Next::Done(outcome)) = p.complete(&self.ctx(&v, now), &params) else {
            return Err(Error::invalid("decision", "must be `present` or `decline`"));
        };
        let atts = self.finish(&mut v, outcome, now)?;
        self.save(&mut v, &atts).await?;
        Ok(v)
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

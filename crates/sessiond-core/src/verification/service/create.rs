//! Creating a verification: options checked, the provider chosen, the first step begun.

use crate::application::Application;
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::store::StoredAttachment;
use crate::verification::model::{
    DISCLOSABLE_FIELDS, Event, Flow, Options, State, Step, Verification, VerificationId,
};
use crate::verification::negotiate::{Capability, Gap, Negotiated, negotiate};
use crate::verification::provider::{
    Collection, Ctx, Deeplink, LaunchMethod, Next, Outcome, Provider,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use sessiond_crypto::recipient::{RecipientKey, seal_to};
use zeroize::Zeroizing;

use super::*;

impl VerificationService {
    pub(super) fn finish(
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

    pub(super) fn set_deeplink(
        &self,
        v: &mut Verification,
        d: &Deeplink,
        now: Timestamp,
    ) -> StepRefresh {
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

    pub(super) fn validate_options(&self, app: &Application, o: &Options) -> Result<()> {
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
                "redirect_url",
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
            && d.len() != DISCLOSABLE_FIELDS.len()
        {
            return Err(Error::Internal(
                "disclosed fields must have 12 entries".into(),
            ));
        }
        Ok(())
    }

    pub(super) fn provider_input<'a>(
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
                format!("provider_input.{key}"),
                "must be an object",
            )),
        }
    }

    pub(super) fn begin(
        &self,
        provider: &dyn Provider,
        ctx: &Ctx<'_>,
        input: Option<&Map<String, Value>>,
    ) -> Result<Next> {
        let member = Self::provider_input(provider, input)?;
        provider
            .begin(ctx, member)
            .map_err(|e| match provider.info().input_key {
                Some(key) => Error::invalid(format!("provider_input.{key}.{}", e.field), e.reason),
                None => Error::invalid(format!("provider_input.{}", e.field), e.reason),
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
                        format!("provider_input.{k}"),
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
                    "provider_input": req.provider_input,
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
                let next = self.begin(p.as_ref(), &ctx, req.provider_input.as_ref())?;
                let decision = negotiate(
                    &next,
                    info.refreshable,
                    &options.capabilities,
                    options.redirect_url.is_some(),
                    options.fallback_to_hosted,
                );
                match decision {
                    Negotiated::Direct => {
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
                    }
                    Negotiated::Hosted => {
                        options.fell_back = true;
                        collection = Some(Collection::CaptureRedirect);
                    }
                    Negotiated::Refused(gap) => return Err(refusal(info.id, gap)),
                }
            }
            (_, Some(p)) => {
                // Hosted and direct launches start when the user arrives; check the input now.
                self.begin(p.as_ref(), &ctx, req.provider_input.as_ref())?;
            }
            _ => {}
        }
        v.options = options;
        // A session its provider finished at once is born finished: its event goes with it.
        let event = crate::events::verification_finished(&v);
        self.store
            .insert_verification(&v, &attachments, event.as_ref())
            .await?;
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
}

fn names(caps: &[Capability]) -> String {
    caps.iter()
        .map(|c| format!("{c:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why an advanced session cannot start, in terms of the fields the caller gave.
fn refusal(provider: &str, gap: Gap) -> Error {
    match gap {
        Gap::CannotFallBack(missing) => Error::invalid(
            "fallback_to_hosted",
            format!(
                "falling back to the hosted interface needs a redirect URL and the capabilities \
                 LaunchBrowser and CaptureRedirect{}",
                if missing.is_empty() {
                    String::new()
                } else {
                    format!(" (missing: {})", names(&missing))
                }
            ),
        ),
        other => {
            let what = match other {
                Gap::NeedsHostedPages => "its input is missing or incomplete, which only the \
                                          hosted interface can collect; allow the fallback to it"
                    .to_owned(),
                Gap::NoRedirectUrl => "a redirect URL is required".to_owned(),
                Gap::Missing(m) => format!("missing capabilities: {}", names(&m)),
                Gap::CannotFallBack(_) => String::new(),
            };
            Error::invalid(
                "capabilities",
                format!("provider `{provider}` cannot run here: {what}"),
            )
        }
    }
}

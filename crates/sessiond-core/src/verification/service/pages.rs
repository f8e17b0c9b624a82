//! The hosted pages: launch, the provider choice, form steps, the test wallet, delivery.

use crate::application::Application;
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::store::StoredAttachment;
use crate::verification::model::{
    Event, FailReason, Flow, State, Step, Verification, VerificationId,
};
use crate::verification::provider::Next;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::collections::BTreeMap;

use super::*;

impl VerificationService {
    // ---- hosted pages ----

    pub(super) fn handoff(&self, app: &Application, v: &Verification, key: &str) -> Handoff {
        let success = v.state == State::Success;
        let mode = v.options.launch_mode.as_deref();
        let channel = match (&v.options.redirect_url, mode) {
            (Some(url), None | Some("redirect")) => Channel::Redirect(url.clone()),
            _ => Channel::PostMessage {
                to_parent: mode == Some("iframe"),
                origins: app.settings.allowed_redirect_origins.clone(),
            },
        };
        Handoff {
            session_id: v.id.clone(),
            success,
            results_key: success.then(|| key.to_owned()),
            ending: match v.state {
                State::Success => Ending::Complete,
                State::Failed(FailReason::UserCanceled) => Ending::UserClosed,
                _ => Ending::Failed,
            },
            channel,
        }
    }

    pub(super) fn cards(&self, app: &Application, v: &Verification) -> Vec<ProviderCard> {
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
    pub(super) fn advance(
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

    pub(super) fn finished_view(&self, app: &Application, v: &Verification, key: &str) -> View {
        View::Finished {
            reason: (v.state != State::Success).then_some(v.state),
            handoff: self.handoff(app, v, key),
        }
    }

    /// The view for the session's current step (first arrival, reload, or after a write).
    pub(super) fn current_view(
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

    pub(super) async fn page_session(
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

    pub(super) fn check_binding(&self, v: &Verification, binding: Option<&str>) -> Result<()> {
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

    /// Writes `v`, changed from `was`; finishing (success or failure) writes its event with it.
    pub(super) async fn save(
        &self,
        was: &Verification,
        v: &mut Verification,
        atts: &[StoredAttachment],
    ) -> Result<()> {
        v.version += 1;
        let event = crate::events::verification_changed(was, v);
        self.store
            .update_verification(v, atts, event.as_ref())
            .await?;
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
                            "redirect_url",
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
            self.save(&before, &mut v, &atts).await?;
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
        let was = v.clone();
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
        self.save(&was, &mut v, &atts).await?;
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

    pub(super) fn wallet_session_check(
        &self,
        v: &Verification,
        code: &str,
        now: Timestamp,
    ) -> Result<()> {
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
        let was = v.clone();
        let atts = self.finish(&mut v, outcome, now)?;
        self.save(&was, &mut v, &atts).await?;
        Ok(v)
    }
}

//! Operations on an existing verification: read, list, results, cancel, redact, attachments,
//! deep-link refresh.

use crate::application::Application;
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::retry::{Attempt, retry_optimistic};
use crate::store::VerificationOrder;
use crate::verification::identity::{AttachmentContent, IdentityData};
use crate::verification::model::{
    Event, State, Step, TransitionError, Verification, VerificationId,
};
use crate::verification::provider::LaunchMethod;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sessiond_crypto::recipient::RecipientKey;
use zeroize::Zeroizing;

use super::*;

impl VerificationService {
    pub(super) async fn load(
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
        retry_optimistic(|| async move {
            let mut v = self.load(&app.id, id).await?;
            if v.effective_state(now) == State::Cancelled {
                return Ok(Attempt::Done(v));
            }
            v.apply(Event::Cancel, now).map_err(finished_error)?;
            v.version += 1;
            Attempt::of_write(self.store.update_verification(&v, &[], None).await, v)
        })
        .await
    }

    /// Removes identity data, input and attachments for good; the record stays, marked redacted.
    /// An unfinished session is cancelled first, so nothing can be written after redaction.
    pub async fn redact(
        &self,
        app: &Application,
        id: &VerificationId,
        now: Timestamp,
    ) -> Result<Verification> {
        retry_optimistic(|| async move {
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
            let event = crate::events::verification_redacted(
                &app.id,
                v.id.as_str(),
                crate::events::verification_snapshot(&v),
                now,
            );
            Attempt::of_write(self.store.redact_verification(&v, Some(&event)).await, v)
        })
        .await
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
        retry_optimistic(|| async move {
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
                    "session_id",
                    "the session has no refreshable step",
                ));
            };
            let Some(d) = provider.refresh(&self.ctx(&v, now)) else {
                return Err(Error::invalid(
                    "session_id",
                    "the session has no refreshable step",
                ));
            };
            let refresh = self.set_deeplink(&mut v, &d, now);
            v.version += 1;
            let step = IntegrationStep {
                method: LaunchMethod::DeeplinkToMobile,
                content: d.content,
                refresh: Some(refresh),
            };
            Attempt::of_write(self.store.update_verification(&v, &[], None).await, step)
        })
        .await
    }
}

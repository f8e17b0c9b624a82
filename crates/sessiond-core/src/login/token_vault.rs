//! The per-session token vault: sealed values bound to their session.

use crate::application::Application;
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::ids::SessionId;
use crate::session::{Session, SessionStatus};
use crate::store::{StoreError, VaultEntry};

use super::*;

impl LoginService {
    /// A usable session of the application, or the reason it is not.
    pub(super) async fn vault_session(
        &self,
        app: &Application,
        id: &SessionId,
        now: Timestamp,
    ) -> Result<Session> {
        let s = self.get_session(app, id).await?;
        let status = s.effective_status(now);
        if status.is_terminal() {
            // Ended sessions keep no secrets; clean up now rather than wait for the purge job.
            self.store.delete_session_tokens(&app.id, id).await?;
            // A lapsed session is still visible (SUSPENDED, EXPIRED) and answers that it is not
            // usable; a revoked or deleted one is gone.
            return Err(match status {
                SessionStatus::Suspended | SessionStatus::Expired | SessionStatus::Abandoned => {
                    Error::SessionNotUsable { status }
                }
                _ => not_found("session"),
            });
        }
        Ok(s)
    }

    pub async fn put_token(
        &self,
        app: &Application,
        id: &SessionId,
        token_id: &str,
        value: &str,
        now: Timestamp,
    ) -> Result<()> {
        validate_token_id(token_id)?;
        if value.is_empty() || value.len() > MAX_VAULT_VALUE {
            return Err(Error::invalid(
                "token",
                format!("must be 1 to {MAX_VAULT_VALUE} bytes"),
            ));
        }
        self.vault_session(app, id, now).await?;
        let row_id = sessiond_crypto::ids::new_id("vt");
        let entry = VaultEntry {
            value_sealed: self
                .vault
                .seal(&format!("session_tokens:{row_id}"), value.as_bytes()),
            row_id,
        };
        match self
            .store
            .put_session_token(&app.id, id, token_id, &entry, MAX_VAULT_TOKENS, now)
            .await
        {
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::LimitExceeded {
                what: "tokens per session",
                limit: MAX_VAULT_TOKENS,
            }),
            Err(StoreError::NotFound) => Err(not_found("session")),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn get_token(
        &self,
        app: &Application,
        id: &SessionId,
        token_id: &str,
        now: Timestamp,
    ) -> Result<String> {
        validate_token_id(token_id)?;
        self.vault_session(app, id, now).await?;
        let entry = self
            .store
            .get_session_token(&app.id, id, token_id)
            .await?
            .ok_or_else(|| not_found("token"))?;
        let raw = self
            .vault
            .unseal(
                &format!("session_tokens:{}", entry.row_id),
                &entry.value_sealed,
            )
            .map_err(|e| Error::Internal(format!("vault entry: {e}")))?;
        String::from_utf8(raw.to_vec())
            .map_err(|_| Error::Internal("vault entry is not UTF-8".into()))
    }

    pub async fn delete_token(
        &self,
        app: &Application,
        id: &SessionId,
        token_id: &str,
        now: Timestamp,
    ) -> Result<()> {
        validate_token_id(token_id)?;
        self.vault_session(app, id, now).await?;
        if self
            .store
            .delete_session_token(&app.id, id, token_id)
            .await?
        {
            Ok(())
        } else {
            Err(not_found("token"))
        }
    }
}

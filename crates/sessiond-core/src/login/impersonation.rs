//! Impersonation and its audit trail.

use crate::application::Application;
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::ids::{SessionId, UserId};
use crate::session::{ImpersonationError, Session, impersonate, revert_identity};
use crate::store::ImpersonationEvent;

use super::*;

impl LoginService {
    pub(super) fn impersonation_error(e: ImpersonationError) -> Error {
        match e {
            ImpersonationError::NotUsable(status) => Error::SessionNotUsable { status },
            ImpersonationError::AlreadyImpersonated => Error::AlreadyImpersonated,
            ImpersonationError::NotImpersonated => Error::NotImpersonated,
        }
    }

    /// The session's user (who must hold the impersonation capability) starts acting as `target`.
    pub async fn impersonate(
        &self,
        app: &Application,
        id: &SessionId,
        target: &UserId,
        now: Timestamp,
    ) -> Result<Session> {
        let s = self.get_session(app, id).await?;
        if s.actor.is_some() {
            return Err(Error::AlreadyImpersonated);
        }
        let admin = self.get_user(app, &s.user_id).await?;
        if !admin.profile.can_impersonate {
            return Err(Error::Forbidden(
                "the session's user may not impersonate other users".into(),
            ));
        }
        if target == &admin.id {
            return Err(Error::invalid(
                "target_user",
                "a user cannot impersonate themselves",
            ));
        }
        self.get_user(app, target).await?;
        let (_, after) = self
            .write_session(app, id, None, |cur| {
                // The checks above were made for this user; a concurrent change voids them.
                if cur.user_id != admin.id {
                    return Err(Error::Conflict);
                }
                impersonate(cur, target, now).map_err(Self::impersonation_error)
            })
            .await?;
        self.audit(app, &after, &admin.id, target, "start", now)
            .await?;
        Ok(after)
    }

    /// Ends an impersonation: the session goes back to the user who started it.
    pub async fn revert_identity(
        &self,
        app: &Application,
        id: &SessionId,
        now: Timestamp,
    ) -> Result<Session> {
        let (before, after) = self
            .write_session(app, id, None, |cur| {
                revert_identity(cur, now).map_err(Self::impersonation_error)
            })
            .await?;
        self.audit(app, &after, &after.user_id, &before.user_id, "end", now)
            .await?;
        Ok(after)
    }

    pub(super) async fn audit(
        &self,
        app: &Application,
        s: &Session,
        actor: &UserId,
        target: &UserId,
        kind: &str,
        now: Timestamp,
    ) -> Result<()> {
        let e = ImpersonationEvent {
            id: sessiond_crypto::ids::new_id("imp"),
            application_id: app.id.clone(),
            session_id: s.id.clone(),
            actor_user_id: actor.clone(),
            target_user_id: target.clone(),
            kind: kind.to_owned(),
            at: now,
        };
        tracing::info!(session = %s.id, actor = %actor, target = %target, kind, "impersonation");
        Ok(self.store.record_impersonation(&e).await?)
    }

    pub async fn impersonation_log(
        &self,
        app: &Application,
        user: Option<&UserId>,
        limit: u32,
    ) -> Result<Vec<ImpersonationEvent>> {
        Ok(self.store.list_impersonations(&app.id, user, limit).await?)
    }
}

//! Sessions: create, read, list, the lifecycle events, touches and keep-alive, enablement for
//! concurrent access, deletion.

use crate::application::Application;
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::ids::{ClientId, SessionId, UserId};
use crate::retry::{Attempt, retry_optimistic};
use crate::session::{Event, Session, SessionAttributes, SessionStatus, SsoDetails, transition};
use crate::store::{
    Modified, SessionChange, SessionDeletion, SessionFilter, SessionStep, StoreError,
};
use crate::user::{User, UserSearch};
use std::sync::Arc;

use super::*;

/// Sessions revoked per transaction by [`LoginService::revoke_user_sessions`].
pub const REVOKE_PAGE: u32 = 100;

impl LoginService {
    /// Creates a session for an existing user on a new client.
    pub async fn create_session(
        &self,
        app: &Application,
        user_id: &UserId,
        pending: bool,
        now: Timestamp,
    ) -> Result<Session> {
        self.create_session_with(app, user_id, pending, SessionAttributes::default(), now)
            .await
    }

    pub async fn get_session(&self, app: &Application, id: &SessionId) -> Result<Session> {
        self.store
            .get_session(&app.id, id)
            .await?
            .ok_or_else(|| not_found("session"))
    }

    /// The session and its user, read together.
    pub async fn get_session_with_user(
        &self,
        app: &Application,
        id: &SessionId,
    ) -> Result<(Session, User)> {
        let (s, u) = self
            .store
            .get_session_with_user(&app.id, id)
            .await?
            .ok_or_else(|| not_found("session"))?;
        Ok((s, self.open_user(u)?))
    }

    pub async fn list_sessions(
        &self,
        app: &Application,
        filter: &SessionFilter,
        limit: u32,
        offset: u64,
        now: Timestamp,
    ) -> Result<(Vec<Session>, u64)> {
        Ok(self
            .store
            .list_sessions(&app.id, filter, limit, offset, now)
            .await?)
    }

    /// A page of sessions without the total count.
    pub async fn list_sessions_page(
        &self,
        app: &Application,
        filter: &SessionFilter,
        limit: u32,
        offset: u64,
        now: Timestamp,
    ) -> Result<Vec<Session>> {
        Ok(self
            .store
            .list_sessions_page(&app.id, filter, limit, offset, now)
            .await?)
    }

    /// Applies `event`: read and written in one store transaction where the store offers that,
    /// otherwise under optimistic concurrency. A no-op transition is not written.
    pub async fn apply(
        &self,
        app: &Application,
        id: &SessionId,
        event: Event,
        now: Timestamp,
    ) -> Result<Session> {
        self.apply_from(app, id, None, event, now).await
    }

    /// [`Self::apply`] starting from a session the caller has just read, so the first attempt
    /// needs no second read (a conflict still re-reads).
    pub(super) async fn apply_from(
        &self,
        app: &Application,
        id: &SessionId,
        loaded: Option<Session>,
        event: Event,
        now: Timestamp,
    ) -> Result<Session> {
        if loaded.is_none() {
            // Where the store can read and write in one transaction, nothing can race the write.
            let step = event_step(event.clone(), app, now);
            match self.store.modify_session(&app.id, id, step).await? {
                None => {}
                Some(Modified::Missing) => return Err(not_found("session")),
                Some(Modified::Unchanged(s)) => return Ok(s),
                Some(Modified::Refused(e)) => return Err(e),
                Some(Modified::Written { after, evented, .. }) => {
                    if evented {
                        self.events.raise();
                    }
                    return Ok(after);
                }
            }
        }
        // A write that ends the session also empties its token vault (see `update_session`).
        let (_, after) = self
            .write_session(app, id, loaded, |s| {
                transition(s, event.clone(), &app.settings, now).map_err(map_transition)
            })
            .await?;
        Ok(after)
    }

    /// Writes `step(current)` under optimistic concurrency, re-reading and retrying when another
    /// writer got there first. Returns (before, after); an unchanged result is not written.
    pub(super) async fn write_session<F>(
        &self,
        app: &Application,
        id: &SessionId,
        mut loaded: Option<Session>,
        step: F,
    ) -> Result<(Session, Session)>
    where
        F: Fn(&Session) -> Result<Session> + Send + Sync,
    {
        let step = &step;
        retry_optimistic(|| {
            // The caller's copy serves the first attempt only; a retry reads afresh.
            let first = loaded.take();
            async move {
                let s = match first {
                    Some(s) => s,
                    None => self.get_session(app, id).await?,
                };
                let (next, event) = match decide(&s, step(&s)) {
                    SessionChange::Refused(e) => return Err(e),
                    SessionChange::Unchanged => return Ok(Attempt::Done((s.clone(), s))),
                    SessionChange::Write(next, event) => (next, event),
                };
                match self.store.change_session(&s, &next, event.as_ref()).await {
                    Err(StoreError::NotFound) => Err(not_found("session")),
                    Ok(()) if event.is_some() => {
                        self.events.raise();
                        Ok(Attempt::Done((s, next)))
                    }
                    written => Attempt::of_write(written, (s, next)),
                }
            }
        })
        .await
    }

    pub async fn revoke_session(
        &self,
        app: &Application,
        id: &SessionId,
        now: Timestamp,
    ) -> Result<Session> {
        self.apply(app, id, Event::Revoke, now).await
    }

    /// Revokes every usable (active or pending) session of a user; returns how many. Each page
    /// of up to [`REVOKE_PAGE`] sessions is one store transaction where the store offers that
    /// (`modify_sessions`), otherwise one read and one write (a transaction of the page's
    /// updates, all or none), not a read and a write per session; a page another writer changed
    /// meanwhile is read again.
    pub async fn revoke_user_sessions(
        &self,
        app: &Application,
        user: &UserId,
        now: Timestamp,
    ) -> Result<u64> {
        let filter = SessionFilter {
            user_id: Some(user.clone()),
            statuses: vec![SessionStatus::Active, SessionStatus::Pending],
            ..SessionFilter::default()
        };
        let mut revoked = 0;
        let step = event_step(Event::Revoke, app, now);
        loop {
            // Where the store offers it, a page is read and revoked in one transaction.
            let offered = self
                .store
                .modify_sessions(&app.id, &filter, REVOKE_PAGE, now, step.clone())
                .await?;
            let written = match offered {
                Some(n) => n,
                None => self.revoke_page(app, &filter, &step, now).await?,
            };
            if written == 0 {
                return Ok(revoked);
            }
            self.events.raise();
            revoked += written;
        }
    }

    /// One page of [`Self::revoke_user_sessions`] as a read and a conditional write: how many
    /// sessions it revoked.
    async fn revoke_page(
        &self,
        app: &Application,
        filter: &SessionFilter,
        step: &SessionStep,
        now: Timestamp,
    ) -> Result<u64> {
        retry_optimistic(|| async {
            let page = self
                .list_sessions_page(app, filter, REVOKE_PAGE, 0, now)
                .await?;
            // One that cannot be revoked (it lapsed since the read) is left as it is.
            let changes: Vec<_> = page
                .iter()
                .filter_map(|s| match step(s) {
                    SessionChange::Write(next, event) => Some((next, event)),
                    SessionChange::Unchanged | SessionChange::Refused(_) => None,
                })
                .collect();
            if changes.is_empty() {
                return Ok(Attempt::Done(0));
            }
            let n = changes.len() as u64;
            match self.store.update_sessions(&changes).await {
                // Gone meanwhile: the page is read again without it.
                Err(StoreError::NotFound) => Ok(Attempt::Raced),
                written => Attempt::of_write(written, n),
            }
        })
        .await
    }

    /// Records activity, writing only when the coalescing window has passed.
    pub async fn touch_session(
        &self,
        app: &Application,
        s: Session,
        now: Timestamp,
    ) -> Result<Session> {
        if !s.touch_is_due(&app.settings, now) {
            let status = s.effective_status(now);
            if status.is_terminal() {
                return Err(Error::SessionNotUsable { status });
            }
            return Ok(s);
        }
        let id = s.id.clone();
        self.apply_from(app, &id, Some(s), Event::Touch(None), now)
            .await
    }

    /// The active session `id`, with activity recorded (tokens are minted only for these).
    pub(super) async fn active_session(
        &self,
        app: &Application,
        id: &SessionId,
        now: Timestamp,
    ) -> Result<Session> {
        let s = self.get_session(app, id).await?;
        let status = s.effective_status(now);
        if status != SessionStatus::Active {
            return Err(Error::SessionNotUsable { status });
        }
        self.touch_session(app, s, now).await
    }

    /// Finds a user by id (`user_…`) or, failing that, by external id: deployments that already
    /// have user UUIDs store them as external ids and keep using them.
    pub async fn resolve_user(&self, app: &Application, reference: &str) -> Result<User> {
        if let Some(id) = UserId::parse(reference) {
            return self.get_user(app, &id).await;
        }
        if reference.is_empty() || reference.len() > 256 {
            return Err(not_found("user"));
        }
        let (users, _) = self
            .list_users(
                app,
                &UserSearch {
                    external_ids: vec![reference.to_owned()],
                    limit: 2,
                    ..UserSearch::default()
                },
            )
            .await?;
        match users.as_slice() {
            [one] => Ok(one.clone()),
            _ => Err(not_found("user")),
        }
    }

    /// Creates a session with dialect attributes (mobile, SSO, cookie domain…).
    pub async fn create_session_with(
        &self,
        app: &Application,
        user_id: &UserId,
        pending: bool,
        attributes: SessionAttributes,
        now: Timestamp,
    ) -> Result<Session> {
        let mut s = Session::new(
            &app.id,
            &app.settings,
            user_id.clone(),
            ClientId::new_ordered(now),
            pending,
            now,
        );
        s.attributes = attributes;
        self.seal_sso(&mut s)?;
        // One statement: the insert itself refuses a user that is not the application's.
        let event = crate::events::session_created(&s);
        self.store
            .insert_session(&s, Some(&event))
            .await
            .map_err(|e| match e {
                StoreError::NotFound => not_found("user"),
                other => other.into(),
            })?;
        self.events.raise();
        Ok(s)
    }

    /// Moves a single sign-on given in the attributes into [`Session::sso`], sealed.
    pub(super) fn seal_sso(&self, s: &mut Session) -> Result<()> {
        if let Some(sso) = s.attributes.sso.take() {
            let json = serde_json::to_vec(&sso).map_err(|e| Error::Internal(e.to_string()))?;
            s.sso = Some(self.vault.seal(&session_sso_context(&s.id), &json));
        }
        Ok(())
    }

    /// The single sign-on a session started with, opened.
    pub fn session_sso(&self, s: &Session) -> Result<Option<SsoDetails>> {
        let Some(sealed) = &s.sso else {
            return Ok(s.attributes.sso.clone());
        };
        let raw = self
            .vault
            .unseal(&session_sso_context(&s.id), sealed)
            .map_err(|e| Error::Internal(format!("session {} sso: {e}", s.id)))?;
        serde_json::from_slice(&raw)
            .map(Some)
            .map_err(|e| Error::Internal(e.to_string()))
    }

    /// Records activity on a usable session (a keep-alive); a lapsed one is returned unchanged.
    pub async fn keep_alive(
        &self,
        app: &Application,
        id: &SessionId,
        now: Timestamp,
    ) -> Result<Session> {
        let s = self.get_session(app, id).await?;
        self.keep_alive_loaded(app, s, now).await
    }

    /// [`Self::keep_alive`] on a session the caller has just read: a coalesced touch costs no
    /// further statement, a due one a single conditional update.
    pub async fn keep_alive_loaded(
        &self,
        app: &Application,
        s: Session,
        now: Timestamp,
    ) -> Result<Session> {
        if s.effective_status(now).is_terminal() {
            return Ok(s);
        }
        self.touch_session(app, s, now).await
    }

    /// Moves a pending session to active (idempotent on active ones).
    pub async fn enable_session(
        &self,
        app: &Application,
        id: &SessionId,
        now: Timestamp,
    ) -> Result<Session> {
        self.apply(app, id, Event::Activate, now).await
    }

    /// Writes `change` to a usable session under optimistic concurrency.
    pub(super) async fn modify<F>(
        &self,
        app: &Application,
        id: &SessionId,
        now: Timestamp,
        change: F,
    ) -> Result<Session>
    where
        F: Fn(&mut Session) -> Result<()> + Send + Sync,
    {
        let (_, after) = self
            .write_session(app, id, None, |s| {
                let mut next = s.clone();
                change(&mut next)?;
                if next != *s {
                    next.updated_at = now.max(s.updated_at);
                }
                Ok(next)
            })
            .await?;
        Ok(after)
    }

    /// Enables an active session for concurrent access, within the user's concurrent-access
    /// limit.
    /// Over the limit: refused, or with `disable_oldest` the oldest enabled sessions lose their
    /// enablement until this one fits.
    pub async fn enable_for_concurrent_access(
        &self,
        app: &Application,
        id: &SessionId,
        disable_oldest: bool,
        now: Timestamp,
    ) -> Result<Session> {
        let s = self.get_session(app, id).await?;
        let status = s.effective_status(now);
        if status != SessionStatus::Active {
            return Err(Error::SessionNotUsable { status });
        }
        if s.attributes.concurrent_access {
            return Ok(s);
        }
        let user = self.get_user(app, &s.user_id).await?;
        let limit = user.profile.max_concurrent_access.unwrap_or(0);
        if limit > 0 {
            let filter = SessionFilter {
                user_id: Some(s.user_id.clone()),
                client_id: None,
                statuses: vec![SessionStatus::Active],
            };
            let (mut others, _) = self
                .store
                .list_sessions(&app.id, &filter, 500, 0, now)
                .await?;
            others.retain(|o| o.id != s.id && o.attributes.concurrent_access);
            let excess = (others.len() + 1).saturating_sub(limit as usize);
            if excess > 0 {
                if !disable_oldest {
                    return Err(Error::ConcurrentAccess { limit });
                }
                // Listed newest first: the oldest are at the end.
                for old in others.iter().rev().take(excess) {
                    self.modify(app, &old.id, now, |x| {
                        x.attributes.concurrent_access = false;
                        Ok(())
                    })
                    .await?;
                }
            }
        }
        self.modify(app, id, now, |x| {
            let status = x.effective_status(now);
            if status != SessionStatus::Active {
                return Err(Error::SessionNotUsable { status });
            }
            x.attributes.concurrent_access = true;
            Ok(())
        })
        .await
    }

    /// Deletes `s`, which the caller has just read: the event says what the session was. A
    /// session deleted meanwhile is not found.
    pub async fn delete_session(
        &self,
        app: &Application,
        s: &Session,
        now: Timestamp,
    ) -> Result<()> {
        let event = crate::events::session_deleted(s, now);
        if self
            .store
            .delete_session(&app.id, &s.id, Some(&event))
            .await?
        {
            self.events.raise();
            Ok(())
        } else {
            Err(not_found("session"))
        }
    }

    /// Deletes every session of the user `reference` (a user id or an external id) in one
    /// write, however many there are. Returns whether the user exists.
    pub async fn delete_user_sessions(
        &self,
        app: &Application,
        reference: &str,
        now: Timestamp,
    ) -> Result<bool> {
        // A user id needs no read first: the write itself finds the user or not.
        let id = match UserId::parse(reference) {
            Some(id) => id,
            None => match self.resolve_user(app, reference).await {
                Ok(u) => u.id,
                Err(Error::NotFound { .. }) => return Ok(false),
                Err(e) => return Err(e),
            },
        };
        let found = self.store.delete_user_sessions(&app.id, &id, now).await?;
        if found {
            self.sweeps.mark();
            self.events.raise();
        }
        Ok(found)
    }

    /// Deletes every session of the application that has lapsed (expired, suspended by its idle
    /// deadline or abandoned) by `now`, in one write however many there are.
    pub async fn delete_lapsed_sessions(&self, app: &Application, now: Timestamp) -> Result<()> {
        self.store.delete_lapsed_sessions(&app.id, now).await?;
        self.sweeps.mark();
        Ok(())
    }

    /// Deletes the application's sessions: all, one user's, or only lapsed ones.
    pub async fn delete_sessions(&self, app: &Application, which: &SessionDeletion) -> Result<u64> {
        Ok(self.store.delete_sessions(&app.id, which).await?)
    }
}

/// `event` as a store-side step: the session's transition, refused with the reason the
/// lifecycle gives.
fn event_step(event: Event, app: &Application, now: Timestamp) -> SessionStep {
    let settings = app.settings.clone();
    Arc::new(move |s: &Session| {
        let next = transition(s, event.clone(), &settings, now).map_err(map_transition);
        decide(s, next)
    })
}

/// What writing `next` over `s` comes to: nothing when it changes nothing, otherwise the next
/// version and the event the change makes.
fn decide(s: &Session, next: Result<Session>) -> SessionChange {
    match next {
        Err(e) => SessionChange::Refused(e),
        Ok(next) if next == *s => SessionChange::Unchanged,
        Ok(mut next) => {
            next.version = s.version + 1;
            let event = crate::events::session_changed(s, &next);
            SessionChange::Write(next, event)
        }
    }
}

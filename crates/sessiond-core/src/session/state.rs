//! The pure state machine of login sessions: `(session, event, now) -> session | error`.
//! It is the only place that decides which transitions are valid.

use super::{Session, SessionStatus};
use serde_json::json;

use crate::application::AppSettings;
use crate::clock::Timestamp;
use crate::ids::UserId;

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Enable a pending session.
    Activate,
    /// Record activity (with a sealed `Activity`, if known): slides the idle and abandon
    /// deadlines, never `expire_at`.
    Touch(Option<Vec<u8>>),
    Revoke,
    End,
    Remove,
    Replace,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    /// The session is in a terminal status (possibly because a deadline passed).
    #[error("the session is {}", .0.as_str())]
    NotUsable(SessionStatus),
}

/// Applies `event` at `now`. Terminal statuses absorb ending events (the result records the
/// effective status) and refuse `Activate`/`Touch`.
pub fn transition(
    s: &Session,
    event: Event,
    settings: &AppSettings,
    now: Timestamp,
) -> Result<Session, TransitionError> {
    let current = s.effective_status(now);
    let mut next = s.clone();
    if current.is_terminal() {
        return match event {
            Event::Activate | Event::Touch(_) => Err(TransitionError::NotUsable(current)),
            _ => {
                if next.status != current {
                    next.status = current;
                    next.updated_at = now.max(s.updated_at);
                }
                Ok(next)
            }
        };
    }
    let now = now.max(s.updated_at);
    match event {
        Event::Activate => {
            if s.status == SessionStatus::Pending {
                next.status = SessionStatus::Active;
                next.updated_at = now;
            }
        }
        Event::Touch(activity) => {
            let at = now.max(s.last_active_at);
            next.last_active_at = at;
            next.abandon_at = s.abandon_at.max(at.plus_secs(settings.abandon_period_secs));
            next.idle_deadline = match (s.idle_deadline, settings.inactivity_timeout_secs) {
                (Some(d), Some(t)) => Some(d.max(at.plus_secs(t))),
                (None, Some(t)) => Some(at.plus_secs(t)),
                // Turning the timeout off stops sliding but keeps an existing deadline.
                (d, None) => d,
            };
            if activity.is_some() {
                next.activity = activity;
            }
            next.updated_at = now;
        }
        Event::Revoke => end(&mut next, SessionStatus::Revoked, now),
        Event::End => end(&mut next, SessionStatus::Ended, now),
        Event::Remove => end(&mut next, SessionStatus::Removed, now),
        Event::Replace => end(&mut next, SessionStatus::Replaced, now),
    }
    Ok(next)
}

fn end(s: &mut Session, status: SessionStatus, now: Timestamp) {
    s.status = status;
    s.updated_at = now;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ImpersonationError {
    #[error("the session is {}", .0.as_str())]
    NotUsable(SessionStatus),
    #[error("the session is already impersonated")]
    AlreadyImpersonated,
    #[error("the session is not impersonated")]
    NotImpersonated,
}

/// Makes `target` the session's user and its current user the actor (`act.sub`). Only an enabled
/// session can be impersonated, and only once at a time.
pub fn impersonate(
    s: &Session,
    target: &UserId,
    now: Timestamp,
) -> Result<Session, ImpersonationError> {
    let status = s.effective_status(now);
    if status != SessionStatus::Active {
        return Err(ImpersonationError::NotUsable(status));
    }
    if s.actor.is_some() {
        return Err(ImpersonationError::AlreadyImpersonated);
    }
    let mut next = s.clone();
    next.actor = Some(json!({ "sub": s.user_id }));
    next.user_id = target.clone();
    next.updated_at = now.max(s.updated_at);
    Ok(next)
}

/// Gives an impersonated session back to the user who started the impersonation.
pub fn revert_identity(s: &Session, now: Timestamp) -> Result<Session, ImpersonationError> {
    let status = s.effective_status(now);
    if status != SessionStatus::Active {
        return Err(ImpersonationError::NotUsable(status));
    }
    let actor = s.actor_user().ok_or(ImpersonationError::NotImpersonated)?;
    let mut next = s.clone();
    next.user_id = actor;
    next.actor = None;
    next.updated_at = now.max(s.updated_at);
    Ok(next)
}

//! Events: what changed, recorded by the same store operation that makes the change (the
//! outbox), so an event exists exactly when its change committed.
//!
//! Events serve two readers: webhook endpoints (delivered at least once, signed the Standard
//! Webhooks way) and the revocation feed that offline token verifiers poll. An event carries ids
//! and a snapshot of the session's clear fields at the time of the change; it never carries a
//! user's profile (sealed at rest), which delivery reads when it renders the payload.

mod feed;
mod service;

pub use feed::{EventSignal, Position};
pub use service::{EventService, MAX_FEED_PAGE, Revocation};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::application::AppId;
use crate::clock::Timestamp;
use crate::ids::{SessionId, UserId};
use crate::session::{Session, SessionStatus};

/// Every kind of event sessiond emits. The names are the wire `type` of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "session.created")]
    SessionCreated,
    #[serde(rename = "session.pending")]
    SessionPending,
    /// A pending session became active.
    #[serde(rename = "session.enabled")]
    SessionEnabled,
    #[serde(rename = "session.ended")]
    SessionEnded,
    #[serde(rename = "session.removed")]
    SessionRemoved,
    #[serde(rename = "session.revoked")]
    SessionRevoked,
    /// Another session took this one's place on its client.
    #[serde(rename = "session.replaced")]
    SessionReplaced,
    #[serde(rename = "session.impersonation.started")]
    ImpersonationStarted,
    #[serde(rename = "session.impersonation.ended")]
    ImpersonationEnded,
    #[serde(rename = "user.created")]
    UserCreated,
    #[serde(rename = "user.updated")]
    UserUpdated,
    #[serde(rename = "user.deleted")]
    UserDeleted,
    /// A session lapsed: its absolute lifetime, idle timeout or abandon period passed.
    #[serde(rename = "session.expired")]
    SessionExpired,
    /// Every session of a user was deleted at once (`DELETE /users/{uuid}/sessions`).
    #[serde(rename = "user.sessions.removed")]
    UserSessionsRemoved,
    #[serde(rename = "verification.completed")]
    VerificationCompleted,
    #[serde(rename = "verification.failed")]
    VerificationFailed,
    #[serde(rename = "verification.redacted")]
    VerificationRedacted,
}

impl EventType {
    pub const ALL: [EventType; 17] = [
        EventType::SessionCreated,
        EventType::SessionPending,
        EventType::SessionEnabled,
        EventType::SessionEnded,
        EventType::SessionRemoved,
        EventType::SessionRevoked,
        EventType::SessionReplaced,
        EventType::ImpersonationStarted,
        EventType::ImpersonationEnded,
        EventType::UserCreated,
        EventType::UserUpdated,
        EventType::UserDeleted,
        EventType::SessionExpired,
        EventType::UserSessionsRemoved,
        EventType::VerificationCompleted,
        EventType::VerificationFailed,
        EventType::VerificationRedacted,
    ];

    /// Kinds after which a session can no longer be used: what the revocation feed lists.
    pub const REVOCATIONS: [EventType; 6] = [
        EventType::SessionEnded,
        EventType::SessionRemoved,
        EventType::SessionRevoked,
        EventType::SessionReplaced,
        EventType::SessionExpired,
        EventType::UserSessionsRemoved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::SessionCreated => "session.created",
            EventType::SessionPending => "session.pending",
            EventType::SessionEnabled => "session.enabled",
            EventType::SessionEnded => "session.ended",
            EventType::SessionRemoved => "session.removed",
            EventType::SessionRevoked => "session.revoked",
            EventType::SessionReplaced => "session.replaced",
            EventType::ImpersonationStarted => "session.impersonation.started",
            EventType::ImpersonationEnded => "session.impersonation.ended",
            EventType::UserCreated => "user.created",
            EventType::UserUpdated => "user.updated",
            EventType::UserDeleted => "user.deleted",
            EventType::SessionExpired => "session.expired",
            EventType::UserSessionsRemoved => "user.sessions.removed",
            EventType::VerificationCompleted => "verification.completed",
            EventType::VerificationFailed => "verification.failed",
            EventType::VerificationRedacted => "verification.redacted",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// What happened, in one line (for `sessiond webhooks types` and the documentation).
    pub fn description(self) -> &'static str {
        match self {
            EventType::SessionCreated => "A session was created active.",
            EventType::SessionPending => {
                "A session was created pending: it needs enabling before tokens are issued."
            }
            EventType::SessionEnabled => "A pending session became active.",
            EventType::SessionEnded => "The user signed out of a session.",
            EventType::SessionRemoved => "A session was removed from its client, or deleted.",
            EventType::SessionRevoked => "A session was revoked by the application or an operator.",
            EventType::SessionReplaced => "Another session took this one's place on its client.",
            EventType::ImpersonationStarted => "A session's user began acting as another user.",
            EventType::ImpersonationEnded => {
                "An impersonation ended; the session is its user's again."
            }
            EventType::UserCreated => "A user was created.",
            EventType::UserUpdated => "A user was changed.",
            EventType::UserDeleted => "A user was deleted, with their sessions.",
            EventType::SessionExpired => {
                "A session lapsed: its lifetime, idle timeout or abandon period passed."
            }
            EventType::UserSessionsRemoved => {
                "Every session of a user was deleted at once; lists their ids."
            }
            EventType::VerificationCompleted => {
                "An identity verification succeeded (no personal data)."
            }
            EventType::VerificationFailed => {
                "An identity verification failed, with the reason (no personal data)."
            }
            EventType::VerificationRedacted => {
                "A verification's results were deleted, on request or by retention."
            }
        }
    }

    pub fn is_revocation(self) -> bool {
        Self::REVOCATIONS.contains(&self)
    }
}

/// An event as the outbox stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// `evt_…`, unique: the delivery's `webhook-id`, the same on every retry and replay.
    pub id: String,
    pub application_id: AppId,
    pub kind: EventType,
    /// The session or user the event is about.
    pub subject: String,
    pub occurred_at: Timestamp,
    /// For session events, a [`SessionSnapshot`]; `{}` otherwise.
    pub data: Value,
}

/// An event read back, with its place in the application's sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub position: Position,
    pub event: NewEvent,
}

/// A session's clear fields at the moment of an event: what a receiver needs to act on it
/// without reading sessiond back, in sessiond's own words (times in Unix milliseconds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionSnapshot {
    pub id: String,
    pub user_id: String,
    pub client_id: String,
    pub status: SessionStatus,
    pub actor: Option<Value>,
    pub last_active_organization_id: Option<String>,
    pub last_active_at: i64,
    pub expire_at: i64,
    pub abandon_at: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl SessionSnapshot {
    pub fn of(s: &Session) -> Self {
        SessionSnapshot {
            id: s.id.as_str().to_owned(),
            user_id: s.user_id.as_str().to_owned(),
            client_id: s.client_id.as_str().to_owned(),
            status: s.status,
            actor: s.actor.clone(),
            last_active_organization_id: s.last_active_organization_id.clone(),
            last_active_at: s.last_active_at.as_millis(),
            expire_at: s.expire_at.as_millis(),
            abandon_at: s.abandon_at.as_millis(),
            created_at: s.created_at.as_millis(),
            updated_at: s.updated_at.as_millis(),
        }
    }
}

fn new_event(app: &AppId, kind: EventType, subject: &str, at: Timestamp, data: Value) -> NewEvent {
    NewEvent {
        // Time-ordered: the outbox's id index takes them in order, one page per batch of writes.
        id: sessiond_crypto::ids::new_time_ordered_id(
            "evt",
            u64::try_from(at.as_millis()).unwrap_or(0),
        ),
        application_id: app.clone(),
        kind,
        subject: subject.to_owned(),
        occurred_at: at,
        data,
    }
}

fn session_event(kind: EventType, s: &Session) -> NewEvent {
    let data = serde_json::to_value(SessionSnapshot::of(s)).unwrap_or(Value::Null);
    new_event(&s.application_id, kind, s.id.as_str(), s.updated_at, data)
}

/// The event a newly created session emits.
pub fn session_created(s: &Session) -> NewEvent {
    let kind = if s.status == SessionStatus::Pending {
        EventType::SessionPending
    } else {
        EventType::SessionCreated
    };
    session_event(kind, s)
}

/// The event a written change of a session emits, if the change is one receivers care about: a
/// status change, or the start or end of an impersonation. Activity alone emits nothing.
pub fn session_changed(before: &Session, after: &Session) -> Option<NewEvent> {
    let kind = if before.status != after.status {
        match after.status {
            SessionStatus::Active if before.status == SessionStatus::Pending => {
                EventType::SessionEnabled
            }
            SessionStatus::Revoked => EventType::SessionRevoked,
            SessionStatus::Ended => EventType::SessionEnded,
            SessionStatus::Removed => EventType::SessionRemoved,
            SessionStatus::Replaced => EventType::SessionReplaced,
            // Deadlines are derived when read, never written as a status change.
            _ => return None,
        }
    } else if before.actor.is_none() && after.actor.is_some() {
        EventType::ImpersonationStarted
    } else if before.actor.is_some() && after.actor.is_none() {
        EventType::ImpersonationEnded
    } else {
        return None;
    };
    Some(session_event(kind, after))
}

/// The event of a session deleted outright (rather than revoked): receivers see it removed.
pub fn session_deleted(s: &Session, now: Timestamp) -> NewEvent {
    let mut snapshot = SessionSnapshot::of(s);
    snapshot.status = SessionStatus::Removed;
    snapshot.updated_at = now.as_millis();
    let data = serde_json::to_value(snapshot).unwrap_or(Value::Null);
    new_event(
        &s.application_id,
        EventType::SessionRemoved,
        s.id.as_str(),
        now,
        data,
    )
}

/// A user event: the payload is rendered from the user when it is delivered.
pub fn user_event(app: &AppId, kind: EventType, user: &UserId, now: Timestamp) -> NewEvent {
    new_event(
        app,
        kind,
        user.as_str(),
        now,
        Value::Object(Default::default()),
    )
}

/// `session.expired` for a session found lapsed (its effective status at `now` is terminal by a
/// deadline), with the snapshot in that status.
pub fn session_lapsed(s: &Session, now: Timestamp) -> NewEvent {
    let mut snapshot = SessionSnapshot::of(s);
    snapshot.status = s.effective_status(now);
    let at = s.lapse_time();
    let data = serde_json::to_value(snapshot).unwrap_or(Value::Null);
    new_event(
        &s.application_id,
        EventType::SessionExpired,
        s.id.as_str(),
        at,
        data,
    )
}

/// `user.sessions.removed`: every session of `user` deleted in one write; `sessions` are the ids
/// of those that were still usable.
pub fn user_sessions_removed(
    app: &AppId,
    user: &UserId,
    sessions: &[String],
    now: Timestamp,
) -> NewEvent {
    let data = serde_json::json!({"user_id": user, "session_ids": sessions});
    new_event(
        app,
        EventType::UserSessionsRemoved,
        user.as_str(),
        now,
        data,
    )
}

/// A verification's state as receivers see it: no personal data, only what happened.
pub fn verification_snapshot(v: &crate::verification::Verification) -> Value {
    use crate::verification::State;
    serde_json::json!({
        "object": "verification",
        "id": v.id.as_str(),
        "flow": v.flow.as_str(),
        "state": v.state.as_str(),
        "fail_reason": match v.state { State::Failed(r) => Some(r.as_str()), _ => None },
        "provider": v.provider,
        "sub_provider": v.sub_provider,
        "created_at": v.created_at.as_millis(),
        "finished_at": v.finished_at.map(Timestamp::as_millis),
        "redacted_at": v.redacted_at.map(Timestamp::as_millis),
    })
}

/// The event a written change of a verification emits: it finished (succeeded or failed).
pub fn verification_changed(
    before: &crate::verification::Verification,
    after: &crate::verification::Verification,
) -> Option<NewEvent> {
    if before.state == after.state {
        return None;
    }
    verification_finished(after)
}

/// The event of a verification that is finished (succeeded or failed), if it is.
pub fn verification_finished(after: &crate::verification::Verification) -> Option<NewEvent> {
    use crate::verification::State;
    let kind = match after.state {
        State::Success => EventType::VerificationCompleted,
        State::Failed(_) => EventType::VerificationFailed,
        _ => return None,
    };
    Some(new_event(
        &after.application_id,
        kind,
        after.id.as_str(),
        after.updated_at,
        verification_snapshot(after),
    ))
}

/// `verification.redacted` for a verification whose results were deleted at `now`.
pub fn verification_redacted(app: &AppId, id: &str, snapshot: Value, now: Timestamp) -> NewEvent {
    new_event(app, EventType::VerificationRedacted, id, now, snapshot)
}

impl NewEvent {
    /// The session this event is about, if it is a session event.
    pub fn session_id(&self) -> Option<SessionId> {
        self.kind
            .as_str()
            .starts_with("session.")
            .then(|| SessionId(self.subject.clone()))
    }
}

#[cfg(test)]
mod tests;

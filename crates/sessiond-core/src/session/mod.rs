//! Login sessions: the aggregate, its lifetimes and its state machine.
//!
//! One session model serves every dialect. A session stores the status it was last put in
//! (`pending`, `active`, or a terminal status an operation chose) and three deadlines:
//!
//! - `expire_at`: absolute end, fixed at creation (`session_max_lifetime`); never moves.
//! - `idle_deadline`: last activity + `inactivity_timeout`, when the application sets one.
//! - `abandon_at`: last activity + `abandon_period`.
//!
//! A session past a deadline *reads* as `expired`, `suspended` or `abandoned` at once, before any
//! purge job runs: [`Session::effective_status`] derives it from `now`.

mod state;

pub use state::{
    Event, ImpersonationError, TransitionError, impersonate, revert_identity, transition,
};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::application::{AppId, AppSettings};
use crate::clock::Timestamp;
use crate::ids::{ClientId, SessionId, UserId};

/// Status of a login session. The first two are usable; all others are terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionStatus {
    /// Created but not yet enabled: no tokens.
    Pending,
    Active,
    /// Idle deadline passed.
    Suspended,
    /// Absolute lifetime passed.
    Expired,
    /// Not used for the abandon period.
    Abandoned,
    /// Ended by the relying party or an operator.
    Revoked,
    /// Signed out by the user.
    Ended,
    /// Removed from its client.
    Removed,
    /// Replaced by another session on its client.
    Replaced,
}

impl SessionStatus {
    pub const ALL: [SessionStatus; 9] = [
        SessionStatus::Pending,
        SessionStatus::Active,
        SessionStatus::Suspended,
        SessionStatus::Expired,
        SessionStatus::Abandoned,
        SessionStatus::Revoked,
        SessionStatus::Ended,
        SessionStatus::Removed,
        SessionStatus::Replaced,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Pending => "pending",
            SessionStatus::Active => "active",
            SessionStatus::Suspended => "suspended",
            SessionStatus::Expired => "expired",
            SessionStatus::Abandoned => "abandoned",
            SessionStatus::Revoked => "revoked",
            SessionStatus::Ended => "ended",
            SessionStatus::Removed => "removed",
            SessionStatus::Replaced => "replaced",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    pub fn is_terminal(self) -> bool {
        !matches!(self, SessionStatus::Pending | SessionStatus::Active)
    }
}

/// What is known about the device and network of a session's latest activity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activity {
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub device_type: Option<String>,
    pub browser_name: Option<String>,
    pub browser_version: Option<String>,
    pub city: Option<String>,
    pub country: Option<String>,
    pub is_mobile: bool,
}

/// Details of a single sign-on that started a session: the identity provider and the user's
/// identifier there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsoDetails {
    pub provider: String,
    pub identifier: String,
}

/// Attributes some dialects record about a session; each has a default, so sessions created by
/// any dialect read the same way. (How they are stored is the stores': `sessiond-store-sql`.)
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionAttributes {
    /// Started from a mobile device.
    pub mobile: bool,
    /// Started from a public computer.
    pub public_computer: bool,
    /// Domain the session cookie was issued for.
    pub cookie_domain: Option<String>,
    /// The single sign-on given when creating the session. The service moves it into
    /// [`Session::sso`], sealed, before the session is stored; after a read it is present only
    /// for sessions stored by versions that kept it here in clear.
    pub sso: Option<SsoDetails>,
    /// Enabled for concurrent access, and so counted against the user's concurrent-access
    /// limit.
    pub concurrent_access: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub id: SessionId,
    pub application_id: AppId,
    pub user_id: UserId,
    pub client_id: ClientId,
    /// Status as last set by an operation; read [`Session::effective_status`] instead.
    pub status: SessionStatus,
    /// The impersonator while impersonated: `{"sub": <user id>, ...}`.
    pub actor: Option<Value>,
    /// The latest [`Activity`], sealed (it is personal data); opened only by the service.
    pub activity: Option<Vec<u8>>,
    /// The [`SsoDetails`] the session started with, sealed (the identifier is often an e-mail
    /// address); opened only by the service. Written once, with the session.
    pub sso: Option<Vec<u8>>,
    pub last_active_organization_id: Option<String>,
    pub attributes: SessionAttributes,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub last_active_at: Timestamp,
    pub expire_at: Timestamp,
    pub abandon_at: Timestamp,
    pub idle_deadline: Option<Timestamp>,
    /// Optimistic-concurrency version.
    pub version: i64,
}

/// Longest that `last_active_at` and the sliding deadlines may lag behind real activity: a touch
/// within this window of the last recorded one is not written. With an inactivity timeout the
/// window shrinks to a tenth of it, so an idle deadline is never early by more than 10 %.
pub const TOUCH_WINDOW_SECS: u64 = 60;

impl Session {
    /// A new session for `user` under the application's current settings.
    pub fn new(
        app: &AppId,
        settings: &AppSettings,
        user: UserId,
        client: ClientId,
        pending: bool,
        now: Timestamp,
    ) -> Session {
        Session {
            id: SessionId::new_ordered(now),
            application_id: app.clone(),
            user_id: user,
            client_id: client,
            status: if pending {
                SessionStatus::Pending
            } else {
                SessionStatus::Active
            },
            actor: None,
            activity: None,
            sso: None,
            last_active_organization_id: None,
            attributes: SessionAttributes::default(),
            created_at: now,
            updated_at: now,
            last_active_at: now,
            expire_at: now.plus_secs(settings.session_max_lifetime_secs),
            abandon_at: now.plus_secs(settings.abandon_period_secs),
            idle_deadline: settings.inactivity_timeout_secs.map(|s| now.plus_secs(s)),
            version: 1,
        }
    }

    /// The status as of `now`: a usable session past a deadline reads as expired, suspended or
    /// abandoned (checked in that order).
    pub fn effective_status(&self, now: Timestamp) -> SessionStatus {
        if self.status.is_terminal() {
            return self.status;
        }
        if now >= self.expire_at {
            SessionStatus::Expired
        } else if self.idle_deadline.is_some_and(|d| now >= d) {
            SessionStatus::Suspended
        } else if now >= self.abandon_at {
            SessionStatus::Abandoned
        } else {
            self.status
        }
    }

    /// When the session lapses (or lapsed) by its deadlines: the earliest of its absolute expiry,
    /// idle deadline and abandon time. The stores index exactly this expression.
    pub fn lapse_time(&self) -> Timestamp {
        let mut t = self.expire_at.min(self.abandon_at);
        if let Some(d) = self.idle_deadline {
            t = t.min(d);
        }
        t
    }

    /// The impersonating user, while impersonated.
    pub fn actor_user(&self) -> Option<UserId> {
        self.actor
            .as_ref()
            .and_then(|a| a.get("sub"))
            .and_then(Value::as_str)
            .and_then(UserId::parse)
    }

    /// Whether recording activity at `now` is worth a write (see [`TOUCH_WINDOW_SECS`]).
    pub fn touch_is_due(&self, settings: &AppSettings, now: Timestamp) -> bool {
        let window = settings
            .inactivity_timeout_secs
            .map_or(TOUCH_WINDOW_SECS, |t| (t / 10).min(TOUCH_WINDOW_SECS));
        now >= self.last_active_at.plus_secs(window)
    }
}

#[cfg(test)]
mod tests;

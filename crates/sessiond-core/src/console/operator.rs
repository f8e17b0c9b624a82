//! Operators: the people who use the console. Each is a user of the console's own application
//! (so sign-in, sessions, idle timeouts and "sign out everywhere" are sessiond's own session
//! core), with what only operators have kept in that user's sealed private metadata.

use serde::{Deserialize, Serialize};

use crate::application::AppId;
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::user::User;

/// The private-metadata member that holds an operator's record.
pub(crate) const RECORD_KEY: &str = "sessiond_operator";

/// Consecutive failed sign-ins allowed before the account locks.
pub const FREE_FAILURES: u32 = 5;
/// First lock after [`FREE_FAILURES`]; each further failure doubles it, up to [`MAX_LOCK_SECS`].
pub const FIRST_LOCK_SECS: i64 = 30;
pub const MAX_LOCK_SECS: i64 = 15 * 60;
/// Most applications one operator may be limited to.
pub const MAX_SCOPED_APPS: usize = 100;

/// What an operator may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sees everything in scope; changes nothing.
    Viewer,
    /// Also revokes, redacts, edits settings, keys and webhooks.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Admin => "admin",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "viewer" => Some(Role::Viewer),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// What the console's application keeps about an operator beyond the user itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Record {
    pub role: Role,
    /// `None`: every application.
    #[serde(default)]
    pub applications: Option<Vec<AppId>>,
    /// Base32 TOTP secret, when enrolled (sealed with the profile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp: Option<String>,
    /// The last TOTP step accepted: a code works once.
    #[serde(default)]
    pub totp_step: i64,
    #[serde(default)]
    pub failures: u32,
    /// Unix milliseconds until which sign-in is refused.
    #[serde(default)]
    pub locked_until: Option<i64>,
    #[serde(default)]
    pub disabled: bool,
}

impl Record {
    pub(crate) fn of(u: &User) -> Option<Record> {
        u.profile
            .private_metadata
            .get(RECORD_KEY)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }

    /// The record after one more failed sign-in at `now`.
    pub(crate) fn failed(&self, now: Timestamp) -> Record {
        let failures = self.failures.saturating_add(1);
        let locked_until = (failures >= FREE_FAILURES).then(|| {
            let doublings = (failures - FREE_FAILURES).min(16);
            now.as_millis() + (FIRST_LOCK_SECS << doublings).min(MAX_LOCK_SECS) * 1000
        });
        Record {
            failures,
            locked_until: locked_until.or(self.locked_until),
            ..self.clone()
        }
    }

    /// Seconds until sign-in is allowed again, if locked at `now`.
    pub(crate) fn locked_for(&self, now: Timestamp) -> Option<u64> {
        self.locked_until
            .filter(|t| *t > now.as_millis())
            .map(|t| ((t - now.as_millis()) as u64).div_ceil(1000))
    }
}

/// An operator as the console and the CLI show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    /// The user id in the console's application.
    pub id: UserId,
    pub email: String,
    pub role: Role,
    /// `None`: every application.
    pub applications: Option<Vec<AppId>>,
    pub totp_enrolled: bool,
    pub disabled: bool,
    pub locked_until: Option<Timestamp>,
    pub created_at: Timestamp,
    pub last_sign_in_at: Option<Timestamp>,
}

impl Operator {
    pub(crate) fn from_user(u: &User) -> Option<Operator> {
        let r = Record::of(u)?;
        let email = u
            .profile
            .email_addresses
            .first()
            .map(|c| c.value.clone())
            .unwrap_or_default();
        Some(Operator {
            id: u.id.clone(),
            email,
            role: r.role,
            applications: r.applications,
            totp_enrolled: r.totp.is_some(),
            disabled: r.disabled,
            locked_until: r.locked_until.map(Timestamp),
            created_at: u.created_at,
            last_sign_in_at: u.profile.last_sign_in_at,
        })
    }

    /// Whether the operator may see `app` at all.
    pub fn sees(&self, app: &AppId) -> bool {
        self.applications
            .as_ref()
            .is_none_or(|list| list.contains(app))
    }

    /// Refuses unless the operator may see `app`; the refusal reads like a missing application,
    /// so an operator limited to some applications learns nothing of the others.
    pub fn check_sees(&self, app: &AppId) -> Result<()> {
        if self.sees(app) {
            Ok(())
        } else {
            Err(Error::NotFound {
                kind: "application",
            })
        }
    }

    /// Refuses unless the operator may change things in `app`.
    pub fn check_admin(&self, app: Option<&AppId>) -> Result<()> {
        if let Some(a) = app {
            self.check_sees(a)?;
        }
        if self.role == Role::Admin {
            Ok(())
        } else {
            Err(Error::Forbidden(
                "viewers cannot change anything; ask an admin".into(),
            ))
        }
    }

    /// Whether the operator may manage server-wide things (applications themselves): admins of
    /// every application.
    pub fn is_global_admin(&self) -> bool {
        self.role == Role::Admin && self.applications.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> Record {
        Record {
            role: Role::Viewer,
            applications: None,
            totp: None,
            totp_step: 0,
            failures: 0,
            locked_until: None,
            disabled: false,
        }
    }

    #[test]
    fn locks_after_free_failures_and_backs_off_doubling_to_a_cap() {
        let now = Timestamp(1_000_000);
        let mut r = record();
        for _ in 0..FREE_FAILURES - 1 {
            r = r.failed(now);
            assert_eq!(r.locked_for(now), None);
        }
        r = r.failed(now);
        assert_eq!(r.locked_for(now), Some(FIRST_LOCK_SECS as u64));
        r = r.failed(now);
        assert_eq!(r.locked_for(now), Some(2 * FIRST_LOCK_SECS as u64));
        for _ in 0..40 {
            r = r.failed(now);
        }
        assert_eq!(r.locked_for(now), Some(MAX_LOCK_SECS as u64));
        assert_eq!(r.locked_for(Timestamp(now.0 + MAX_LOCK_SECS * 1000)), None);
    }

    #[test]
    fn scope_limits_what_an_operator_sees_and_changes() {
        let (a, b) = (AppId::new(), AppId::new());
        let op = Operator {
            id: UserId::new(),
            email: "ops@example.com".into(),
            role: Role::Admin,
            applications: Some(vec![a.clone()]),
            totp_enrolled: false,
            disabled: false,
            locked_until: None,
            created_at: Timestamp(0),
            last_sign_in_at: None,
        };
        assert!(op.sees(&a) && !op.sees(&b));
        assert!(op.check_admin(Some(&a)).is_ok());
        assert!(matches!(
            op.check_admin(Some(&b)),
            Err(Error::NotFound { .. })
        ));
        assert!(!op.is_global_admin());
        let viewer = Operator {
            role: Role::Viewer,
            applications: None,
            ..op
        };
        assert!(matches!(
            viewer.check_admin(Some(&a)),
            Err(Error::Forbidden(_))
        ));
    }
}

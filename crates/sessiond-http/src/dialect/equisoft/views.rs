//! Equisoft's JSON shapes. Every field the Kotlin client requires is always present and non-null;
//! date-times are RFC 3339 in UTC with `Z`.

use serde_json::{Value, json};
use sessiond_core::Timestamp;
use sessiond_core::session::{Session, SessionStatus};
use sessiond_core::user::User;

pub fn date(t: Timestamp) -> String {
    let nanos = i128::from(t.as_millis()) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

/// SessionState of a session as of `now`; `None` for sessions Equisoft shows as DELETED (gone).
pub fn state(s: &Session, now: Timestamp) -> Option<&'static str> {
    match s.effective_status(now) {
        SessionStatus::Pending => Some("NEW"),
        SessionStatus::Active => Some("ENABLED"),
        SessionStatus::Suspended => Some("SUSPENDED"),
        SessionStatus::Expired | SessionStatus::Abandoned => Some("EXPIRED"),
        SessionStatus::Revoked
        | SessionStatus::Ended
        | SessionStatus::Removed
        | SessionStatus::Replaced => None,
    }
}

/// How the users directory appears as an Equisoft `User`. Attributes the directory does not
/// keep take documented defaults (see `docs/design/dialects.md`).
pub fn user(u: &User) -> Value {
    let p = &u.profile;
    let uuid = u.external_id.clone().unwrap_or_else(|| u.id.to_string());
    let display = match (&p.first_name, &p.last_name) {
        (Some(f), Some(l)) => format!("{f} {l}"),
        (Some(f), None) => f.clone(),
        (None, Some(l)) => l.clone(),
        (None, None) => p
            .username
            .clone()
            .or_else(|| p.primary_email().map(str::to_owned))
            .unwrap_or_else(|| u.id.to_string()),
    };
    json!({
        "id": sessiond_crypto::ids::numeric_alias(u.id.as_str()),
        "uuid": uuid,
        "displayName": display,
        "email": p.primary_email().unwrap_or_default(),
        "locale": p.locale.clone().unwrap_or_else(|| "en".to_owned()),
        "state": "ENABLED",
        "locked": false,
        "legacyRoles": [],
        "deletable": true,
        "billable": false,
        "agreement": { "state": "ACCEPTED" },
        "services": [{
            "serviceName": "EQUISOFT_CONNECT",
            "maxConcurrentAccess": p.max_concurrent_access.unwrap_or(0),
        }],
        "servicesUsers": [],
        "authType": "SESSIOND",
        "mobilePhone": p.primary_phone(),
        "created": date(u.created_at),
    })
}

/// A Session with its user (and actor while impersonated) already loaded.
pub fn session(s: &Session, state: &str, user_view: Value, actor: Option<Value>) -> Value {
    let suspend = s.idle_deadline.map_or(s.expire_at, |d| d.min(s.expire_at));
    let mut v = json!({
        "sessionId": s.id,
        "state": state,
        "created": date(s.created_at),
        "suspend": date(suspend),
        "expire": date(s.expire_at),
        "user": user_view,
        "enabledForEquisoftConnect": s.attributes.enabled_for_connect,
        "mobile": s.attributes.mobile,
        "cookieDomain": s.attributes.cookie_domain,
    });
    if let Some(a) = actor {
        v["actor"] = a;
    }
    if let Some(sso) = &s.attributes.sso {
        v["sso"] = json!({ "provider": sso.provider, "identifier": sso.identifier });
    }
    v
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates_are_rfc3339_utc_with_z() {
        assert_eq!(
            super::date(sessiond_core::Timestamp(0)),
            "1970-01-01T00:00:00Z"
        );
        assert_eq!(
            super::date(sessiond_core::Timestamp(1_767_225_600_123)),
            "2026-01-01T00:00:00.123Z"
        );
    }
}

//! Equisoft's JSON shapes. Every field the Kotlin client requires is always present and non-null;
//! date-times are RFC 3339 in UTC with `Z`.

use std::borrow::Cow;

use serde::Serialize;
use sessiond_core::Timestamp;
use sessiond_core::session::{Session, SessionStatus, SsoDetails};
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
/// keep take documented defaults (see `docs/design/dialects.md`). Borrowed and serialized
/// straight to bytes: this is on the hot path of `GET /sessions/{id}`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserView<'a> {
    id: i64,
    uuid: &'a str,
    display_name: Cow<'a, str>,
    email: &'a str,
    locale: &'a str,
    state: &'static str,
    locked: bool,
    legacy_roles: [(); 0],
    deletable: bool,
    billable: bool,
    agreement: Agreement,
    services: [ServiceView; 1],
    services_users: [(); 0],
    auth_type: &'static str,
    mobile_phone: Option<&'a str>,
    created: String,
}

#[derive(Serialize)]
struct Agreement {
    state: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ServiceView {
    service_name: &'static str,
    max_concurrent_access: u32,
}

pub fn user(u: &User) -> UserView<'_> {
    let p = &u.profile;
    let display = match (&p.first_name, &p.last_name) {
        (Some(f), Some(l)) => Cow::Owned(format!("{f} {l}")),
        (Some(f), None) => Cow::Borrowed(f.as_str()),
        (None, Some(l)) => Cow::Borrowed(l.as_str()),
        (None, None) => Cow::Borrowed(
            p.username
                .as_deref()
                .or_else(|| p.primary_email())
                .unwrap_or(u.id.as_str()),
        ),
    };
    UserView {
        id: sessiond_crypto::ids::numeric_alias(u.id.as_str()),
        uuid: u.profile.external_id.as_deref().unwrap_or(u.id.as_str()),
        display_name: display,
        email: p.primary_email().unwrap_or_default(),
        locale: p.locale.as_deref().unwrap_or("en"),
        state: "ENABLED",
        locked: false,
        legacy_roles: [],
        deletable: true,
        billable: false,
        agreement: Agreement { state: "ACCEPTED" },
        services: [ServiceView {
            service_name: "EQUISOFT_CONNECT",
            max_concurrent_access: p.max_concurrent_access.unwrap_or(0),
        }],
        services_users: [],
        auth_type: "SESSIOND",
        mobile_phone: p.primary_phone(),
        created: date(u.created_at),
    }
}

/// A Session with its user (and actor while impersonated) already loaded.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionView<'a> {
    session_id: &'a str,
    state: &'a str,
    created: String,
    suspend: String,
    expire: String,
    user: UserView<'a>,
    enabled_for_equisoft_connect: bool,
    mobile: bool,
    cookie_domain: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    actor: Option<UserView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sso: Option<SsoView<'a>>,
}

#[derive(Serialize)]
struct SsoView<'a> {
    provider: &'a str,
    identifier: &'a str,
}

pub fn session<'a>(
    s: &'a Session,
    state: &'a str,
    user_view: UserView<'a>,
    actor: Option<UserView<'a>>,
    sso: Option<&'a SsoDetails>,
) -> SessionView<'a> {
    let suspend = s.idle_deadline.map_or(s.expire_at, |d| d.min(s.expire_at));
    SessionView {
        session_id: s.id.as_str(),
        state,
        created: date(s.created_at),
        suspend: date(suspend),
        expire: date(s.expire_at),
        user: user_view,
        enabled_for_equisoft_connect: s.attributes.concurrent_access,
        mobile: s.attributes.mobile,
        cookie_domain: s.attributes.cookie_domain.as_deref(),
        actor,
        sso: sso.map(|sso| SsoView {
            provider: &sso.provider,
            identifier: &sso.identifier,
        }),
    }
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

//! Clerk's JSON shapes. Timestamps are Unix milliseconds; every object has `object`; keys that
//! Clerk's Python SDK requires are always present, null when unknown.

use serde::Serialize;
use serde_json::{Value, json};

use super::ClerkJson;
use sessiond_core::Timestamp;
use sessiond_core::session::{Session, SessionStatus};
use sessiond_core::template::JwtTemplate;
use sessiond_core::user::{Contact, User};

/// Clerk's name for a status. Clerk has no "suspended": an idle-timed-out session is expired.
pub fn status_name(s: SessionStatus) -> &'static str {
    match s {
        SessionStatus::Suspended => "expired",
        other => other.as_str(),
    }
}

/// Statuses matched by a Clerk status filter.
pub fn statuses_for(filter: &str) -> Option<Vec<SessionStatus>> {
    Some(match filter {
        "expired" => vec![SessionStatus::Expired, SessionStatus::Suspended],
        "active" | "pending" | "revoked" | "ended" | "removed" | "abandoned" | "replaced" => {
            vec![SessionStatus::parse(filter)?]
        }
        _ => return None,
    })
}

/// Clerk's `Session`, borrowed from the core's and serialized straight to bytes (it is the body
/// of every session endpoint).
#[derive(Serialize)]
pub struct SessionView<'a> {
    object: &'static str,
    id: &'a str,
    user_id: &'a str,
    client_id: &'a str,
    actor: &'a Option<Value>,
    status: &'static str,
    last_active_organization_id: Option<&'a str>,
    last_active_at: i64,
    latest_activity: Option<()>,
    expire_at: i64,
    abandon_at: i64,
    updated_at: i64,
    created_at: i64,
    tasks: Option<()>,
}

pub fn session(s: &Session, now: Timestamp) -> SessionView<'_> {
    SessionView {
        object: "session",
        id: s.id.as_str(),
        user_id: s.user_id.as_str(),
        client_id: s.client_id.as_str(),
        actor: &s.actor,
        status: status_name(s.effective_status(now)),
        last_active_organization_id: s.last_active_organization_id.as_deref(),
        last_active_at: s.last_active_at.as_millis(),
        latest_activity: None,
        expire_at: s.expire_at.as_millis(),
        abandon_at: s.abandon_at.as_millis(),
        updated_at: s.updated_at.as_millis(),
        created_at: s.created_at.as_millis(),
        tasks: None,
    }
}

fn contact(kind: &str, c: &Contact, u: &User) -> Value {
    let at = u.created_at.as_millis();
    json!({
        "object": kind,
        "id": c.id,
        kind: c.value,
        "reserved": false,
        "verification": null,
        "linked_to": [],
        "created_at": at,
        "updated_at": u.updated_at.as_millis(),
    })
}

pub fn user(u: &User) -> Value {
    let p = &u.profile;
    json!({
        "object": "user",
        "id": u.id,
        "external_id": u.profile.external_id,
        "primary_email_address_id": p.primary_email_address_id,
        "primary_phone_number_id": p.primary_phone_number_id,
        "primary_web3_wallet_id": null,
        "username": p.username,
        "first_name": p.first_name,
        "last_name": p.last_name,
        "image_url": p.image_url.clone().unwrap_or_default(),
        "profile_image_url": p.image_url.clone().unwrap_or_default(),
        "has_image": p.image_url.is_some(),
        "public_metadata": p.public_metadata,
        "private_metadata": p.private_metadata,
        "unsafe_metadata": p.unsafe_metadata,
        "email_addresses": p.email_addresses.iter().map(|c| contact("email_address", c, u)).collect::<Vec<_>>(),
        "phone_numbers": p.phone_numbers.iter().map(|c| contact("phone_number", c, u)).collect::<Vec<_>>(),
        "web3_wallets": [],
        "passkeys": [],
        "external_accounts": [],
        "saml_accounts": [],
        "enterprise_accounts": [],
        "password_enabled": p.password.is_some(),
        "two_factor_enabled": false,
        "totp_enabled": false,
        "backup_code_enabled": false,
        "mfa_enabled_at": null,
        "mfa_disabled_at": null,
        "banned": false,
        "locked": false,
        "lockout_expires_in_seconds": null,
        "verification_attempts_remaining": null,
        "last_sign_in_at": p.last_sign_in_at.map(Timestamp::as_millis),
        "last_active_at": p.last_active_at.map(Timestamp::as_millis),
        "locale": p.locale,
        "legal_accepted_at": null,
        "delete_self_enabled": true,
        "create_organization_enabled": true,
        "created_at": u.created_at.as_millis(),
        "updated_at": u.updated_at.as_millis(),
    })
}

pub fn template(t: &JwtTemplate) -> Value {
    json!({
        "object": "jwt_template",
        "id": t.id,
        "name": t.name,
        "claims": t.claims,
        "lifetime": t.lifetime_secs,
        "allowed_clock_skew": t.allowed_clock_skew_secs,
        "custom_signing_key": t.custom_signing_key,
        "signing_algorithm": t.signing_algorithm.as_str(),
        "created_at": t.created_at.as_millis(),
        "updated_at": t.updated_at.as_millis(),
    })
}

pub fn deleted(object: &str, id: &str) -> Value {
    json!({ "object": object, "id": id, "deleted": true })
}

pub fn token(jwt: String) -> Value {
    json!({ "object": "token", "jwt": jwt })
}

/// A list: a bare array, or `{data, total_count}` when the caller asked for `paginated=true`.
/// A list response: a bare array, or Clerk's paginated `{data, total_count}`.
pub fn list<T: Serialize>(items: Vec<T>, total: u64, paginated: bool) -> ClerkJson {
    #[derive(Serialize)]
    struct Page<T> {
        data: Vec<T>,
        total_count: u64,
    }
    if paginated {
        ClerkJson::typed(&Page {
            data: items,
            total_count: total,
        })
    } else {
        ClerkJson::typed(&items)
    }
}

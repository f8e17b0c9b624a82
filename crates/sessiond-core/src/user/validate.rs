//! Checking and normalising what callers give: lengths, contacts, metadata, passwords; building
//! a user from a create request and applying an update.

use crate::application::AppId;
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::ids::{IdentificationId, UserId};
use serde_json::{Map, Value};

use super::*;

pub(super) fn check_len(field: &str, v: &str, max: usize) -> Result<()> {
    if v.is_empty() || v.chars().count() > max || v.chars().any(char::is_control) {
        return Err(Error::invalid(
            field,
            format!("must be 1 to {max} characters without control characters"),
        ));
    }
    Ok(())
}

/// Lower-cases and trims an email address; refuses anything that is not `local@domain`.
pub fn normalize_email(v: &str) -> Result<String> {
    let e = v.trim().to_lowercase();
    let ok = e.len() <= 320
        && e.split_once('@').is_some_and(|(l, d)| {
            !l.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.')
        })
        && !e.chars().any(|c| c.is_whitespace() || c.is_control())
        && e.matches('@').count() == 1;
    if !ok {
        return Err(Error::invalid(
            "email_address",
            format!("`{v}` is not an email address"),
        ));
    }
    Ok(e)
}

/// E.164-style: optional `+`, 7 to 15 digits; spaces, dots, dashes and parentheses are dropped.
pub fn normalize_phone(v: &str) -> Result<String> {
    let plus = v.trim_start().starts_with('+');
    let digits: String = v.chars().filter(char::is_ascii_digit).collect();
    let allowed = v
        .chars()
        .all(|c| c.is_ascii_digit() || " +-.()".contains(c));
    if !allowed || !(7..=15).contains(&digits.len()) {
        return Err(Error::invalid(
            "phone_number",
            format!("`{v}` is not a phone number"),
        ));
    }
    Ok(if plus { format!("+{digits}") } else { digits })
}

pub fn normalize_username(v: &str) -> Result<String> {
    let u = v.trim().to_lowercase();
    let ok = (4..=64).contains(&u.len())
        && u.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if !ok {
        return Err(Error::invalid(
            "username",
            "must be 4 to 64 characters of letters, digits, `_`, `-` or `.`",
        ));
    }
    Ok(u)
}

pub(super) fn check_metadata(field: &str, m: &Map<String, Value>) -> Result<()> {
    if Value::Object(m.clone()).to_string().len() > MAX_METADATA_BYTES {
        return Err(Error::invalid(
            field,
            format!("must be at most {MAX_METADATA_BYTES} bytes of JSON"),
        ));
    }
    Ok(())
}

pub(super) fn check_opt(field: &str, v: &Option<String>, max: usize) -> Result<()> {
    v.as_deref().map_or(Ok(()), |s| check_len(field, s, max))
}

pub(super) fn check_image_url(v: &Option<String>) -> Result<()> {
    if let Some(u) = v {
        check_len("image_url", u, 2048)?;
        if !(u.starts_with("https://") || u.starts_with("http://")) {
            return Err(Error::invalid("image_url", "must be an http(s) URL"));
        }
    }
    Ok(())
}

impl NewUser {
    /// Validates and builds the user; contacts are normalised and given ids, the first of each
    /// kind becomes primary.
    pub fn into_user(self, app: &AppId, now: Timestamp) -> Result<User> {
        check_opt("external_id", &self.external_id, 256)?;
        check_opt("first_name", &self.first_name, 256)?;
        check_opt("last_name", &self.last_name, 256)?;
        check_image_url(&self.image_url)?;
        check_opt("locale", &self.locale, 35)?;
        if self.email_addresses.len() > MAX_CONTACTS || self.phone_numbers.len() > MAX_CONTACTS {
            return Err(Error::invalid(
                "email_address",
                format!("at most {MAX_CONTACTS} per user"),
            ));
        }
        let username = self
            .username
            .as_deref()
            .map(normalize_username)
            .transpose()?;
        let mut emails: Vec<Contact> = Vec::new();
        for e in &self.email_addresses {
            let v = normalize_email(e)?;
            if emails.iter().any(|c| c.value == v) {
                return Err(Error::invalid(
                    "email_address",
                    format!("`{v}` is listed twice"),
                ));
            }
            emails.push(Contact {
                id: IdentificationId::new(),
                value: v,
            });
        }
        let mut phones: Vec<Contact> = Vec::new();
        for p in &self.phone_numbers {
            let v = normalize_phone(p)?;
            if phones.iter().any(|c| c.value == v) {
                return Err(Error::invalid(
                    "phone_number",
                    format!("`{v}` is listed twice"),
                ));
            }
            phones.push(Contact {
                id: IdentificationId::new(),
                value: v,
            });
        }
        let metadata = |f: &str, m: Option<Map<String, Value>>| -> Result<Map<String, Value>> {
            let m = m.unwrap_or_default();
            check_metadata(f, &m)?;
            Ok(m)
        };
        let created = self.created_at.unwrap_or(now);
        Ok(User {
            id: UserId::new(),
            application_id: app.clone(),
            profile: Profile {
                external_id: self.external_id,
                first_name: self.first_name,
                last_name: self.last_name,
                username,
                primary_email_address_id: emails.first().map(|c| c.id.clone()),
                primary_phone_number_id: phones.first().map(|c| c.id.clone()),
                email_addresses: emails,
                phone_numbers: phones,
                image_url: self.image_url,
                public_metadata: metadata("public_metadata", self.public_metadata)?,
                private_metadata: metadata("private_metadata", self.private_metadata)?,
                unsafe_metadata: metadata("unsafe_metadata", self.unsafe_metadata)?,
                last_sign_in_at: None,
                last_active_at: None,
                locale: self.locale,
                can_impersonate: false,
                max_concurrent_access: None,
                password: None,
            },
            created_at: created,
            updated_at: now,
            version: 1,
        })
    }
}

impl UserPatch {
    pub fn apply(self, u: &mut User) -> Result<()> {
        if let Some(v) = self.external_id {
            check_opt("external_id", &v, 256)?;
            u.profile.external_id = v;
        }
        let p = &mut u.profile;
        if let Some(v) = self.first_name {
            check_opt("first_name", &v, 256)?;
            p.first_name = v;
        }
        if let Some(v) = self.last_name {
            check_opt("last_name", &v, 256)?;
            p.last_name = v;
        }
        if let Some(v) = self.username {
            p.username = v.as_deref().map(normalize_username).transpose()?;
        }
        if let Some(v) = self.image_url {
            check_image_url(&v)?;
            p.image_url = v;
        }
        if let Some(id) = self.primary_email_address_id {
            if !p.email_addresses.iter().any(|c| c.id == id) {
                return Err(Error::invalid(
                    "primary_email_address_id",
                    "is not one of the user's email addresses",
                ));
            }
            p.primary_email_address_id = Some(id);
        }
        if let Some(id) = self.primary_phone_number_id {
            if !p.phone_numbers.iter().any(|c| c.id == id) {
                return Err(Error::invalid(
                    "primary_phone_number_id",
                    "is not one of the user's phone numbers",
                ));
            }
            p.primary_phone_number_id = Some(id);
        }
        if let Some(v) = self.locale {
            check_opt("locale", &v, 35)?;
            p.locale = v;
        }
        if let Some(v) = self.can_impersonate {
            p.can_impersonate = v;
        }
        if let Some(v) = self.max_concurrent_access {
            p.max_concurrent_access = v;
        }
        for (field, src, dst) in [
            (
                "public_metadata",
                self.public_metadata,
                &mut p.public_metadata,
            ),
            (
                "private_metadata",
                self.private_metadata,
                &mut p.private_metadata,
            ),
            (
                "unsafe_metadata",
                self.unsafe_metadata,
                &mut p.unsafe_metadata,
            ),
        ] {
            if let Some(m) = src {
                let next = if self.merge_metadata {
                    let mut merged = dst.clone();
                    deep_merge(&mut merged, m);
                    merged
                } else {
                    m
                };
                check_metadata(field, &next)?;
                *dst = next;
            }
        }
        Ok(())
    }
}

/// Merges `src` into `dst`: objects merge key by key at every depth, `null` removes the key,
/// anything else replaces the value.
pub fn deep_merge(dst: &mut Map<String, Value>, src: Map<String, Value>) {
    for (k, v) in src {
        match v {
            Value::Null => {
                dst.remove(&k);
            }
            Value::Object(inner) => match dst.get_mut(&k) {
                Some(Value::Object(existing)) => deep_merge(existing, inner),
                _ => {
                    let mut fresh = Map::new();
                    deep_merge(&mut fresh, inner);
                    dst.insert(k, Value::Object(fresh));
                }
            },
            other => {
                dst.insert(k, other);
            }
        }
    }
}

/// Checks a new clear-text password against sessiond's rules.
pub fn check_password(password: &str, skip_checks: bool) -> Result<()> {
    let n = password.chars().count();
    if password.len() > sessiond_crypto::password::MAX_PASSWORD_BYTES {
        return Err(Error::invalid(
            "password",
            format!(
                "must be at most {} bytes",
                sessiond_crypto::password::MAX_PASSWORD_BYTES
            ),
        ));
    }
    if n == 0 || (!skip_checks && n < MIN_PASSWORD_CHARS) {
        return Err(Error::invalid(
            "password",
            format!("must be at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    Ok(())
}

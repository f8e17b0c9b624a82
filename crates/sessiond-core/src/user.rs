//! The users directory of an application. Sessions belong to users; JWT templates read their
//! fields; every dialect sees the same record.
//!
//! A user's profile (names, contacts, metadata) is personal data, so it is stored sealed. Emails,
//! phone numbers and usernames are additionally stored as keyed blind-index hashes, which give
//! per-application uniqueness and exact-match lookup without storing the values in clear.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::application::AppId;
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::ids::{IdentificationId, UserId};

/// An email address or phone number with its own id, as Clerk models them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub id: IdentificationId,
    pub value: String,
}

/// Everything about a user that is personal data. Stored sealed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Profile {
    /// The caller's own reference for this user. Often an e-mail address or an account number
    /// elsewhere, so it is sealed with the rest; lookups go through a blind index.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub username: Option<String>,
    pub email_addresses: Vec<Contact>,
    pub primary_email_address_id: Option<IdentificationId>,
    pub phone_numbers: Vec<Contact>,
    pub primary_phone_number_id: Option<IdentificationId>,
    pub image_url: Option<String>,
    pub public_metadata: Map<String, Value>,
    pub private_metadata: Map<String, Value>,
    pub unsafe_metadata: Map<String, Value>,
    pub last_sign_in_at: Option<Timestamp>,
    pub last_active_at: Option<Timestamp>,
    /// Preferred locale (e.g. `fr-CA`).
    pub locale: Option<String>,
    /// May impersonate other users of the application (set by an operator).
    pub can_impersonate: bool,
    /// Concurrent sessions allowed for Equisoft/Connect; `None` or 0 is unlimited.
    pub max_concurrent_access: Option<u32>,
    /// The password digest, if the user has a password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<StoredPassword>,
}

/// A password digest: Argon2id for passwords set here; an imported digest keeps its hasher until
/// the first successful check re-hashes it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredPassword {
    /// `argon2id`, `argon2i` or `bcrypt`.
    pub hasher: String,
    pub digest: String,
}

impl std::fmt::Debug for StoredPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredPassword")
            .field("hasher", &self.hasher)
            .finish_non_exhaustive()
    }
}

/// A password as a caller gives it.
#[derive(Clone, PartialEq, Eq)]
pub enum PasswordInput {
    /// A new password in clear; `skip_checks` waives the minimum length (an import).
    Plain { password: String, skip_checks: bool },
    /// A digest from another system (`hasher` as Clerk names it).
    Digest { hasher: String, digest: String },
}

impl std::fmt::Debug for PasswordInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PasswordInput::Plain { .. } => f.write_str("PasswordInput::Plain(..)"),
            PasswordInput::Digest { hasher, .. } => write!(f, "PasswordInput::Digest({hasher})"),
        }
    }
}

/// Shortest password accepted unless checks are skipped.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// Outcome of a password check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordCheck {
    Verified,
    Incorrect,
    /// The user has no password.
    NotSet,
}

impl Profile {
    pub fn primary_email(&self) -> Option<&str> {
        primary(
            &self.email_addresses,
            self.primary_email_address_id.as_ref(),
        )
    }
    pub fn primary_phone(&self) -> Option<&str> {
        primary(&self.phone_numbers, self.primary_phone_number_id.as_ref())
    }
}

fn primary<'a>(list: &'a [Contact], id: Option<&IdentificationId>) -> Option<&'a str> {
    id.and_then(|id| list.iter().find(|c| &c.id == id))
        .map(|c| c.value.as_str())
}

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: UserId,
    pub application_id: AppId,
    pub profile: Profile,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub version: i64,
}

/// Kinds of blind-indexed identifiers.
pub const ID_EMAIL: &str = "email";
pub const ID_PHONE: &str = "phone";
pub const ID_USERNAME: &str = "username";
pub const ID_EXTERNAL: &str = "external_id";

/// Fields accepted when creating a user.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewUser {
    pub external_id: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub username: Option<String>,
    pub email_addresses: Vec<String>,
    pub phone_numbers: Vec<String>,
    pub image_url: Option<String>,
    pub public_metadata: Option<Map<String, Value>>,
    pub private_metadata: Option<Map<String, Value>>,
    pub unsafe_metadata: Option<Map<String, Value>>,
    /// Backdated creation time (Clerk allows importing users with their original date).
    pub created_at: Option<Timestamp>,
    pub locale: Option<String>,
    pub password: Option<PasswordInput>,
}

/// Fields an update may change; `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserPatch {
    pub external_id: Option<Option<String>>,
    pub first_name: Option<Option<String>>,
    pub last_name: Option<Option<String>>,
    pub username: Option<Option<String>>,
    pub image_url: Option<Option<String>>,
    pub primary_email_address_id: Option<IdentificationId>,
    pub primary_phone_number_id: Option<IdentificationId>,
    pub public_metadata: Option<Map<String, Value>>,
    pub private_metadata: Option<Map<String, Value>>,
    pub unsafe_metadata: Option<Map<String, Value>>,
    pub locale: Option<Option<String>>,
    /// Operator-only attributes (CLI), never taken from a dialect request.
    pub can_impersonate: Option<bool>,
    pub max_concurrent_access: Option<Option<u32>>,
    /// Deep-merge the metadata objects into the user's (a `null` value removes a key) instead of
    /// replacing them.
    pub merge_metadata: bool,
    /// A new password; the service turns it into a digest (not [`UserPatch::apply`]).
    pub password: Option<PasswordInput>,
}

/// Filters of a user listing (all given ones must match; each list matches any of its values).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserFilter {
    pub user_ids: Vec<UserId>,
    /// Blind-index hashes of external ids.
    pub external_id_hashes: Vec<[u8; 32]>,
    /// Blind-index hashes of email addresses.
    pub email_hashes: Vec<[u8; 32]>,
    /// Order of the page: a field the store holds in clear (`created_at`, `updated_at`).
    pub order: StoredOrder,
}

/// A user listing as a caller asks for it.
#[derive(Debug, Clone, PartialEq)]
pub struct UserSearch {
    pub user_ids: Vec<UserId>,
    pub external_ids: Vec<String>,
    /// Exact email addresses (any case).
    pub emails: Vec<String>,
    /// Partial matches, see [`User::matches`].
    pub query: UserQuery,
    pub order: UserOrder,
    pub limit: u32,
    pub offset: u64,
}

impl Default for UserSearch {
    fn default() -> Self {
        UserSearch {
            user_ids: Vec::new(),
            external_ids: Vec::new(),
            emails: Vec::new(),
            query: UserQuery::default(),
            order: UserOrder::default(),
            limit: 10,
            offset: 0,
        }
    }
}

/// Orders a store can apply itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StoredOrder {
    #[default]
    CreatedDesc,
    CreatedAsc,
    UpdatedDesc,
    UpdatedAsc,
}

pub const MAX_METADATA_BYTES: usize = 8 * 1024;
pub const MAX_CONTACTS: usize = 10;

fn check_len(field: &str, v: &str, max: usize) -> Result<()> {
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

fn check_metadata(field: &str, m: &Map<String, Value>) -> Result<()> {
    if Value::Object(m.clone()).to_string().len() > MAX_METADATA_BYTES {
        return Err(Error::invalid(
            field,
            format!("must be at most {MAX_METADATA_BYTES} bytes of JSON"),
        ));
    }
    Ok(())
}

fn check_opt(field: &str, v: &Option<String>, max: usize) -> Result<()> {
    v.as_deref().map_or(Ok(()), |s| check_len(field, s, max))
}

fn check_image_url(v: &Option<String>) -> Result<()> {
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

/// A field users can be ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserSortField {
    CreatedAt,
    UpdatedAt,
    EmailAddress,
    FirstName,
    LastName,
    PhoneNumber,
    Username,
    LastActiveAt,
    LastSignInAt,
}

impl UserSortField {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "created_at" => UserSortField::CreatedAt,
            "updated_at" => UserSortField::UpdatedAt,
            "email_address" => UserSortField::EmailAddress,
            "first_name" => UserSortField::FirstName,
            "last_name" => UserSortField::LastName,
            "phone_number" => UserSortField::PhoneNumber,
            "username" => UserSortField::Username,
            "last_active_at" => UserSortField::LastActiveAt,
            "last_sign_in_at" => UserSortField::LastSignInAt,
            _ => return None,
        })
    }

    /// Whether the store can order by this field itself (it is not inside the sealed profile).
    pub fn stored(self) -> bool {
        matches!(self, UserSortField::CreatedAt | UserSortField::UpdatedAt)
    }
}

/// The order of a user listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserOrder {
    pub field: UserSortField,
    pub descending: bool,
}

impl Default for UserOrder {
    fn default() -> Self {
        UserOrder {
            field: UserSortField::CreatedAt,
            descending: true,
        }
    }
}

/// A sort key of one user for `field`: text keys compare case-insensitively; absent values sort
/// last in either direction.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum SortKey {
    Int(i64),
    Text(String),
}

impl User {
    pub fn sort_key(&self, field: UserSortField) -> Option<SortKey> {
        let p = &self.profile;
        let text = |v: Option<&str>| v.map(|s| SortKey::Text(s.to_lowercase()));
        match field {
            UserSortField::CreatedAt => Some(SortKey::Int(self.created_at.0)),
            UserSortField::UpdatedAt => Some(SortKey::Int(self.updated_at.0)),
            UserSortField::EmailAddress => text(p.primary_email()),
            UserSortField::PhoneNumber => text(p.primary_phone()),
            UserSortField::FirstName => text(p.first_name.as_deref()),
            UserSortField::LastName => text(p.last_name.as_deref()),
            UserSortField::Username => text(p.username.as_deref()),
            UserSortField::LastActiveAt => p.last_active_at.map(|t| SortKey::Int(t.0)),
            UserSortField::LastSignInAt => p.last_sign_in_at.map(|t| SortKey::Int(t.0)),
        }
    }

    /// Whether every given part of `q` matches (see [`UserQuery`]).
    pub fn matches(&self, q: &UserQuery) -> bool {
        let p = &self.profile;
        let emails = || p.email_addresses.iter().map(|c| c.value.as_str());
        let phones = || p.phone_numbers.iter().map(|c| c.value.as_str());
        let names = || {
            [&p.first_name, &p.last_name]
                .into_iter()
                .flatten()
                .map(String::as_str)
        };
        let any = q.any.as_deref().is_none_or(|v| {
            let others = [&p.username, &p.external_id]
                .into_iter()
                .flatten()
                .map(String::as_str)
                .chain(std::iter::once(self.id.as_str()));
            contains_any(emails().chain(names()).chain(others), v) || phone_matches(phones(), v)
        });
        any && q.email.as_deref().is_none_or(|v| contains_any(emails(), v))
            && q.phone
                .as_deref()
                .is_none_or(|v| phone_matches(phones(), v))
            && q.username
                .as_deref()
                .is_none_or(|v| contains_any(p.username.as_deref().into_iter(), v))
            && q.name.as_deref().is_none_or(|v| {
                let full = names().collect::<Vec<_>>().join(" ");
                contains_any(names(), v) || contains_any(std::iter::once(full.as_str()), v)
            })
    }
}

fn contains_any<'a>(mut values: impl Iterator<Item = &'a str>, q: &str) -> bool {
    let q = q.trim().to_lowercase();
    values.any(|v| v.to_lowercase().contains(&q))
}

/// A phone number matches on its text or, for a query of digits and phone punctuation, on its
/// digits alone (`555 01` finds `+1555010…`).
fn phone_matches<'a>(mut values: impl Iterator<Item = &'a str> + Clone, q: &str) -> bool {
    let digits: String = q.chars().filter(char::is_ascii_digit).collect();
    let phone_like = !digits.is_empty()
        && q.trim()
            .chars()
            .all(|c| c.is_ascii_digit() || " +-.()".contains(c));
    if phone_like {
        return values.any(|v| {
            v.chars()
                .filter(char::is_ascii_digit)
                .collect::<String>()
                .contains(&digits)
        });
    }
    contains_any(values, q)
}

/// Partial-match queries of a user listing, all case-insensitive. `any` is Clerk's `query`:
/// emails, phone numbers, username, first and last name, user id and external id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserQuery {
    pub any: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub username: Option<String>,
    /// First name, last name, or both as "first last".
    pub name: Option<String>,
}

impl UserQuery {
    pub fn is_empty(&self) -> bool {
        [
            &self.any,
            &self.email,
            &self.phone,
            &self.username,
            &self.name,
        ]
        .into_iter()
        .all(|v| v.as_deref().is_none_or(|s| s.trim().is_empty()))
    }
}

/// The blind-indexed identifiers of a user: (kind, normalised value).
pub fn identifiers(u: &User) -> Vec<(&'static str, String)> {
    let p = &u.profile;
    let mut out: Vec<(&'static str, String)> = p
        .email_addresses
        .iter()
        .map(|c| (ID_EMAIL, c.value.clone()))
        .chain(p.phone_numbers.iter().map(|c| (ID_PHONE, c.value.clone())))
        .collect();
    if let Some(n) = &p.username {
        out.push((ID_USERNAME, n.clone()));
    }
    if let Some(x) = &p.external_id {
        out.push((ID_EXTERNAL, x.clone()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_and_validates_contacts() {
        assert_eq!(
            normalize_email(" Ada@Example.COM ").ok().as_deref(),
            Some("ada@example.com")
        );
        for bad in ["ada", "@x.io", "a@b", "a@@b.io", "a b@c.io"] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
        assert_eq!(
            normalize_phone("+1 (415) 555-0100").ok().as_deref(),
            Some("+14155550100")
        );
        assert!(normalize_phone("call me").is_err());
        assert!(normalize_username("ab").is_err());
        assert_eq!(normalize_username("Ada_L").ok().as_deref(), Some("ada_l"));
    }

    #[test]
    fn new_user_sets_primaries_and_refuses_duplicates() {
        let app = AppId::new();
        let u = NewUser {
            email_addresses: vec!["a@x.io".into(), "b@x.io".into()],
            ..NewUser::default()
        }
        .into_user(&app, Timestamp(5))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(u.profile.primary_email(), Some("a@x.io"));
        assert_eq!(identifiers(&u).len(), 2);
        let dup = NewUser {
            email_addresses: vec!["a@x.io".into(), "A@x.io".into()],
            ..NewUser::default()
        }
        .into_user(&app, Timestamp(5));
        assert!(dup.is_err());
        let big = NewUser {
            public_metadata: Some(Map::from_iter([(
                "k".to_owned(),
                Value::from("x".repeat(9000)),
            )])),
            ..NewUser::default()
        }
        .into_user(&app, Timestamp(5));
        assert!(
            big.err()
                .is_some_and(|e| e.to_string().contains("public_metadata"))
        );
    }
}

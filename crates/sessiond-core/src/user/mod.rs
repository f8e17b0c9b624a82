//! The users directory of an application. Sessions belong to users; JWT templates read their
//! fields; every dialect sees the same record.
//!
//! A user's profile (names, contacts, metadata) is personal data, so it is stored sealed. Emails,
//! phone numbers and usernames are additionally stored as keyed blind-index hashes, which give
//! per-application uniqueness and exact-match lookup without storing the values in clear.

mod search;
mod validate;

pub use search::*;
pub use validate::*;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::application::AppId;
use crate::clock::Timestamp;
use crate::ids::{IdentificationId, UserId};

/// An email address or phone number with its own id, so that each can be named on its own.
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
    /// Sessions that may be enabled for concurrent access at once; `None` or 0 is unlimited.
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
    /// A digest from another system, with the name of the algorithm that made it.
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
    /// Backdated creation time, for users imported with their original date.
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

//! Searching and ordering users: partial matches and sort keys over opened profiles.

use super::*;

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

pub(super) fn contains_any<'a>(mut values: impl Iterator<Item = &'a str>, q: &str) -> bool {
    let q = q.trim().to_lowercase();
    values.any(|v| v.to_lowercase().contains(&q))
}

/// A phone number matches on its text or, for a query of digits and phone punctuation, on its
/// digits alone (`555 01` finds `+1555010…`).
pub(super) fn phone_matches<'a>(
    mut values: impl Iterator<Item = &'a str> + Clone,
    q: &str,
) -> bool {
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

/// Partial-match queries of a user listing, all case-insensitive. `any` is a free-text query over
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

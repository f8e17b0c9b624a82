//! Request parsing with Clerk's error shapes. Bodies arrive in every form the SDKs produce: no
//! body at all (with a JSON content type), `{}`, `null` (Go), or an object. Every field is
//! checked: unknown ones are refused by name rather than dropped.

use axum::body::Bytes;
use serde_json::{Map, Value};

use super::error::ClerkError;
use crate::body::{JsonObject, Problem};

/// A JSON object body; empty and `null` bodies read as `{}`.
pub struct Body(JsonObject);

/// A body problem in Clerk's words.
fn clerk(p: Problem) -> ClerkError {
    match p {
        Problem::NotUtf8 => ClerkError::body_invalid("The request body is not UTF-8."),
        Problem::NotJson(_) => ClerkError::body_invalid("The request body is not valid JSON."),
        Problem::NotAnObject => ClerkError::body_invalid("The request body must be a JSON object."),
        Problem::Unknown(k) => ClerkError::unknown_param(&k),
        Problem::Type { member, expected } => ClerkError::type_invalid(&member, expected),
        Problem::Missing(k) => ClerkError::missing(&k),
        Problem::TooLong { member, max } => {
            ClerkError::value_invalid(&member, format!("{member} must be at most {max} bytes"))
        }
        Problem::TooManyItems { member, max_items } => ClerkError::value_invalid(
            &member,
            format!("{member} must have at most {max_items} items"),
        ),
        Problem::BadItem { member, max_item } => ClerkError::value_invalid(
            &member,
            format!("{member} must hold non-empty strings of at most {max_item} bytes"),
        ),
    }
}

impl Body {
    pub fn parse(bytes: &Bytes) -> Result<Body, ClerkError> {
        JsonObject::parse(bytes).map(Body).map_err(clerk)
    }

    /// Refuses any field not in `allowed`.
    pub fn only(&self, allowed: &[&str]) -> Result<(), ClerkError> {
        self.0.only(allowed).map_err(clerk)
    }

    pub fn has(&self, k: &str) -> bool {
        self.0.has(k)
    }

    /// A string field: absent or null is `None`.
    pub fn str(&self, k: &str) -> Result<Option<String>, ClerkError> {
        self.0.str(k).map_err(clerk)
    }

    /// A string field that must be there (absent or null: Clerk's `form_param_missing`).
    pub fn required_str(&self, k: &str) -> Result<String, ClerkError> {
        self.str(k)?.ok_or_else(|| ClerkError::missing(k))
    }

    /// For updates: absent is `None`, null is `Some(None)`.
    pub fn str_patch(&self, k: &str) -> Result<Option<Option<String>>, ClerkError> {
        self.0.str_patch(k).map_err(clerk)
    }

    pub fn u64(&self, k: &str) -> Result<Option<u64>, ClerkError> {
        self.0.u64(k).map_err(clerk)
    }

    pub fn bool(&self, k: &str) -> Result<Option<bool>, ClerkError> {
        self.0.bool(k).map_err(clerk)
    }

    pub fn object(&self, k: &str) -> Result<Option<Map<String, Value>>, ClerkError> {
        self.0.object(k).map_err(clerk)
    }

    /// A list of strings; a single string is accepted as a one-element list.
    pub fn strings(&self, k: &str) -> Result<Vec<String>, ClerkError> {
        self.0.strings(k, true).map_err(clerk)
    }
}

/// Query parameters, keeping repeated keys (`user_id=a&user_id=b`) and bracketed arrays.
pub struct Query(Vec<(String, String)>);

pub const MAX_QUERY_VALUES: usize = 100;

impl Query {
    pub fn parse(raw: Option<&str>) -> Result<Query, ClerkError> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.unwrap_or("").as_bytes())
            .map(|(k, v)| (k.trim_end_matches("[]").to_owned(), v.into_owned()))
            .collect();
        if pairs.len() > 4 * MAX_QUERY_VALUES {
            return Err(ClerkError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "malformed_request_parameters",
                "Malformed request parameters",
                "Too many query parameters.",
            ));
        }
        Ok(Query(pairs))
    }

    pub fn only(&self, allowed: &[&str]) -> Result<(), ClerkError> {
        match self.0.iter().find(|(k, _)| !allowed.contains(&k.as_str())) {
            Some((k, _)) => Err(ClerkError::unknown_param(k)),
            None => Ok(()),
        }
    }

    pub fn one(&self, k: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `k`, for parameters where the first one wins.
    pub fn first(&self, k: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, k: &str) -> Result<Vec<String>, ClerkError> {
        let v: Vec<String> = self
            .0
            .iter()
            .filter(|(key, _)| key == k)
            .flat_map(|(_, v)| v.split(',').map(str::to_owned).collect::<Vec<_>>())
            .filter(|v| !v.is_empty())
            .collect();
        if v.len() > MAX_QUERY_VALUES {
            return Err(ClerkError::value_invalid(
                k,
                format!("at most {MAX_QUERY_VALUES} values"),
            ));
        }
        Ok(v)
    }

    pub fn bool(&self, k: &str) -> Result<Option<bool>, ClerkError> {
        match self.one(k) {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(_) => Err(ClerkError::type_invalid(k, "boolean")),
        }
    }

    /// An integer within bounds, with a default.
    pub fn int(&self, k: &str, default: u64, min: u64, max: u64) -> Result<u64, ClerkError> {
        match self.one(k) {
            None | Some("") => Ok(default),
            Some(v) => {
                let n: u64 = v
                    .parse()
                    .map_err(|_| ClerkError::type_invalid(k, "integer"))?;
                if !(min..=max).contains(&n) {
                    return Err(ClerkError::value_invalid(
                        k,
                        format!("{k} must be between {min} and {max}"),
                    ));
                }
                Ok(n)
            }
        }
    }
}

//! JSON request bodies for every dialect: parsed once, every member checked by name and type.
//! What is wrong is a [`Problem`]; each dialect words it in its own error shape, so the parsing
//! rules are written once and the wording stays each vendor's.

use axum::body::Bytes;
use serde_json::{Map, Value};

/// Why a body or one of its members was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    NotUtf8,
    /// Not JSON at all; the parser's message.
    NotJson(String),
    /// JSON, but not an object.
    NotAnObject,
    /// A member the operation does not take.
    Unknown(String),
    /// A member of the wrong type; `expected` names the type (`string`, `boolean`, …).
    Type {
        member: String,
        expected: &'static str,
    },
    /// A required member is absent, null or empty.
    Missing(String),
    /// A string member over `max` bytes or holding control characters.
    TooLong {
        member: String,
        max: usize,
    },
    /// A list member that is not a list, or has more than `max_items` items.
    TooManyItems {
        member: String,
        max_items: usize,
    },
    /// A list item that is not a non-empty string of at most `max_item` bytes.
    BadItem {
        member: String,
        max_item: usize,
    },
}

/// A JSON object body. An empty body and a literal `null` read as an empty object, and
/// [`JsonObject::was_sent`] tells them from `{}`.
#[derive(Debug, Clone, Default)]
pub struct JsonObject {
    members: Map<String, Value>,
    sent: bool,
    /// Trinsic's clients (.NET-generated) match member names without regard to case.
    any_case: bool,
}

impl JsonObject {
    pub fn parse(bytes: &Bytes) -> Result<JsonObject, Problem> {
        let text = std::str::from_utf8(bytes).map_err(|_| Problem::NotUtf8)?;
        if text.trim().is_empty() {
            return Ok(JsonObject::default());
        }
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(members)) => Ok(JsonObject {
                members,
                sent: true,
                any_case: false,
            }),
            Ok(Value::Null) => Ok(JsonObject::default()),
            Ok(_) => Err(Problem::NotAnObject),
            Err(e) => Err(Problem::NotJson(e.to_string())),
        }
    }

    /// An object already taken out of a body (a nested member).
    pub fn from_map(members: Map<String, Value>) -> JsonObject {
        JsonObject {
            members,
            sent: true,
            any_case: false,
        }
    }

    /// Member names match whatever their case.
    pub fn any_case(mut self) -> Self {
        self.any_case = true;
        self
    }

    /// Whether a non-null body was sent.
    pub fn was_sent(&self) -> bool {
        self.sent
    }

    pub fn into_map(self) -> Map<String, Value> {
        self.members
    }

    fn same(&self, a: &str, b: &str) -> bool {
        if self.any_case {
            a.eq_ignore_ascii_case(b)
        } else {
            a == b
        }
    }

    /// Refuses the first member not in `allowed`.
    pub fn only(&self, allowed: &[&str]) -> Result<(), Problem> {
        match self
            .members
            .keys()
            .find(|k| !allowed.iter().any(|a| self.same(a, k)))
        {
            Some(k) => Err(Problem::Unknown(k.clone())),
            None => Ok(()),
        }
    }

    /// Whether the member is present (even as null).
    pub fn has(&self, k: &str) -> bool {
        self.members.keys().any(|m| self.same(m, k))
    }

    /// The member's value; null reads as absent.
    pub fn get(&self, k: &str) -> Option<&Value> {
        let v = if self.any_case {
            self.members
                .iter()
                .find(|(m, _)| m.eq_ignore_ascii_case(k))
                .map(|(_, v)| v)
        } else {
            self.members.get(k)
        };
        v.filter(|v| !v.is_null())
    }

    fn wrong(k: &str, expected: &'static str) -> Problem {
        Problem::Type {
            member: k.to_owned(),
            expected,
        }
    }

    pub fn str(&self, k: &str) -> Result<Option<String>, Problem> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(Self::wrong(k, "string")),
        }
    }

    /// A string of at most `max` bytes without control characters.
    pub fn short_str(&self, k: &str, max: usize) -> Result<Option<String>, Problem> {
        match self.str(k)? {
            Some(s) if s.len() > max || s.chars().any(char::is_control) => Err(Problem::TooLong {
                member: k.to_owned(),
                max,
            }),
            other => Ok(other),
        }
    }

    /// A non-empty string.
    pub fn required_str(&self, k: &str) -> Result<String, Problem> {
        match self.str(k)? {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(Problem::Missing(k.to_owned())),
        }
    }

    /// For updates: absent is `None`, null is `Some(None)`.
    pub fn str_patch(&self, k: &str) -> Result<Option<Option<String>>, Problem> {
        if !self.has(k) {
            return Ok(None);
        }
        self.str(k).map(Some)
    }

    pub fn u64(&self, k: &str) -> Result<Option<u64>, Problem> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_u64().map(Some).ok_or(Self::wrong(k, "integer")),
            Some(_) => Err(Self::wrong(k, "integer")),
        }
    }

    pub fn bool(&self, k: &str) -> Result<Option<bool>, Problem> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(Self::wrong(k, "boolean")),
        }
    }

    pub fn object(&self, k: &str) -> Result<Option<Map<String, Value>>, Problem> {
        match self.get(k) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m.clone())),
            Some(_) => Err(Self::wrong(k, "object")),
        }
    }

    /// A list of strings; with `lone_string`, a single string is a one-element list.
    pub fn strings(&self, k: &str, lone_string: bool) -> Result<Vec<String>, Problem> {
        match self.get(k) {
            None => Ok(Vec::new()),
            Some(Value::String(s)) if lone_string => Ok(vec![s.clone()]),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .ok_or(Self::wrong(k, "array of strings"))
                })
                .collect(),
            Some(_) => Err(Self::wrong(k, "array of strings")),
        }
    }

    /// At most `max_items` non-empty strings of at most `max_item` bytes each.
    pub fn bounded_strings(
        &self,
        k: &str,
        max_items: usize,
        max_item: usize,
    ) -> Result<Vec<String>, Problem> {
        match self.get(k) {
            None => Ok(Vec::new()),
            Some(Value::Array(a)) if a.len() <= max_items => a
                .iter()
                .map(|v| match v {
                    Value::String(s) if !s.is_empty() && s.len() <= max_item => Ok(s.clone()),
                    _ => Err(Problem::BadItem {
                        member: k.to_owned(),
                        max_item,
                    }),
                })
                .collect(),
            Some(_) => Err(Problem::TooManyItems {
                member: k.to_owned(),
                max_items,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<JsonObject, Problem> {
        JsonObject::parse(&Bytes::from(s.to_owned()))
    }

    #[test]
    fn empty_and_null_bodies_are_empty_objects_that_were_not_sent() {
        for s in ["", "  ", "null"] {
            let b = parse(s).unwrap_or_default();
            assert!(!b.was_sent() && b.only(&[]).is_ok(), "{s:?}");
        }
        assert!(parse("{}").is_ok_and(|b| b.was_sent()));
        assert_eq!(parse("[1]").err(), Some(Problem::NotAnObject));
        assert!(matches!(parse("{").err(), Some(Problem::NotJson(_))));
        assert_eq!(
            JsonObject::parse(&Bytes::from_static(b"\xff")).err(),
            Some(Problem::NotUtf8)
        );
    }

    #[test]
    fn members_are_checked_by_name_and_type() {
        let b = parse(r#"{"a": "x", "n": null, "b": true, "l": ["p", "q"], "Odd": 1}"#)
            .unwrap_or_default();
        assert_eq!(
            b.only(&["a", "n", "b", "l"]),
            Err(Problem::Unknown("Odd".into()))
        );
        assert!(
            b.clone()
                .any_case()
                .only(&["a", "n", "b", "l", "odd"])
                .is_ok()
        );
        assert_eq!(b.str("a"), Ok(Some("x".into())));
        assert_eq!(b.str("n"), Ok(None));
        assert_eq!(b.str_patch("n"), Ok(Some(None)));
        assert_eq!(b.str_patch("zz"), Ok(None));
        assert_eq!(
            b.str("b"),
            Err(Problem::Type {
                member: "b".into(),
                expected: "string"
            })
        );
        assert_eq!(b.required_str("n"), Err(Problem::Missing("n".into())));
        assert_eq!(b.strings("a", true), Ok(vec!["x".to_owned()]));
        assert!(b.strings("a", false).is_err());
        assert_eq!(
            b.bounded_strings("l", 2, 1),
            Ok(vec!["p".into(), "q".into()])
        );
        assert!(b.bounded_strings("l", 1, 1).is_err());
        assert_eq!(
            b.short_str("a", 0),
            Err(Problem::TooLong {
                member: "a".into(),
                max: 0
            })
        );
    }
}

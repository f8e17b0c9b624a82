//! How both backends store values that have no column type of their own.

use serde::{Deserialize, Serialize};
use sessiond_core::events::EventType;
use sessiond_core::session::{SessionAttributes, SsoDetails};
use sessiond_core::store::{StoreError, StoreResult};

/// A session's attributes as stored: JSON under the names rows of every version carry. Absent
/// fields take their defaults and unknown ones are ignored, so rows written by any version (or
/// any dialect) read alike.
#[derive(Serialize, Deserialize, Default)]
#[serde(default)]
struct StoredAttributes {
    mobile: bool,
    public_computer: bool,
    cookie_domain: Option<String>,
    /// Kept in clear only by versions before the SSO was sealed (`Session::sso`).
    #[serde(skip_serializing_if = "Option::is_none")]
    sso: Option<SsoDetails>,
    /// Concurrent access, under the name of the first dialect that needed it.
    enabled_for_connect: bool,
}

/// A session's attributes as stored text.
pub fn attributes_text(a: &SessionAttributes) -> StoreResult<String> {
    // Destructured so that a new attribute fails to compile until it is stored.
    let SessionAttributes {
        mobile,
        public_computer,
        cookie_domain,
        sso,
        concurrent_access,
    } = a.clone();
    let stored = StoredAttributes {
        mobile,
        public_computer,
        cookie_domain,
        sso,
        enabled_for_connect: concurrent_access,
    };
    serde_json::to_string(&stored)
        .map_err(|e| StoreError::backend_caused("cannot encode a stored value", e))
}

/// Stored attributes back.
pub fn attributes_of(text: &str) -> StoreResult<SessionAttributes> {
    let s: StoredAttributes = serde_json::from_str(text)
        .map_err(|e| StoreError::backend_caused("corrupt session attributes", e))?;
    Ok(SessionAttributes {
        mobile: s.mobile,
        public_computer: s.public_computer,
        cookie_domain: s.cookie_domain,
        sso: s.sso,
        concurrent_access: s.enabled_for_connect,
    })
}

/// An endpoint's event types as stored: their names, space-separated (empty: every type).
pub fn event_types_text(types: &[EventType]) -> String {
    types
        .iter()
        .map(|t| t.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The stored event types back; `Err` names one that is not a type.
pub fn event_types_of(text: &str) -> Result<Vec<EventType>, String> {
    text.split_whitespace()
        .map(|t| EventType::parse(t).ok_or_else(|| t.to_owned()))
        .collect()
}

/// Whether an endpoint taking `wanted` (empty: every type) takes events stored as `kind`.
pub fn wants(wanted: &[EventType], kind: &str) -> bool {
    wanted.is_empty() || EventType::parse(kind).is_some_and(|k| wanted.contains(&k))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows of earlier versions keep reading: the historical names, missing fields defaulted,
    /// unknown ones ignored; and what is written reads back as it was.
    #[test]
    fn session_attributes_keep_their_stored_names() {
        let old = r#"{"mobile":true,"enabled_for_connect":true,"sso":{"provider":"p","identifier":"i"},"later":1}"#;
        let a = attributes_of(old).unwrap_or_else(|e| panic!("{e}"));
        assert!(a.mobile && a.concurrent_access && !a.public_computer);
        assert_eq!(a.sso.as_ref().map(|s| s.provider.as_str()), Some("p"));
        let text = attributes_text(&a).unwrap_or_else(|e| panic!("{e}"));
        assert!(text.contains(r#""enabled_for_connect":true"#), "{text}");
        assert_eq!(attributes_of(&text).ok(), Some(a));
        assert_eq!(attributes_of("{}").ok(), Some(SessionAttributes::default()));
        let plain = attributes_text(&SessionAttributes::default()).unwrap_or_default();
        assert!(!plain.contains("sso"), "no clear SSO written: {plain}");
    }

    #[test]
    fn event_types_round_trip_and_an_empty_list_takes_every_type() {
        let types = vec![EventType::SessionRevoked, EventType::UserCreated];
        assert_eq!(event_types_of(&event_types_text(&types)), Ok(types.clone()));
        assert_eq!(event_types_of(""), Ok(vec![]));
        assert_eq!(
            event_types_of("session.nope"),
            Err("session.nope".to_owned())
        );
        assert!(wants(&types, "user.created") && !wants(&types, "user.deleted"));
        assert!(wants(&[], "user.deleted"));
    }
}

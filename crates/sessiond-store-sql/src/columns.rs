//! How both backends store values that have no column type of their own.

use sessiond_core::events::EventType;

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

use super::*;
use crate::application::AppSettings;
use crate::ids::ClientId;

fn session(status: SessionStatus) -> Session {
    let mut s = Session::new(
        &AppId::new(),
        &AppSettings::default(),
        UserId::new(),
        ClientId::new(),
        status == SessionStatus::Pending,
        Timestamp(1_000),
    );
    s.status = status;
    s
}

#[test]
fn every_type_round_trips_through_its_name() {
    for t in EventType::ALL {
        assert_eq!(EventType::parse(t.as_str()), Some(t));
        assert_eq!(serde_json::to_value(t).ok(), Some(Value::from(t.as_str())));
    }
    assert_eq!(EventType::parse("session.unknown"), None);
}

#[test]
fn status_changes_name_their_event_and_activity_names_none() {
    let before = session(SessionStatus::Active);
    let mut touched = before.clone();
    touched.last_active_at = Timestamp(2_000);
    assert_eq!(session_changed(&before, &touched), None);
    for (status, kind) in [
        (SessionStatus::Revoked, EventType::SessionRevoked),
        (SessionStatus::Ended, EventType::SessionEnded),
        (SessionStatus::Removed, EventType::SessionRemoved),
        (SessionStatus::Replaced, EventType::SessionReplaced),
    ] {
        let mut after = before.clone();
        after.status = status;
        let e = session_changed(&before, &after).map(|e| e.kind);
        assert_eq!(e, Some(kind), "{status:?}");
        assert!(kind.is_revocation());
    }
    let pending = session(SessionStatus::Pending);
    assert_eq!(session_created(&pending).kind, EventType::SessionPending);
    let mut enabled = pending.clone();
    enabled.status = SessionStatus::Active;
    assert_eq!(
        session_changed(&pending, &enabled).map(|e| e.kind),
        Some(EventType::SessionEnabled)
    );
}

#[test]
fn impersonation_start_and_end_are_events_with_a_snapshot() {
    let before = session(SessionStatus::Active);
    let mut after = before.clone();
    after.actor = Some(serde_json::json!({"sub": "user_x"}));
    let e = session_changed(&before, &after);
    assert_eq!(
        e.as_ref().map(|e| e.kind),
        Some(EventType::ImpersonationStarted)
    );
    let snapshot: Option<SessionSnapshot> = e.and_then(|e| serde_json::from_value(e.data).ok());
    assert_eq!(snapshot, Some(SessionSnapshot::of(&after)));
    assert_eq!(
        session_changed(&after, &before).map(|e| e.kind),
        Some(EventType::ImpersonationEnded)
    );
}

#[test]
fn positions_decode_only_what_they_encode() {
    let p = Position { txid: 7, seq: 42 };
    assert_eq!(Position::decode(&p.encode()), Some(p));
    for bad in [
        "",
        ".",
        "1.",
        ".1",
        "-1.2",
        "1.2.3",
        "a.b",
        "99999999999999999999.1",
        " 1.2",
    ] {
        assert_eq!(Position::decode(bad), None, "{bad:?}");
    }
    assert!(Position { txid: 1, seq: 0 } > Position { txid: 0, seq: 99 });
}

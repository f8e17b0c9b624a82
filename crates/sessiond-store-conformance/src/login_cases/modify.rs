//! Contract cases: sessions read, decided and written by the store in one step.

use crate::TestDb;
use crate::cases::{T0, insert_app};
use sessiond_core::Timestamp;
use sessiond_core::ids::SessionId;
use sessiond_core::session::SessionStatus;
use sessiond_core::store::{SessionFilter, VaultEntry};

use super::*;

/// A read-modify-write done by the store (`modify_session`, `modify_sessions`): the step sees
/// the session as stored, its decision is written as `update_session` would write it, a refusal
/// or "unchanged" writes nothing, and concurrent modifications of one session never lose one
/// another. A store that does not offer them says so for both, and callers read and write under
/// optimistic concurrency instead (the service cases cover that path).
pub async fn sessions_modified_in_place_lose_no_update(db: &TestDb) {
    use sessiond_core::error::Error;
    use sessiond_core::events::{self, EventType, Position};
    use sessiond_core::session::Session;
    use sessiond_core::store::{Modified, SessionChange, SessionStep};
    use std::sync::Arc;

    let (a, _) = insert_app(db, "a", T0).await;
    let u = user(&a.id, T0, &[], None);
    put_user(db, &u).await;
    let s = session(&a.id, &u.id, T0);
    put_session(db, &s).await;
    let step = |f: fn(&Session) -> SessionChange| -> SessionStep { Arc::new(f) };
    let modify = |id: SessionId, st: SessionStep| {
        let app = a.id.clone();
        async move {
            db.store
                .modify_session(&app, &id, st)
                .await
                .unwrap_or_else(|e| panic!("modify_session: {e}"))
        }
    };
    let unchanged = step(|_| SessionChange::Unchanged);
    let Some(missing) = modify(SessionId::new(), unchanged.clone()).await else {
        let all = SessionFilter::default();
        let offered = db
            .store
            .modify_sessions(&a.id, &all, 10, T0, unchanged)
            .await;
        assert_eq!(
            offered.ok(),
            Some(None),
            "offered for one, offered for a page"
        );
        return;
    };
    assert!(matches!(missing, Modified::Missing), "an unknown session");

    let Some(Modified::Unchanged(got)) = modify(s.id.clone(), unchanged).await else {
        panic!("unchanged")
    };
    assert_eq!(got, s, "the step's session, as stored");
    let refuse = step(|_| SessionChange::Refused(Error::Conflict));
    assert!(matches!(
        modify(s.id.clone(), refuse).await,
        Some(Modified::Refused(Error::Conflict))
    ));
    assert_eq!(
        db.store.get_session(&a.id, &s.id).await.ok().flatten(),
        Some(s.clone()),
        "a refusal writes nothing"
    );

    // Twenty concurrent increments of one field, each from the session as stored: none is lost.
    let bump = step(|s| {
        let mut next = s.clone();
        next.last_active_at = Timestamp(s.last_active_at.0 + 1);
        next.version = s.version + 1;
        SessionChange::Write(next, None)
    });
    let runs = (0..20).map(|_| modify(s.id.clone(), bump.clone()));
    for done in futures::future::join_all(runs).await {
        assert!(matches!(
            done,
            Some(Modified::Written { evented: false, .. })
        ));
    }
    let now = db.store.get_session(&a.id, &s.id).await.ok().flatten();
    assert_eq!(
        now.map(|n| (n.last_active_at, n.version)),
        Some((Timestamp(s.last_active_at.0 + 20), s.version + 20)),
        "every modification saw the one before it"
    );

    // Ending a session this way empties its vault and writes its event, as `update_session`.
    let entry = VaultEntry {
        row_id: "vt_modify".into(),
        value_sealed: vec![7],
    };
    assert_eq!(
        db.store
            .put_session_token(&a.id, &s.id, "tok", &entry, 10, T0)
            .await,
        Ok(true)
    );
    let revoke: SessionStep = Arc::new(|s: &Session| {
        let mut next = s.clone();
        next.status = SessionStatus::Revoked;
        next.version = s.version + 1;
        let event = events::session_changed(s, &next);
        SessionChange::Write(next, event)
    });
    let Some(Modified::Written {
        before,
        after,
        evented: true,
    }) = modify(s.id.clone(), revoke.clone()).await
    else {
        panic!("revoked")
    };
    assert_eq!(
        (before.status, after.status),
        (SessionStatus::Active, SessionStatus::Revoked)
    );
    assert_eq!(
        db.store.get_session(&a.id, &s.id).await.ok().flatten(),
        Some(after)
    );
    assert_eq!(
        db.store.get_session_token(&a.id, &s.id, "tok").await,
        Ok(None)
    );

    // A page: the user's usable sessions, each revoked in the one transaction.
    let more: Vec<_> = (1..=3)
        .map(|i| session(&a.id, &u.id, Timestamp(T0.0 + i)))
        .collect();
    for m in &more {
        put_session(db, m).await;
    }
    let usable = SessionFilter {
        user_id: Some(u.id.clone()),
        statuses: vec![SessionStatus::Active, SessionStatus::Pending],
        ..SessionFilter::default()
    };
    let page = |limit| {
        let (app, f, st) = (a.id.clone(), usable.clone(), revoke.clone());
        async move { db.store.modify_sessions(&app, &f, limit, T0, st).await }
    };
    assert_eq!(page(2).await, Ok(Some(2)), "at most the page");
    assert_eq!(page(10).await, Ok(Some(1)), "the rest");
    assert_eq!(page(10).await, Ok(Some(0)), "none left");
    let written = crate::event_cases::settled(db, &a.id, Position::START, &[], 4).await;
    assert!(
        written
            .iter()
            .all(|e| e.event.kind == EventType::SessionRevoked),
        "one revocation event per session ended"
    );
}

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

/// A change the caller decided from the session it read (`change_session`) is written exactly
/// as `update_session` writes the new state, whatever fields it moves, and is refused where
/// that would be: the session moved since the read, belongs to another application, is
/// unknown, or stopped being live without a version change (its user's sessions deleted).
pub async fn a_change_is_written_and_refused_as_an_update(db: &TestDb) {
    use serde_json::json;
    use sessiond_core::store::StoreError;

    let (a, _) = insert_app(db, "a", T0).await;
    let (b, _) = insert_app(db, "b", T0).await;
    let (u, u2) = (user(&a.id, T0, &[], None), user(&a.id, T0, &[], None));
    put_user(db, &u).await;
    put_user(db, &u2).await;
    let s = session(&a.id, &u.id, T0);
    put_session(db, &s).await;
    let entry = VaultEntry {
        row_id: "vt_change".into(),
        value_sealed: vec![9],
    };
    assert_eq!(
        db.store
            .put_session_token(&a.id, &s.id, "tok", &entry, 10, T0)
            .await,
        Ok(true)
    );
    let stored = |id: SessionId| {
        let app = a.id.clone();
        async move { db.store.get_session(&app, &id).await.ok().flatten() }
    };

    // A touch: activity and the sliding deadlines move.
    let mut touched = s.clone();
    touched.last_active_at = Timestamp(T0.0 + 60_000);
    touched.abandon_at = Timestamp(s.abandon_at.0 + 60_000);
    touched.idle_deadline = Some(Timestamp(T0.0 + 120_000));
    touched.updated_at = touched.last_active_at;
    touched.version = s.version + 1;
    assert_eq!(db.store.change_session(&s, &touched, None).await, Ok(()));
    assert_eq!(stored(s.id.clone()).await, Some(touched.clone()));
    assert_eq!(
        db.store.get_session_token(&a.id, &s.id, "tok").await,
        Ok(Some(entry.clone())),
        "a usable session keeps its vault"
    );

    // A change decided from the session before the touch is a lost update.
    let mut stale = s.clone();
    stale.status = SessionStatus::Revoked;
    stale.version = s.version + 1;
    assert_eq!(
        db.store.change_session(&s, &stale, None).await,
        Err(StoreError::Conflict)
    );
    assert_eq!(stored(s.id.clone()).await, Some(touched.clone()));

    // Every other field a write may move, at once; ending the session empties its vault.
    let mut every = touched.clone();
    every.status = SessionStatus::Ended;
    every.actor = Some(json!({"sub": "user_actor"}));
    every.activity = Some(vec![1, 2, 3]);
    every.last_active_organization_id = Some("org_1".into());
    every.attributes.mobile = !touched.attributes.mobile;
    every.attributes.cookie_domain = Some("example.com".into());
    every.attributes.concurrent_access = !touched.attributes.concurrent_access;
    every.idle_deadline = None;
    every.updated_at = Timestamp(T0.0 + 70_000);
    every.version = touched.version + 1;
    assert_eq!(
        db.store.change_session(&touched, &every, None).await,
        Ok(())
    );
    assert_eq!(stored(s.id.clone()).await, Some(every.clone()));
    assert_eq!(
        db.store.get_session_token(&a.id, &s.id, "tok").await,
        Ok(None),
        "ending a session empties its vault"
    );

    // A change of user moves the session to the other user's sessions.
    let mut moved = every.clone();
    moved.user_id = u2.id.clone();
    moved.version = every.version + 1;
    assert_eq!(db.store.change_session(&every, &moved, None).await, Ok(()));
    assert_eq!(stored(s.id.clone()).await, Some(moved.clone()));

    // Another application's key, an unknown session, a session no longer live.
    let mut next = moved.clone();
    next.version = moved.version + 1;
    next.last_active_at = Timestamp(T0.0 + 80_000);
    let mut foreign = next.clone();
    foreign.application_id = b.id.clone();
    let mut before_foreign = moved.clone();
    before_foreign.application_id = b.id.clone();
    assert_eq!(
        db.store
            .change_session(&before_foreign, &foreign, None)
            .await,
        Err(StoreError::NotFound)
    );
    let mut unknown = next.clone();
    unknown.id = SessionId::new();
    let mut before_unknown = moved.clone();
    before_unknown.id = unknown.id.clone();
    assert_eq!(
        db.store
            .change_session(&before_unknown, &unknown, None)
            .await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        db.store.delete_user_sessions(&a.id, &u2.id, T0).await,
        Ok(true)
    );
    assert_eq!(
        db.store.change_session(&moved, &next, None).await,
        Err(StoreError::NotFound),
        "a change decided before the deletion does not bring it back"
    );
    assert_eq!(stored(s.id.clone()).await, None);
}

/// Re-sealing a session's sealed columns (a master-key rotation) moves its version like any other
/// change of the row: a change decided from the copy read before it is refused, not written over
/// the new bytes, and a read then shows them. (SQLite's hot-session cache takes a changed row's
/// state from the update that matched its version, so the version must name one state.)
pub async fn resealing_a_session_moves_its_version(db: &TestDb) {
    use sessiond_core::store::{SealedRef, StoreError};

    let (a, _) = insert_app(db, "a", T0).await;
    let u = user(&a.id, T0, &[], None);
    put_user(db, &u).await;
    let mut s = session(&a.id, &u.id, T0);
    s.activity = Some(vec![1, 1, 1]);
    s.sso = Some(vec![2, 2, 2]);
    put_session(db, &s).await;
    let read = || async {
        db.store
            .get_session_with_user(&a.id, &s.id)
            .await
            .ok()
            .flatten()
            .map(|(s, _)| s)
    };
    let mut before = s.clone();
    for (kind, old, new) in [
        ("sessions", vec![1, 1, 1], vec![3, 3, 3]),
        ("session_sso", vec![2, 2, 2], vec![4, 4, 4]),
    ] {
        // Read (and, on SQLite, cached) before the re-seal.
        assert_eq!(read().await.as_ref(), Some(&before), "{kind}");
        let r = SealedRef {
            kind: kind.into(),
            id: s.id.0.clone(),
        };
        assert_eq!(
            db.store.replace_sealed(&r, &old, &new).await,
            Ok(true),
            "{kind}"
        );
        let mut touched = before.clone();
        touched.last_active_at = Timestamp(before.last_active_at.0 + 60_000);
        touched.version = before.version + 1;
        assert_eq!(
            db.store.change_session(&before, &touched, None).await,
            Err(StoreError::Conflict),
            "{kind}: a change from the copy read before the re-seal"
        );
        let after = read()
            .await
            .unwrap_or_else(|| panic!("{kind}: the session is gone"));
        let sealed = if kind == "sessions" {
            &after.activity
        } else {
            &after.sso
        };
        assert_eq!(sealed.as_deref(), Some(&new[..]), "{kind}");
        assert_eq!(after.version, before.version + 1, "{kind}");
        assert_eq!(after.last_active_at, before.last_active_at, "{kind}");
        before = after;
    }
}

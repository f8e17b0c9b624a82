//! Contract cases: sessions, their joined reads and purges.

use crate::TestDb;
use crate::cases::{T0, insert_app};
use sessiond_core::Timestamp;
use sessiond_core::ids::{SessionId, UserId};
use sessiond_core::session::SessionStatus;
use sessiond_core::store::{SessionFilter, StoreError, VaultEntry};

use super::*;

pub async fn sessions_lifecycle_listing_and_isolation(db: &TestDb) {
    let (a, _) = insert_app(db, "a", T0).await;
    let (b, _) = insert_app(db, "b", T0).await;
    let ua = user(&a.id, T0, &[], None);
    let ub = user(&b.id, T0, &[], None);
    put_user(db, &ua).await;
    put_user(db, &ub).await;

    let cross = session(&a.id, &ub.id, T0);
    assert_eq!(
        db.store.insert_session(&cross, None).await,
        Err(StoreError::NotFound),
        "a session needs a user of its own application"
    );
    let mut ghost = session(&a.id, &ua.id, T0);
    ghost.user_id = UserId::new();
    assert_eq!(
        db.store.insert_session(&ghost, None).await,
        Err(StoreError::NotFound),
        "a session needs an existing user"
    );

    let s1 = session(&a.id, &ua.id, T0);
    let mut s2 = session(&a.id, &ua.id, Timestamp(T0.0 + 1000));
    s2.idle_deadline = Some(Timestamp(T0.0 + 60_000));
    let mut s3 = session(&a.id, &ua.id, Timestamp(T0.0 + 2000));
    s3.status = SessionStatus::Revoked;
    for s in [&s1, &s2, &s3] {
        put_session(db, s).await;
    }
    let got = db.store.get_session(&a.id, &s1.id).await.ok().flatten();
    assert_eq!(got.as_ref(), Some(&s1), "a session reads back exactly");
    assert_eq!(db.store.get_session(&b.id, &s1.id).await.ok(), Some(None));

    let list = |f: SessionFilter, now: Timestamp| {
        let app = a.id.clone();
        async move {
            let (v, n) = db
                .store
                .list_sessions(&app, &f, 10, 0, now)
                .await
                .unwrap_or_default();
            (v.into_iter().map(|s| s.id).collect::<Vec<SessionId>>(), n)
        }
    };
    let by_user = SessionFilter {
        user_id: Some(ua.id.clone()),
        ..Default::default()
    };
    assert_eq!(
        list(by_user.clone(), T0).await,
        (vec![s3.id.clone(), s2.id.clone(), s1.id.clone()], 3),
        "newest first"
    );
    let active = SessionFilter {
        statuses: vec![SessionStatus::Active],
        ..by_user.clone()
    };
    assert_eq!(list(active.clone(), T0).await.1, 2);
    let later = Timestamp(T0.0 + 60_000);
    assert_eq!(
        list(active, later).await,
        (vec![s1.id.clone()], 1),
        "a passed idle deadline is not active"
    );
    let suspended = SessionFilter {
        statuses: vec![SessionStatus::Suspended],
        ..by_user.clone()
    };
    assert_eq!(list(suspended, later).await.0, vec![s2.id.clone()]);
    let expired = SessionFilter {
        statuses: vec![SessionStatus::Expired],
        ..by_user.clone()
    };
    assert_eq!(
        list(expired, s2.expire_at).await.1,
        2,
        "both usable sessions read as expired past expire_at"
    );
    let page = db
        .store
        .list_sessions_page(&a.id, &by_user, 2, 1, T0)
        .await
        .unwrap_or_default();
    assert_eq!(
        page.iter().map(|s| s.id.clone()).collect::<Vec<_>>(),
        vec![s2.id.clone(), s1.id.clone()],
        "a page without a count is the same page"
    );
    let by_client = SessionFilter {
        client_id: Some(s1.client_id.clone()),
        ..Default::default()
    };
    assert_eq!(list(by_client, T0).await.0, vec![s1.id.clone()]);
    let (_, none) = db
        .store
        .list_sessions(&b.id, &by_user, 10, 0, T0)
        .await
        .unwrap_or_default();
    assert_eq!(none, 0, "B lists none of A's sessions");

    // A session's vault lives through updates that keep it usable and goes with the one that
    // ends it, in the same store operation.
    let entry = VaultEntry {
        row_id: "vt_conformance".into(),
        value_sealed: vec![1, 2, 3],
    };
    let put = db
        .store
        .put_session_token(&a.id, &s1.id, "tok", &entry, 10, T0)
        .await;
    assert_eq!(put, Ok(true));
    let mut touched = s1.clone();
    touched.last_active_at = Timestamp(T0.0 + 1);
    touched.version = 2;
    assert_eq!(db.store.update_session(&touched, None).await, Ok(()));
    assert_eq!(
        db.store.get_session_token(&a.id, &s1.id, "tok").await,
        Ok(Some(entry.clone())),
        "a usable session keeps its vault"
    );
    let mut upd = touched.clone();
    upd.status = SessionStatus::Revoked;
    upd.version = 3;
    let mut stale = touched.clone();
    stale.last_active_at = Timestamp(T0.0 + 5);
    stale.version = 3;
    assert_eq!(db.store.update_session(&upd, None).await, Ok(()));
    assert_eq!(
        db.store.get_session_token(&a.id, &s1.id, "tok").await,
        Ok(None),
        "ending a session empties its vault"
    );
    assert_eq!(
        db.store.update_session(&stale, None).await,
        Err(StoreError::Conflict),
        "lost update refused"
    );
    let mut foreign = upd.clone();
    foreign.application_id = b.id.clone();
    foreign.version = 4;
    assert_eq!(
        db.store.update_session(&foreign, None).await,
        Err(StoreError::NotFound),
        "B cannot update A's session"
    );

    assert_eq!(
        db.store.delete_user(&a.id, &ua.id, None).await.ok(),
        Some(true)
    );
    assert_eq!(
        db.store.get_session(&a.id, &s2.id).await.ok(),
        Some(None),
        "deleting a user deletes their sessions"
    );
}

pub async fn sessions_purge_after_retention(db: &TestDb) {
    let (a, _) = insert_app(db, "a", T0).await;
    let u = user(&a.id, T0, &[], None);
    put_user(db, &u).await;
    let live = session(&a.id, &u.id, T0);
    let mut ended = session(&a.id, &u.id, T0);
    ended.status = SessionStatus::Ended;
    for s in [&live, &ended] {
        put_session(db, s).await;
    }
    assert_eq!(
        db.store.purge_sessions(T0).await.ok(),
        Some(0),
        "nothing ended before the cutoff"
    );
    assert_eq!(
        db.store.purge_sessions(Timestamp(T0.0 + 1)).await.ok(),
        Some(1)
    );
    assert!(
        db.store
            .get_session(&a.id, &live.id)
            .await
            .ok()
            .flatten()
            .is_some()
    );
    assert_eq!(
        db.store
            .purge_sessions(Timestamp(live.expire_at.0 + 1))
            .await
            .ok(),
        Some(1)
    );
}

/// A session and its user come back together from one read, and only to their application.
pub async fn session_with_user_in_one_read(db: &TestDb) {
    let (a, _) = insert_app(db, "a", T0).await;
    let (b, _) = insert_app(db, "b", T0).await;
    let u = user(&a.id, T0, &[], Some("ext-joined"));
    put_user(db, &u).await;
    let s = session(&a.id, &u.id, T0);
    put_session(db, &s).await;
    let (got_s, got_u) = db
        .store
        .get_session_with_user(&a.id, &s.id)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("the session is found with its user"));
    assert_eq!(got_s, s);
    assert_eq!(
        (got_u.id, got_u.external_id, got_u.profile_sealed),
        (
            u.id.clone(),
            u.external_id.clone(),
            u.profile_sealed.clone()
        )
    );
    assert_eq!(
        db.store.get_session_with_user(&b.id, &s.id).await.ok(),
        Some(None),
        "another application's session is not found"
    );
    assert_eq!(
        db.store
            .get_session_with_user(&a.id, &SessionId::new())
            .await
            .ok(),
        Some(None)
    );
}

/// Several sessions written together (revoking all of a user's): every one with its event, or,
/// when one of them is stale or gone, none of them and no event.
pub async fn sessions_update_together_or_not_at_all(db: &TestDb) {
    use sessiond_core::events::{self, EventType, Position};
    let (a, _) = insert_app(db, "a", T0).await;
    let u = user(&a.id, T0, &[], None);
    put_user(db, &u).await;
    let s1 = session(&a.id, &u.id, T0);
    let s2 = session(&a.id, &u.id, Timestamp(T0.0 + 1));
    for s in [&s1, &s2] {
        put_session(db, s).await;
    }
    let entry = VaultEntry {
        row_id: "vt_together".into(),
        value_sealed: vec![4, 5, 6],
    };
    assert_eq!(
        db.store
            .put_session_token(&a.id, &s1.id, "tok", &entry, 10, T0)
            .await,
        Ok(true)
    );
    let revoked = |s: &sessiond_core::session::Session| {
        let mut next = s.clone();
        next.status = SessionStatus::Revoked;
        next.version = s.version + 1;
        next.updated_at = Timestamp(T0.0 + 5);
        let event = events::session_changed(s, &next);
        (next, event)
    };
    let unchanged = vec![
        Some((SessionStatus::Active, s1.version)),
        Some((SessionStatus::Active, s2.version)),
    ];

    let mut stale = revoked(&s2);
    stale.0.version += 5;
    assert_eq!(
        db.store.update_sessions(&[revoked(&s1), stale]).await,
        Err(StoreError::Conflict)
    );
    assert_eq!(
        statuses(db, &a.id, [&s1.id, &s2.id]).await,
        unchanged,
        "a stale session leaves the others of its write unwritten"
    );
    assert_eq!(
        db.store.get_session_token(&a.id, &s1.id, "tok").await,
        Ok(Some(entry.clone())),
        "and their vaults as they were"
    );
    let ghost = revoked(&session(&a.id, &u.id, T0));
    assert_eq!(
        db.store.update_sessions(&[revoked(&s1), ghost]).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        statuses(db, &a.id, [&s1.id, &s2.id]).await,
        unchanged,
        "a missing session leaves the others of its write unwritten"
    );
    assert_eq!(db.store.update_sessions(&[]).await, Ok(()));

    assert_eq!(
        db.store
            .update_sessions(&[revoked(&s1), revoked(&s2)])
            .await,
        Ok(())
    );
    assert_eq!(
        statuses(db, &a.id, [&s1.id, &s2.id]).await,
        vec![
            Some((SessionStatus::Revoked, s1.version + 1)),
            Some((SessionStatus::Revoked, s2.version + 1))
        ]
    );
    assert_eq!(
        db.store.get_session_token(&a.id, &s1.id, "tok").await,
        Ok(None),
        "a session ended with the others empties its vault"
    );
    let written = crate::event_cases::settled(db, &a.id, Position::START, &[], 2).await;
    let mut subjects: Vec<_> = written
        .iter()
        .map(|e| (e.event.subject.clone(), e.event.kind))
        .collect();
    subjects.sort_by(|x, y| x.0.cmp(&y.0));
    let mut want = vec![
        (s1.id.to_string(), EventType::SessionRevoked),
        (s2.id.to_string(), EventType::SessionRevoked),
    ];
    want.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        subjects, want,
        "one event per session, and only for the write that stood"
    );
}

/// The stored status and version of each of `ids`.
async fn statuses(
    db: &TestDb,
    app: &sessiond_core::application::AppId,
    ids: [&SessionId; 2],
) -> Vec<Option<(SessionStatus, i64)>> {
    let mut out = Vec::new();
    for id in ids {
        let s = db
            .store
            .get_session(app, id)
            .await
            .unwrap_or_else(|e| panic!("get_session: {e}"));
        out.push(s.map(|s| (s.status, s.version)));
    }
    out
}

/// A session read again after a change shows the change, whichever write made it: an update of
/// the session or of several at once, of its user, the deletion of all of the user's sessions,
/// of the user, of lapsed sessions or of the application. (The SQLite backend answers repeated
/// reads from memory; this is the rule that memory must keep.)
pub async fn a_session_read_again_shows_every_change_since(db: &TestDb) {
    let (a, _) = insert_app(db, "a", T0).await;
    let (b, _) = insert_app(db, "b", T0).await;
    let [u, v, w] = [0, 1, 2].map(|_| user(&a.id, T0, &[], None));
    let x = user(&b.id, T0, &[], None);
    for one in [&u, &v, &w, &x] {
        put_user(db, one).await;
    }
    let s = session(&a.id, &u.id, T0);
    let mut lapsing = session(&a.id, &u.id, T0);
    lapsing.expire_at = Timestamp(T0.0 + 1_000);
    let of_v = session(&a.id, &v.id, T0);
    let of_w = session(&a.id, &w.id, T0);
    let of_b = session(&b.id, &x.id, T0);
    for one in [&s, &lapsing, &of_v, &of_w, &of_b] {
        put_session(db, one).await;
    }
    let read = |s: &sessiond_core::session::Session| {
        let (app, id) = (s.application_id.clone(), s.id.clone());
        async move {
            let joined = db
                .store
                .get_session_with_user(&app, &id)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let alone = db
                .store
                .get_session(&app, &id)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                joined.as_ref().map(|(s, _)| s),
                alone.as_ref(),
                "both reads agree"
            );
            joined
        }
    };
    // Each session is read twice before each change: the second read may come from memory.
    let twice = |s: &sessiond_core::session::Session| {
        let s = s.clone();
        async move {
            read(&s).await;
            read(&s).await
        }
    };

    twice(&s).await;
    let mut touched = s.clone();
    touched.last_active_at = Timestamp(T0.0 + 60_000);
    touched.version += 1;
    assert_eq!(db.store.update_session(&touched, None).await, Ok(()));
    let got = read(&s).await.map(|(s, _)| s);
    assert_eq!(got, Some(touched.clone()), "an update of the session");

    twice(&s).await;
    let mut revoked = touched.clone();
    revoked.status = SessionStatus::Revoked;
    revoked.version += 1;
    assert_eq!(
        db.store.update_sessions(&[(revoked.clone(), None)]).await,
        Ok(())
    );
    let got = read(&s).await.map(|(s, _)| s.status);
    assert_eq!(got, Some(SessionStatus::Revoked), "an update of several");

    twice(&s).await;
    let mut renamed = u.clone();
    renamed.external_id = Some("renamed".into());
    renamed.profile_sealed = vec![9, 9, 9];
    renamed.version += 1;
    assert_eq!(db.store.update_user(&renamed, None).await, Ok(()));
    let got = read(&s)
        .await
        .map(|(_, u)| (u.external_id, u.profile_sealed));
    assert_eq!(
        got,
        Some((Some("renamed".into()), vec![9, 9, 9])),
        "an update of the user"
    );

    twice(&of_v).await;
    assert_eq!(
        db.store.delete_user_sessions(&a.id, &v.id, T0).await,
        Ok(true)
    );
    assert_eq!(
        read(&of_v).await,
        None,
        "all of the user's sessions deleted"
    );

    twice(&of_w).await;
    assert_eq!(db.store.delete_user(&a.id, &w.id, None).await, Ok(true));
    assert_eq!(read(&of_w).await, None, "the user deleted");

    twice(&lapsing).await;
    assert_eq!(
        db.store
            .delete_lapsed_sessions(&a.id, Timestamp(T0.0 + 1_000))
            .await,
        Ok(())
    );
    assert_eq!(read(&lapsing).await, None, "lapsed sessions deleted");
    assert!(read(&s).await.is_some(), "not lapsed");

    // Another node (on SQLite: another connection to the file, as another process would
    // have) changes the session; then this one writes something else, then the other again.
    let other = db.second_node().await;
    twice(&s).await;
    let mut elsewhere = revoked.clone();
    elsewhere.last_active_organization_id = Some("org_elsewhere".into());
    elsewhere.version += 1;
    assert_eq!(other.update_session(&elsewhere, None).await, Ok(()));
    let got = read(&s).await.map(|(s, _)| s);
    assert_eq!(got, Some(elsewhere.clone()), "a change by another node");
    twice(&s).await;
    let y = user(&a.id, T0, &[], None);
    put_user(db, &y).await;
    let mut again = elsewhere.clone();
    again.version += 1;
    again.last_active_organization_id = Some("org_again".into());
    assert_eq!(other.update_session(&again, None).await, Ok(()));
    let got = read(&s).await.map(|(s, _)| s);
    assert_eq!(
        got,
        Some(again.clone()),
        "another node's change after this node's"
    );
    twice(&s).await;
    let mut third = again.clone();
    third.version += 1;
    third.last_active_organization_id = Some("org_third".into());
    assert_eq!(other.update_session(&third, None).await, Ok(()));
    put_user(db, &user(&a.id, T0, &[], None)).await;
    let got = read(&s).await.map(|(s, _)| s);
    assert_eq!(got, Some(third), "another node's change before this node's");

    twice(&of_b).await;
    assert_eq!(db.store.delete_application(&b.id).await, Ok(true));
    assert_eq!(read(&of_b).await, None, "the application deleted");
}

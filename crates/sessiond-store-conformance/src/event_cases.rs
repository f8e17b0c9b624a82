//! Contract cases: the outbox. An event is written by the operation that makes its change, in
//! the same transaction, and only when the change is written.

use sessiond_core::Timestamp;
use sessiond_core::events::{self, EventType, Position};
use sessiond_core::ids::UserId;
use sessiond_core::session::SessionStatus;
use sessiond_core::store::{StoreError, StoredUser};

use crate::TestDb;
use crate::cases::{T0, insert_app};
use crate::login_cases::{test_session as session, test_user as user};

/// The application's events after `after`, once `expected` of them are visible. PostgreSQL shows
/// an event only when every older writing transaction on the server has ended, and other tests
/// write concurrently, so a read right after a commit may briefly see fewer.
pub(crate) async fn settled(
    db: &TestDb,
    app: &sessiond_core::application::AppId,
    after: Position,
    kinds: &[EventType],
    expected: usize,
) -> Vec<sessiond_core::events::Event> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let got = db
            .store
            .events_after(app, after, kinds, 100)
            .await
            .unwrap_or_else(|e| panic!("events_after: {e}"));
        if got.len() >= expected || std::time::Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn kinds_after(
    db: &TestDb,
    app: &sessiond_core::application::AppId,
    after: Position,
    expected: usize,
) -> Vec<(EventType, String)> {
    settled(db, app, after, &[], expected)
        .await
        .into_iter()
        .map(|e| (e.event.kind, e.event.subject))
        .collect()
}

pub async fn events_are_written_with_their_change_only(db: &TestDb) {
    let (a, _) = insert_app(db, "a", T0).await;
    let (b, _) = insert_app(db, "b", T0).await;
    let u = user(&a.id, T0, &[("email", 1)], None);
    let created = events::user_event(&a.id, EventType::UserCreated, &u.id, T0);
    assert_eq!(db.store.insert_user(&u, Some(&created)).await, Ok(()));
    // A refused write (identifier taken) leaves no event behind.
    let twin = user(&a.id, T0, &[("email", 1)], None);
    let refused = events::user_event(&a.id, EventType::UserCreated, &twin.id, T0);
    assert_eq!(
        db.store.insert_user(&twin, Some(&refused)).await,
        Err(StoreError::Conflict)
    );

    let s = session(&a.id, &u.id, T0);
    assert_eq!(
        db.store
            .insert_session(&s, Some(&events::session_created(&s)))
            .await,
        Ok(())
    );
    // A session for a user of another application is not inserted, and emits nothing.
    let stray = session(&a.id, &UserId::new(), T0);
    assert_eq!(
        db.store
            .insert_session(&stray, Some(&events::session_created(&stray)))
            .await,
        Err(StoreError::NotFound)
    );

    // A stale version is a conflict and writes no event; the fresh one writes it.
    let mut revoked = s.clone();
    revoked.status = SessionStatus::Revoked;
    revoked.version = s.version + 1;
    revoked.updated_at = Timestamp(T0.0 + 5);
    let event = events::session_changed(&s, &revoked);
    let mut stale = revoked.clone();
    stale.version = s.version + 5;
    assert_eq!(
        db.store.update_session(&stale, event.as_ref()).await,
        Err(StoreError::Conflict)
    );
    assert_eq!(
        db.store.update_session(&revoked, event.as_ref()).await,
        Ok(())
    );

    // Deleting a missing session or user emits nothing; deleting a present one does.
    let gone = events::session_deleted(&stray, T0);
    assert_eq!(
        db.store.delete_session(&a.id, &stray.id, Some(&gone)).await,
        Ok(false)
    );
    let removed = events::session_deleted(&revoked, Timestamp(T0.0 + 6));
    assert_eq!(
        db.store.delete_session(&a.id, &s.id, Some(&removed)).await,
        Ok(true)
    );
    let mut u2 = u.clone();
    u2.version += 1;
    let updated = events::user_event(&a.id, EventType::UserUpdated, &u.id, T0);
    let mut stale_user = u2.clone();
    stale_user.version += 3;
    assert_eq!(
        db.store.update_user(&stale_user, Some(&updated)).await,
        Err(StoreError::Conflict)
    );
    assert_eq!(db.store.update_user(&u2, Some(&updated)).await, Ok(()));
    let deleted = events::user_event(&a.id, EventType::UserDeleted, &u.id, T0);
    assert_eq!(
        db.store.delete_user(&a.id, &u.id, Some(&deleted)).await,
        Ok(true)
    );
    assert_eq!(
        db.store.delete_user(&a.id, &u.id, Some(&deleted)).await,
        Ok(false)
    );

    let uid = u.id.as_str().to_owned();
    let sid = s.id.as_str().to_owned();
    assert_eq!(
        kinds_after(db, &a.id, Position::START, 6).await,
        vec![
            (EventType::UserCreated, uid.clone()),
            (EventType::SessionCreated, sid.clone()),
            (EventType::SessionRevoked, sid.clone()),
            (EventType::SessionRemoved, sid.clone()),
            (EventType::UserUpdated, uid.clone()),
            (EventType::UserDeleted, uid),
        ]
    );
    // Another application sees none of them.
    assert_eq!(kinds_after(db, &b.id, Position::START, 0).await, vec![]);

    // The stored event is the event written, snapshot included.
    let all = settled(db, &a.id, Position::START, &[], 6).await;
    assert_eq!(all.get(2).map(|e| &e.event), event.as_ref());
    let snapshot: events::SessionSnapshot = serde_json::from_value(all[2].event.data.clone())
        .unwrap_or_else(|e| panic!("snapshot: {e}"));
    assert_eq!(snapshot.status, SessionStatus::Revoked);

    // Positions only grow; a cursor returns what came after it, kinds filter, limit pages.
    for w in all.windows(2) {
        assert!(
            w[0].position < w[1].position,
            "{:?}",
            (w[0].position, w[1].position)
        );
    }
    let rest = kinds_after(db, &a.id, all[3].position, 2).await;
    assert_eq!(rest.len(), 2);
    let revocations = settled(db, &a.id, Position::START, &EventType::REVOCATIONS, 2).await;
    assert_eq!(
        revocations.iter().map(|e| e.event.kind).collect::<Vec<_>>(),
        vec![EventType::SessionRevoked, EventType::SessionRemoved]
    );
    let page = db
        .store
        .events_after(&a.id, all[0].position, &[], 2)
        .await
        .unwrap_or_else(|e| panic!("events_after: {e}"));
    assert_eq!(page, all[1..3].to_vec());
}

pub async fn events_purge_by_age_and_cursors_survive(db: &TestDb) {
    let (a, _) = insert_app(db, "a", T0).await;
    let mut users: Vec<StoredUser> = Vec::new();
    for (i, at) in [T0.0, T0.0 + 10, T0.0 + 20].into_iter().enumerate() {
        let u = user(&a.id, Timestamp(at), &[], Some(&format!("ext{i}")));
        let e = events::user_event(&a.id, EventType::UserCreated, &u.id, Timestamp(at));
        assert_eq!(db.store.insert_user(&u, Some(&e)).await, Ok(()));
        users.push(u);
    }
    let before = settled(db, &a.id, Position::START, &[], 3).await;
    assert_eq!(db.store.purge_events(Timestamp(T0.0 + 20)).await, Ok(2));
    let left = kinds_after(db, &a.id, Position::START, 1).await;
    assert_eq!(
        left,
        vec![(EventType::UserCreated, users[2].id.as_str().to_owned())]
    );
    // A new event after a purge still sorts after every cursor handed out before it.
    let u = user(&a.id, T0, &[], Some("ext3"));
    let e = events::user_event(&a.id, EventType::UserCreated, &u.id, T0);
    assert_eq!(db.store.insert_user(&u, Some(&e)).await, Ok(()));
    let after_last = kinds_after(db, &a.id, before[2].position, 1).await;
    assert_eq!(
        after_last,
        vec![(EventType::UserCreated, u.id.as_str().to_owned())]
    );
    // Purging everything old keeps the newest, so positions never go back.
    let cursor = settled(db, &a.id, Position::START, &[], 2).await[1].position;
    assert_eq!(
        db.store.purge_events(Timestamp(T0.0 + 1_000_000)).await,
        Ok(1)
    );
    let u5 = user(&a.id, T0, &[], Some("ext5"));
    let e5 = events::user_event(&a.id, EventType::UserCreated, &u5.id, T0);
    assert_eq!(db.store.insert_user(&u5, Some(&e5)).await, Ok(()));
    assert_eq!(
        kinds_after(db, &a.id, cursor, 1).await,
        vec![(EventType::UserCreated, u5.id.as_str().to_owned())]
    );
}

pub async fn lapses_bulk_deletions_and_verifications_write_their_events(db: &TestDb) {
    use sessiond_core::verification::{FailReason, State};
    let (a, _) = insert_app(db, "a", T0).await;
    let (b, _) = insert_app(db, "b", T0).await;
    let u = user(&a.id, T0, &[], None);
    let ub = user(&b.id, T0, &[], None);
    assert_eq!(db.store.insert_user(&u, None).await, Ok(()));
    assert_eq!(db.store.insert_user(&ub, None).await, Ok(()));
    let ms = |n: i64| Timestamp(T0.0 + n);
    let with =
        |app: &sessiond_core::application::AppId, uid: &UserId, expire: i64, idle: Option<i64>| {
            let mut s = session(app, uid, T0);
            s.expire_at = ms(expire);
            s.abandon_at = ms(10_000_000);
            s.idle_deadline = idle.map(ms);
            s
        };
    // The first pass only starts the cursor: nothing before it is reported.
    let old = with(&a.id, &u.id, 50, None);
    assert_eq!(db.store.insert_session(&old, None).await, Ok(()));
    assert_eq!(db.store.write_lapse_events(ms(100), 10).await, Ok(0));

    let expires = with(&a.id, &u.id, 1_000, None);
    let idles = with(&a.id, &u.id, 9_000, Some(1_000));
    let tie = with(&a.id, &u.id, 1_000, None);
    let later = with(&a.id, &u.id, 5_000, None);
    let mut revoked = with(&a.id, &u.id, 1_000, None);
    revoked.status = SessionStatus::Revoked;
    let theirs = with(&b.id, &ub.id, 1_000, None);
    for s in [&expires, &idles, &tie, &later, &revoked, &theirs] {
        assert_eq!(db.store.insert_session(s, None).await, Ok(()));
    }
    // Three of a's lapsed by 2 s (two at the same instant), paged two per application at a time
    // without loss or repeat; b's one comes in the first pass.
    assert_eq!(db.store.write_lapse_events(ms(2_000), 2).await, Ok(3));
    assert_eq!(db.store.write_lapse_events(ms(2_000), 2).await, Ok(1));
    assert_eq!(db.store.write_lapse_events(ms(2_000), 2).await, Ok(0));
    let expired = settled(db, &a.id, Position::START, &[EventType::SessionExpired], 3).await;
    let mut ids: Vec<&str> = expired.iter().map(|e| e.event.subject.as_str()).collect();
    ids.sort_unstable();
    let mut want = vec![expires.id.as_str(), idles.id.as_str(), tie.id.as_str()];
    want.sort_unstable();
    assert_eq!(ids, want);
    let idle_event = expired
        .iter()
        .find(|e| e.event.subject == idles.id.as_str())
        .unwrap_or_else(|| panic!("idle event"));
    let snap: events::SessionSnapshot =
        serde_json::from_value(idle_event.event.data.clone()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(snap.status, SessionStatus::Suspended);
    assert_eq!(idle_event.event.occurred_at, ms(1_000), "when it lapsed");

    // Deleting all of a user's sessions lists the ones still usable (not the lapsed or revoked).
    let fresh = with(&a.id, &u.id, 9_000_000, None);
    assert_eq!(db.store.insert_session(&fresh, None).await, Ok(()));
    assert_eq!(
        db.store.delete_user_sessions(&a.id, &u.id, ms(6_000)).await,
        Ok(true)
    );
    let removed = settled(
        db,
        &a.id,
        Position::START,
        &[EventType::UserSessionsRemoved],
        1,
    )
    .await;
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0].event.subject, u.id.as_str());
    assert_eq!(
        removed[0].event.data["session_ids"],
        serde_json::json!([fresh.id.as_str()])
    );
    // A user with nothing usable left: no event; the deleted ones never lapse into events.
    assert_eq!(
        db.store.delete_user_sessions(&a.id, &u.id, ms(6_000)).await,
        Ok(true)
    );
    assert_eq!(db.store.write_lapse_events(ms(20_000_000), 10).await, Ok(0));
    assert_eq!(
        settled(
            db,
            &a.id,
            Position::START,
            &[EventType::UserSessionsRemoved],
            1
        )
        .await
        .len(),
        1
    );

    // Verifications: finishing writes its event with the change; retention redaction one each.
    let mut v = crate::verification_cases::verification(&a.id, T0, 3600);
    assert_eq!(db.store.insert_verification(&v, &[], None).await, Ok(()));
    let was = v.clone();
    v.state = State::Failed(FailReason::NoMatch);
    v.finished_at = Some(ms(10));
    v.updated_at = ms(10);
    v.version += 1;
    let failed = events::verification_changed(&was, &v);
    assert_eq!(
        failed.as_ref().map(|e| e.kind),
        Some(EventType::VerificationFailed)
    );
    let mut stale = v.clone();
    stale.version += 4;
    assert!(
        db.store
            .update_verification(&stale, &[], failed.as_ref())
            .await
            .is_err()
    );
    assert_eq!(
        db.store.update_verification(&v, &[], failed.as_ref()).await,
        Ok(())
    );
    let mut done = crate::verification_cases::verification(&a.id, T0, 3600);
    done.state = State::Success;
    done.finished_at = Some(T0);
    let completed = events::verification_finished(&done);
    assert_eq!(
        db.store
            .insert_verification(&done, &[], completed.as_ref())
            .await,
        Ok(())
    );
    assert_eq!(
        db.store
            .redact_verifications_finished_before(&a.id, ms(20), ms(30))
            .await,
        Ok(2)
    );
    let kinds = [
        EventType::VerificationCompleted,
        EventType::VerificationFailed,
        EventType::VerificationRedacted,
    ];
    let vs = settled(db, &a.id, Position::START, &kinds, 4).await;
    let got: Vec<(EventType, String)> = vs
        .iter()
        .map(|e| (e.event.kind, e.event.subject.clone()))
        .collect();
    assert_eq!(got.len(), 4, "{got:?}");
    assert_eq!(got[0], (EventType::VerificationFailed, v.id.to_string()));
    assert_eq!(
        got[1],
        (EventType::VerificationCompleted, done.id.to_string())
    );
    assert!(
        got[2..]
            .iter()
            .all(|(k, _)| *k == EventType::VerificationRedacted)
    );
    assert_eq!(
        vs[0].event.data["fail_reason"],
        serde_json::json!("no_match")
    );
    assert_eq!(vs[2].event.data["redacted_at"], serde_json::json!(ms(30).0));
    // No personal data and no secrets in a verification event.
    for e in &vs {
        let text = e.event.data.to_string();
        assert!(
            !text.contains("sealed") && !text.contains("results_key"),
            "{text}"
        );
    }
    // Application b saw only its own (none of these).
    assert_eq!(
        settled(db, &b.id, Position::START, &kinds, 0).await.len(),
        0
    );
}

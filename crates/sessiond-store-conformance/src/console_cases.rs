//! Contract cases: what the operator console reads and writes — the audit log, and counts over
//! the outbox by time bucket and by subject.

use sessiond_core::Timestamp;
use sessiond_core::application::AppId;
use sessiond_core::events::{self, EventType};
use sessiond_core::store::{ActionFilter, EventCount, OperatorAction};

use crate::TestDb;
use crate::cases::{T0, insert_app};
use crate::login_cases::test_user as user;

const HOUR: i64 = 3_600_000;

fn action(id: &str, at: i64, op: &str, what: &str, app: Option<&AppId>) -> OperatorAction {
    OperatorAction {
        id: id.to_owned(),
        at: Timestamp(T0.0 + at),
        operator_id: op.to_owned(),
        action: what.to_owned(),
        application_id: app.cloned(),
        target: format!("target-{id}"),
        detail: format!("détail {id}"),
    }
}

async fn list(db: &TestDb, filter: ActionFilter, limit: u32) -> Vec<String> {
    db.store
        .list_operator_actions(&filter, limit)
        .await
        .unwrap_or_else(|e| panic!("list_operator_actions: {e}"))
        .into_iter()
        .map(|a| a.id)
        .collect()
}

pub async fn operator_actions_filter_page_and_outlive_applications(db: &TestDb) {
    let (a, _) = insert_app(db, "a", T0).await;
    let (b, _) = insert_app(db, "b", T0).await;
    let rows = [
        action("oact_1", 0, "op1", "operator.sign_in", None),
        action("oact_2", 10, "op1", "session.revoke", Some(&a.id)),
        // Two at the same instant: the id breaks the tie.
        action("oact_3", 20, "op2", "key.create", Some(&b.id)),
        action("oact_4", 20, "op1", "key.revoke", Some(&a.id)),
        action("oact_5", 30, "op2", "session.revoke", Some(&a.id)),
    ];
    for r in &rows {
        assert_eq!(db.store.record_operator_action(r).await, Ok(()));
    }
    // A second entry with a taken id is refused, not merged.
    assert!(db.store.record_operator_action(&rows[0]).await.is_err());

    let all = db
        .store
        .list_operator_actions(&ActionFilter::default(), 10)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        all.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
        ["oact_5", "oact_4", "oact_3", "oact_2", "oact_1"]
    );
    assert_eq!(all[0], rows[4], "every field round-trips");
    assert_eq!(all[4].application_id, None);

    let of_a = ActionFilter {
        application_id: Some(a.id.clone()),
        ..ActionFilter::default()
    };
    assert_eq!(
        list(db, of_a.clone(), 10).await,
        ["oact_5", "oact_4", "oact_2"]
    );
    let by_op2 = ActionFilter {
        operator_id: Some("op2".into()),
        ..ActionFilter::default()
    };
    assert_eq!(list(db, by_op2, 10).await, ["oact_5", "oact_3"]);

    // Paging by (at, id): the page after oact_4 starts at oact_3, at the same instant.
    let first = list(db, ActionFilter::default(), 2).await;
    assert_eq!(first, ["oact_5", "oact_4"]);
    let after = ActionFilter {
        before: Some((Timestamp(T0.0 + 20), "oact_4".into())),
        ..ActionFilter::default()
    };
    assert_eq!(list(db, after, 2).await, ["oact_3", "oact_2"]);

    // The log keeps what was done to an application after it is gone.
    db.store
        .delete_application(&a.id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(list(db, of_a, 10).await, ["oact_5", "oact_4", "oact_2"]);
}

/// Counts once `expected` events are visible (PostgreSQL shows an event only when every older
/// writing transaction has ended; other tests write concurrently).
async fn counts(db: &TestDb, app: &AppId, since: Timestamp, expected: u64) -> Vec<EventCount> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let mut got = db
            .store
            .count_events(app, since, HOUR)
            .await
            .unwrap_or_else(|e| panic!("count_events: {e}"));
        got.sort_by_key(|c| (c.bucket, c.kind.as_str()));
        if got.iter().map(|c| c.count).sum::<u64>() >= expected
            || std::time::Instant::now() > deadline
        {
            return got;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

pub async fn events_count_by_bucket_and_list_by_subject(db: &TestDb) {
    let (a, _) = insert_app(db, "a", T0).await;
    let (b, _) = insert_app(db, "b", T0).await;
    let hour0 = T0.0.div_euclid(HOUR) * HOUR;
    let mut ids = Vec::new();
    for (i, at) in [0, 10 * 60_000, HOUR + 5, 3 * HOUR].into_iter().enumerate() {
        let t = Timestamp(T0.0 + at);
        let u = user(&a.id, t, &[("email", i as u8 + 1)], None);
        let e = events::user_event(&a.id, EventType::UserCreated, &u.id, t);
        assert_eq!(db.store.insert_user(&u, Some(&e)).await, Ok(()));
        ids.push(u.id);
    }
    // Another application's events are not counted.
    let other = user(&b.id, T0, &[("email", 9)], None);
    let e = events::user_event(&b.id, EventType::UserCreated, &other.id, T0);
    assert_eq!(db.store.insert_user(&other, Some(&e)).await, Ok(()));
    // A second event about the first user, later.
    let t = Timestamp(T0.0 + 2 * HOUR);
    let updated = events::user_event(&a.id, EventType::UserUpdated, &ids[0], t);
    let mut u0 = user(&a.id, T0, &[("email", 1)], None);
    u0.id = ids[0].clone();
    u0.version = 2;
    assert_eq!(db.store.update_user(&u0, Some(&updated)).await, Ok(()));

    let got = counts(db, &a.id, T0, 5).await;
    let want = [
        (hour0, EventType::UserCreated, 2),
        (hour0 + HOUR, EventType::UserCreated, 1),
        (hour0 + 2 * HOUR, EventType::UserUpdated, 1),
        (hour0 + 3 * HOUR, EventType::UserCreated, 1),
    ];
    assert_eq!(
        got.iter()
            .map(|c| (c.bucket, c.kind, c.count))
            .collect::<Vec<_>>(),
        want
    );
    // `since` leaves out what came before it.
    let later = counts(db, &a.id, Timestamp(T0.0 + 2 * HOUR), 2).await;
    assert_eq!(later.iter().map(|c| c.count).sum::<u64>(), 2);

    let about = db
        .store
        .events_about(&a.id, ids[0].as_str(), 10)
        .await
        .unwrap_or_else(|e| panic!("events_about: {e}"));
    assert_eq!(
        about.iter().map(|e| e.event.kind).collect::<Vec<_>>(),
        [EventType::UserUpdated, EventType::UserCreated],
        "newest first, only this subject"
    );
    let one = db
        .store
        .events_about(&a.id, ids[0].as_str(), 1)
        .await
        .unwrap_or_else(|e| panic!("events_about: {e}"));
    assert_eq!(one.len(), 1);
    // A subject of another application is not found through this one.
    let none = db
        .store
        .events_about(&a.id, other.id.as_str(), 10)
        .await
        .unwrap_or_else(|e| panic!("events_about: {e}"));
    assert!(none.is_empty());
}

pub async fn impersonations_list_by_application_and_user(db: &TestDb) {
    use sessiond_core::ids::{SessionId, UserId};
    use sessiond_core::store::ImpersonationEvent;
    let (a, _) = insert_app(db, "a", T0).await;
    let (b, _) = insert_app(db, "b", T0).await;
    let (u1, u2, u3) = (UserId::new(), UserId::new(), UserId::new());
    let entry = |n: i64, app: &AppId, actor: &UserId, target: &UserId| ImpersonationEvent {
        id: format!("imp_{n}"),
        application_id: app.clone(),
        session_id: SessionId::new(),
        actor_user_id: actor.clone(),
        target_user_id: target.clone(),
        kind: "start".into(),
        at: Timestamp(T0.0 + n),
    };
    for e in [
        entry(1, &a.id, &u1, &u2),
        entry(2, &a.id, &u2, &u3),
        entry(3, &a.id, &u3, &u1),
        entry(4, &b.id, &u1, &u2),
    ] {
        assert_eq!(db.store.record_impersonation(&e).await, Ok(()));
    }
    let ids = |v: Vec<sessiond_core::store::ImpersonationEvent>| {
        v.into_iter().map(|e| e.id).collect::<Vec<_>>()
    };
    let all = db.store.list_impersonations(&a.id, None, 10).await;
    assert_eq!(
        all.map(ids),
        Ok(vec!["imp_3".into(), "imp_2".into(), "imp_1".into()])
    );
    // As actor or as target, only in this application, newest first, limited.
    let of_u1 = db.store.list_impersonations(&a.id, Some(&u1), 10).await;
    assert_eq!(of_u1.map(ids), Ok(vec!["imp_3".into(), "imp_1".into()]));
    let one = db.store.list_impersonations(&a.id, Some(&u1), 1).await;
    assert_eq!(one.map(ids), Ok(vec!["imp_3".into()]));
    let other = db.store.list_impersonations(&b.id, Some(&u3), 10).await;
    assert_eq!(other.map(ids), Ok(vec![]));
}

//! Contract cases: webhook endpoints, and deliveries queued, claimed under leases, finished,
//! retried and replayed.

use crate::event_cases::settled;
use sessiond_core::Timestamp;
use sessiond_core::application::AppId;
use sessiond_core::events::Position;
use sessiond_core::events::{self, EventType};
use sessiond_core::ids::EndpointId;
use sessiond_core::session::SessionStatus;
use sessiond_core::store::StoreError;
use sessiond_core::webhooks::{Attempt, DeliveryState, Endpoint, NextStep, Replay};

use crate::TestDb;
use crate::cases::{T0, insert_app};
use crate::login_cases::{test_session as session, test_user as user};

fn endpoint(app: &AppId, types: Vec<EventType>, enabled: bool) -> Endpoint {
    Endpoint {
        id: EndpointId::new(),
        application_id: app.clone(),
        url: "https://example.com/hook".into(),
        description: "d".into(),
        event_types: types,
        enabled,
        secret_sealed: vec![1, 2, 3],
        previous_secret_sealed: None,
        previous_until: None,
        created_at: T0,
        updated_at: T0,
        version: 1,
    }
}

fn attempt(e: &EndpointId, event: &str, number: u32, at: Timestamp, ok: bool) -> Attempt {
    Attempt {
        id: sessiond_crypto::ids::new_id("att"),
        endpoint_id: e.clone(),
        event_id: event.to_owned(),
        number,
        at,
        succeeded: ok,
        response_code: Some(if ok { 204 } else { 500 }),
        latency_ms: 12,
        response_excerpt: "body".into(),
        error: None,
    }
}

fn at(ms: i64) -> Timestamp {
    Timestamp(T0.0 + ms)
}

async fn finish(
    db: &TestDb,
    holder: &str,
    a: &Attempt,
    next: NextStep,
) -> Result<bool, StoreError> {
    db.store
        .finish_deliveries(holder, &[(a.clone(), next)])
        .await
        .map(|moved| moved == vec![true])
}

pub async fn webhook_endpoints_round_trip_and_isolation(db: &TestDb) {
    let (a, _) = insert_app(db, "a", T0).await;
    let (b, _) = insert_app(db, "b", T0).await;
    let e = endpoint(
        &a.id,
        vec![EventType::SessionRevoked, EventType::UserCreated],
        true,
    );
    assert_eq!(db.store.any_enabled_endpoint().await, Ok(false));
    assert_eq!(db.store.insert_endpoint(&e).await, Ok(()));
    assert_eq!(db.store.any_enabled_endpoint().await, Ok(true));
    assert_eq!(
        db.store.get_endpoint(&a.id, &e.id).await,
        Ok(Some(e.clone()))
    );
    assert_eq!(db.store.get_endpoint(&b.id, &e.id).await, Ok(None));
    assert_eq!(db.store.list_endpoints(&b.id).await, Ok(vec![]));

    let mut changed = e.clone();
    changed.url = "https://example.org/other".into();
    changed.event_types = vec![];
    changed.enabled = false;
    changed.previous_secret_sealed = Some(vec![9]);
    changed.previous_until = Some(at(1000));
    changed.version = 2;
    let mut stale = changed.clone();
    stale.version = 5;
    assert_eq!(
        db.store.update_endpoint(&stale).await,
        Err(StoreError::Conflict)
    );
    let mut foreign = changed.clone();
    foreign.application_id = b.id.clone();
    assert_eq!(
        db.store.update_endpoint(&foreign).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(db.store.update_endpoint(&changed).await, Ok(()));
    assert_eq!(
        db.store.any_enabled_endpoint().await,
        Ok(false),
        "a disabled endpoint has nothing delivered"
    );
    assert_eq!(
        db.store.list_endpoints(&a.id).await,
        Ok(vec![changed.clone()])
    );

    assert_eq!(db.store.delete_endpoint(&b.id, &e.id).await, Ok(false));
    assert_eq!(db.store.delete_endpoint(&a.id, &e.id).await, Ok(true));
    assert_eq!(db.store.get_endpoint(&a.id, &e.id).await, Ok(None));
}

pub async fn new_events_go_by_cursor_and_failures_are_retried(db: &TestDb) {
    let (a, _) = insert_app(db, "a", T0).await;
    let u = user(&a.id, T0, &[], None);
    let early = events::user_event(&a.id, EventType::UserCreated, &u.id, T0);
    assert_eq!(db.store.insert_user(&u, Some(&early)).await, Ok(()));
    // Registered after the first event: endpoints get only later events.
    settled(db, &a.id, Position::START, &[], 1).await;
    let all_kinds = endpoint(&a.id, vec![], true);
    let revocations = endpoint(&a.id, vec![EventType::SessionRevoked], true);
    let disabled = endpoint(&a.id, vec![], false);
    for e in [&all_kinds, &revocations, &disabled] {
        assert_eq!(db.store.insert_endpoint(e).await, Ok(()));
    }
    let s = session(&a.id, &u.id, T0);
    let created = events::session_created(&s);
    assert_eq!(db.store.insert_session(&s, Some(&created)).await, Ok(()));
    let mut r = s.clone();
    r.status = SessionStatus::Revoked;
    r.version += 1;
    let revoked = events::session_changed(&s, &r).unwrap_or_else(|| panic!("an event"));
    assert_eq!(db.store.update_session(&r, Some(&revoked)).await, Ok(()));
    settled(db, &a.id, Position::START, &[], 3).await;
    assert_eq!(
        db.store.pending_deliveries().await,
        Ok(3),
        "3 events waiting, by cursor"
    );

    // created → all_kinds; revoked → all_kinds and revocations; the disabled endpoint waits.
    let lease = at(60_000);
    let mut fresh = db
        .store
        .claim_fresh("n1", at(0), lease, 16, 100)
        .await
        .unwrap_or_else(|e| panic!("claim_fresh: {e}"));
    fresh.sort_by_key(|f| f.endpoint.id.to_string());
    let by = |id: &EndpointId| {
        fresh
            .iter()
            .find(|f| &f.endpoint.id == id)
            .unwrap_or_else(|| panic!("{id} claimed"))
    };
    assert_eq!(fresh.len(), 2);
    let to_all = by(&all_kinds.id);
    assert_eq!(
        to_all.events.iter().map(|e| &e.event).collect::<Vec<_>>(),
        vec![&created, &revoked]
    );
    assert_eq!(to_all.endpoint, all_kinds);
    let to_rev = by(&revocations.id);
    assert_eq!(
        to_rev.events.iter().map(|e| &e.event).collect::<Vec<_>>(),
        vec![&revoked]
    );
    assert_eq!(
        to_rev.through, to_all.through,
        "past the unwanted event too"
    );
    // Leased: another node gets nothing until the lease ends.
    assert_eq!(
        db.store
            .claim_fresh("n2", at(1), at(61_000), 16, 100)
            .await
            .map(|v| v.len()),
        Ok(0)
    );

    // Only the lease holder moves the cursor; attempts are recorded either way.
    let stray = attempt(&revocations.id, &revoked.id, 1, at(9), true);
    assert_eq!(
        db.store
            .finish_fresh(
                "n2",
                &revocations.id,
                to_rev.through,
                &[(stray.clone(), NextStep::Succeeded)]
            )
            .await,
        Ok(false)
    );
    let ok = attempt(&revocations.id, &revoked.id, 1, at(10), true);
    assert_eq!(
        db.store
            .finish_fresh(
                "n1",
                &revocations.id,
                to_rev.through,
                &[(ok.clone(), NextStep::Succeeded)]
            )
            .await,
        Ok(true)
    );
    let failed = attempt(&all_kinds.id, &created.id, 1, at(12), false);
    let sent = attempt(&all_kinds.id, &revoked.id, 1, at(12), true);
    assert_eq!(
        db.store
            .finish_fresh(
                "n1",
                &all_kinds.id,
                to_all.through,
                &[
                    (failed.clone(), NextStep::RetryAt(at(5_000))),
                    (sent.clone(), NextStep::Succeeded)
                ]
            )
            .await,
        Ok(true)
    );
    assert_eq!(
        db.store
            .claim_fresh("n1", at(13), lease, 16, 100)
            .await
            .map(|v| v.len()),
        Ok(0)
    );
    assert_eq!(db.store.pending_deliveries().await, Ok(1), "the retry");

    // The failure is retried when due, with one attempt made.
    assert_eq!(
        db.store
            .claim_deliveries("n2", at(4_999), at(70_000), 10)
            .await
            .map(|v| v.len()),
        Ok(0)
    );
    let retry = db
        .store
        .claim_deliveries("n2", at(5_000), at(70_000), 10)
        .await
        .unwrap_or_else(|e| panic!("claim: {e}"));
    assert_eq!(retry.len(), 1);
    assert_eq!(
        (retry[0].event.event.id.as_str(), retry[0].attempts),
        (created.id.as_str(), 1)
    );
    assert_eq!(
        db.store
            .claim_deliveries("n3", at(5_001), at(70_000), 10)
            .await
            .map(|v| v.len()),
        Ok(0)
    );
    let late = attempt(&all_kinds.id, &created.id, 2, at(5_001), false);
    assert_eq!(finish(db, "n1", &late, NextStep::Failed).await, Ok(false));
    let last = attempt(&all_kinds.id, &created.id, 2, at(5_002), false);
    assert_eq!(finish(db, "n2", &last, NextStep::Failed).await, Ok(true));
    assert_eq!(db.store.pending_deliveries().await, Ok(0));

    // A node that died holding new events: its lease ends and another node sends them again.
    let s2 = session(&a.id, &u.id, T0);
    let created2 = events::session_created(&s2);
    assert_eq!(db.store.insert_session(&s2, Some(&created2)).await, Ok(()));
    settled(db, &a.id, Position::START, &[], 4).await;
    let held = db
        .store
        .claim_fresh("n1", at(6_000), at(66_000), 16, 100)
        .await
        .unwrap_or_default();
    // all_kinds gets it; revocations does not want it, but is claimed to move its cursor on.
    let mut shapes: Vec<(EndpointId, usize)> = held
        .iter()
        .map(|f| (f.endpoint.id.clone(), f.events.len()))
        .collect();
    shapes.sort();
    let mut want_shapes = vec![(all_kinds.id.clone(), 1), (revocations.id.clone(), 0)];
    want_shapes.sort();
    assert_eq!(shapes, want_shapes);
    for f in &held {
        if f.endpoint.id == revocations.id {
            let moved = db
                .store
                .finish_fresh("n1", &f.endpoint.id, f.through, &[])
                .await;
            assert_eq!(moved, Ok(true));
        }
    }
    let held = db
        .store
        .claim_fresh("n1", at(6_000), at(66_000), 16, 100)
        .await
        .unwrap_or_default();
    assert_eq!(held.len(), 0);
    assert_eq!(
        db.store
            .claim_fresh("n3", at(65_999), at(130_000), 16, 100)
            .await
            .map(|v| v.len()),
        Ok(0)
    );
    let taken = db
        .store
        .claim_fresh("n3", at(66_000), at(130_000), 16, 100)
        .await
        .unwrap_or_default();
    assert_eq!(taken.len(), 1);
    assert_eq!(
        taken[0].events.iter().map(|e| &e.event).collect::<Vec<_>>(),
        vec![&created2]
    );
    let done2 = attempt(&all_kinds.id, &created2.id, 1, at(66_001), true);
    assert_eq!(
        db.store
            .finish_fresh(
                "n1",
                &all_kinds.id,
                taken[0].through,
                &[(done2.clone(), NextStep::Succeeded)]
            )
            .await,
        Ok(false)
    );
    assert_eq!(
        db.store
            .finish_fresh(
                "n3",
                &all_kinds.id,
                taken[0].through,
                &[(done2.clone(), NextStep::Succeeded)]
            )
            .await,
        Ok(true)
    );

    // Deliveries list the queued ones and the first attempts that succeeded.
    let states = |v: Vec<sessiond_core::webhooks::Delivery>| {
        v.into_iter()
            .map(|d| (d.event_id, d.state, d.attempts))
            .collect::<Vec<_>>()
    };
    let mut list = db
        .store
        .list_deliveries(&a.id, &all_kinds.id, None, 10)
        .await
        .map(states)
        .unwrap_or_else(|e| panic!("{e}"));
    list.sort();
    let mut want = vec![
        (created.id.clone(), DeliveryState::Failed, 2),
        (revoked.id.clone(), DeliveryState::Succeeded, 1),
        (created2.id.clone(), DeliveryState::Succeeded, 1),
    ];
    want.sort();
    assert_eq!(list, want);
    assert_eq!(
        db.store
            .list_deliveries(&a.id, &all_kinds.id, Some(DeliveryState::Failed), 10)
            .await
            .map(states),
        Ok(vec![(created.id.clone(), DeliveryState::Failed, 2)])
    );
    assert_eq!(
        db.store
            .list_deliveries(&a.id, &all_kinds.id, Some(DeliveryState::Pending), 10)
            .await
            .map(states),
        Ok(vec![])
    );
    let attempts = db
        .store
        .list_attempts(&a.id, &all_kinds.id, Some(&created.id), 10)
        .await
        .unwrap_or_else(|e| panic!("attempts: {e}"));
    assert_eq!(attempts, vec![last.clone(), late.clone(), failed.clone()]);
    let (b, _) = insert_app(db, "b", T0).await;
    assert_eq!(
        db.store.list_attempts(&b.id, &all_kinds.id, None, 10).await,
        Ok(vec![])
    );
    assert_eq!(
        db.store
            .list_deliveries(&b.id, &all_kinds.id, None, 10)
            .await
            .map(|v| v.len()),
        Ok(0)
    );

    // Replays queue deliveries again with a fresh count; unwanted types are skipped.
    let replay_created = Replay::Event(created.id.clone());
    let replay_range = Replay::Range {
        since: T0,
        until: at(1),
    };
    for (app, endpoint, replay, queued) in [
        (&a.id, &all_kinds.id, &replay_created, 1),
        (&a.id, &revocations.id, &replay_created, 0),
        (&b.id, &all_kinds.id, &replay_created, 0),
        (&a.id, &revocations.id, &replay_range, 1),
    ] {
        assert_eq!(
            db.store
                .replay_deliveries(app, endpoint, replay, at(70_000))
                .await,
            Ok(queued),
            "{replay:?} to {}",
            endpoint.as_str()
        );
    }
    assert_eq!(db.store.pending_deliveries().await, Ok(2));
    let again = db
        .store
        .claim_deliveries("n1", at(70_000), at(130_000), 10)
        .await
        .unwrap_or_else(|e| panic!("claim: {e}"));
    assert_eq!(again.len(), 2);
    assert!(again.iter().all(|c| c.attempts == 0));

    // Deleting the endpoint takes its deliveries and attempts along; purging events, theirs.
    assert_eq!(
        db.store.delete_endpoint(&a.id, &all_kinds.id).await,
        Ok(true)
    );
    assert_eq!(db.store.pending_deliveries().await, Ok(1));
    // (The application's newest event, `created2`, stays.)
    assert_eq!(db.store.purge_events(at(1_000_000)).await, Ok(3));
    assert_eq!(db.store.pending_deliveries().await, Ok(0));
    assert_eq!(
        db.store
            .list_attempts(&a.id, &revocations.id, None, 10)
            .await,
        Ok(vec![])
    );

    // The disabled endpoint, once enabled, starts from where it was registered.
    let mut on = disabled.clone();
    on.enabled = true;
    on.version = 2;
    assert_eq!(db.store.update_endpoint(&on).await, Ok(()));
    let s3 = session(&a.id, &u.id, T0);
    assert_eq!(
        db.store
            .insert_session(&s3, Some(&events::session_created(&s3)))
            .await,
        Ok(())
    );
    // PostgreSQL shows s3's event only once every older writing transaction on the server has
    // ended (other tests write concurrently): wait for it before claiming.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !db
        .store
        .events_after(&a.id, Position::START, &[], 1000)
        .await
        .unwrap_or_default()
        .iter()
        .any(|e| e.event.subject == s3.id.as_str())
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let fresh = db
        .store
        .claim_fresh("n1", at(80_000), at(140_000), 16, 100)
        .await
        .unwrap_or_default();
    let mut got: Vec<(EndpointId, Vec<String>)> = fresh
        .iter()
        .map(|f| {
            (
                f.endpoint.id.clone(),
                f.events.iter().map(|e| e.event.subject.clone()).collect(),
            )
        })
        .collect();
    got.sort();
    let mut want = vec![
        (on.id.clone(), vec![s2.id.to_string(), s3.id.to_string()]),
        (revocations.id.clone(), vec![]),
    ];
    want.sort();
    assert_eq!(got, want);
}

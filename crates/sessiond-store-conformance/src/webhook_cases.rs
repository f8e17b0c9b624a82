//! Contract cases: webhook endpoints, and deliveries queued, claimed under leases, finished,
//! retried and replayed.

use sessiond_core::Timestamp;
use sessiond_core::application::AppId;
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

/// Queues until `expected` deliveries were queued in all (PostgreSQL queues an event only once
/// every older writing transaction on the server has ended; other tests write concurrently).
async fn queue_all(db: &TestDb, now: Timestamp, expected: u64) -> u64 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut total = 0;
    loop {
        total += db
            .store
            .queue_deliveries(now, 100)
            .await
            .unwrap_or_else(|e| panic!("queue: {e}"));
        if total >= expected || std::time::Instant::now() > deadline {
            return total;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
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
    assert_eq!(db.store.insert_endpoint(&e).await, Ok(()));
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
        db.store.list_endpoints(&a.id).await,
        Ok(vec![changed.clone()])
    );

    assert_eq!(db.store.delete_endpoint(&b.id, &e.id).await, Ok(false));
    assert_eq!(db.store.delete_endpoint(&a.id, &e.id).await, Ok(true));
    assert_eq!(db.store.get_endpoint(&a.id, &e.id).await, Ok(None));
}

pub async fn deliveries_are_queued_claimed_leased_and_retried(db: &TestDb) {
    let (a, _) = insert_app(db, "a", T0).await;
    let u = user(&a.id, T0, &[], None);
    let early = events::user_event(&a.id, EventType::UserCreated, &u.id, T0);
    assert_eq!(db.store.insert_user(&u, Some(&early)).await, Ok(()));
    // Registered after the first event: endpoints get only later events.
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

    // created → all_kinds; revoked → all_kinds and revocations; the disabled endpoint waits.
    assert_eq!(queue_all(db, at(0), 3).await, 3);
    assert_eq!(db.store.queue_deliveries(at(0), 100).await, Ok(0));
    assert_eq!(db.store.pending_deliveries().await, Ok(3));

    let lease = at(60_000);
    let claimed = db
        .store
        .claim_deliveries("n1", at(0), lease, 10)
        .await
        .unwrap_or_else(|e| panic!("claim: {e}"));
    let mut got: Vec<(String, String)> = claimed
        .iter()
        .map(|c| (c.endpoint.id.to_string(), c.event.event.id.clone()))
        .collect();
    got.sort();
    let mut want = vec![
        (all_kinds.id.to_string(), created.id.clone()),
        (all_kinds.id.to_string(), revoked.id.clone()),
        (revocations.id.to_string(), revoked.id.clone()),
    ];
    want.sort();
    assert_eq!(got, want);
    assert!(claimed.iter().all(|c| c.attempts == 0));
    let c0 = claimed
        .iter()
        .find(|c| c.event.event.id == revoked.id && c.endpoint.id == revocations.id)
        .unwrap_or_else(|| panic!("claimed"));
    assert_eq!(c0.event.event, revoked);
    assert_eq!(c0.endpoint, revocations);
    // Leased: no one else gets them until the lease ends.
    assert_eq!(
        db.store
            .claim_deliveries("n2", at(1), at(61_000), 10)
            .await
            .map(|v| v.len()),
        Ok(0)
    );

    // Only the lease holder moves a delivery on; the attempt is recorded either way.
    let ok = attempt(&revocations.id, &revoked.id, 1, at(10), true);
    assert_eq!(finish(db, "n2", &ok, NextStep::Succeeded).await, Ok(false));
    let ok2 = attempt(&revocations.id, &revoked.id, 1, at(11), true);
    assert_eq!(finish(db, "n1", &ok2, NextStep::Succeeded).await, Ok(true));
    let failed = attempt(&all_kinds.id, &created.id, 1, at(12), false);
    assert_eq!(
        finish(db, "n1", &failed, NextStep::RetryAt(at(5_000))).await,
        Ok(true)
    );
    // Not due before its retry time; due (with one attempt made) after it.
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
    let last = attempt(&all_kinds.id, &created.id, 2, at(5_001), false);
    assert_eq!(finish(db, "n2", &last, NextStep::Failed).await, Ok(true));

    // A holder that died: its lease ends and another node takes the delivery over.
    assert_eq!(
        db.store
            .claim_deliveries("n3", at(59_999), at(120_000), 10)
            .await
            .map(|v| v.len()),
        Ok(0)
    );
    let taken = db
        .store
        .claim_deliveries("n3", at(60_000), at(120_000), 10)
        .await
        .unwrap_or_else(|e| panic!("claim: {e}"));
    assert_eq!(taken.len(), 1);
    assert_eq!(
        (
            taken[0].endpoint.id.clone(),
            taken[0].event.event.id.clone()
        ),
        (all_kinds.id.clone(), revoked.id.clone())
    );
    let late = attempt(&all_kinds.id, &revoked.id, 1, at(60_001), true);
    assert_eq!(
        finish(db, "n1", &late, NextStep::Succeeded).await,
        Ok(false)
    );
    let done = attempt(&all_kinds.id, &revoked.id, 1, at(60_002), true);
    assert_eq!(finish(db, "n3", &done, NextStep::Succeeded).await, Ok(true));
    assert_eq!(db.store.pending_deliveries().await, Ok(0));

    let states = |v: Vec<sessiond_core::webhooks::Delivery>| {
        v.into_iter()
            .map(|d| (d.event_id, d.state, d.attempts))
            .collect::<Vec<_>>()
    };
    let list = db
        .store
        .list_deliveries(&a.id, &all_kinds.id, None, 10)
        .await
        .map(states);
    assert_eq!(list.as_ref().map(Vec::len), Ok(2), "{list:?}");
    assert_eq!(
        db.store
            .list_deliveries(&a.id, &all_kinds.id, Some(DeliveryState::Failed), 10)
            .await
            .map(states),
        Ok(vec![(created.id.clone(), DeliveryState::Failed, 2)])
    );
    let attempts = db
        .store
        .list_attempts(&a.id, &all_kinds.id, Some(&created.id), 10)
        .await
        .unwrap_or_else(|e| panic!("attempts: {e}"));
    assert_eq!(attempts, vec![last.clone(), failed.clone()]);
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

    // Replays make deliveries pending again with a fresh count; unwanted types are skipped.
    assert_eq!(
        db.store
            .replay_deliveries(
                &a.id,
                &all_kinds.id,
                &Replay::Event(created.id.clone()),
                at(70_000)
            )
            .await,
        Ok(1)
    );
    assert_eq!(
        db.store
            .replay_deliveries(
                &a.id,
                &revocations.id,
                &Replay::Event(created.id.clone()),
                at(70_000)
            )
            .await,
        Ok(0)
    );
    assert_eq!(
        db.store
            .replay_deliveries(
                &b.id,
                &all_kinds.id,
                &Replay::Event(created.id.clone()),
                at(70_000)
            )
            .await,
        Ok(0)
    );
    assert_eq!(
        db.store
            .replay_deliveries(
                &a.id,
                &revocations.id,
                &Replay::Range {
                    since: T0,
                    until: at(1)
                },
                at(70_000)
            )
            .await,
        Ok(1)
    );
    assert_eq!(db.store.pending_deliveries().await, Ok(2));
    let again = db
        .store
        .claim_deliveries("n1", at(70_000), at(130_000), 10)
        .await
        .unwrap_or_else(|e| panic!("claim: {e}"));
    assert_eq!(again.len(), 2);
    assert!(again.iter().all(|c| c.attempts == 0));

    // Deleting the endpoint takes its deliveries and attempts along.
    assert_eq!(
        db.store.delete_endpoint(&a.id, &all_kinds.id).await,
        Ok(true)
    );
    assert_eq!(db.store.pending_deliveries().await, Ok(1));
    // Purging events takes theirs.
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
    let s2 = session(&a.id, &u.id, T0);
    assert_eq!(
        db.store
            .insert_session(&s2, Some(&events::session_created(&s2)))
            .await,
        Ok(())
    );
    assert_eq!(queue_all(db, at(80_000), 1).await, 1);
    let fresh = db
        .store
        .claim_deliveries("n1", at(80_000), at(140_000), 10)
        .await
        .unwrap_or_else(|e| panic!("claim: {e}"));
    assert_eq!(fresh.len(), 1);
    assert_eq!(fresh[0].endpoint.id, on.id);
    assert_eq!(fresh[0].event.event.subject, s2.id.to_string());
}

//! Storage contract of identity-verification sessions and their attachments.

// Only ever run as tests: a failed unwrap is a failed case.
#![allow(clippy::unwrap_used)]

use sessiond_core::Timestamp;
use sessiond_core::application::AppId;
use sessiond_core::store::{StoreError, StoredAttachment, VerificationOrder};
use sessiond_core::verification::{
    FailReason, Flow, Options, State, Step, Verification, VerificationId,
};

use crate::TestDb;
use crate::cases::{T0, insert_app};

fn at(secs: i64) -> Timestamp {
    Timestamp(T0.0 + secs * 1000)
}

pub fn verification(app: &AppId, created: Timestamp, expires_in: i64) -> Verification {
    Verification {
        id: VerificationId::new(),
        application_id: app.clone(),
        flow: Flow::Widget,
        state: State::Created,
        provider: None,
        sub_provider: None,
        options: Options {
            providers: vec!["p".into()],
            redirect_url: Some("https://rp.example/done".into()),
            ..Options::default()
        },
        step: Step::Start,
        results_key_hash: [7; 32],
        results_public_key: [9; 32],
        input_sealed: Some(vec![1, 2, 3]),
        results_sealed: None,
        browser_binding: None,
        created_at: created,
        updated_at: created,
        expires_at: Timestamp(created.0 + expires_in * 1000),
        finished_at: None,
        redacted_at: None,
        version: 1,
    }
}

fn attachment(v: &Verification, n: u8) -> StoredAttachment {
    StoredAttachment {
        id: sessiond_crypto::ids::new_id("att"),
        application_id: v.application_id.clone(),
        verification_id: v.id.clone(),
        sealed: vec![n; 64],
        created_at: v.created_at,
    }
}

async fn get(db: &TestDb, v: &Verification) -> Option<Verification> {
    db.store
        .get_verification(&v.application_id, &v.id)
        .await
        .unwrap_or_else(|e| panic!("get_verification: {e}"))
}

/// Round trip of every field, optimistic updates, results and attachments landing together,
/// and tenant isolation of sessions and attachments.
pub async fn verification_round_trip_and_isolation(db: &TestDb) {
    let (a, _) = insert_app(db, "a", T0).await;
    let (b, _) = insert_app(db, "b", T0).await;
    let mut v = verification(&a.id, T0, 3600);
    v.options.disclosed_fields = Some(vec![true; 12]);
    db.store.insert_verification(&v, &[], None).await.unwrap();
    assert_eq!(get(db, &v).await, Some(v.clone()));
    assert_eq!(db.store.get_verification(&b.id, &v.id).await.unwrap(), None);
    assert_eq!(
        db.store.insert_verification(&v, &[], None).await,
        Err(StoreError::Conflict)
    );

    // Finish with results and attachments in one write.
    v.state = State::Success;
    v.provider = Some("p".into());
    v.sub_provider = Some("sub".into());
    v.step = Step::Finished;
    v.results_sealed = Some(vec![5; 100]);
    v.input_sealed = None;
    v.browser_binding = Some([3; 32]);
    v.finished_at = Some(at(10));
    v.updated_at = at(10);
    v.version = 2;
    let att = attachment(&v, 4);
    db.store
        .update_verification(&v, std::slice::from_ref(&att), None)
        .await
        .unwrap();
    assert_eq!(get(db, &v).await, Some(v.clone()));
    assert_eq!(
        db.store.get_attachment(&a.id, &att.id).await.unwrap(),
        Some(att.clone())
    );
    assert_eq!(db.store.get_attachment(&b.id, &att.id).await.unwrap(), None);

    // A stale version writes nothing, attachments included.
    let mut stale = v.clone();
    stale.state = State::Failed(FailReason::NoMatch);
    let extra = attachment(&v, 8);
    assert_eq!(
        db.store
            .update_verification(&stale, std::slice::from_ref(&extra), None)
            .await,
        Err(StoreError::Conflict)
    );
    assert_eq!(
        db.store.get_attachment(&a.id, &extra.id).await.unwrap(),
        None
    );
    assert_eq!(get(db, &v).await.map(|x| x.state), Some(State::Success));

    // A foreign application's write finds nothing.
    let mut foreign = v.clone();
    foreign.application_id = b.id.clone();
    foreign.version = 3;
    assert_eq!(
        db.store.update_verification(&foreign, &[], None).await,
        Err(StoreError::NotFound)
    );

    // Redaction removes attachments and sealed data atomically, keeps the record.
    let mut r = v.clone();
    r.results_sealed = None;
    r.redacted_at = Some(at(20));
    r.version = 3;
    db.store.redact_verification(&r, None).await.unwrap();
    assert_eq!(db.store.get_attachment(&a.id, &att.id).await.unwrap(), None);
    let got = get(db, &v).await.unwrap();
    assert_eq!(got.redacted_at, Some(at(20)));
    assert_eq!(got.results_sealed, None);

    // Deleting the application removes its sessions.
    db.store.delete_application(&a.id).await.unwrap();
    assert_eq!(get(db, &v).await, None);
}

/// Listing orders by created, updated or state, both directions, with stable paging and a total.
pub async fn verification_listing_orders_and_pages(db: &TestDb) {
    let (a, _) = insert_app(db, "a", T0).await;
    let (b, _) = insert_app(db, "b", T0).await;
    let mut all = Vec::new();
    for i in 0..7i64 {
        let mut v = verification(&a.id, at(i), 3600);
        // Updated in reverse creation order; states spread over the lifecycle.
        v.updated_at = at(100 - i);
        v.state = [
            State::Success,
            State::Created,
            State::InProgress,
            State::Cancelled,
            State::Initiated,
            State::Failed(FailReason::Internal),
            State::Expired,
        ][i as usize];
        db.store.insert_verification(&v, &[], None).await.unwrap();
        all.push(v);
    }
    db.store
        .insert_verification(&verification(&b.id, T0, 60), &[], None)
        .await
        .unwrap();
    let ids = |l: &[Verification]| l.iter().map(|v| v.id.clone()).collect::<Vec<_>>();

    let (page, total) = db
        .store
        .list_verifications(&a.id, VerificationOrder::Created, false, 3, 0)
        .await
        .unwrap();
    assert_eq!(total, 7);
    assert_eq!(ids(&page), ids(&all[..3]));
    let (page, _) = db
        .store
        .list_verifications(&a.id, VerificationOrder::Created, false, 3, 6)
        .await
        .unwrap();
    assert_eq!(ids(&page), ids(&all[6..]));
    let (page, _) = db
        .store
        .list_verifications(&a.id, VerificationOrder::Created, true, 2, 0)
        .await
        .unwrap();
    assert_eq!(ids(&page), vec![all[6].id.clone(), all[5].id.clone()]);
    let (page, _) = db
        .store
        .list_verifications(&a.id, VerificationOrder::Updated, false, 1, 0)
        .await
        .unwrap();
    assert_eq!(ids(&page), vec![all[6].id.clone()]);
    let (page, _) = db
        .store
        .list_verifications(&a.id, VerificationOrder::State, false, 7, 0)
        .await
        .unwrap();
    let ranks: Vec<u8> = page.iter().map(|v| v.state.rank()).collect();
    let mut sorted = ranks.clone();
    sorted.sort_unstable();
    assert_eq!(ranks, sorted);
    assert_eq!(page[0].state, State::Created);
}

/// The retention job's two bulk operations: expiry settles unfinished sessions and drops their
/// input; redaction honours the cutoff, the application, and what is already redacted.
pub async fn verification_expiry_and_retention(db: &TestDb) {
    let (a, _) = insert_app(db, "a", T0).await;
    let (b, _) = insert_app(db, "b", T0).await;
    let running = verification(&a.id, T0, 60);
    let lapsed = verification(&a.id, T0, 10);
    db.store
        .insert_verification(&running, &[], None)
        .await
        .unwrap();
    db.store
        .insert_verification(&lapsed, &[], None)
        .await
        .unwrap();
    assert_eq!(db.store.expire_verifications(at(30)).await.unwrap(), 1);
    let got = get(db, &lapsed).await.unwrap();
    assert_eq!(got.state, State::Expired);
    assert_eq!(got.finished_at, Some(at(10)));
    assert_eq!(got.input_sealed, None);
    assert_eq!(got.version, 2);
    assert_eq!(get(db, &running).await.unwrap().state, State::Created);
    assert_eq!(db.store.expire_verifications(at(30)).await.unwrap(), 0);

    let mut done = verification(&a.id, T0, 3600);
    done.state = State::Success;
    done.finished_at = Some(at(100));
    done.results_sealed = Some(vec![1; 40]);
    done.input_sealed = None;
    let att = attachment(&done, 2);
    db.store
        .insert_verification(&done, std::slice::from_ref(&att), None)
        .await
        .unwrap();
    let mut other = verification(&b.id, T0, 3600);
    other.state = State::Success;
    other.finished_at = Some(at(100));
    other.results_sealed = Some(vec![1; 40]);
    db.store
        .insert_verification(&other, &[], None)
        .await
        .unwrap();

    // Before the cutoff reaches it: untouched.
    assert_eq!(
        db.store
            .redact_verifications_finished_before(&a.id, at(99), at(500))
            .await
            .unwrap(),
        1, // the lapsed one (finished at 10)
    );
    assert!(get(db, &done).await.unwrap().results_sealed.is_some());
    assert_eq!(
        db.store
            .redact_verifications_finished_before(&a.id, at(100), at(600))
            .await
            .unwrap(),
        1
    );
    let got = get(db, &done).await.unwrap();
    assert_eq!(got.results_sealed, None);
    assert_eq!(got.redacted_at, Some(at(600)));
    assert_eq!(db.store.get_attachment(&a.id, &att.id).await.unwrap(), None);
    // Other applications and already-redacted sessions are left alone.
    assert!(get(db, &other).await.unwrap().results_sealed.is_some());
    assert_eq!(
        db.store
            .redact_verifications_finished_before(&a.id, at(1000), at(1000))
            .await
            .unwrap(),
        0
    );
    assert_eq!(get(db, &running).await.unwrap().redacted_at, None);
}

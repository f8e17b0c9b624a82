//! Contract case: many sessions created at once (a backend may write them together, as
//! PostgreSQL does) are each answered on their own.

use std::collections::BTreeSet;

use crate::TestDb;
use crate::cases::{T0, insert_app};
use crate::event_cases::settled;
use sessiond_core::events::{self, EventType, Position};
use sessiond_core::store::{SessionFilter, StoreError, StoreResult};

use super::*;

pub async fn concurrent_creations_are_answered_each_on_its_own(db: &TestDb) {
    let (a, _) = insert_app(db, "a", T0).await;
    let (b, _) = insert_app(db, "b", T0).await;
    let mine = user(&a.id, T0, &[], None);
    let theirs = user(&b.id, T0, &[], None);
    put_user(db, &mine).await;
    put_user(db, &theirs).await;

    // 48 good sessions; 8 naming another application's user; 8 reusing a good one's id.
    let good: Vec<_> = (0..48).map(|_| session(&a.id, &mine.id, T0)).collect();
    let foreign: Vec<_> = (0..8).map(|_| session(&a.id, &theirs.id, T0)).collect();
    let twins: Vec<_> = good[..8]
        .iter()
        .map(|g| {
            let mut t = session(&a.id, &mine.id, T0);
            t.id = g.id.clone();
            t
        })
        .collect();
    let all: Vec<_> = good.iter().chain(&foreign).chain(&twins).cloned().collect();
    let calls = all.iter().map(|s| {
        let store = db.store.clone();
        let s = s.clone();
        tokio::spawn(async move {
            let created = events::session_created(&s);
            store.insert_session(&s, Some(&created)).await
        })
    });
    let answers: Vec<StoreResult<()>> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|j| j.unwrap_or_else(|e| panic!("join: {e}")))
        .collect();

    for (i, s) in foreign.iter().enumerate() {
        assert_eq!(
            answers[48 + i],
            Err(StoreError::NotFound),
            "{}: another application's user",
            s.id
        );
    }
    for i in 0..8 {
        let pair = (&answers[i], &answers[56 + i]);
        assert!(
            matches!(
                pair,
                (Ok(()), Err(StoreError::Conflict)) | (Err(StoreError::Conflict), Ok(()))
            ),
            "one of two sessions with one id is stored, the other refused: {pair:?}"
        );
    }
    assert!(answers[8..48].iter().all(Result::is_ok), "{answers:?}");

    let filter = SessionFilter {
        user_id: Some(mine.id.clone()),
        ..SessionFilter::default()
    };
    let (stored, total) = db
        .store
        .list_sessions(&a.id, &filter, 100, 0, T0)
        .await
        .unwrap_or_else(|e| panic!("list_sessions: {e}"));
    assert_eq!(total, 48);
    let ids: BTreeSet<_> = stored.iter().map(|s| s.id.to_string()).collect();
    let expected: BTreeSet<_> = good.iter().map(|s| s.id.to_string()).collect();
    assert_eq!(ids, expected);
    for s in &stored[..] {
        let ours = all
            .iter()
            .enumerate()
            .filter(|(_, c)| c.id == s.id)
            .find(|(i, _)| answers[*i].is_ok())
            .map(|(_, c)| c)
            .unwrap_or_else(|| panic!("{} was answered", s.id));
        assert_eq!(s, ours, "the stored row is the one whose call succeeded");
    }
    // One event per stored session, none for a refused one.
    let created = settled(db, &a.id, Position::START, &[EventType::SessionCreated], 48).await;
    assert_eq!(created.len(), 48);
    let subjects: BTreeSet<_> = created.iter().map(|e| e.event.subject.clone()).collect();
    assert_eq!(subjects, expected);
}

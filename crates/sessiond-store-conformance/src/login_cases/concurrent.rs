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

/// Several sessions written together race a single update of one of them, round after round,
/// both from the same read: one of the two wins that session, and the set is written whole or
/// not at all — never some of its sessions without the others.
pub async fn sessions_written_together_are_never_half_written(db: &TestDb) {
    use sessiond_core::session::{Session, SessionStatus};
    let (a, _) = insert_app(db, "a", T0).await;
    let u = user(&a.id, T0, &[], None);
    put_user(db, &u).await;
    for round in 0..12 {
        let set: Vec<Session> = (0..6).map(|_| session(&a.id, &u.id, T0)).collect();
        for s in &set {
            db.store
                .insert_session(s, None)
                .await
                .unwrap_or_else(|e| panic!("insert_session: {e}"));
        }
        let revoked: Vec<_> = set
            .iter()
            .map(|s| {
                let mut next = s.clone();
                next.status = SessionStatus::Revoked;
                next.version = s.version + 1;
                (next, None)
            })
            .collect();
        // The single writer touches the session at `round % 6` from the same version.
        let mut touched = set[round % set.len()].clone();
        touched.last_active_at = Timestamp(T0.0 + 1);
        touched.version += 1;
        let (together, alone) = {
            let (s1, s2) = (db.store.clone(), db.store.clone());
            let t = touched.clone();
            let set_write = tokio::spawn(async move { s1.update_sessions(&revoked).await });
            let one_write = tokio::spawn(async move { s2.update_session(&t, None).await });
            (
                set_write.await.unwrap_or_else(|e| panic!("join: {e}")),
                one_write.await.unwrap_or_else(|e| panic!("join: {e}")),
            )
        };
        let mut stored = Vec::new();
        for s in &set {
            let got = db
                .store
                .get_session(&a.id, &s.id)
                .await
                .unwrap_or_else(|e| panic!("get_session: {e}"))
                .unwrap_or_else(|| panic!("{} is gone", s.id));
            stored.push(got.status);
        }
        let all_revoked = stored.iter().all(|st| *st == SessionStatus::Revoked);
        let none_revoked = stored.iter().all(|st| *st == SessionStatus::Active);
        match (&together, &alone) {
            (Ok(()), Err(StoreError::Conflict)) => {
                assert!(all_revoked, "round {round}: {stored:?}")
            }
            (Err(StoreError::Conflict), Ok(())) => {
                assert!(none_revoked, "round {round}: half written: {stored:?}");
            }
            other => panic!("round {round}: exactly one write wins, got {other:?}"),
        }
    }
}

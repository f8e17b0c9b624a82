//! The SQLite backend's hot-session cache: it is used, it stays within its bound, and readers
//! racing writers never see a session go back in time. (What it must show after each kind of
//! change is the contract case `a_session_read_again_shows_every_change_since`.)

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use sessiond_core::store::{ApplicationStore, SessionStore, UserStore};
use sessiond_store_conformance::cases::{T0, insert_app};
use sessiond_store_conformance::login_cases::{test_session, test_user};
use sessiond_store_conformance::{Kind, TestDb};
use sessiond_store_sqlite::SqliteStore;

async fn store_with(cache: usize) -> (tempfile::TempDir, Arc<SqliteStore>) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let store =
        SqliteStore::open_with(&dir.path().join("hot.db"), cache).unwrap_or_else(|e| panic!("{e}"));
    store.migrate().await.unwrap_or_else(|e| panic!("{e}"));
    (dir, Arc::new(store))
}

#[tokio::test]
async fn repeated_reads_are_cached_within_the_bound() {
    let Some(db) = TestDb::new(Kind::Sqlite).await else {
        return;
    };
    let (_dir, store) = store_with(3).await;
    let (a, k) = insert_app(&db, "a", T0).await;
    store
        .insert_application(&a, &k)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let u = test_user(&a.id, T0, &[], None);
    store
        .insert_user(&u, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let sessions: Vec<_> = (0..8).map(|_| test_session(&a.id, &u.id, T0)).collect();
    for s in &sessions {
        store
            .insert_session(s, None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(store.cached_sessions(), 0);
    for round in 0..3 {
        for s in &sessions {
            let got = store
                .get_session_with_user(&a.id, &s.id)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(got.map(|(got, _)| got).as_ref(), Some(s), "round {round}");
        }
        assert_eq!(store.cached_sessions(), 3, "full, never over");
    }
    let (_dir, off) = store_with(0).await;
    off.insert_application(&a, &k)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    off.insert_user(&u, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    off.insert_session(&sessions[0], None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        off.get_session_with_user(&a.id, &sessions[0].id).await,
        Ok(Some(_))
    ));
    assert_eq!(off.cached_sessions(), 0, "0 turns the cache off");
}

/// Readers loop over one session while a writer moves its version up, acknowledging each: a
/// reader never sees a version older than one acknowledged before its read began, nor older
/// than what it saw before.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readers_racing_a_writer_never_go_back() {
    let Some(db) = TestDb::new(Kind::Sqlite).await else {
        return;
    };
    let (_dir, store) = store_with(1_000).await;
    let (a, k) = insert_app(&db, "a", T0).await;
    store
        .insert_application(&a, &k)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let u = test_user(&a.id, T0, &[], None);
    store
        .insert_user(&u, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let s = test_session(&a.id, &u.id, T0);
    store
        .insert_session(&s, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let acked = Arc::new(AtomicI64::new(s.version));
    let done = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..3 {
        let (store, acked, done, s) = (store.clone(), acked.clone(), done.clone(), s.clone());
        readers.push(tokio::spawn(async move {
            let mut seen = s.version;
            let mut reads = 0u64;
            while !done.load(Ordering::Acquire) {
                let floor = acked.load(Ordering::Acquire);
                let got = store
                    .get_session_with_user(&s.application_id, &s.id)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"))
                    .unwrap_or_else(|| panic!("the session is there"));
                let v = got.0.version;
                assert!(v >= floor, "read {v} after {floor} was acknowledged");
                assert!(v >= seen, "read {v} after having read {seen}");
                seen = v;
                reads += 1;
                tokio::task::yield_now().await;
            }
            reads
        }));
    }
    let mut cur = s.clone();
    for _ in 0..300 {
        cur.version += 1;
        cur.updated_at.0 += 1;
        store
            .update_session(&cur, None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        acked.store(cur.version, Ordering::Release);
        // Some unrelated writes between, so that batches of either kind interleave.
        if cur.version % 7 == 0 {
            let other = test_user(&a.id, T0, &[], None);
            store
                .insert_user(&other, None)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }
    done.store(true, Ordering::Release);
    for r in readers {
        let reads = r.await.unwrap_or_else(|e| panic!("{e}"));
        assert!(reads > 0);
    }
    let last = store
        .get_session_with_user(&a.id, &s.id)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .map(|(s, _)| s.version);
    assert_eq!(last, Some(cur.version));
}

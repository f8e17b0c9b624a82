//! The SQLite backend's answers without its writer. The hot-session cache: it is used, it
//! stays within its bound, and readers racing writers never see a session go back in time.
//! (What it must show after each kind of change is the contract case
//! `a_session_read_again_shows_every_change_since`.) And a deletion with nothing to delete.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use sessiond_core::Timestamp;
use sessiond_core::application::AppId;
use sessiond_core::ids::UserId;
use sessiond_core::session::Session;
use sessiond_core::store::{ApplicationStore, SessionDeleteStore, SessionStore, UserStore};
use sessiond_store_conformance::cases::{T0, insert_app};
use sessiond_store_conformance::login_cases::{test_session, test_user};
use sessiond_store_conformance::{Kind, TestDb};
use sessiond_store_sqlite::SqliteStore;

/// A migrated store with a hot-session cache of `cache` sessions, holding one application and
/// one user of it.
struct Setup {
    dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    app: AppId,
    user: UserId,
}

async fn setup(cache: usize) -> Setup {
    let fail = |e: &dyn std::fmt::Display| -> ! { panic!("{e}") };
    let dir = tempfile::tempdir().unwrap_or_else(|e| fail(&e));
    let store =
        SqliteStore::open_with(&dir.path().join("hot.db"), cache).unwrap_or_else(|e| fail(&e));
    store.migrate().await.unwrap_or_else(|e| fail(&e));
    // The application and its key are made on a throwaway database, then stored here.
    let Some(scratch) = TestDb::new(Kind::Sqlite).await else {
        fail(&"no SQLite test database");
    };
    let (a, k) = insert_app(&scratch, "a", T0).await;
    store
        .insert_application(&a, &k)
        .await
        .unwrap_or_else(|e| fail(&e));
    let u = test_user(&a.id, T0, &[], None);
    store
        .insert_user(&u, None)
        .await
        .unwrap_or_else(|e| fail(&e));
    Setup {
        dir,
        store: Arc::new(store),
        app: a.id,
        user: u.id,
    }
}

impl Setup {
    async fn session(&self) -> Session {
        let s = test_session(&self.app, &self.user, T0);
        self.store
            .insert_session(&s, None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        s
    }

    /// Commits a new user to the file through another store, as another process would: the
    /// cache of `store` is emptied at its next look-up.
    async fn write_elsewhere(&self) {
        let fail = |e: &dyn std::fmt::Display| -> ! { panic!("{e}") };
        let other =
            SqliteStore::open_with(&self.dir.path().join("hot.db"), 0).unwrap_or_else(|e| fail(&e));
        let u = test_user(&self.app, T0, &[], None);
        other
            .insert_user(&u, None)
            .await
            .unwrap_or_else(|e| fail(&e));
        other.close().await;
    }

    /// The session `id` read with its user, and whether the cache answered.
    async fn read(&self, id: &sessiond_core::ids::SessionId) -> (Option<Session>, bool) {
        let hits = || self.store.session_cache_stats().map(|(_, hits, _)| hits);
        let before = hits();
        let got = self
            .store
            .get_session_with_user(&self.app, id)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .map(|(s, _)| s);
        (got, hits() > before)
    }
}

#[tokio::test]
async fn repeated_reads_are_cached_within_the_bound() {
    let t = setup(3).await;
    let mut sessions = Vec::new();
    for _ in 0..8 {
        sessions.push(t.session().await);
    }
    assert_eq!(
        t.store.cached_sessions(),
        3,
        "creates fill it, within the bound"
    );
    for round in 0..3 {
        for s in &sessions {
            let got = t
                .store
                .get_session_with_user(&t.app, &s.id)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(got.map(|(got, _)| got).as_ref(), Some(s), "round {round}");
        }
        assert_eq!(t.store.cached_sessions(), 3, "full, never over");
    }
    let off = setup(0).await;
    let s = off.session().await;
    assert!(matches!(
        off.store.get_session_with_user(&off.app, &s.id).await,
        Ok(Some(_))
    ));
    assert_eq!(off.store.cached_sessions(), 0, "0 turns the cache off");
}

/// Readers loop over one session while a writer moves its version up, acknowledging each
/// (half of the writes through `change_session`, which keeps the entry): a reader never sees a
/// version older than one acknowledged before its read began, nor older than what it saw
/// before.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readers_racing_a_writer_never_go_back() {
    let t = setup(1_000).await;
    let (store, a) = (t.store.clone(), t.app.clone());
    let s = t.session().await;
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
    for i in 0..300 {
        let prev = cur.clone();
        cur.version += 1;
        cur.updated_at.0 += 1;
        // Half of the writes keep the entry with the new state, half drop it.
        let written = if i % 2 == 0 {
            store.change_session(&prev, &cur, None).await
        } else {
            store.update_session(&cur, None).await
        };
        written.unwrap_or_else(|e| panic!("{e}"));
        acked.store(cur.version, Ordering::Release);
        // Some unrelated writes between, so that batches of either kind interleave.
        if cur.version % 7 == 0 {
            let other = test_user(&a, T0, &[], None);
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
        .get_session_with_user(&a, &s.id)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .map(|(s, _)| s.version);
    assert_eq!(last, Some(cur.version));
}

/// A session this node changes through `change_session` (a touch, say) is served from memory
/// afterwards with the state it was written in; a change that fails or is rolled back leaves
/// the cache with what the file holds.
#[tokio::test]
async fn a_session_changed_here_stays_cached_with_its_new_state() {
    let t = setup(100).await;
    let s = t.session().await;
    let read = || t.read(&s.id);
    t.write_elsewhere().await;
    assert_eq!(
        read().await,
        (Some(s.clone()), false),
        "after another's commit: a miss"
    );
    assert_eq!(read().await, (Some(s.clone()), true), "then cached");

    let mut touched = s.clone();
    touched.last_active_at.0 += 60_000;
    touched.abandon_at.0 += 60_000;
    touched.updated_at = touched.last_active_at;
    touched.version += 1;
    t.store
        .change_session(&s, &touched, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(read().await, (Some(touched.clone()), true), "the new state");

    // A stale change writes nothing and the entry stays as the file is.
    let mut stale = s.clone();
    stale.status = sessiond_core::session::SessionStatus::Revoked;
    stale.version += 1;
    assert_eq!(
        t.store.change_session(&s, &stale, None).await,
        Err(sessiond_core::store::StoreError::Conflict)
    );
    assert_eq!(read().await, (Some(touched.clone()), true));

    // A write of the row by any other path drops the entry.
    let mut other = touched.clone();
    other.version += 1;
    other.updated_at.0 += 1;
    t.store
        .update_session(&other, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(read().await, (Some(other.clone()), false));
}

/// A session created here is served from memory from its first read, with exactly what the
/// read would have found; one created through another connection is read from the file, then
/// served from memory.
#[tokio::test]
async fn a_session_created_here_is_cached_from_its_insert() {
    let t = setup(100).await;
    let s = t.session().await;
    assert_eq!(t.store.cached_sessions(), 1);
    let (got, hit) = t.read(&s.id).await;
    assert!(hit, "the first read is answered from memory");
    let read_from_file =
        SqliteStore::open_with(&t.dir.path().join("hot.db"), 0).unwrap_or_else(|e| panic!("{e}"));
    let stored = read_from_file
        .get_session_with_user(&t.app, &s.id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got, stored.map(|(s, _)| s), "what the file holds");
    assert_eq!(got.as_ref(), Some(&s));

    // The user's row is cached with that session: a second session of theirs is cached without
    // reading the user again, and holds what the file holds, user included.
    let second = t.session().await;
    let (_, hit) = t.read(&second.id).await;
    assert!(
        hit,
        "the second session's first read is answered from memory"
    );
    let cached = t.store.get_session_with_user(&t.app, &second.id).await;
    let stored = read_from_file
        .get_session_with_user(&t.app, &second.id)
        .await;
    assert_eq!(
        cached, stored,
        "the second session and its user, as the file holds them"
    );
    assert!(matches!(cached, Ok(Some(_))));

    // Created through another connection: no entry until a read fills one.
    let other =
        SqliteStore::open_with(&t.dir.path().join("hot.db"), 0).unwrap_or_else(|e| panic!("{e}"));
    let elsewhere = test_session(&t.app, &t.user, T0);
    other
        .insert_session(&elsewhere, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    other.close().await;
    assert_eq!(
        t.read(&elsewhere.id).await,
        (Some(elsewhere.clone()), false)
    );
    assert_eq!(t.read(&elsewhere.id).await, (Some(elsewhere.clone()), true));
    // The other's commit emptied the cache: the first session is read from the file again.
    assert_eq!(t.read(&s.id).await, (Some(s.clone()), false));

    // A create that fails leaves no entry.
    let mut twice = test_session(&t.app, &t.user, T0);
    twice.id = s.id.clone();
    assert!(t.store.insert_session(&twice, None).await.is_err());
    let foreign = test_session(&t.app, &UserId::new(), T0);
    assert!(t.store.insert_session(&foreign, None).await.is_err());
    assert_eq!(t.read(&foreign.id).await, (None, false));
}

/// A change of a cached session finds its row by the rowid the cache holds; the rowid is only a
/// hint. Here another process deleted the session and stored it again (a new rowid) after this
/// node cached it, and this node writes a change decided from its copy without reading first:
/// the change is written to the row that holds the session now, as it would be without a cache.
#[tokio::test]
async fn a_stale_rowid_does_not_stop_a_change() {
    let t = setup(100).await;
    let s = t.session().await;
    let _later = t.session().await;
    assert_eq!(t.read(&s.id).await, (Some(s.clone()), true));
    let other =
        SqliteStore::open_with(&t.dir.path().join("hot.db"), 0).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(other.delete_session(&t.app, &s.id, None).await, Ok(true));
    other
        .insert_session(&s, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    other.close().await;
    let mut touched = s.clone();
    touched.last_active_at = Timestamp(s.last_active_at.0 + 60_000);
    touched.version = s.version + 1;
    assert_eq!(t.store.change_session(&s, &touched, None).await, Ok(()));
    assert_eq!(t.read(&s.id).await.0, Some(touched));
}

/// Reads that fill the cache while the writer commits changes of other sessions are kept: here
/// 32 tasks each read a session and touch it, 2,000 times in all, and the sessions are then
/// read again from memory. (A fill racing a change of its own rows is refused; see
/// `readers_racing_a_writer_never_go_back`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fills_racing_other_sessions_writes_are_kept() {
    let t = setup(10_000).await;
    let mut sessions = Vec::new();
    for _ in 0..2_000 {
        sessions.push(t.session().await);
    }
    // Created here, they are cached already; empty the cache so that the reads fill it.
    t.write_elsewhere().await;
    let tasks: Vec<_> = sessions
        .chunks(63)
        .map(|chunk| {
            let (store, chunk, app) = (t.store.clone(), chunk.to_vec(), t.app.clone());
            tokio::spawn(async move {
                for s in chunk {
                    let read = store.get_session_with_user(&app, &s.id).await;
                    let Ok(Some((got, _))) = read else {
                        panic!("read {read:?}")
                    };
                    let mut touched = got.clone();
                    touched.version += 1;
                    touched.last_active_at.0 += 1;
                    let done = store.change_session(&got, &touched, None).await;
                    assert_eq!(done, Ok(()));
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap_or_else(|e| panic!("{e}"));
    }
    let Some((held, _, _)) = t.store.session_cache_stats() else {
        panic!("the cache is on")
    };
    // Some fills may still be refused: a look-up that came while the file's last commit was
    // not yet known, or a read spanning more batches than are kept on record.
    assert!(held >= 1_800, "{held} of 2000 sessions kept");
    let (_, hits_before, _) = t.store.session_cache_stats().unwrap_or_default();
    for s in &sessions {
        let got = t.store.get_session_with_user(&t.app, &s.id).await;
        let Ok(Some((got, _))) = got else {
            panic!("read {got:?}")
        };
        assert_eq!(
            (got.version, got.last_active_at),
            (s.version + 1, Timestamp(s.last_active_at.0 + 1))
        );
    }
    let (_, hits_after, _) = t.store.session_cache_stats().unwrap_or_default();
    assert_eq!(
        hits_after - hits_before,
        held as u64,
        "each one kept is served from memory"
    );
}

/// Deleting the sessions of a user who has none left is answered by a read, without a write
/// request; while one is left, it is a write that hides it.
#[tokio::test]
async fn deleting_no_sessions_sends_nothing_to_the_writer() {
    let t = setup(0).await;
    let requests = || t.store.write_stats().1;
    let s = t.session().await;
    let delete = |user: UserId| {
        let (store, app) = (t.store.clone(), t.app.clone());
        async move { store.delete_user_sessions(&app, &user, T0).await }
    };
    let before = requests();
    assert_eq!(delete(t.user.clone()).await, Ok(true));
    assert_eq!(requests(), before + 1, "a session to delete: one write");
    assert_eq!(t.store.get_session(&t.app, &s.id).await, Ok(None));
    assert_eq!(delete(t.user.clone()).await, Ok(true), "the user exists");
    assert_eq!(delete(UserId::new()).await, Ok(false), "an unknown user");
    assert_eq!(requests(), before + 1, "nothing to delete: no write");
    let later = t.session().await;
    assert_eq!(delete(t.user.clone()).await, Ok(true));
    assert_eq!(t.store.get_session(&t.app, &later.id).await, Ok(None));
}

/// A write that changes nothing (a job's claim of a slot another node took) commits without
/// writing to the log: the cache keeps its entries. It used to take the unmoved commit counter
/// for another connection's commit and empty itself.
#[tokio::test]
async fn a_write_that_changes_nothing_keeps_the_cache() {
    use sessiond_core::store::JobLeaseStore;
    let t = setup(100).await;
    let s = t.session().await;
    // Cached by a read (whatever the insert left), then a claim that lands and one that does not.
    let _ = t.read(&s.id).await;
    assert_eq!(t.read(&s.id).await, (Some(s.clone()), true));
    let claim = || t.store.claim_job_run("hot_cache_test", 1, "node", T0);
    assert_eq!(claim().await, Ok(true));
    assert_eq!(
        t.read(&s.id).await,
        (Some(s.clone()), true),
        "after a write"
    );
    assert_eq!(claim().await, Ok(false));
    assert_eq!(
        t.read(&s.id).await,
        (Some(s.clone()), true),
        "after a write of nothing"
    );
    assert_eq!(t.store.cached_sessions(), 1);
}

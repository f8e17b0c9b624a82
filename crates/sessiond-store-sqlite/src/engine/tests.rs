use std::sync::Arc;

use rusqlite::Connection;
use sessiond_core::store::{StoreError, StoreResult};

use super::Engine;

fn engine() -> (tempfile::TempDir, Arc<Engine>) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let e = Engine::open(&dir.path().join("t.db"), 0).unwrap_or_else(|e| panic!("{e}"));
    (dir, Arc::new(e))
}

async fn setup(e: &Engine) {
    e.write(|c| {
        sql_batch(
            c,
            "CREATE TABLE parent (id INTEGER PRIMARY KEY); \
             CREATE TABLE t (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES parent (id)); \
             INSERT INTO parent VALUES (1);",
        )
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

fn ids(e: &Engine) -> Vec<i64> {
    e.read(|c| {
        crate::all(c, "SELECT id FROM t ORDER BY id", [], |r| {
            crate::get(r, "id")
        })
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

type Job = Box<dyn Fn(&Connection) -> StoreResult<()> + Send>;

/// Runs `jobs` as one batch: the writer is held busy by another request while they are
/// queued, then released. Deterministic: no sleeps.
async fn batch_of(e: &Arc<Engine>, jobs: Vec<Job>) -> Vec<StoreResult<()>> {
    let (release, held) = std::sync::mpsc::channel::<()>();
    let (started, running) = tokio::sync::oneshot::channel::<()>();
    // A request may run twice (never here: it succeeds); the sender goes on the first run.
    let started = std::sync::Mutex::new(Some(started));
    let holder = {
        let e = e.clone();
        tokio::spawn(async move {
            e.write(move |_| {
                if let Some(s) = started.lock().ok().and_then(|mut s| s.take()) {
                    let _ = s.send(());
                }
                let _ = held.recv();
                Ok(())
            })
            .await
        })
    };
    running.await.unwrap_or_else(|e| panic!("{e}"));
    // join! polls the writes first: each queues its request on that first poll, before the
    // second branch releases the writer.
    let (results, ()) = tokio::join!(
        futures::future::join_all(jobs.into_iter().map(|j| e.write(j))),
        async move { drop(release) }
    );
    holder
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    results
}

fn insert(id: i64) -> Job {
    Box::new(move |c| crate::exec(c, "INSERT INTO t (id, parent) VALUES (?1, 1)", [id]).map(|_| ()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_writes_commit_together_in_one_transaction() {
    let (_dir, e) = engine();
    setup(&e).await;
    let before = e.write_counts();
    let results = batch_of(&e, (1..=50).map(insert).collect()).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let after = e.write_counts();
    // The holder's batch plus one batch for all fifty requests.
    assert_eq!(after.0 - before.0, 2, "batches: {before:?} -> {after:?}");
    assert_eq!(after.1 - before.1, 51);
    assert_eq!(ids(&e), (1..=50).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_request_is_rolled_back_alone() {
    let (_dir, e) = engine();
    setup(&e).await;
    let half_done: Job = Box::new(|c| {
        // Its first statement succeeds; the second fails: neither may remain.
        crate::exec(c, "INSERT INTO t (id, parent) VALUES (100, 1)", [])?;
        crate::exec(c, "INSERT INTO t (id, parent) VALUES (1, 1)", [])?;
        Ok(())
    });
    let results = batch_of(&e, vec![insert(1), half_done, insert(2)]).await;
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    assert_eq!(results[1], Err(StoreError::Conflict));
    assert_eq!(
        ids(&e),
        vec![1, 2],
        "the failed request left nothing behind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_runs_again_isolated_only_when_a_request_fails() {
    let (_dir, e) = engine();
    setup(&e).await;
    let isolated = || {
        e.counters
            .isolated
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let results = batch_of(&e, (1..=20).map(insert).collect()).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(
        isolated(),
        0,
        "a batch without failures runs once, no savepoints"
    );

    let half_done: Job = Box::new(|c| {
        crate::exec(c, "INSERT INTO t (id, parent) VALUES (100, 1)", [])?;
        crate::exec(c, "INSERT INTO t (id, parent) VALUES (21, 1)", [])?;
        Ok(())
    });
    // Reads what the requests before it left: on the second run, that must be exactly what
    // the first run saw minus the failed request (no row 100).
    let counted: Job = Box::new(|c| {
        let n: i64 = c
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .map_err(crate::map_err)?;
        crate::exec(c, "INSERT INTO t (id, parent) VALUES (?1, 1)", [1000 + n]).map(|_| ())
    });
    let results = batch_of(&e, vec![insert(21), half_done, counted]).await;
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    assert_eq!(results[1], Err(StoreError::Conflict));
    assert_eq!(isolated(), 1);
    let got = ids(&e);
    assert_eq!(got.len(), 22, "{got:?}");
    assert!(got.contains(&1021) && !got.contains(&100), "{got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_commit_fails_every_request_of_its_batch() {
    let (_dir, e) = engine();
    setup(&e).await;
    // A deferred foreign-key violation passes its statement and fails the COMMIT.
    let poison: Job = Box::new(|c| {
        sql_batch(c, "PRAGMA defer_foreign_keys = ON")?;
        crate::exec(c, "INSERT INTO t (id, parent) VALUES (200, 99)", [])?;
        Ok(())
    });
    let results = batch_of(&e, vec![insert(1), poison, insert(2)]).await;
    assert!(results.iter().all(Result::is_err), "{results:?}");
    assert!(
        ids(&e).is_empty(),
        "nothing of the failed batch was written"
    );
    // The writer goes on with the next batch.
    e.write(insert(3)).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ids(&e), vec![3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_request_does_not_stop_the_writer() {
    let (_dir, e) = engine();
    setup(&e).await;
    #[allow(clippy::panic)]
    let boom: Job = Box::new(|_| panic!("boom"));
    let results = batch_of(&e, vec![insert(1), boom]).await;
    assert!(results[0].is_ok() && results[1].is_err(), "{results:?}");
    e.write(insert(2)).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ids(&e), vec![1, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_failing_request_leaves_nothing_behind() {
    let (_dir, e) = engine();
    setup(&e).await;
    // Its first statement succeeds, its second fails: neither may remain.
    let half: Job = Box::new(|c| {
        crate::exec(c, "INSERT INTO t (id, parent) VALUES (5, 1)", [])?;
        crate::exec(c, "INSERT INTO t (id, parent) VALUES (6, 99)", []).map(|_| ())
    });
    assert!(
        e.write(half).await.is_err(),
        "the foreign key refuses parent 99"
    );
    assert_eq!(ids(&e), Vec::<i64>::new());
    e.write(insert(7)).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(ids(&e), vec![7], "the writer goes on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_see_acknowledged_writes_and_closing_refuses_new_ones() {
    let (_dir, e) = engine();
    setup(&e).await;
    e.write(insert(7)).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        ids(&e),
        vec![7],
        "an acknowledged write is visible to the next read"
    );
    e.close();
    assert!(matches!(
        e.write(insert(8)).await,
        Err(StoreError::Unavailable(_))
    ));
}

async fn blobs_table(e: &Engine) {
    e.write(|c| sql_batch(c, "CREATE TABLE blobs (id INTEGER PRIMARY KEY, b BLOB)"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

/// The writer never checkpoints in its commit path; past the threshold the checkpointer
/// copies the log into the database file on its own thread, and flushes the file itself (not
/// left to the writer's next log restart).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_is_checkpointed_off_the_writer_past_the_threshold() {
    let (dir, e) = engine();
    let db = dir.path().join("t.db");
    blobs_table(&e).await;
    let size = || std::fs::metadata(&db).map_or(0, |m| m.len());
    let before = size();
    // About 1.5 × the threshold in 4 KiB pages, in 64 KiB rows.
    let rows = (super::checkpoint::CHECKPOINT_PAGES as usize * 4096 * 3 / 2) / 65_536;
    for _ in 0..rows {
        e.write(|c| {
            c.execute("INSERT INTO blobs (b) VALUES (zeroblob(65536))", [])
                .map(|_| ())
                .map_err(crate::map_err)
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    }
    let want = before + (super::checkpoint::CHECKPOINT_PAGES as u64 * 4096) / 2;
    for _ in 0..500 {
        if size() >= want && e.checkpoint_flushes() > 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!(
        "the database file stayed at {} bytes (wanted {want}), flushed {} times",
        size(),
        e.checkpoint_flushes()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_restarts_under_constant_writes_and_reads() {
    let (dir, e) = engine();
    let wal = dir.path().join("t.db-wal");
    blobs_table(&e).await;
    let reading = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let reader = {
        let (e, reading) = (e.clone(), reading.clone());
        tokio::spawn(async move {
            while reading.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = e.read(|c| crate::count(c, "SELECT COUNT(*) FROM blobs", []));
                tokio::task::yield_now().await;
            }
        })
    };
    // Four times the threshold in 4 KiB rows, written back to back with readers present.
    let threshold = super::checkpoint::CHECKPOINT_PAGES as u64;
    for _ in 0..(threshold * 4 / 16) {
        let jobs: Vec<Job> = (0..16)
            .map(|_| -> Job {
                Box::new(|c| {
                    crate::exec(c, "INSERT INTO blobs (b) VALUES (zeroblob(4000))", []).map(|_| ())
                })
            })
            .collect();
        for r in futures::future::join_all(jobs.into_iter().map(|j| e.write(j))).await {
            r.unwrap_or_else(|e| panic!("{e}"));
        }
    }
    reading.store(false, std::sync::atomic::Ordering::Relaxed);
    reader.await.unwrap_or_else(|e| panic!("{e}"));
    let size = std::fs::metadata(&wal).map_or(0, |m| m.len());
    assert!(
        size < 3 * threshold * 4200,
        "the log grew to {size} bytes past a threshold of {threshold} pages"
    );
}

/// The wal-index tells a commit from no commit, whichever connection or process made it, and
/// reads alone leave it alone.
#[tokio::test]
async fn last_commit_moves_with_every_commit_and_only_then() {
    let (dir, e) = engine();
    setup(&e).await;
    let before = e
        .last_commit()
        .unwrap_or_else(|| panic!("no wal-index state"));
    assert_eq!(ids(&e), Vec::<i64>::new());
    assert_eq!(e.last_commit(), Some(before), "a read is not a commit");

    e.write(|c| sql_batch(c, "INSERT INTO t (id) VALUES (1)"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mine = e.last_commit();
    assert!(
        mine.is_some() && mine != Some(before),
        "this engine's commit shows"
    );

    // Another connection, as another process would have: its own lock, its own commit.
    let other = Connection::open(dir.path().join("t.db")).unwrap_or_else(|e| panic!("{e}"));
    other
        .execute_batch("INSERT INTO t (id) VALUES (2)")
        .unwrap_or_else(|e| panic!("{e}"));
    let theirs = e.last_commit();
    assert!(
        theirs.is_some() && theirs != mine,
        "another connection's commit shows"
    );

    // A transaction that changed nothing still ends without a commit in the log.
    other
        .execute_batch("BEGIN; SELECT count(*) FROM t; COMMIT;")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(e.last_commit(), theirs);

    // A log restarted from its start (after a complete checkpoint) is a new state, even where
    // the frame count comes back to an earlier value.
    e.checkpoint().await.unwrap_or_else(|e| panic!("{e}"));
    e.write(|c| sql_batch(c, "INSERT INTO t (id) VALUES (3)"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let restarted = e.last_commit();
    assert!(restarted.is_some() && restarted != theirs && restarted != mine);
}

/// Without a wal-index (a database not in WAL mode) the state is unknown, never a stale answer.
#[test]
fn no_wal_index_means_unknown() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("plain.db");
    let c = Connection::open(&path).unwrap_or_else(|e| panic!("{e}"));
    c.execute_batch("CREATE TABLE t (id INTEGER)")
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(super::wal_index::WalIndex::open(&path).is_none());
}

/// Runs `sql` (one or more statements) as the store would report its errors.
fn sql_batch(c: &Connection, sql: &str) -> StoreResult<()> {
    c.execute_batch(sql).map_err(crate::map_err)
}

//! The two ways in to the database file.
//!
//! - **Reads** run on the calling thread against a small pool of read-only connections (WAL mode:
//!   a reader never waits for the writer). No channel, no thread hand-off: a cached prepared
//!   statement and a B-tree lookup are cheaper than a context switch.
//! - **Writes** go to one writer thread that owns the only read-write connection. It drains its
//!   queue and commits everything it took in one transaction, so one fsync acknowledges a whole
//!   batch (group commit). Each request runs inside its own savepoint: a request whose statements
//!   fail is rolled back alone and the others in the batch still commit. A request is answered
//!   only after its batch's COMMIT returned, so an acknowledged write is durable
//!   (`synchronous = FULL`). If the COMMIT fails, every request of the batch gets the error and
//!   nothing of the batch is in the database. With one writer there is no SQLITE_BUSY back-off on
//!   any write path.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock};
use std::thread::JoinHandle;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};
use sessiond_core::store::{StoreError, StoreResult};

use crate::map_err;

/// Most requests one transaction takes in. Bounds the latency a request can add to the others of
/// its batch; at a few microseconds per statement the fsync still dominates.
const MAX_BATCH: usize = 512;

/// Idle read connections kept open. More may be open for a moment under a burst.
const MAX_IDLE_READERS: usize = 16;

/// Prepared statements cached per connection; the store has fewer distinct statements than this.
const STATEMENT_CACHE: usize = 128;

/// WAL size (pages) at which the checkpointer thread is asked to copy the log into the database.
/// Checkpoints run on their own connection and thread, never on the writer: a checkpoint inside
/// the writer's commit (SQLite's automatic one) stalls every queued request for its duration. A
/// larger log than SQLite's default (1,000 pages) lets pages written many times be copied once.
const CHECKPOINT_PAGES: i32 = 4096;

/// WAL size (pages) at which the writer itself restarts the log (see `restart_log`): past two
/// thresholds, the checkpointer's passes have not let it restart on its own.
const RESTART_PAGES: i32 = 2 * CHECKPOINT_PAGES;

/// Pages a log restart may copy itself while reads wait; more, and the checkpointer copies first.
const RESTART_TAIL: i32 = 256;

/// How long a log restart waits for the checkpointer's lock; reads are paused meanwhile.
const RESTART_WAIT: std::time::Duration = std::time::Duration::from_millis(20);

/// How long a connection waits for a lock another holds (checkpoints, recovery after a crash).
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

thread_local! {
    /// Pages in the WAL after the writer thread's latest commit (set by the WAL hook, which runs
    /// on the committing thread).
    static WAL_PAGES: std::cell::Cell<i32> = const { std::cell::Cell::new(0) };
}

fn note_wal_pages(_: &rusqlite::hooks::Wal, pages: std::ffi::c_int) -> rusqlite::Result<()> {
    WAL_PAGES.with(|p| p.set(pages));
    Ok(())
}

/// A request queued for the writer.
trait WriteJob: Send {
    /// Runs the request's statements; `false` if they failed. May run twice in one batch (see
    /// `commit_batch`); the second run's result is the one answered.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Answers the caller once the batch's fate is known.
    fn finish(self: Box<Self>, commit: Result<(), StoreError>);
}

struct Pending<F, R> {
    f: F,
    result: Option<StoreResult<R>>,
    reply: tokio::sync::oneshot::Sender<StoreResult<R>>,
}

impl<F, R> WriteJob for Pending<F, R>
where
    F: Fn(&Connection) -> StoreResult<R> + Send,
    R: Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let f = &self.f;
        // A panicking request must not take the writer (and every later write) down with it.
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| f(conn))).unwrap_or_else(|_| {
            Err(StoreError::backend(
                "a write request panicked; it was rolled back",
            ))
        });
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, commit: Result<(), StoreError>) {
        let answer = match commit {
            Ok(()) => self
                .result
                .unwrap_or_else(|| Err(StoreError::backend("write request never ran"))),
            Err(e) => Err(e),
        };
        // The caller may have gone away (request cancelled); the write stands either way.
        let _ = self.reply.send(answer);
    }
}

enum Msg {
    Write(Box<dyn WriteJob>),
    /// `PRAGMA wal_checkpoint(TRUNCATE)`, outside any transaction.
    Checkpoint(tokio::sync::oneshot::Sender<StoreResult<()>>),
}

/// What the writer did: transactions committed (or failed) and requests they carried.
#[derive(Debug, Default)]
pub(crate) struct WriteCounters {
    pub(crate) batches: AtomicU64,
    pub(crate) requests: AtomicU64,
    /// Batches run a second time, a savepoint per request, because one of them failed.
    pub(crate) isolated: AtomicU64,
}

pub(crate) struct Engine {
    path: PathBuf,
    counters: Arc<WriteCounters>,
    readers: Mutex<Vec<Connection>>,
    /// Held shared by every read, exclusively by the writer while it restarts the log (see
    /// `restart_log`): reads pause for that moment instead of starving the restart.
    gate: Arc<RwLock<()>>,
    open_readers: AtomicUsize,
    writer: Mutex<Option<Sender<Msg>>>,
    writer_thread: Mutex<Option<JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded values stay consistent even if a holder panicked (a Vec push/pop, an Option).
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Settings of every connection. WAL lets readers proceed during a write; FULL makes every
/// acknowledged commit durable; secure_delete zeroes freed content, so redacted and purged data
/// does not survive in free pages of the file.
fn configure(conn: &Connection, writer: bool) -> rusqlite::Result<()> {
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // Plans must not depend on bound values: otherwise SQLite (built with STAT4) re-prepares a
    // cached statement on every execution whose parameters sit in a range constraint, which
    // profiled as a third of a user's session listing.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    if writer {
        // Savepoints keep the pre-images of the pages a request changes in a statement journal;
        // in memory that costs no file I/O (bulk deletes change thousands of pages). The writer
        // gets a larger page cache than the readers: it touches every index of every write.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
             PRAGMA secure_delete = ON; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -16384; PRAGMA wal_autocheckpoint = 0;",
        )?;
    } else {
        // Opened read-write (a read-only handle cannot recover a WAL left by a crash) but refusing
        // writes: only the writer writes.
        conn.execute_batch("PRAGMA query_only = ON;")?;
    }
    Ok(())
}

impl Engine {
    /// Opens (creating if missing) the database file, owner-only, and starts the writer.
    pub(crate) fn open(path: &Path) -> StoreResult<Engine> {
        let existed = path.exists();
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| {
            StoreError::unavailable_caused(format!("cannot open {}", path.display()), e)
        })?;
        if !existed {
            restrict_permissions(path)?;
        }
        configure(&conn, true).map_err(map_err)?;
        // After `wal_autocheckpoint = 0` (configure): that pragma replaces any WAL hook.
        conn.wal_hook(Some(note_wal_pages));
        let checkpointer = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(map_err)?;
        checkpointer
            .busy_timeout(std::time::Duration::from_secs(5))
            .map_err(map_err)?;
        let (want_checkpoint, checkpoints) = std::sync::mpsc::sync_channel::<()>(1);
        // Shared with the writer, which restarts the log only between the checkpointer's passes.
        let ckpt_state = Arc::new(CheckpointState::default());
        let busy = ckpt_state.clone();
        let gate = Arc::new(RwLock::new(()));
        let log_gate = gate.clone();
        std::thread::Builder::new()
            .name("sessiond-sqlite-checkpoint".into())
            .spawn(move || checkpoint_loop(&checkpointer, &checkpoints, &busy))
            .map_err(|e| StoreError::backend_caused("cannot start the SQLite checkpointer", e))?;
        let (tx, rx) = std::sync::mpsc::channel();
        let counters = Arc::new(WriteCounters::default());
        let for_writer = counters.clone();
        let thread = std::thread::Builder::new()
            .name("sessiond-sqlite-writer".into())
            .spawn(move || {
                writer_loop(
                    &conn,
                    &rx,
                    &for_writer,
                    &want_checkpoint,
                    &ckpt_state,
                    &log_gate,
                )
            })
            .map_err(|e| StoreError::backend_caused("cannot start the SQLite writer", e))?;
        Ok(Engine {
            path: path.to_path_buf(),
            counters,
            readers: Mutex::new(Vec::new()),
            gate,
            open_readers: AtomicUsize::new(0),
            writer: Mutex::new(Some(tx)),
            writer_thread: Mutex::new(Some(thread)),
        })
    }

    fn open_reader(&self) -> StoreResult<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(map_err)?;
        configure(&conn, false).map_err(map_err)?;
        self.open_readers.fetch_add(1, Ordering::Relaxed);
        Ok(conn)
    }

    /// Runs `f` on a read connection, on this thread.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&Connection) -> StoreResult<R>) -> StoreResult<R> {
        let conn = lock(&self.readers).pop();
        let conn = match conn {
            Some(c) => c,
            None => self.open_reader()?,
        };
        let result = {
            let _reading = self.gate.read().unwrap_or_else(PoisonError::into_inner);
            f(&conn)
        };
        let mut idle = lock(&self.readers);
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        } else {
            drop(idle);
            self.open_readers.fetch_sub(1, Ordering::Relaxed);
        }
        result
    }

    fn send(&self, msg: Msg) -> StoreResult<()> {
        let sender = lock(&self.writer).clone();
        match sender {
            Some(s) => s
                .send(msg)
                .map_err(|_| StoreError::unavailable("the SQLite writer has stopped")),
            None => Err(StoreError::unavailable("the store is closed")),
        }
    }

    /// Runs `f` in the writer's current batch; answers after the batch is durable. `f` must
    /// only run statements: it may be run a second time, from the same database state, when
    /// another request of its batch fails (see `commit_batch`).
    pub(crate) async fn write<R, F>(&self, f: F) -> StoreResult<R>
    where
        F: Fn(&Connection) -> StoreResult<R> + Send + 'static,
        R: Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.send(Msg::Write(Box::new(Pending {
            f,
            result: None,
            reply,
        })))?;
        answer
            .await
            .map_err(|_| StoreError::unavailable("the SQLite writer has stopped"))?
    }

    /// Folds the WAL back into the database file and truncates it.
    pub(crate) async fn checkpoint(&self) -> StoreResult<()> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.send(Msg::Checkpoint(reply))?;
        answer
            .await
            .map_err(|_| StoreError::unavailable("the SQLite writer has stopped"))?
    }

    /// (transactions, write requests) since the store opened.
    pub(crate) fn write_counts(&self) -> (u64, u64) {
        (
            self.counters.batches.load(Ordering::Relaxed),
            self.counters.requests.load(Ordering::Relaxed),
        )
    }

    /// (open connections, idle connections): the readers plus the writer.
    pub(crate) fn stats(&self) -> (u32, usize) {
        let open = self.open_readers.load(Ordering::Relaxed) + 1;
        (
            u32::try_from(open).unwrap_or(u32::MAX),
            lock(&self.readers).len(),
        )
    }

    /// Stops the writer after the requests already queued, and closes every connection.
    pub(crate) fn close(&self) {
        drop(lock(&self.writer).take());
        if let Some(t) = lock(&self.writer_thread).take() {
            let _ = t.join();
        }
        let mut idle = lock(&self.readers);
        self.open_readers.fetch_sub(idle.len(), Ordering::Relaxed);
        idle.clear();
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        drop(lock(&self.writer).take());
    }
}

#[cfg(unix)]
fn restrict_permissions(path: &Path) -> StoreResult<()> {
    use std::os::unix::fs::PermissionsExt;
    // Before WAL mode is set: SQLite gives the -wal and -shm files the main file's mode.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| StoreError::backend_caused(format!("cannot restrict {}", path.display()), e))
}

#[cfg(not(unix))]
fn restrict_permissions(_: &Path) -> StoreResult<()> {
    Ok(())
}

/// Copies the WAL into the database when the writer asks, without blocking it (PASSIVE: frames
/// still needed by a reader or not yet committed stay for the next round). Ends with the writer.
fn checkpoint_loop(conn: &Connection, asked: &Receiver<()>, state: &CheckpointState) {
    while asked.recv().is_ok() {
        state.busy.store(true, Ordering::Release);
        // The third column: frames of the log now copied into the database.
        match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            row.get::<_, i64>(2)
        }) {
            Ok(copied) => state
                .copied
                .store(i32::try_from(copied).unwrap_or(0), Ordering::Release),
            Err(e) => {
                tracing::warn!(error = %e, "SQLite checkpoint failed; retried at the next threshold");
            }
        }
        state.busy.store(false, Ordering::Release);
    }
}

/// What the checkpointer thread tells the writer.
#[derive(Default)]
struct CheckpointState {
    /// A pass is running.
    busy: AtomicBool,
    /// Frames of the log its last pass had copied.
    copied: AtomicI32,
}

/// Brings the log back to its start when the checkpointer's passes could not. A log only
/// restarts once a checkpoint has copied every frame and no reader still reads from it; under
/// constant writes PASSIVE never gets there (the writer keeps appending), and the log was
/// measured growing to 690 MB over a 13 MB database in five seconds, every commit extending the
/// file, which the kernel pays for by zeroing pages (a fifth of the server's time). RESTART,
/// run by the writer between batches while reads pause (the caller holds the read gate
/// exclusively; reads are short), copies what the checkpointer has not (at most
/// `RESTART_TAIL` pages: the writer asks for another pass first when more remain, so the pause
/// stays short); the next commit then writes the log from its start, into blocks the file
/// already has. Readers present all the time (any real load) would otherwise starve it.
fn restart_log(conn: &Connection) -> bool {
    let _ = conn.busy_timeout(RESTART_WAIT);
    let r = conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |row| {
        row.get::<_, i64>(0)
    });
    let _ = conn.busy_timeout(BUSY_TIMEOUT);
    match r {
        Ok(0) => true,
        Ok(_) | Err(rusqlite::Error::SqliteFailure(_, _)) => false,
        Err(e) => {
            tracing::warn!(error = %e, "SQLite log restart failed; retried later");
            false
        }
    }
}

fn writer_loop(
    conn: &Connection,
    rx: &Receiver<Msg>,
    counters: &WriteCounters,
    want_checkpoint: &std::sync::mpsc::SyncSender<()>,
    checkpoints: &CheckpointState,
    gate: &RwLock<()>,
) {
    let mut batch: Vec<Box<dyn WriteJob>> = Vec::with_capacity(MAX_BATCH);
    let mut last_pages = 0;
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Write(job) => batch.push(job),
                Msg::Checkpoint(reply) => {
                    // Commit what is queued before it, then checkpoint outside the transaction.
                    commit_batch(conn, &mut batch, counters);
                    let r = conn
                        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                        .map_err(map_err);
                    let _ = reply.send(r);
                }
            }
            if batch.len() >= MAX_BATCH {
                break;
            }
            next = rx.try_recv().ok();
        }
        commit_batch(conn, &mut batch, counters);
        // Ask once per threshold crossed (the log restarts from zero after a complete checkpoint);
        // a request already pending covers this one.
        let pages = WAL_PAGES.with(std::cell::Cell::get);
        if pages >= RESTART_PAGES && !checkpoints.busy.load(Ordering::Acquire) {
            if pages - checkpoints.copied.load(Ordering::Acquire) > RESTART_TAIL {
                let _ = want_checkpoint.try_send(());
            } else {
                let restarted = {
                    let _alone = gate.write().unwrap_or_else(PoisonError::into_inner);
                    restart_log(conn)
                };
                if restarted {
                    WAL_PAGES.with(|p| p.set(0));
                    checkpoints.copied.store(0, Ordering::Release);
                }
            }
        } else if pages / CHECKPOINT_PAGES > last_pages / CHECKPOINT_PAGES {
            let _ = want_checkpoint.try_send(());
        }
        last_pages = pages;
    }
}

fn commit_batch(conn: &Connection, batch: &mut Vec<Box<dyn WriteJob>>, counters: &WriteCounters) {
    if batch.is_empty() {
        return;
    }
    counters.batches.fetch_add(1, Ordering::Relaxed);
    counters
        .requests
        .fetch_add(batch.len() as u64, Ordering::Relaxed);
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        return fail_all(batch, &map_err(e));
    }
    // Optimistically, every request runs straight in the transaction. A savepoint per request
    // would copy each page it first touches into the statement journal (a tenth of a create's
    // CPU, profiled), a price only a failing request needs to pay. When one fails, the batch is
    // rolled back and run again, each request under its own savepoint. Requests are statements
    // over the database and nothing else, so the second run starts from the same state as the
    // first and does the same; a request that fails under its savepoint is undone alone.
    if !batch.iter_mut().all(|job| job.run(conn)) {
        let _ = conn.execute_batch("ROLLBACK");
        if batch.len() == 1 {
            // A lone request's transaction was its own: its error is its answer.
            for job in batch.drain(..) {
                job.finish(Ok(()));
            }
            return;
        }
        counters.isolated.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            return fail_all(batch, &map_err(e));
        }
        if let Err(e) = run_isolated(conn, batch) {
            let _ = conn.execute_batch("ROLLBACK");
            return fail_all(batch, &e);
        }
    }
    let committed = conn.execute_batch("COMMIT").map_err(map_err);
    if committed.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    for job in batch.drain(..) {
        job.finish(committed.clone());
    }
}

/// Answers every request of `batch` with `e`: nothing of the batch was written.
fn fail_all(batch: &mut Vec<Box<dyn WriteJob>>, e: &StoreError) {
    for job in batch.drain(..) {
        job.finish(Err(e.clone()));
    }
}

/// Runs every request of `batch` under a savepoint of its own, undoing the ones that fail. An
/// error here means a request could not be isolated from the others: the caller fails the
/// batch rather than risk committing half of it.
fn run_isolated(conn: &Connection, batch: &mut [Box<dyn WriteJob>]) -> Result<(), StoreError> {
    for job in batch.iter_mut() {
        conn.execute_batch("SAVEPOINT request").map_err(map_err)?;
        let undo = if job.run(conn) {
            "RELEASE request"
        } else {
            "ROLLBACK TO request; RELEASE request"
        };
        conn.execute_batch(undo).map_err(map_err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rusqlite::Connection;
    use sessiond_core::store::{StoreError, StoreResult};

    use super::Engine;

    fn engine() -> (tempfile::TempDir, Arc<Engine>) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let e = Engine::open(&dir.path().join("t.db")).unwrap_or_else(|e| panic!("{e}"));
        (dir, Arc::new(e))
    }

    async fn setup(e: &Engine) {
        e.write(|c| {
            c.execute_batch(
                "CREATE TABLE parent (id INTEGER PRIMARY KEY); \
                 CREATE TABLE t (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES parent (id)); \
                 INSERT INTO parent VALUES (1);",
            )
            .map_err(crate::map_err)
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
        Box::new(move |c| {
            crate::exec(c, "INSERT INTO t (id, parent) VALUES (?1, 1)", [id]).map(|_| ())
        })
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
            c.execute_batch("PRAGMA defer_foreign_keys = ON")
                .map_err(crate::map_err)?;
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

    /// The writer never checkpoints in its commit path; past the threshold the checkpointer
    /// copies the log into the database file on its own thread.
    async fn blobs_table(e: &Engine) {
        e.write(|c| {
            c.execute_batch("CREATE TABLE blobs (id INTEGER PRIMARY KEY, b BLOB)")
                .map_err(crate::map_err)
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_log_is_checkpointed_off_the_writer_past_the_threshold() {
        let (dir, e) = engine();
        let db = dir.path().join("t.db");
        blobs_table(&e).await;
        let size = || std::fs::metadata(&db).map_or(0, |m| m.len());
        let before = size();
        // About 1.5 × the threshold in 4 KiB pages, in 64 KiB rows.
        let rows = (super::CHECKPOINT_PAGES as usize * 4096 * 3 / 2) / 65_536;
        for _ in 0..rows {
            e.write(|c| {
                c.execute("INSERT INTO blobs (b) VALUES (zeroblob(65536))", [])
                    .map(|_| ())
                    .map_err(crate::map_err)
            })
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        }
        let want = before + (super::CHECKPOINT_PAGES as u64 * 4096) / 2;
        for _ in 0..500 {
            if size() >= want {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!(
            "the database file stayed at {} bytes (wanted {want})",
            size()
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
        let threshold = super::CHECKPOINT_PAGES as u64;
        for _ in 0..(threshold * 4 / 16) {
            let jobs: Vec<Job> = (0..16)
                .map(|_| -> Job {
                    Box::new(|c| {
                        crate::exec(c, "INSERT INTO blobs (b) VALUES (zeroblob(4000))", [])
                            .map(|_| ())
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
}

//! The two ways in to the database file.
//!
//! - **Reads** run on the calling thread against a small pool of read-only connections (WAL mode:
//!   a reader never waits for the writer). No channel, no thread hand-off: a cached prepared
//!   statement and a B-tree lookup are cheaper than a context switch.
//! - **Writes** go to one writer thread that owns the only read-write connection. It drains its
//!   queue and commits everything it took in one transaction, so one fsync acknowledges a whole
//!   batch (group commit). A request whose statements fail is rolled back alone and the others
//!   in the batch still commit (the batch runs again, each request under a savepoint of its
//!   own; see `writer::commit_batch`). A request is answered
//!   only after its batch's COMMIT returned, so an acknowledged write is durable
//!   (`synchronous = FULL`). If the COMMIT fails, every request of the batch gets the error and
//!   nothing of the batch is in the database. With one writer there is no SQLITE_BUSY back-off on
//!   any write path.
//!
//! `writer` holds the writer thread and its batches, `checkpoint` the thread that folds the log
//! back into the database file, `wal_index` the check for commits that needs no transaction,
//! `hot` the hot-session cache (sessions read with their users, kept exact by the writer).

mod checkpoint;
mod hot;
mod wal_index;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock};
use std::thread::JoinHandle;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};
use sessiond_core::store::{StoreError, StoreResult};

use crate::map_err;
use checkpoint::{CheckpointState, checkpoint_loop, note_wal_pages};
pub(crate) use hot::{HotCache, Lookup};
pub(crate) use wal_index::Commit;
use wal_index::Marker;
pub(crate) use writer::WriteCounters;
use writer::{Msg, Pending, writer_loop};

/// Idle read connections kept open. More may be open for a moment under a burst.
const MAX_IDLE_READERS: usize = 16;

/// Prepared statements cached per connection; the store has fewer distinct statements than this.
const STATEMENT_CACHE: usize = 128;

/// How long a connection waits for a lock another holds (checkpoints, recovery after a crash).
pub(super) const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

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
    /// The file's last commit, shared with the writer (for the hot-session cache).
    marker: Arc<Marker>,
    hot: Option<Arc<HotCache>>,
    /// What the checkpointer thread has done (read by tests).
    #[cfg(test)]
    checkpoints: Arc<CheckpointState>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
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
    /// Opens (creating if missing) the database file, owner-only, and starts the writer; with a
    /// hot-session cache of `hot_sessions` entries (0: none).
    pub(crate) fn open(path: &Path, hot_sessions: usize) -> StoreResult<Engine> {
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
        let hot = (hot_sessions > 0).then(|| Arc::new(HotCache::new(hot_sessions)));
        if let Some(hot) = &hot {
            let hot = hot.clone();
            conn.update_hook(Some(move |_, _: &str, table: &str, row| {
                hot.note(table, row)
            }))
            .map_err(map_err)?;
        }
        let marker = Arc::new(Marker::new(path));
        let cached = hot.clone().map(|h| (h, marker.clone()));
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
        #[cfg(test)]
        let checkpoints_seen = ckpt_state.clone();
        let gate = Arc::new(RwLock::new(()));
        let log_gate = gate.clone();
        // For the checkpointer's flushes; without it they are left to SQLite.
        let database = keep_open(path);
        // Thread names fit Linux's 15 characters, so `top -H` and /proc tell the two apart (the
        // longer names were both cut to "sessiond-sqlite").
        std::thread::Builder::new()
            .name("sqlite-ckpt".into())
            .spawn(move || checkpoint_loop(&checkpointer, database, &checkpoints, &busy))
            .map_err(|e| StoreError::backend_caused("cannot start the SQLite checkpointer", e))?;
        let (tx, rx) = std::sync::mpsc::channel();
        let counters = Arc::new(WriteCounters::default());
        let for_writer = counters.clone();
        let thread = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                writer_loop(
                    &conn,
                    &rx,
                    &for_writer,
                    &want_checkpoint,
                    &ckpt_state,
                    &log_gate,
                    cached.as_ref().map(|(h, m)| (&**h, &**m)),
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
            marker,
            hot,
            #[cfg(test)]
            checkpoints: checkpoints_seen,
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

    /// The last commit to the file by any connection of any process, read without a
    /// transaction; `None` when that cannot be known this way (then read the database).
    pub(crate) fn last_commit(&self) -> Option<Commit> {
        self.marker.last_commit()
    }

    /// The hot-session cache, unless turned off.
    pub(crate) fn hot(&self) -> Option<&HotCache> {
        self.hot.as_deref()
    }

    /// The same, for a write request to take along to the writer thread.
    pub(crate) fn hot_shared(&self) -> Option<Arc<HotCache>> {
        self.hot.clone()
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

    /// Flushes of the database file the checkpointer made after its passes.
    #[cfg(test)]
    pub(crate) fn checkpoint_flushes(&self) -> u64 {
        self.checkpoints.flushes.load(Ordering::Relaxed)
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

/// A read-only descriptor of `path` (the database file or its `-shm`) that is never closed.
/// Closing any descriptor of a file releases all of the process's POSIX locks on it, and
/// SQLite's connections in this process hold theirs (the database's, the wal-index's, among
/// them the one that tells other processes the index is in use) on descriptors of their own,
/// for as long as they live: no moment to close ours is safe. One descriptor per file per store.
fn keep_open(path: &Path) -> Option<&'static std::fs::File> {
    std::fs::File::open(path)
        .ok()
        .map(|f| &*Box::leak(Box::new(f)))
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

#[cfg(test)]
mod tests;

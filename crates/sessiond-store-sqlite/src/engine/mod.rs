//! The two ways in to the database file.
//!
//! - **Reads** run on the calling thread against a small pool of read-only connections (WAL mode:
//!   a reader never waits for the writer). No channel, no thread hand-off: a cached prepared
//!   statement and a B-tree lookup are cheaper than a context switch.
//! - **Writes** go to one writer thread that owns the only read-write connection. It drains its
//!   queue and commits everything it took in one transaction, so one fsync acknowledges a whole
//!   batch (group commit). A request whose statements fail is rolled back alone and the others
//!   in the batch still commit (the batch runs again, each request under a savepoint of its
//!   own; see `writer::commit_batch`). A request is answered only once its batch's log frames
//!   are on disk, so an acknowledged write is durable. The writer does not wait for the disk
//!   itself: it hands each committed batch to a sync thread, which flushes the log for all the
//!   batches it holds and then answers them, while the writer runs the next batch (`durable`).
//!   Reads never show a batch before it is durable. If the COMMIT fails, every request of the
//!   batch gets the error and nothing of the batch is in the database. With one writer there is
//!   no SQLITE_BUSY back-off on any write path.
//!
//! `writer` holds the writer thread and its batches, `durable` the sync thread and the numbers
//! reads wait on, `checkpoint` the thread that folds the log back into the database file,
//! `wal_index` the check for commits that needs no transaction, `hot` the hot-session cache
//! (sessions read with their users, kept exact by the writer).

mod checkpoint;
mod durable;
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
#[cfg(any(test, feature = "test-util"))]
pub use durable::FlushHold;
use durable::{Durability, sync_loop};
pub(crate) use hot::{HotCache, Lookup};
pub(crate) use wal_index::Commit;
use wal_index::Marker;
pub(crate) use writer::WriteCounters;
use writer::{EPOCH_WRITTEN, Msg, Pending, Syncer, Writer, writer_loop};

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
    /// Ends after the writer, once it has answered every batch the writer sent it.
    sync_thread: Mutex<Option<JoinHandle<()>>>,
    /// How far the writer's batches are durable (reads wait on it).
    durability: Arc<Durability>,
    /// The file's last commit, shared with the writer (for the hot-session cache).
    marker: Arc<Marker>,
    /// The authentication epoch with the file's state it was read in (see
    /// `SqliteStore::auth_epoch`); the writer moves the state along over its own commits that
    /// leave the epoch alone.
    epoch: Arc<Mutex<Option<(Commit, i64)>>>,
    hot: Option<Arc<HotCache>>,
    /// What the checkpointer thread has done (read by tests).
    #[cfg(test)]
    checkpoints: Arc<CheckpointState>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded values stay consistent even if a holder panicked (a Vec push/pop, an Option).
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Settings of every connection. WAL lets readers proceed during a write; the writer commits
/// with NORMAL (no fsync in the COMMIT: the sync thread flushes the log before any request of the
/// batch is answered or any read shows it, see `durable`); secure_delete zeroes freed content, so
/// redacted and purged data does not survive in free pages of the file.
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
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
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
        let noted = hot.clone();
        conn.update_hook(Some(move |_, _: &str, table: &str, row| {
            if table == "auth_epoch" {
                EPOCH_WRITTEN.with(|w| w.set(true));
            }
            if let Some(hot) = &noted {
                hot.note(table, row);
            }
        }))
        .map_err(map_err)?;
        let marker = Arc::new(Marker::new(path));
        let epoch = Arc::new(Mutex::new(None));
        let (writer_marker, writer_epoch) = (marker.clone(), epoch.clone());
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
        let durability = Arc::new(Durability::new());
        let (tx, rx) = std::sync::mpsc::channel();
        let (to_sync, flushes) = std::sync::mpsc::channel();
        let (for_sync, database_path, wake) = (durability.clone(), path.to_path_buf(), tx.clone());
        let sync_thread = std::thread::Builder::new()
            .name("sqlite-sync".into())
            .spawn(move || sync_loop(&database_path, &flushes, &wake, &for_sync))
            .map_err(|e| StoreError::backend_caused("cannot start the SQLite sync thread", e))?;
        let counters = Arc::new(WriteCounters::default());
        let for_writer = counters.clone();
        let writer_durability = durability.clone();
        let thread = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                let writer = Writer {
                    conn: &conn,
                    syncer: Syncer {
                        to_sync: &to_sync,
                        durability: &writer_durability,
                    },
                    counters: &for_writer,
                    hot: cached.as_ref().map(|(h, m)| (&**h, &**m)),
                    marker: &writer_marker,
                    epoch: &writer_epoch,
                };
                writer_loop(&writer, &rx, &want_checkpoint, &ckpt_state, &log_gate);
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
            sync_thread: Mutex::new(Some(sync_thread)),
            durability,
            marker,
            epoch,
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

    /// Runs `f` on a read connection, on this thread, and answers once everything it may have
    /// seen is durable (see `durable`).
    pub(crate) async fn read<R>(
        &self,
        f: impl FnOnce(&Connection) -> StoreResult<R>,
    ) -> StoreResult<R> {
        let (result, seen) = self.read_now(f);
        // Absence is an answer too: a row's delete must be durable before a read reports it.
        self.durability.wait(seen).await?;
        result
    }

    /// Runs `f` on a read connection, on this thread, without waiting: the result may show
    /// batches not yet durable, up to the number returned ([`Self::durable`]).
    pub(crate) fn read_now<R>(
        &self,
        f: impl FnOnce(&Connection) -> StoreResult<R>,
    ) -> (StoreResult<R>, u64) {
        let conn = lock(&self.readers).pop();
        let conn = match conn {
            Some(c) => c,
            None => match self.open_reader() {
                Ok(c) => c,
                Err(e) => return (Err(e), 0),
            },
        };
        let (result, seen) = {
            let _reading = self.gate.read().unwrap_or_else(PoisonError::into_inner);
            let result = f(&conn);
            // After the statements: the number covers every commit their snapshot held.
            (result, self.durability.seen())
        };
        let mut idle = lock(&self.readers);
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        } else {
            drop(idle);
            self.open_readers.fetch_sub(1, Ordering::Relaxed);
        }
        (result, seen)
    }

    /// Returns once batch `n` is durable (what a read or a hot-session entry may show).
    pub(crate) async fn durable(&self, n: u64) -> StoreResult<()> {
        self.durability.wait(n).await
    }

    /// The last commit to the file by any connection of any process, read without a
    /// transaction; `None` when that cannot be known this way (then read the database).
    pub(crate) fn last_commit(&self) -> Option<Commit> {
        self.marker.last_commit()
    }

    /// The authentication epoch last read, with the file's state it holds for.
    pub(crate) fn epoch(&self) -> &Mutex<Option<(Commit, i64)>> {
        &self.epoch
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

    /// Holds the sync thread before its next flush until the guard drops (a test hook).
    #[cfg(any(test, feature = "test-util"))]
    pub(crate) fn hold_flushes(&self) -> FlushHold {
        FlushHold::new(self.durability.clone())
    }

    /// Makes every flush from now on fail (a test hook).
    #[cfg(any(test, feature = "test-util"))]
    pub(crate) fn fail_flushes(&self) {
        self.durability
            .fail_flushes
            .store(true, std::sync::atomic::Ordering::Release);
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
        if let Some(writer) = lock(&self.writer).take() {
            let _ = writer.send(Msg::Stop);
        }
        if let Some(t) = lock(&self.writer_thread).take() {
            let _ = t.join();
        }
        if let Some(t) = lock(&self.sync_thread).take() {
            let _ = t.join();
        }
        let mut idle = lock(&self.readers);
        self.open_readers.fetch_sub(idle.len(), Ordering::Relaxed);
        idle.clear();
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // The threads finish what is queued and end on their own.
        if let Some(writer) = lock(&self.writer).take() {
            let _ = writer.send(Msg::Stop);
        }
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

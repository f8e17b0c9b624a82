//! Pipelined durability: the writer commits a batch without waiting for the disk, and the sync
//! thread flushes the log and only then answers the batch's requests, while the writer already
//! runs the next batch.
//!
//! With `synchronous = FULL` the writer's COMMIT fsyncs the log, and the writer (which holds the
//! file's only write lock) sits idle for it: at 32 connections the server's core waited about a
//! quarter of the time (bench/README). The writer now commits with `synchronous = NORMAL`, which
//! writes the log's frames and returns, and numbers every batch. The sync thread takes what the
//! writer handed it since its last pass, fsyncs the log once for all of it, publishes the last
//! number as durable, answers the requests, and tells the writer, which meanwhile ran the
//! requests that arrived in its next open transaction and now commits it (`writer`). What an
//! acknowledgement promises is unchanged: every frame of the batch was on disk before the answer
//! went out.
//!
//! What the writer committed is visible to reads before it is durable, so reads wait for it:
//!
//! - **A read of the database** learns, after its statements ran, the number of the last batch the
//!   writer began to commit ([`Durability::seen`]); the writer stores that number before its
//!   COMMIT, so any batch the read's snapshot holds is covered. The read is answered once that
//!   number is durable ([`Durability::wait`]): at once when the writer is idle, after at most one
//!   flush under writes.
//! - **A hot-session entry** carries the number of the batch (or the read) that gave it its state,
//!   and a hit waits for that number alone: entries of sessions the writer changed long ago are
//!   served at once.
//!
//! A request answered without a commit (its statements failed, or its batch wrote nothing) goes
//! through the sync thread too, with the last number committed: its answer may rest on what
//! earlier batches wrote.
//!
//! **A failed flush stops the store.** After a failed fsync the kernel may have dropped the pages
//! it could not write and report the next fsync as a success, so nothing after it can be trusted
//! durable (PostgreSQL stops for the same reason). Every request waiting on it gets the error, the
//! writer refuses every later batch, and reads that would show anything not known durable fail;
//! a restart recovers from what the disk holds.
//!
//! Checkpoints stay correct without help: SQLite syncs the log before copying it into the
//! database file under NORMAL as under FULL, and syncs a restarted log's header.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Receiver;

use sessiond_core::store::{StoreError, StoreResult};

use super::writer::{Msg, WriteJob};

/// How far the writer's batches are durable, shared by the writer, the sync thread and reads.
pub(crate) struct Durability {
    /// The last batch number the writer began to commit (stored before its COMMIT).
    committing: AtomicU64,
    /// The last batch number known durable.
    durable: AtomicU64,
    /// A flush failed: nothing later is durable.
    failed: AtomicBool,
    /// Batches the writer handed to the sync thread, and those the sync thread answered.
    handed: AtomicU64,
    answered: AtomicU64,
    /// The writer holds a batch open until the flush in flight ends: wake it then.
    writer_waits: AtomicBool,
    /// Wakes reads waiting for a number: (durable, failed).
    published: tokio::sync::watch::Sender<(u64, bool)>,
    /// Tests set this to keep the sync thread from flushing (see [`FlushHold`]).
    #[cfg(any(test, feature = "test-util"))]
    hold: (std::sync::Mutex<bool>, std::sync::Condvar),
    /// Tests set this to make the next flushes fail.
    #[cfg(any(test, feature = "test-util"))]
    pub(super) fail_flushes: AtomicBool,
}

impl Durability {
    pub(super) fn new() -> Durability {
        Durability {
            committing: AtomicU64::new(0),
            durable: AtomicU64::new(0),
            failed: AtomicBool::new(false),
            handed: AtomicU64::new(0),
            answered: AtomicU64::new(0),
            writer_waits: AtomicBool::new(false),
            published: tokio::sync::watch::Sender::new((0, false)),
            #[cfg(any(test, feature = "test-util"))]
            hold: (std::sync::Mutex::new(false), std::sync::Condvar::new()),
            #[cfg(any(test, feature = "test-util"))]
            fail_flushes: AtomicBool::new(false),
        }
    }

    /// The writer, just before a COMMIT: numbers the batch. Sequentially consistent with the
    /// load in [`Self::seen`], so a read whose snapshot holds the commit sees the number.
    pub(super) fn begin_commit(&self) -> u64 {
        let n = self.committing.load(Ordering::Relaxed) + 1;
        self.committing.store(n, Ordering::SeqCst);
        n
    }

    /// The last batch number the writer began to commit: called after a read's statements, it
    /// covers every commit the read may have seen.
    pub(crate) fn seen(&self) -> u64 {
        self.committing.load(Ordering::SeqCst)
    }

    /// The writer handed a batch to the sync thread.
    pub(super) fn handed(&self) {
        self.handed.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether the sync thread answered everything the writer handed it (no flush in flight);
    /// if not, the sync thread wakes the writer (`Msg::Flushed`) once it has. Only a writer
    /// about to wait is woken: a message per flush would cost a wake-up of an idle writer.
    pub(super) fn flushed_or_wake_me(&self) -> bool {
        let all = || self.answered.load(Ordering::SeqCst) == self.handed.load(Ordering::Relaxed);
        if all() {
            return true;
        }
        self.writer_waits.store(true, Ordering::SeqCst);
        // Checked again after saying so: a pass that ended in between either is seen here or
        // sees the flag.
        all()
    }

    /// Whether a flush failed (the writer then refuses every batch).
    pub(super) fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Returns once batch `n` is durable; an error if a flush failed first.
    pub(crate) async fn wait(&self, n: u64) -> StoreResult<()> {
        if self.durable.load(Ordering::Acquire) >= n {
            return Ok(());
        }
        let mut rx = self.published.subscribe();
        // `wait_for` checks the current value first: a publication between the load above and
        // the subscription is not missed.
        let (durable, failed) = *rx
            .wait_for(|&(durable, failed)| durable >= n || failed)
            .await
            .map_err(|_| StoreError::unavailable("the store is closed"))?;
        if durable >= n {
            Ok(())
        } else {
            debug_assert!(failed);
            Err(flush_failed())
        }
    }

    fn publish(&self, upto: u64) {
        self.durable.fetch_max(upto, Ordering::Release);
        self.published.send_modify(|p| p.0 = p.0.max(upto));
    }

    fn fail(&self) {
        self.failed.store(true, Ordering::Release);
        self.published.send_modify(|p| p.1 = true);
    }
}

/// Keeps the sync thread from flushing until dropped (a test hook): writes stay unanswered, and
/// what they committed unshown.
#[cfg(any(test, feature = "test-util"))]
pub struct FlushHold(std::sync::Arc<Durability>);

#[cfg(any(test, feature = "test-util"))]
impl FlushHold {
    pub(super) fn new(durability: std::sync::Arc<Durability>) -> FlushHold {
        *super::lock(&durability.hold.0) = true;
        FlushHold(durability)
    }
}

#[cfg(any(test, feature = "test-util"))]
impl Drop for FlushHold {
    fn drop(&mut self) {
        *super::lock(&self.0.hold.0) = false;
        self.0.hold.1.notify_all();
    }
}

pub(super) fn flush_failed() -> StoreError {
    StoreError::unavailable(
        "flushing the SQLite log to disk failed; the store stopped and needs a restart",
    )
}

/// A batch on its way to the sync thread.
pub(super) struct Flush {
    /// The batch's number if it committed, else the last number committed before it.
    pub(super) upto: u64,
    /// Its COMMIT wrote to the log.
    pub(super) wrote: bool,
    pub(super) jobs: Vec<Box<dyn WriteJob>>,
    /// What the writer knows of the batch's fate.
    pub(super) outcome: Result<(), StoreError>,
}

/// The sync thread: flushes the log once for every batch queued, answers them, and wakes the
/// writer (`wake`). Ends when the writer does, after answering everything it sent.
pub(super) fn sync_loop(
    database: &Path,
    rx: &Receiver<Flush>,
    wake: &std::sync::mpsc::Sender<Msg>,
    durability: &Durability,
) {
    let mut log = Log::new(database);
    let mut queue: Vec<Flush> = Vec::new();
    while let Ok(first) = rx.recv() {
        queue.push(first);
        queue.extend(rx.try_iter());
        let upto = queue.iter().map(|f| f.upto).max().unwrap_or(0);
        let flushed = if durability.failed() {
            Err(flush_failed())
        } else if queue.iter().any(|f| f.wrote) {
            log.flush(durability)
        } else {
            Ok(())
        };
        match &flushed {
            Ok(()) => durability.publish(upto),
            Err(_) => durability.fail(),
        }
        let passed = queue.len() as u64;
        for f in queue.drain(..) {
            let answer = match &flushed {
                Ok(()) => f.outcome,
                Err(e) => Err(e.clone()),
            };
            for job in f.jobs {
                job.finish(answer.clone());
            }
        }
        durability.answered.fetch_add(passed, Ordering::SeqCst);
        if durability.writer_waits.swap(false, Ordering::SeqCst) {
            // The writer is gone once stopped; then nothing waits.
            let _ = wake.send(Msg::Flushed);
        }
    }
}

/// The database's log, opened at its first flush (SQLite creates it with the first commit).
struct Log {
    path: PathBuf,
    file: Option<File>,
}

impl Log {
    fn new(database: &Path) -> Log {
        let mut name = database.as_os_str().to_owned();
        name.push("-wal");
        Log {
            path: PathBuf::from(name),
            file: None,
        }
    }

    fn flush(&mut self, durability: &Durability) -> StoreResult<()> {
        #[cfg(any(test, feature = "test-util"))]
        {
            let (held, released) = &durability.hold;
            let mut held = super::lock(held);
            while *held {
                held = released
                    .wait(held)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
            if durability.fail_flushes.load(Ordering::Acquire) {
                return Err(flush_failed());
            }
        }
        #[cfg(not(any(test, feature = "test-util")))]
        let _ = durability;
        let file = match &self.file {
            Some(f) => f,
            None => {
                let f = File::open(&self.path).map_err(|e| {
                    tracing::error!(error = %e, path = %self.path.display(), "cannot open the SQLite log to flush it");
                    flush_failed()
                })?;
                // The log's directory entry must survive a crash as well as its content. SQLite
                // syncs the directory at the log's first sync too; this costs one call per store.
                sync_directory(&self.path)?;
                self.file.insert(f)
            }
        };
        // SQLite never replaces the log while a connection has the database open: it rewinds
        // and truncates it in place, so this descriptor stays the log's.
        file.sync_data().map_err(|e| {
            tracing::error!(error = %e, path = %self.path.display(), "flushing the SQLite log failed");
            flush_failed()
        })
    }
}

#[cfg(unix)]
fn sync_directory(file: &Path) -> StoreResult<()> {
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| {
        tracing::error!(error = %e, path = %dir.display(), "flushing the data directory failed");
        flush_failed()
    })
}

#[cfg(not(unix))]
fn sync_directory(_: &Path) -> StoreResult<()> {
    Ok(())
}

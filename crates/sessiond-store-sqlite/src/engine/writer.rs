//! The writer thread: runs queued requests in one open transaction and commits it as one batch
//! (group commit) whenever the sync thread is not flushing an earlier one.
//!
//! While the sync thread flushes batch N, requests arriving run at once in batch N+1's open
//! transaction; N+1 commits when that flush is done. So the writer's statements overlap the
//! fsync (with `synchronous = FULL` the writer sat idle through it), and a batch still takes in
//! everything that arrived during one flush: one fsync per batch, as before. Committing each
//! batch as soon as its statements had run, without waiting for the flush in flight, was measured
//! and not kept: batches several times smaller, more commits and fsyncs, more CPU per request
//! (bench/README).

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{PoisonError, RwLock};

use rusqlite::Connection;
use sessiond_core::store::{StoreError, StoreResult};

use super::checkpoint::{
    CHECKPOINT_PAGES, CheckpointState, RESTART_PAGES, RESTART_TAIL, WAL_COMMITS, WAL_PAGES,
    restart_log,
};
use super::durable::{Durability, Flush, flush_failed};
use super::hot::HotCache;
use super::wal_index::Marker;
use crate::map_err;

/// The hot-session cache and the file's commit marker, when the cache is on.
pub(super) type Hot<'a> = Option<(&'a HotCache, &'a Marker)>;

thread_local! {
    /// A statement of the writer's open batch wrote the `auth_epoch` table (its update hook
    /// says so; the table's triggers count, as they run inside the statement).
    pub(super) static EPOCH_WRITTEN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Most requests one transaction takes in. Bounds the latency a request can add to the others of
/// its batch; at a few microseconds per statement the fsync still dominates.
const MAX_BATCH: usize = 512;

/// A request queued for the writer.
pub(super) trait WriteJob: Send {
    /// Runs the request's statements; `false` if they failed. May run twice in one batch (see
    /// `Batch::add`); the second run's result is the one answered.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Answers the caller once the batch's fate is known (on the sync thread: see `durable`).
    fn finish(self: Box<Self>, commit: Result<(), StoreError>);
}

pub(super) struct Pending<F, R> {
    pub(super) f: F,
    pub(super) result: Option<StoreResult<R>>,
    pub(super) reply: tokio::sync::oneshot::Sender<StoreResult<R>>,
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

pub(super) enum Msg {
    Write(Box<dyn WriteJob>),
    /// `PRAGMA wal_checkpoint(TRUNCATE)`, outside any transaction.
    Checkpoint(tokio::sync::oneshot::Sender<StoreResult<()>>),
    /// From the sync thread: a flush ended, the open batch may commit.
    Flushed,
    /// Commit what is open and stop (the sync thread keeps a sender, so the queue never closes
    /// by itself).
    Stop,
}

/// What the writer did: transactions committed (or failed) and requests they carried.
#[derive(Debug, Default)]
pub(crate) struct WriteCounters {
    pub(crate) batches: AtomicU64,
    pub(crate) requests: AtomicU64,
    /// Batches run a second time, a savepoint per request, because one of them failed.
    pub(crate) isolated: AtomicU64,
}

/// Where the writer sends its batches: the sync thread, and the numbers it publishes.
pub(super) struct Syncer<'a> {
    pub(super) to_sync: &'a Sender<Flush>,
    pub(super) durability: &'a Durability,
}

impl Syncer<'_> {
    /// Hands `jobs` to the sync thread, which answers them once `upto` is durable.
    fn hand_over(
        &self,
        jobs: Vec<Box<dyn WriteJob>>,
        upto: u64,
        wrote: bool,
        outcome: Result<(), StoreError>,
    ) {
        self.durability.handed();
        let flush = Flush {
            upto,
            wrote,
            jobs,
            outcome,
        };
        if let Err(std::sync::mpsc::SendError(flush)) = self.to_sync.send(flush) {
            // The sync thread is gone (it never stops before the writer): nothing is known durable.
            for job in flush.jobs {
                job.finish(Err(flush_failed()));
            }
        }
    }

    /// Answers `jobs` with `e` once everything committed before them is durable: nothing of
    /// theirs was written, but their statements may have seen earlier batches.
    fn fail_all(&self, jobs: Vec<Box<dyn WriteJob>>, e: &StoreError) {
        let upto = self.durability.seen();
        self.hand_over(jobs, upto, false, Err(e.clone()));
    }
}

/// What the writer works with.
pub(super) struct Writer<'a> {
    pub(super) conn: &'a Connection,
    pub(super) syncer: Syncer<'a>,
    pub(super) counters: &'a WriteCounters,
    pub(super) hot: Hot<'a>,
    pub(super) marker: &'a Marker,
    /// The authentication epoch as last read, and the file's state it holds for.
    pub(super) epoch: &'a std::sync::Mutex<Option<(super::Commit, i64)>>,
}

/// The open transaction and the requests that ran in it.
#[derive(Default)]
struct Batch {
    jobs: Vec<Box<dyn WriteJob>>,
    /// `BEGIN IMMEDIATE` ran and neither COMMIT nor ROLLBACK since.
    open: bool,
    /// A request failed: each one runs under a savepoint of its own.
    isolated: bool,
    /// The file's state at BEGIN (for the hot-session cache and the epoch).
    begun: Option<super::Commit>,
}

impl Writer<'_> {
    fn rolled_back(&self) {
        if let Some((h, _)) = self.hot {
            h.rolled_back();
        }
    }

    /// Counts a batch that ended (committed, failed or rolled back) with `requests` in it.
    fn count(&self, requests: usize) {
        self.counters.batches.fetch_add(1, Ordering::Relaxed);
        self.counters
            .requests
            .fetch_add(requests as u64, Ordering::Relaxed);
    }

    /// Ends the open batch with `e` for all its requests; nothing of it is written.
    fn abort(&self, b: &mut Batch, e: &StoreError) {
        if b.open && !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        self.rolled_back();
        b.open = false;
        self.count(b.jobs.len());
        self.syncer.fail_all(std::mem::take(&mut b.jobs), e);
    }

    fn begin(&self, b: &mut Batch) -> Result<(), StoreError> {
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(map_err)?;
        b.open = true;
        b.isolated = false;
        EPOCH_WRITTEN.with(|w| w.set(false));
        // Under the write lock: no other connection can commit until this batch has.
        b.begun = self.marker.last_commit();
        Ok(())
    }

    /// Runs `job` in the open batch (opening one if none is).
    ///
    /// Optimistically, every request runs straight in the transaction. A savepoint per request
    /// would copy each page it first touches into the statement journal (a tenth of a create's
    /// CPU, profiled), a price only a failing request needs to pay. When one fails, the batch is
    /// rolled back and run again, each request under its own savepoint, and so are the requests
    /// that join it later. Requests are statements over the database and nothing else, so the
    /// second run starts from the same state as the first and does the same; a request that
    /// fails under its savepoint is undone alone.
    fn add(&self, b: &mut Batch, job: Box<dyn WriteJob>) {
        if self.syncer.durability.failed() {
            // After a failed flush nothing written is known durable: the store takes no more
            // writes.
            self.count(1);
            return self.syncer.fail_all(vec![job], &flush_failed());
        }
        if !b.open
            && let Err(e) = self.begin(b)
        {
            self.count(1);
            return self.syncer.fail_all(vec![job], &e);
        }
        b.jobs.push(job);
        if b.isolated {
            let Some(job) = b.jobs.last_mut() else {
                return;
            };
            if let Err(e) = run_isolated(self.conn, std::slice::from_mut(job), &|| {
                self.rolled_back();
            }) {
                self.abort(b, &e);
            }
            return;
        }
        if b.jobs.last_mut().is_none_or(|job| job.run(self.conn)) {
            return;
        }
        let _ = self.conn.execute_batch("ROLLBACK");
        self.rolled_back();
        b.open = false;
        if b.jobs.len() == 1 {
            // A lone request's transaction was its own: its error is its answer.
            self.count(1);
            let upto = self.syncer.durability.seen();
            return self
                .syncer
                .hand_over(std::mem::take(&mut b.jobs), upto, false, Ok(()));
        }
        self.counters.isolated.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = self.begin(b) {
            return self.abort(b, &e);
        }
        b.isolated = true;
        if let Err(e) = run_isolated(self.conn, &mut b.jobs, &|| self.rolled_back()) {
            self.abort(b, &e);
        }
    }

    /// After a commit from the file's state `begun` to `after`: if it was this writer's alone and
    /// left the `auth_epoch` table alone, the epoch read at `begun` still holds at `after`, so
    /// the next authentication reads no table (and waits for no flush). Every commit made the
    /// next request read it before: 5 % of the workers' time under writes, profiled.
    fn carry_epoch(&self, begun: Option<super::Commit>, after: Option<super::Commit>, wrote: bool) {
        if EPOCH_WRITTEN.with(std::cell::Cell::get) {
            return;
        }
        let (Some(begun), Some(after)) = (begun, after) else {
            return;
        };
        // Each commit that writes moves SQLite's change counter by one: anything else means
        // another connection committed too.
        if after.change_counter() != begun.change_counter().wrapping_add(u32::from(wrote)) {
            return;
        }
        let mut known = super::lock(self.epoch);
        if let Some((at, _)) = known.as_mut()
            && *at == begun
        {
            *at = after;
        }
    }

    /// Commits the open batch and hands it to the sync thread.
    fn commit(&self, b: &mut Batch) {
        if !b.open {
            return;
        }
        b.open = false;
        let jobs = std::mem::take(&mut b.jobs);
        self.count(jobs.len());
        if let Some((h, _)) = self.hot {
            h.before_commit(b.begun);
        }
        let commits = WAL_COMMITS.with(std::cell::Cell::get);
        // Numbered before the COMMIT: a read that sees the commit sees the number (see `durable`).
        let number = self.syncer.durability.begin_commit();
        let committed = self.conn.execute_batch("COMMIT").map_err(map_err);
        if committed.is_err() && !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        // A batch whose statements changed nothing commits without writing to the log.
        let wrote = WAL_COMMITS.with(std::cell::Cell::get) != commits;
        let after = self.marker.last_commit();
        if let Some((h, _)) = self.hot {
            h.after_commit(b.begun, after, committed.is_ok(), wrote, number);
        }
        if committed.is_ok() {
            self.carry_epoch(b.begun, after, wrote);
        }
        self.syncer.hand_over(jobs, number, wrote, committed);
    }
}

pub(super) fn writer_loop(
    w: &Writer<'_>,
    rx: &Receiver<Msg>,
    want_checkpoint: &std::sync::mpsc::SyncSender<()>,
    checkpoints: &CheckpointState,
    gate: &RwLock<()>,
) {
    let conn = w.conn;
    let mut batch = Batch::default();
    let mut last_pages = 0;
    let mut stopping = false;
    while !stopping {
        let Ok(first) = rx.recv() else {
            break;
        };
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            match msg {
                Msg::Write(job) => w.add(&mut batch, job),
                Msg::Flushed => {}
                Msg::Stop => stopping = true,
                Msg::Checkpoint(reply) => {
                    // Commit what is open before it, then checkpoint outside the transaction
                    // (which syncs the log first).
                    w.commit(&mut batch);
                    let before = w.hot.and_then(|(_, m)| m.last_commit());
                    let r = conn
                        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                        .map_err(map_err);
                    if let Some((h, m)) = w.hot {
                        h.rebase(before, m.last_commit());
                    }
                    let _ = reply.send(r);
                }
            }
            if batch.jobs.len() >= MAX_BATCH {
                break;
            }
            next = rx.try_recv().ok();
        }
        // Wait for the flush in flight unless the batch is full or the writer stops.
        if !batch.open
            || !(batch.jobs.len() >= MAX_BATCH
                || stopping
                || w.syncer.durability.flushed_or_wake_me())
        {
            continue;
        }
        w.commit(&mut batch);
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
    // The queue closed without a Stop (cannot happen while the sync thread lives): nothing stays
    // open.
    w.commit(&mut batch);
}

/// Runs every request of `batch` under a savepoint of its own, undoing the ones that fail. An
/// error here means a request could not be isolated from the others: the caller fails the
/// batch rather than risk committing half of it.
fn run_isolated(
    conn: &Connection,
    batch: &mut [Box<dyn WriteJob>],
    rolled_back: &dyn Fn(),
) -> Result<(), StoreError> {
    for job in batch.iter_mut() {
        conn.execute_batch("SAVEPOINT request").map_err(map_err)?;
        if job.run(conn) {
            conn.execute_batch("RELEASE request").map_err(map_err)?;
        } else {
            conn.execute_batch("ROLLBACK TO request; RELEASE request")
                .map_err(map_err)?;
            rolled_back();
        }
    }
    Ok(())
}

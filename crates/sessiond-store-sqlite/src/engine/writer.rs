//! The writer thread: drains the queue and commits each batch in one transaction (group commit).

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{PoisonError, RwLock};

use rusqlite::Connection;
use sessiond_core::store::{StoreError, StoreResult};

use super::checkpoint::{
    CHECKPOINT_PAGES, CheckpointState, RESTART_PAGES, RESTART_TAIL, WAL_COMMITS, WAL_PAGES,
    restart_log,
};
use super::hot::HotCache;
use super::wal_index::Marker;
use crate::map_err;

/// The hot-session cache and the file's commit marker, when the cache is on.
pub(super) type Hot<'a> = Option<(&'a HotCache, &'a Marker)>;

/// Most requests one transaction takes in. Bounds the latency a request can add to the others of
/// its batch; at a few microseconds per statement the fsync still dominates.
const MAX_BATCH: usize = 512;

/// A request queued for the writer.
pub(super) trait WriteJob: Send {
    /// Runs the request's statements; `false` if they failed. May run twice in one batch (see
    /// `commit_batch`); the second run's result is the one answered.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Answers the caller once the batch's fate is known.
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
}

/// What the writer did: transactions committed (or failed) and requests they carried.
#[derive(Debug, Default)]
pub(crate) struct WriteCounters {
    pub(crate) batches: AtomicU64,
    pub(crate) requests: AtomicU64,
    /// Batches run a second time, a savepoint per request, because one of them failed.
    pub(crate) isolated: AtomicU64,
}

pub(super) fn writer_loop(
    conn: &Connection,
    rx: &Receiver<Msg>,
    counters: &WriteCounters,
    want_checkpoint: &std::sync::mpsc::SyncSender<()>,
    checkpoints: &CheckpointState,
    gate: &RwLock<()>,
    hot: Hot<'_>,
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
                    commit_batch(conn, &mut batch, counters, hot);
                    let before = hot.and_then(|(_, m)| m.last_commit());
                    let r = conn
                        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                        .map_err(map_err);
                    if let Some((h, m)) = hot {
                        h.rebase(before, m.last_commit());
                    }
                    let _ = reply.send(r);
                }
            }
            if batch.len() >= MAX_BATCH {
                break;
            }
            next = rx.try_recv().ok();
        }
        commit_batch(conn, &mut batch, counters, hot);
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

fn commit_batch(
    conn: &Connection,
    batch: &mut Vec<Box<dyn WriteJob>>,
    counters: &WriteCounters,
    hot: Hot<'_>,
) {
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
    // Under the write lock: no other connection can commit until this batch has.
    let begun = hot.and_then(|(_, m)| m.last_commit());
    // Optimistically, every request runs straight in the transaction. A savepoint per request
    // would copy each page it first touches into the statement journal (a tenth of a create's
    // CPU, profiled), a price only a failing request needs to pay. When one fails, the batch is
    // rolled back and run again, each request under its own savepoint. Requests are statements
    // over the database and nothing else, so the second run starts from the same state as the
    // first and does the same; a request that fails under its savepoint is undone alone.
    let rolled_back = || {
        if let Some((h, _)) = hot {
            h.rolled_back();
        }
    };
    if !batch.iter_mut().all(|job| job.run(conn)) {
        let _ = conn.execute_batch("ROLLBACK");
        rolled_back();
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
        let isolated = run_isolated(conn, batch, &rolled_back);
        if let Err(e) = isolated {
            let _ = conn.execute_batch("ROLLBACK");
            rolled_back();
            return fail_all(batch, &e);
        }
    }
    if let Some((h, _)) = hot {
        h.before_commit(begun);
    }
    let commits = WAL_COMMITS.with(std::cell::Cell::get);
    let committed = conn.execute_batch("COMMIT").map_err(map_err);
    if committed.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    if let Some((h, m)) = hot {
        // A batch whose statements changed nothing commits without writing to the log.
        let wrote = WAL_COMMITS.with(std::cell::Cell::get) != commits;
        h.after_commit(begun, m.last_commit(), committed.is_ok(), wrote);
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

//! The checkpointer thread, and the log restart the writer runs when its passes fall behind.

use std::fs::File;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::mpsc::Receiver;

use rusqlite::Connection;

use super::BUSY_TIMEOUT;

/// WAL size (pages) at which the checkpointer thread is asked to copy the log into the database.
/// Checkpoints run on their own connection and thread, never on the writer: a checkpoint inside
/// the writer's commit (SQLite's automatic one) stalls every queued request for its duration. A
/// larger log than SQLite's default (1,000 pages) lets pages written many times be copied once.
pub(super) const CHECKPOINT_PAGES: i32 = 4096;

/// WAL size (pages) at which the writer itself restarts the log (see `restart_log`): past two
/// thresholds, the checkpointer's passes have not let it restart on its own.
pub(super) const RESTART_PAGES: i32 = 2 * CHECKPOINT_PAGES;

/// Pages a log restart may copy itself while reads wait; more, and the checkpointer copies first.
pub(super) const RESTART_TAIL: i32 = 256;

/// How long a log restart waits for the checkpointer's lock; reads are paused meanwhile.
pub(super) const RESTART_WAIT: std::time::Duration = std::time::Duration::from_millis(20);

thread_local! {
    /// Pages in the WAL after the writer thread's latest commit (set by the WAL hook, which runs
    /// on the committing thread).
    pub(super) static WAL_PAGES: std::cell::Cell<i32> = const { std::cell::Cell::new(0) };

    /// Commits on this thread that wrote to the WAL (SQLite calls the WAL hook after each one,
    /// and after no commit that wrote nothing).
    pub(super) static WAL_COMMITS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

pub(super) fn note_wal_pages(
    _: &rusqlite::hooks::Wal,
    pages: std::ffi::c_int,
) -> rusqlite::Result<()> {
    WAL_PAGES.with(|p| p.set(pages));
    WAL_COMMITS.with(|n| n.set(n.get().wrapping_add(1)));
    Ok(())
}

/// Copies the WAL into the database when the writer asks, without blocking it (PASSIVE: frames
/// still needed by a reader or not yet committed stay for the next round). Ends with the writer.
///
/// After a pass that copied frames it also flushes the database file through `database` (a
/// descriptor from `keep_open`).
/// SQLite syncs the file only when a checkpoint copies the log to its very end, which under
/// constant writes is the writer's log restart, never a pass here: every page the passes had
/// copied then reached the disk inside the writer's pause (measured growing to 12 ms, with reads
/// held). Flushed here, off the writer, the restart syncs only its short tail. Nothing depends on
/// this for durability: the log is kept until SQLite's own sync.
pub(super) fn checkpoint_loop(
    conn: &Connection,
    database: Option<&File>,
    asked: &Receiver<()>,
    state: &CheckpointState,
) {
    while asked.recv().is_ok() {
        state.busy.store(true, Ordering::Release);
        // The third column: frames of the log now copied into the database.
        match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            row.get::<_, i64>(2)
        }) {
            Ok(copied) => {
                let before = state
                    .copied
                    .swap(i32::try_from(copied).unwrap_or(0), Ordering::AcqRel);
                if i64::from(before) != copied
                    && let Some(database) = database
                {
                    match database.sync_data() {
                        Ok(()) => {
                            state.flushes.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => tracing::warn!(
                            error = %e,
                            "flushing the SQLite database file failed; SQLite syncs it at the next log restart"
                        ),
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "SQLite checkpoint failed; retried at the next threshold");
            }
        }
        state.busy.store(false, Ordering::Release);
    }
}

/// What the checkpointer thread tells the writer.
#[derive(Default)]
pub(super) struct CheckpointState {
    /// A pass is running.
    pub(super) busy: AtomicBool,
    /// Frames of the log its last pass had copied.
    pub(super) copied: AtomicI32,
    /// Flushes of the database file after a pass.
    pub(super) flushes: AtomicU64,
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
pub(super) fn restart_log(conn: &Connection) -> bool {
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

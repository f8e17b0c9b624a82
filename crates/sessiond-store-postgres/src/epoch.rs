//! The authentication epoch, kept in memory by a LISTEN on the channel the epoch trigger notifies.
//!
//! `auth_epoch()` is asked on every authenticated request; answering from memory keeps
//! authentication free of any database round trip. The value is trusted only while the listener
//! is connected and has read the current value after its LISTEN took effect; otherwise callers
//! read the table. A notification lost while the listener reconnects is covered by re-reading the
//! value every second, so another node's key or application change is seen within that bound (in
//! practice within a notification's latency, milliseconds).

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::pool::ConnPool;
use sqlx::postgres::PgListener;

use crate::map_err;
use sessiond_core::store::StoreResult;

/// The channel `auth_epoch_bump()` notifies with the new value.
pub(crate) const CHANNEL: &str = "sessiond_auth_epoch";
/// How often the value is re-read in case a notification was lost.
const RECHECK: Duration = Duration::from_secs(1);
/// Wait before reconnecting a failed listener.
const RETRY: Duration = Duration::from_millis(500);

#[derive(Debug, Default)]
pub(crate) struct EpochWatch {
    value: AtomicI64,
    live: AtomicBool,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl EpochWatch {
    /// The epoch from memory, if the listener vouches for it.
    pub(crate) fn current(&self) -> Option<i64> {
        self.live
            .load(Ordering::Acquire)
            .then(|| self.value.load(Ordering::Acquire))
    }

    fn set(&self, v: i64) {
        // Notifications and re-reads may arrive out of order; the epoch only grows.
        self.value.fetch_max(v, Ordering::AcqRel);
    }

    fn lost(&self) {
        self.live.store(false, Ordering::Release);
    }

    pub(crate) fn stop(&self) {
        self.lost();
        if let Ok(mut t) = self.task.lock()
            && let Some(t) = t.take()
        {
            t.abort();
        }
    }
}

pub(crate) async fn read(pool: &ConnPool) -> StoreResult<i64> {
    use sqlx::Row;
    let row = sqlx::query("SELECT value FROM auth_epoch WHERE id = 1")
        .fetch_optional(pool)
        .await
        .map_err(map_err)?;
    row.map(|r| r.try_get::<i64, _>("value").map_err(map_err))
        .transpose()
        .map(Option::unwrap_or_default)
}

pub(crate) fn spawn_watcher(url: String, pool: ConnPool, watch: Arc<EpochWatch>) {
    // Outside a runtime (never the case in the server) the table is simply read every time.
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let task = rt.spawn(watch_loop(url, pool, watch.clone()));
    if let Ok(mut t) = watch.task.lock() {
        *t = Some(task);
    }
}

async fn watch_loop(url: String, pool: ConnPool, watch: Arc<EpochWatch>) {
    loop {
        watch.lost();
        let mut listener = match PgListener::connect(&url).await {
            Ok(l) => l,
            Err(e) => {
                tracing::debug!(error = %e, "auth epoch listener cannot connect; retrying");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        if let Err(e) = listener.listen(CHANNEL).await {
            tracing::debug!(error = %e, "auth epoch LISTEN failed; retrying");
            tokio::time::sleep(RETRY).await;
            continue;
        }
        // LISTEN is active: any change from here on is notified, so the value read now plus
        // the notifications that follow are complete.
        match read(&pool).await {
            Ok(v) => {
                watch.set(v);
                watch.live.store(true, Ordering::Release);
            }
            Err(_) => {
                tokio::time::sleep(RETRY).await;
                continue;
            }
        }
        let mut recheck = tokio::time::interval(RECHECK);
        recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                n = listener.try_recv() => match n {
                    Ok(Some(n)) => {
                        if let Ok(v) = n.payload().parse::<i64>() {
                            watch.set(v);
                        }
                    }
                    // The connection dropped: notifications may have been missed.
                    Ok(None) | Err(_) => break,
                },
                _ = recheck.tick() => match read(&pool).await {
                    Ok(v) => watch.set(v),
                    Err(_) => break,
                },
            }
        }
    }
}

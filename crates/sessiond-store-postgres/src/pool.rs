//! The connection pool: sqlx's native PostgreSQL connections, without sqlx's pool.
//!
//! sqlx's `Pool` pings a connection on every checkout (`test_before_acquire`) and again on every
//! return — two extra round trips per query, measured on the wire by bench/pgmeter.py (3 round
//! trips for a one-statement read). Across nodes that is PostgreSQL's load, not just latency, so
//! this pool hands out connections as they are: a read is one round trip.
//!
//! What the pings protected is kept another way:
//! - a connection that saw a connection-level error (I/O, TLS, protocol) is not trusted again
//!   untested: [`crate::map_err`] bumps a generation counter, and an idle connection returned
//!   during an older generation is pinged before reuse (and dropped if that fails);
//! - a connection idle for longer than [`STALE`] is pinged before reuse (idle-timeouts of
//!   firewalls and poolers);
//! - a request cancelled mid-query leaves responses unread or a transaction open: sqlx drains
//!   pending responses before its next statement, and [`Tx`]'s drop queues the ROLLBACK, so the
//!   next borrower starts clean.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use sqlx::postgres::{
    PgConnectOptions, PgConnection, PgQueryResult, PgRow, PgStatement, PgTransactionManager,
    PgTypeInfo,
};
use sqlx::{Connection, Either, Error, Execute, Executor, Postgres, SqlStr};
// sqlx does not re-export the trait; its transaction bookkeeping must stay in step with ours.
use sqlx_core::transaction::TransactionManager;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// An idle connection older than this is pinged before it is handed out again.
const STALE: Duration = Duration::from_secs(30);

/// Bumped on every connection-level error anywhere in the process (see module docs).
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// Records that some connection failed at the connection level.
pub(crate) fn connection_failed() {
    GENERATION.fetch_add(1, Ordering::AcqRel);
}

struct Idle {
    conn: PgConnection,
    since: Instant,
    generation: u64,
}

struct Inner {
    connect: PgConnectOptions,
    idle: Mutex<Vec<Idle>>,
    permits: Arc<Semaphore>,
    acquire_timeout: Duration,
    open: AtomicU32,
    closed: AtomicBool,
}

/// A bounded set of connections to one database.
#[derive(Clone)]
pub(crate) struct ConnPool {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ConnPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (open, idle) = self.stats();
        f.debug_struct("ConnPool")
            .field("open", &open)
            .field("idle", &idle)
            .finish()
    }
}

impl ConnPool {
    /// A pool of at most `max` connections; connects once to fail fast on a bad URL or server.
    pub(crate) async fn connect(
        connect: PgConnectOptions,
        max: u32,
        acquire_timeout: Duration,
    ) -> Result<ConnPool, Error> {
        let pool = ConnPool {
            inner: Arc::new(Inner {
                connect,
                idle: Mutex::new(Vec::new()),
                permits: Arc::new(Semaphore::new(max.max(1) as usize)),
                acquire_timeout,
                open: AtomicU32::new(0),
                closed: AtomicBool::new(false),
            }),
        };
        drop(pool.acquire().await?);
        Ok(pool)
    }

    /// Borrows a connection. The acquire timeout bounds everything a borrow may wait for — a
    /// free slot, the ping of a suspect connection, a new connection — so that while the
    /// database is unreachable callers are told so within it instead of queueing behind
    /// connection attempts.
    pub(crate) async fn acquire(&self) -> Result<Lease, Error> {
        let inner = &self.inner;
        if inner.closed.load(Ordering::Acquire) {
            return Err(Error::PoolClosed);
        }
        tokio::time::timeout(inner.acquire_timeout, self.acquire_unbounded())
            .await
            .map_err(|_| Error::PoolTimedOut)?
    }

    async fn acquire_unbounded(&self) -> Result<Lease, Error> {
        let inner = &self.inner;
        let permit = inner
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::PoolClosed)?;
        let generation = GENERATION.load(Ordering::Acquire);
        loop {
            let next = inner.idle.lock().ok().and_then(|mut idle| idle.pop());
            let Some(mut idle) = next else { break };
            let suspect = idle.generation != generation || idle.since.elapsed() > STALE;
            if suspect && idle.conn.ping().await.is_err() {
                inner.open.fetch_sub(1, Ordering::AcqRel);
                continue;
            }
            return Ok(Lease {
                conn: Some(idle.conn),
                pool: self.inner.clone(),
                generation,
                _permit: permit,
            });
        }
        let conn = PgConnection::connect_with(&inner.connect).await?;
        crate::nodelay::set_for_peer_port(inner.connect.get_port());
        inner.open.fetch_add(1, Ordering::AcqRel);
        Ok(Lease {
            conn: Some(conn),
            pool: self.inner.clone(),
            generation,
            _permit: permit,
        })
    }

    /// Starts a transaction on a borrowed connection.
    pub(crate) async fn begin(&self) -> Result<Tx, Error> {
        let mut lease = self.acquire().await?;
        PgTransactionManager::begin(&mut lease, None).await?;
        Ok(Tx { lease, open: true })
    }

    /// (open connections, idle connections).
    pub(crate) fn stats(&self) -> (u32, usize) {
        let idle = self.inner.idle.lock().map_or(0, |i| i.len());
        (self.inner.open.load(Ordering::Acquire), idle)
    }

    /// Refuses new borrowers and closes the idle connections; borrowed ones close on return.
    pub(crate) async fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        self.inner.permits.close();
        let idle: Vec<Idle> = self
            .inner
            .idle
            .lock()
            .map(|mut i| std::mem::take(&mut *i))
            .unwrap_or_default();
        for i in idle {
            self.inner.open.fetch_sub(1, Ordering::AcqRel);
            let _ = i.conn.close().await;
        }
    }
}

/// A borrowed connection, returned to the pool when dropped.
pub(crate) struct Lease {
    conn: Option<PgConnection>,
    pool: Arc<Inner>,
    /// The error generation when borrowed: an error during the loan makes it stale.
    generation: u64,
    _permit: OwnedSemaphorePermit,
}

impl Deref for Lease {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        // Present until drop, which is the only place it is taken.
        self.conn.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl DerefMut for Lease {
    fn deref_mut(&mut self) -> &mut PgConnection {
        self.conn.as_mut().unwrap_or_else(|| unreachable!())
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        if self.pool.closed.load(Ordering::Acquire) {
            // Dropped without a graceful close: the server sees the socket end, as on a crash.
            self.pool.open.fetch_sub(1, Ordering::AcqRel);
            return;
        }
        if let Ok(mut idle) = self.pool.idle.lock() {
            idle.push(Idle {
                conn,
                since: Instant::now(),
                generation: self.generation,
            });
        } else {
            self.pool.open.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// A transaction on a borrowed connection. Statements run on `&mut *tx`; dropping it without
/// [`Tx::commit`] rolls back (the ROLLBACK is queued and sent before the connection's next use).
pub(crate) struct Tx {
    lease: Lease,
    open: bool,
}

impl Tx {
    pub(crate) async fn commit(mut self) -> Result<(), Error> {
        PgTransactionManager::commit(&mut self.lease).await?;
        self.open = false;
        Ok(())
    }

    pub(crate) async fn rollback(mut self) -> Result<(), Error> {
        PgTransactionManager::rollback(&mut self.lease).await?;
        self.open = false;
        Ok(())
    }
}

impl Deref for Tx {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.lease
    }
}

impl DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.lease
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        if self.open {
            PgTransactionManager::start_rollback(&mut self.lease);
        }
    }
}

/// One statement on a borrowed connection, so that call sites can pass `&pool` wherever sqlx
/// takes an executor (as with sqlx's own pool). `execute`, `fetch_all` and the rest are sqlx's
/// defaults, which go through `fetch_many` (or `fetch_optional`).
impl<'p> Executor<'p> for &'p ConnPool {
    type Database = Postgres;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxStream<'e, Result<Either<PgQueryResult, PgRow>, Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        // Results are collected before the connection is returned; no caller streams a result
        // set large enough for that to matter (listings are paged).
        futures::stream::once(async move {
            let mut lease = self.acquire().await?;
            let all: Vec<_> = (&mut *lease).fetch_many(query).try_collect().await?;
            Ok::<_, Error>(futures::stream::iter(all.into_iter().map(Ok)))
        })
        .try_flatten()
        .boxed()
    }

    fn fetch_optional<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, Result<Option<PgRow>, Error>>
    where
        'p: 'e,
        E: 'q + Execute<'q, Postgres>,
    {
        Box::pin(async move {
            let mut lease = self.acquire().await?;
            (&mut *lease).fetch_optional(query).await
        })
    }

    fn prepare_with<'e>(
        self,
        sql: SqlStr,
        parameters: &'e [PgTypeInfo],
    ) -> BoxFuture<'e, Result<PgStatement, Error>>
    where
        'p: 'e,
    {
        Box::pin(async move {
            let mut lease = self.acquire().await?;
            (&mut *lease).prepare_with(sql, parameters).await
        })
    }
}

#[cfg(test)]
mod tests {
    //! Against the PostgreSQL server of `SESSIOND_TEST_DATABASE_URL` (mandatory when `CI=true`),
    //! using only temporary tables, on a one-connection pool so that every step reuses the
    //! connection the previous one left behind.

    use std::time::Duration;

    use sqlx::postgres::PgConnectOptions;
    use sqlx::{Connection, Executor, Row};

    use super::ConnPool;

    fn base_url() -> Option<String> {
        match std::env::var("SESSIOND_TEST_DATABASE_URL") {
            Ok(u) if !u.trim().is_empty() => Some(u),
            _ => {
                let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
                assert!(!ci, "SESSIOND_TEST_DATABASE_URL must be set when CI=true");
                None
            }
        }
    }

    async fn one_connection_pool() -> Option<ConnPool> {
        let url = base_url()?;
        let opts: PgConnectOptions = url.parse().unwrap_or_else(|e| panic!("{url}: {e}"));
        Some(
            ConnPool::connect(opts, 1, Duration::from_secs(5))
                .await
                .unwrap_or_else(|e| panic!("connect: {e}")),
        )
    }

    async fn backend_pid(pool: &ConnPool) -> i32 {
        let row = pool
            .fetch_one("SELECT pg_backend_pid() AS pid")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        row.get("pid")
    }

    #[tokio::test]
    async fn a_cancelled_statement_leaves_the_connection_usable() {
        let Some(pool) = one_connection_pool().await else {
            return;
        };
        let pid = backend_pid(&pool).await;
        let cancelled = tokio::time::timeout(
            Duration::from_millis(20),
            pool.execute("SELECT pg_sleep(0.3)"),
        )
        .await;
        assert!(cancelled.is_err(), "the sleep should outlast the timeout");
        // The same connection answers the next statement with its own result, not the
        // sleep's leftovers.
        let row = pool
            .fetch_one("SELECT 42::int4 AS v, pg_backend_pid() AS pid")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(row.get::<i32, _>("v"), 42);
        assert_eq!(row.get::<i32, _>("pid"), pid);
    }

    #[tokio::test]
    async fn a_dropped_transaction_is_rolled_back_before_the_next_borrower() {
        let Some(pool) = one_connection_pool().await else {
            return;
        };
        pool.execute("CREATE TEMP TABLE pool_t (x int4)")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        {
            let mut tx = pool.begin().await.unwrap_or_else(|e| panic!("{e}"));
            (&mut *tx)
                .execute("INSERT INTO pool_t VALUES (1)")
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            // Dropped without commit, as when a request is cancelled mid-transaction.
        }
        let mut tx = pool.begin().await.unwrap_or_else(|e| panic!("{e}"));
        (&mut *tx)
            .execute("INSERT INTO pool_t VALUES (2)")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        tx.commit().await.unwrap_or_else(|e| panic!("{e}"));
        let rows = pool
            .fetch_all("SELECT x FROM pool_t ORDER BY x")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let xs: Vec<i32> = rows.iter().map(|r| r.get("x")).collect();
        assert_eq!(xs, vec![2]);
    }

    #[tokio::test]
    async fn a_killed_backend_costs_at_most_one_failed_statement() {
        let Some(pool) = one_connection_pool().await else {
            return;
        };
        let Some(url) = base_url() else { return };
        let pid = backend_pid(&pool).await;
        let mut admin = sqlx::PgConnection::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        sqlx::query("SELECT pg_terminate_backend($1)")
            .bind(pid)
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        // Termination is asynchronous: wait until the backend is gone.
        for _ in 0..200 {
            let alive: i64 =
                sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE pid = $1")
                    .bind(pid)
                    .fetch_one(&mut admin)
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
            if alive == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let _ = admin.close().await;
        // The pool does not test connections on checkout, so the first statement may meet the
        // dead socket; its error marks the pool's connections for a test before reuse.
        if let Err(e) = pool.fetch_one("SELECT 1").await {
            crate::map_err(e);
        }
        for _ in 0..3 {
            let now = backend_pid(&pool).await;
            assert_ne!(now, pid, "a new backend serves the pool");
        }
    }
}

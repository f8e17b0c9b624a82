//! PostgreSQL storage for sessiond (scale-out: several nodes on one database): every store trait
//! of `sessiond-core`. The embedded default, SQLite, is `sessiond-store-sqlite`.
//!
//! # Layout
//! - [`SqlStore`]: connection pool and migrations; [`Backend`] picks a backend by URL scheme.
//! - `pool`: its own connection pool (no ping per checkout; dead connections found by error
//!   generation) and `Tx`; `nodelay`: TCP_NODELAY on its sockets, which sqlx leaves off.
//! - `epoch`: the authentication epoch kept in memory, refreshed by LISTEN/NOTIFY.
//! - `tenancy`: meta values, applications and secret keys.
//! - `ops`: sealed-value enumeration, job-run claims and health.
//! - `login`, `vault`, `verification`: users, sessions, keys, templates, the token vault, the
//!   impersonation audit trail and identity-verification sessions. Concurrent session creations
//!   are written together, one multi-row statement per group (`login::grouped`).
//! - `events`: the outbox: events written inside the writes that cause them (`event_cte!` makes
//!   the event part of a single statement), read in commit order by transaction id.
//! - `webhooks`: webhook endpoints, their deliveries (claimed with `FOR UPDATE SKIP LOCKED` and
//!   leases, so several nodes send each once) and attempts.
//! - `console`: the operator audit log and counts over the outbox.
//!
//! Queries go through sqlx's native PostgreSQL driver: binary protocol, every statement prepared
//! once per connection and cached (a warm read is one round trip: Bind/Execute/Sync), values bound
//! as their native types. Columns are TEXT, BIGINT (times are epoch milliseconds, as in the core)
//! and BYTEA; see docs/design/storage-contract.md for why this driver.
//!
//! # Durability of an acknowledged write
//! Whatever the server's `synchronous_commit` gives (on by default: the commit record is flushed
//! before the acknowledgement; with synchronous replication, also on a standby).

mod console;
mod epoch;
mod events;
mod login;
mod nodelay;
mod ops;
mod pool;
mod tenancy;
mod vault;
mod verification;
mod webhooks;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sessiond_core::store::{StoreError, StoreResult};
use sqlx::ConnectOptions;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::PgConnectOptions;

use crate::pool::ConnPool;

/// The migrations of each backend, compiled in: (version, description, SQL). Versions and
/// descriptions are those sqlx derives from the file names (`0001_foundation.sql`), so databases
/// migrated by earlier builds — which used sqlx's `migrate!` macro — see the same history and
/// checksums. Listing them here instead of using that macro keeps sqlx's compile-time macro crate
/// (which builds a second copy of SQLite, rustls and aws-lc for the host) out of the build.
macro_rules! migrations {
    ($dir:literal: $($version:literal $name:literal),+ $(,)?) => {
        &[$(($version, $name, include_str!(concat!("../migrations/", $dir, "/", $name, ".sql")))),+]
    };
}

type MigrationFiles = &'static [(i64, &'static str, &'static str)];

const POSTGRES_MIGRATIONS: MigrationFiles = migrations!("postgres":
    1 "0001_foundation", 2 "0002_login_sessions", 3 "0003_equisoft", 4 "0004_verification",
    5 "0005_auth_epoch", 6 "0006_session_lapse", 7 "0007_sealed_pii",
    8 "0008_session_generations", 9 "0009_session_purges", 10 "0010_events", 11 "0011_webhooks",
    12 "0012_console");

/// This backend's migrations.
pub(crate) fn migrator() -> Migrator {
    migrations(POSTGRES_MIGRATIONS)
}

fn migrations(files: MigrationFiles) -> Migrator {
    Migrator::with_migrations(
        files
            .iter()
            .map(|&(version, name, sql)| {
                let description = name
                    .split_once('_')
                    .map_or(name, |(_, d)| d)
                    .replace('_', " ");
                Migration::new(
                    version,
                    description.into(),
                    MigrationType::Simple,
                    sqlx::SqlStr::from_static(sql),
                    false,
                )
            })
            .collect(),
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// Picks the backend from a database URL's scheme.
    pub fn from_url(url: &str) -> Option<Backend> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Pool settings.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    pub max_connections: u32,
    /// Longest a statement waits for a connection: a free one, or a new one while the database
    /// is being reached. Past it the store answers `Unavailable`.
    pub acquire_timeout: Duration,
    /// Keep the authentication epoch in memory (a LISTEN connection and a re-read a second).
    /// Only a store that authenticates requests needs it; without it `auth_epoch()` reads the
    /// table.
    pub watch_auth_epoch: bool,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(1),
            watch_auth_epoch: true,
        }
    }
}

/// A store over one PostgreSQL database.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: ConnPool,
    epoch: Arc<epoch::EpochWatch>,
    /// Concurrent session inserts, grouped into one statement (see `login::grouped`).
    grouped: Option<Arc<login::grouped::GroupedInserts>>,
}

impl SqlStore {
    /// Connects to PostgreSQL. Does not migrate.
    pub async fn connect(url: &str, opts: &PoolOptions) -> Result<Self, StoreError> {
        if Backend::from_url(url) != Some(Backend::Postgres) {
            return Err(StoreError::backend(
                "database URL must start with postgres:// (SQLite is sessiond-store-sqlite)",
            ));
        }
        let url = url.to_owned();
        let connect = PgConnectOptions::from_str(&url)
            .map_err(|e| StoreError::backend_caused("invalid database URL", e))?
            .application_name("sessiond")
            // Room for every statement the store issues, so none is re-prepared under load.
            .statement_cache_capacity(512)
            .disable_statement_logging();
        let pool = ConnPool::connect(connect, opts.max_connections, opts.acquire_timeout)
            .await
            .map_err(map_err)?;
        let epoch = Arc::new(epoch::EpochWatch::default());
        if opts.watch_auth_epoch {
            epoch::spawn_watcher(url, pool.clone(), epoch.clone());
        }
        let grouped = login::grouped::GroupedInserts::start(pool.clone());
        Ok(SqlStore {
            pool,
            epoch,
            grouped,
        })
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await.map_err(map_err)?;
        migrator()
            .run(&mut *conn)
            .await
            .map_err(|e| StoreError::backend_caused("migration failed", e))
    }

    /// (open connections, idle connections), for the pool gauges.
    pub fn pool_stats(&self) -> (u32, usize) {
        self.pool.stats()
    }

    pub async fn close(&self) {
        self.epoch.stop();
        self.pool.close().await;
    }

    fn epoch_from_memory(&self) -> Option<i64> {
        self.epoch.current()
    }

    pub(crate) fn grouped(&self) -> Option<&login::grouped::GroupedInserts> {
        self.grouped.as_deref()
    }

    pub(crate) fn pool(&self) -> &ConnPool {
        &self.pool
    }

    /// Every row of `q`, each decoded by `f`.
    pub(crate) async fn rows<T>(
        &self,
        q: PgQuery<'_>,
        f: impl Fn(&sqlx::postgres::PgRow) -> StoreResult<T>,
    ) -> StoreResult<Vec<T>> {
        let rows = q.fetch_all(self.pool()).await.map_err(map_err)?;
        rows.iter().map(f).collect()
    }

    /// The row of `q`, if any, decoded by `f`.
    pub(crate) async fn row<T>(
        &self,
        q: PgQuery<'_>,
        f: impl Fn(&sqlx::postgres::PgRow) -> StoreResult<T>,
    ) -> StoreResult<Option<T>> {
        let row = q.fetch_optional(self.pool()).await.map_err(map_err)?;
        row.as_ref().map(f).transpose()
    }

    /// Runs `q`; how many rows it changed.
    pub(crate) async fn affected(&self, q: PgQuery<'_>) -> StoreResult<u64> {
        let done = q.execute(self.pool()).await.map_err(map_err)?;
        Ok(done.rows_affected())
    }
}

/// A statement with its bound values, ready to run.
pub(crate) type PgQuery<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// A stored value that does not decode: a backend error naming what (the text is for logs only).
pub(crate) use sessiond_store_sql::rows::corrupt;

/// Column `col` of `row`, with driver errors mapped onto the store contract.
pub(crate) fn get<'r, T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>>(
    row: &'r sqlx::postgres::PgRow,
    col: &str,
) -> StoreResult<T> {
    use sqlx::Row;
    row.try_get::<T, _>(col).map_err(map_err)
}

/// A PostgreSQL row as the shared decoders in `sessiond_store_sql::rows` read it.
pub(crate) struct Pg<'a>(pub &'a sqlx::postgres::PgRow);

sessiond_store_sql::impl_row!(Pg<'_>, get, flag: bool);

/// Column `i` of `row`, by position (for `impl_row_at!`).
fn get_at<'r, T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>>(
    row: &'r sqlx::postgres::PgRow,
    i: usize,
) -> StoreResult<T> {
    use sqlx::Row;
    row.try_get::<T, _>(i).map_err(map_err)
}

sessiond_store_sql::impl_row_at!(Pg<'_>, get_at);

/// Maps driver errors onto the store contract: unique violations are conflicts, connectivity
/// problems are "unavailable", everything else is a backend error (its text is for logs only).
pub(crate) fn map_err(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        sqlx::Error::Database(db) if is_busy(db.code().as_deref()) => {
            if ends_connection(db.code().as_deref()) {
                pool::connection_failed();
            }
            StoreError::unavailable_caused(
                "PostgreSQL is busy or going away",
                sqlx::Error::Database(db),
            )
        }
        e @ (sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)) => {
            if !matches!(e, sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed) {
                pool::connection_failed();
            }
            StoreError::unavailable_caused("PostgreSQL cannot be reached", e)
        }
        other => StoreError::backend_caused("PostgreSQL failed", other),
    }
}

/// Whether a store error is PostgreSQL refusing a row whose parent is gone (a foreign key).
pub(crate) fn is_foreign_key(e: &StoreError) -> bool {
    let StoreError::Backend(f) = e else {
        return false;
    };
    f.cause()
        .and_then(|c| c.downcast_ref::<sqlx::Error>())
        .and_then(sqlx::Error::as_database_error)
        .is_some_and(|db| db.is_foreign_key_violation())
}

/// PostgreSQL serialization failures and deadlocks, connection exceptions, operator
/// intervention (shutdown, restart), too many connections: worth retrying later.
fn is_busy(code: Option<&str>) -> bool {
    matches!(code, Some("40001" | "40P01" | "53300")) || ends_connection(code)
}

/// Errors after which the server has closed the connection: class 08 (connection exception)
/// and 57P (admin/crash shutdown, cannot connect now).
fn ends_connection(code: Option<&str>) -> bool {
    code.is_some_and(|c| c.starts_with("08") || c.starts_with("57P"))
}

#[cfg(test)]
mod tests {
    use super::POSTGRES_MIGRATIONS;

    /// Every file in `migrations/postgres` is listed, in order, and nothing else is.
    #[test]
    fn compiled_in_migrations_match_the_migration_folder() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/postgres");
        let listed: Vec<(i64, &str)> = POSTGRES_MIGRATIONS.iter().map(|m| (m.0, m.1)).collect();
        assert_eq!(
            sessiond_store_sql::check_migration_list(&dir, &listed),
            Ok(())
        );
    }
}

//! The embedded SQLite backend of sessiond: every store trait of `sessiond-core`, on one file.
//!
//! # Layout
//! - `engine`: read connections used on the calling thread; one writer thread that commits
//!   queued requests in batches (group commit); a failing request is undone alone; the file's
//!   last commit, read from the wal-index without a transaction.
//! - `migrate`: the schema migrations, compiled in, recorded in the same history table earlier
//!   builds (sqlx's migrator) used.
//! - `tenancy` (meta, applications, keys), `login` (users, sessions, signing keys, templates),
//!   `vault` (session deletion, token vault, impersonation audit), `verification`, `ops`
//!   (sealed-value enumeration, job claims, health).
//! - `events`: the outbox: events appended inside the writes that cause them, read in sequence order.
//! - `webhooks`: webhook endpoints, their deliveries (queued from the outbox, claimed under leases)
//!   and attempts.
//! - `console`: the operator audit log and counts over the outbox (statements shared with
//!   PostgreSQL in `sessiond-store-sql`).
//!
//! Durability: a write is acknowledged only after the COMMIT of its batch returned with
//! `synchronous = FULL` (see docs/design/storage-contract.md).

mod console;
mod engine;
mod events;
mod login;
mod migrate;
mod ops;
mod tenancy;
mod vault;
mod verification;
mod webhooks;

use std::path::{Path, PathBuf};

use rusqlite::types::{ToSqlOutput, Value};
use rusqlite::{Connection, ErrorCode, Row};
use sessiond_core::store::{StoreError, StoreResult};

use crate::engine::{Commit, Engine};

/// Sessions kept in memory with their users by default (see `engine::hot`): about 0.75 KB each when full.
pub const DEFAULT_SESSION_CACHE_ENTRIES: usize = 100_000;

/// A store over one SQLite database file.
pub struct SqliteStore {
    engine: Engine,
    /// The authentication epoch with the file's state it was read in (see `auth_epoch`).
    epoch: std::sync::Mutex<Option<(Commit, i64)>>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

/// The database file a `sqlite:` URL names (`sqlite://path?opts`, `sqlite:path`); options are
/// ignored (the file is always created if missing, and opened read-write).
pub fn path_from_url(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && !path.starts_with(':')).then(|| PathBuf::from(path))
}

impl SqliteStore {
    /// Opens the database file (creating it, mode 0600, if missing), with the default
    /// hot-session cache. Does not migrate.
    pub fn open(path: &Path) -> StoreResult<SqliteStore> {
        SqliteStore::open_with(path, DEFAULT_SESSION_CACHE_ENTRIES)
    }

    /// [`SqliteStore::open`] with a hot-session cache of `session_cache_entries` sessions
    /// (0: none).
    pub fn open_with(path: &Path, session_cache_entries: usize) -> StoreResult<SqliteStore> {
        Ok(SqliteStore {
            engine: Engine::open(path, session_cache_entries)?,
            epoch: std::sync::Mutex::new(None),
        })
    }

    /// Opens the file a `sqlite:` URL names, with the default hot-session cache.
    pub fn open_url(url: &str) -> StoreResult<SqliteStore> {
        SqliteStore::open_url_with(url, DEFAULT_SESSION_CACHE_ENTRIES)
    }

    /// [`SqliteStore::open_url`] with a hot-session cache of `session_cache_entries` sessions.
    pub fn open_url_with(url: &str, session_cache_entries: usize) -> StoreResult<SqliteStore> {
        let path = path_from_url(url).ok_or_else(|| {
            StoreError::backend(format!(
                "`{url}` does not name a database file (sqlite://PATH)"
            ))
        })?;
        SqliteStore::open_with(&path, session_cache_entries)
    }

    /// Sessions the hot-session cache holds.
    pub fn cached_sessions(&self) -> usize {
        self.engine.hot().map_or(0, |h| h.len())
    }

    /// (sessions held, look-ups answered from memory, look-ups that read the database) of the
    /// hot-session cache; `None` when it is off.
    pub fn session_cache_stats(&self) -> Option<(usize, u64, u64)> {
        self.engine.hot().map(|h| {
            let (hits, misses) = h.counts();
            (h.len(), hits, misses)
        })
    }

    /// Applies pending migrations (in one transaction of the writer).
    pub async fn migrate(&self) -> StoreResult<()> {
        self.engine.write(migrate::run).await
    }

    /// (open connections, idle connections), for the pool gauges.
    pub fn pool_stats(&self) -> (u32, usize) {
        self.engine.stats()
    }

    /// (write transactions committed or failed, write requests they carried) since opening.
    pub fn write_stats(&self) -> (u64, u64) {
        self.engine.write_counts()
    }

    /// Finishes queued writes and closes the file.
    pub async fn close(&self) {
        self.engine.close();
    }

    async fn write<R, F>(&self, f: F) -> StoreResult<R>
    where
        F: Fn(&Connection) -> StoreResult<R> + Send + 'static,
        R: Send + 'static,
    {
        self.engine.write(f).await
    }

    /// Runs a statement on one row (`?1` the application, `?2` the id); returns whether it
    /// matched, and writes `event` with it if so.
    async fn write_one(
        &self,
        sql: &'static str,
        app: &str,
        id: &str,
        event: Option<&sessiond_core::events::NewEvent>,
    ) -> StoreResult<bool> {
        let (app, id, event) = (app.to_owned(), id.to_owned(), event.cloned());
        self.write(move |c| {
            let hit = exec(c, sql, [app.as_str(), id.as_str()])? == 1;
            if hit {
                events::append(c, event.as_ref())?;
            }
            Ok(hit)
        })
        .await
    }

    fn read<R>(&self, f: impl FnOnce(&Connection) -> StoreResult<R>) -> StoreResult<R> {
        self.engine.read(f)
    }

    /// After removing sealed data, fold the WAL into the database file so the old page images
    /// (which still hold the removed bytes) do not linger in `-wal`. Best effort: a checkpoint
    /// blocked by a long reader leaves them for the next one.
    async fn scrub_wal(&self) {
        if let Err(e) = self.engine.checkpoint().await {
            tracing::debug!(error = %e, "WAL checkpoint after redaction did not complete");
        }
    }
}

/// A stored value that does not decode: a backend error naming what (the text is for logs only).
pub(crate) use sessiond_store_sql::rows::corrupt;

/// Maps SQLite errors onto the store contract: unique violations are conflicts, a busy or
/// unopenable file is "unavailable", everything else is a backend error (text for logs only).
pub(crate) fn map_err(e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::QueryReturnedNoRows => StoreError::NotFound,
        rusqlite::Error::SqliteFailure(f, _) => match f.code {
            ErrorCode::ConstraintViolation
                if matches!(
                    f.extended_code,
                    rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                        | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                ) =>
            {
                StoreError::Conflict
            }
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::CannotOpen
            | ErrorCode::SystemIoFailure
            | ErrorCode::DiskFull => StoreError::unavailable_caused("SQLite cannot proceed", e),
            _ => StoreError::backend_caused("cannot encode a stored value", e),
        },
        _ => StoreError::backend_caused("cannot encode a stored value", e),
    }
}

/// Whether an error is a foreign-key violation (the parent row vanished).
pub(crate) fn is_foreign_key(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY)
}

/// Column `col` of `row`, with decoding errors mapped onto the store contract.
pub(crate) fn get<T: rusqlite::types::FromSql, I: rusqlite::RowIndex>(
    row: &Row<'_>,
    col: I,
) -> StoreResult<T> {
    row.get::<_, T>(col).map_err(map_err)
}

pub(crate) use sessiond_store_sql::{Arg, Sql};

/// A rusqlite row as the shared decoders in `sessiond_store_sql::rows` read it.
pub(crate) struct Lite<'a, 'b>(pub &'a Row<'b>);

/// Column getter with the shape `impl_row!` calls (the row index type fixed to a name).
fn get_named<T: rusqlite::types::FromSql>(row: &Row<'_>, col: &str) -> StoreResult<T> {
    get(row, col)
}

sessiond_store_sql::impl_row!(Lite<'_, '_>, get_named, flag: i64);

/// Column getter by position, for `impl_row_at!`.
fn get_at<T: rusqlite::types::FromSql>(row: &Row<'_>, i: usize) -> StoreResult<T> {
    get(row, i)
}

sessiond_store_sql::impl_row_at!(Lite<'_, '_>, get_at);

/// A statement with SQLite's placeholders (`?1, ?2…`).
pub(crate) fn sql(text: &str) -> Sql {
    Sql::new(sessiond_store_sql::Placeholders::Question, text)
}

/// A bound value as SQLite takes it.
fn value(a: &Arg) -> ToSqlOutput<'_> {
    match a {
        Arg::Str(s) => ToSqlOutput::Borrowed(s.as_str().into()),
        Arg::OptStr(Some(s)) => ToSqlOutput::Borrowed(s.as_str().into()),
        Arg::OptStr(None) => ToSqlOutput::Owned(Value::Null),
        Arg::I64(v) | Arg::OptI64(Some(v)) => ToSqlOutput::Owned(Value::Integer(*v)),
        Arg::Bytes(b) | Arg::OptBytes(Some(b)) => ToSqlOutput::Borrowed(b.as_slice().into()),
        Arg::OptI64(None) | Arg::OptBytes(None) => ToSqlOutput::Owned(Value::Null),
    }
}

/// Runs an assembled statement on a connection.
pub(crate) trait Run {
    /// Every row, decoded by `f`.
    fn all<T>(
        &self,
        conn: &Connection,
        f: impl Fn(&Row<'_>) -> StoreResult<T>,
    ) -> StoreResult<Vec<T>>;
    /// The first row, if any, decoded by `f`.
    fn first<T>(
        &self,
        conn: &Connection,
        f: impl Fn(&Row<'_>) -> StoreResult<T>,
    ) -> StoreResult<Option<T>>;
    /// Executes it; the number of rows changed.
    fn execute(&self, conn: &Connection) -> StoreResult<u64>;
}

impl Run for Sql {
    fn all<T>(
        &self,
        conn: &Connection,
        f: impl Fn(&Row<'_>) -> StoreResult<T>,
    ) -> StoreResult<Vec<T>> {
        all(
            conn,
            &self.text,
            rusqlite::params_from_iter(self.args.iter().map(value)),
            f,
        )
    }

    fn first<T>(
        &self,
        conn: &Connection,
        f: impl Fn(&Row<'_>) -> StoreResult<T>,
    ) -> StoreResult<Option<T>> {
        first(
            conn,
            &self.text,
            rusqlite::params_from_iter(self.args.iter().map(value)),
            f,
        )
    }

    fn execute(&self, conn: &Connection) -> StoreResult<u64> {
        exec(
            conn,
            &self.text,
            rusqlite::params_from_iter(self.args.iter().map(value)),
        )
    }
}

/// The rows of a fixed statement, decoded by `f`.
pub(crate) fn all<T, P: rusqlite::Params>(
    conn: &Connection,
    sql: &str,
    params: P,
    f: impl Fn(&Row<'_>) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql).map_err(map_err)?;
    let mut rows = stmt.query(params).map_err(map_err)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(map_err)? {
        out.push(f(row)?);
    }
    Ok(out)
}

/// The first row of a fixed statement, if any, decoded by `f`.
pub(crate) fn first<T, P: rusqlite::Params>(
    conn: &Connection,
    sql: &str,
    params: P,
    f: impl FnOnce(&Row<'_>) -> StoreResult<T>,
) -> StoreResult<Option<T>> {
    let mut stmt = conn.prepare_cached(sql).map_err(map_err)?;
    let mut rows = stmt.query(params).map_err(map_err)?;
    rows.next().map_err(map_err)?.map(f).transpose()
}

/// Runs a fixed statement; returns the number of rows it changed.
pub(crate) fn exec<P: rusqlite::Params>(
    conn: &Connection,
    sql: &str,
    params: P,
) -> StoreResult<u64> {
    let mut stmt = conn.prepare_cached(sql).map_err(map_err)?;
    let n = stmt.execute(params).map_err(map_err)?;
    Ok(n as u64)
}

/// A count query's single value.
pub(crate) fn count<P: rusqlite::Params>(
    conn: &Connection,
    sql: &str,
    params: P,
) -> StoreResult<u64> {
    let n: i64 = first(conn, sql, params, |r| r.get(0).map_err(map_err))?.unwrap_or(0);
    Ok(u64::try_from(n).unwrap_or(0))
}

pub(crate) fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// `EXPLAIN QUERY PLAN` on a freshly migrated database, for tests that pin the plans of
/// request-path statements (plans are fixed at prepare time, whatever is bound later).
#[cfg(test)]
pub(crate) struct Planner {
    _dir: tempfile::TempDir,
    store: SqliteStore,
}

#[cfg(test)]
impl Planner {
    pub(crate) async fn new() -> Planner {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store =
            SqliteStore::open(&dir.path().join("plans.db")).unwrap_or_else(|e| panic!("{e}"));
        store.migrate().await.unwrap_or_else(|e| panic!("{e}"));
        Planner { _dir: dir, store }
    }

    /// The plan's steps for `sql`, every parameter bound to NULL.
    pub(crate) fn plan(&self, sql: &str) -> Vec<String> {
        self.store
            .read(|c| {
                let mut stmt = c
                    .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                    .map_err(map_err)?;
                let nulls = vec![rusqlite::types::Value::Null; stmt.parameter_count()];
                let rows = stmt
                    .query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(3))
                    .map_err(map_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(map_err)
            })
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

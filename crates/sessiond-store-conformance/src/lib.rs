//! The storage contract of sessiond, written once and run against every backend.
//!
//! # Layout
//! - [`TestDb`]: a fresh, isolated database per test: a temporary SQLite file, or a new
//!   PostgreSQL database created under `SESSIOND_TEST_DATABASE_URL` and dropped afterwards.
//! - [`cases`]: one `async fn` per rule of the contract, over `&dyn` store traits: tenancy,
//!   sealing, jobs, the token vault; [`login_cases`]: users, sessions, bulk deletions, signing
//!   keys, templates; [`verification_cases`]: identity-verification sessions; [`event_cases`]:
//!   the outbox; [`webhook_cases`]: webhook endpoints and deliveries; [`console_cases`]: the
//!   operator audit log and counts over the outbox.
//! - [`services`]: the core services over a fresh database, for service-level and in-process
//!   HTTP tests.
//! - `tests/conformance.rs` stamps every case out for both backends.
//!
//! PostgreSQL is mandatory when `CI=true`: a missing `SESSIOND_TEST_DATABASE_URL` fails the run
//! instead of silently testing SQLite alone.

pub mod cases;
pub mod console_cases;
pub mod event_cases;
pub mod login_cases;
pub mod services;
pub mod verification_cases;
pub mod webhook_cases;

use std::sync::Arc;

use sessiond_core::store::Store;
use sessiond_store_postgres::{PoolOptions, SqlStore};
use sessiond_store_sqlite::SqliteStore;

/// Environment variable naming the PostgreSQL server for tests (any database on it; each test
/// creates and drops its own).
pub const PG_URL_VAR: &str = "SESSIOND_TEST_DATABASE_URL";

/// The base PostgreSQL URL for tests. `None` means "skip PostgreSQL", which is only allowed
/// outside CI.
pub fn postgres_base_url() -> Option<String> {
    match std::env::var(PG_URL_VAR) {
        Ok(u) if !u.trim().is_empty() => Some(u),
        _ => {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(
                !ci,
                "{PG_URL_VAR} is not set but CI=true: the PostgreSQL suite must run in CI"
            );
            eprintln!("note: {PG_URL_VAR} is not set; skipping a PostgreSQL test");
            None
        }
    }
}

/// Which backend a test database uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

/// An isolated, migrated database for one test. Dropping it removes the database.
pub struct TestDb {
    pub url: String,
    pub kind: Kind,
    pub store: Arc<dyn Store>,
    /// The PostgreSQL pool behind `store`, closed before its database is dropped.
    pg_pool: Option<Arc<SqlStore>>,
    sqlite: Option<Arc<SqliteStore>>,
    _tmp: Option<tempfile::TempDir>,
    pg_cleanup: Option<(String, String)>,
}

impl TestDb {
    /// `None` only for PostgreSQL outside CI without a URL.
    pub async fn new(kind: Kind) -> Option<TestDb> {
        let (url, tmp, pg_cleanup) = match kind {
            Kind::Sqlite => {
                let dir = tempfile::tempdir().ok()?;
                let url = format!("sqlite://{}", dir.path().join("test.db").display());
                (url, Some(dir), None)
            }
            Kind::Postgres => {
                let base = postgres_base_url()?;
                let (url, name) = create_pg_database(&base).await;
                (url, None, Some((base, name)))
            }
        };
        let (store, pg_pool, sqlite) = open(kind, &url).await;
        Some(TestDb {
            url,
            kind,
            store,
            pg_pool,
            sqlite,
            _tmp: tmp,
            pg_cleanup,
        })
    }

    /// Another, independent store on the same database (a second "node").
    pub async fn second_node(&self) -> Arc<dyn Store> {
        open(self.kind, &self.url).await.0
    }

    /// Runs the backend's migrations again (they must be a no-op on a migrated database).
    pub async fn migrate(&self) -> sessiond_core::store::StoreResult<()> {
        match (&self.sqlite, &self.pg_pool) {
            (Some(s), _) => s.migrate().await,
            (_, Some(p)) => p.migrate().await,
            (None, None) => Ok(()),
        }
    }
}

type Opened = (
    Arc<dyn Store>,
    Option<Arc<SqlStore>>,
    Option<Arc<SqliteStore>>,
);

async fn open(kind: Kind, url: &str) -> Opened {
    match kind {
        Kind::Sqlite => {
            let store = SqliteStore::open_url(url).unwrap_or_else(|e| panic!("open {url}: {e}"));
            store
                .migrate()
                .await
                .unwrap_or_else(|e| panic!("migrate {url}: {e}"));
            let store = Arc::new(store);
            (store.clone(), None, Some(store))
        }
        Kind::Postgres => {
            let store = SqlStore::connect(url, &PoolOptions::default())
                .await
                .unwrap_or_else(|e| panic!("connect {url}: {e}"));
            store
                .migrate()
                .await
                .unwrap_or_else(|e| panic!("migrate {url}: {e}"));
            let store = Arc::new(store);
            (store.clone(), Some(store), None)
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((base, name)) = self.pg_cleanup.take() else {
            return;
        };
        if std::env::var_os("SESSIOND_TEST_KEEP_DB").is_some() {
            eprintln!("keeping test database {name}");
            return;
        }
        // Drop runs inside the test's runtime, which may not block; a helper thread with its own
        // runtime removes the database.
        let pool = self.pg_pool.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                rt.block_on(async move {
                    if let Some(p) = pool {
                        p.close().await;
                    }
                    drop_pg_database(&base, &name).await;
                });
            }
        })
        .join();
    }
}

/// Replaces the database name in a PostgreSQL URL.
pub fn with_database(url: &str, db: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (url, None),
    };
    let scheme_end = head.find("://").map_or(0, |i| i + 3);
    let base = match head[scheme_end..].find('/') {
        Some(i) => &head[..scheme_end + i],
        None => head,
    };
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

/// Creates a uniquely named database on the server of `base`; returns (its URL, its name).
pub async fn create_pg_database(base: &str) -> (String, String) {
    use sqlx::Connection;
    let name = format!(
        "sessiond_t_{}",
        sessiond_crypto::ids::new_id("x")[2..].to_ascii_lowercase()
    );
    let mut admin = admin_connection(base)
        .await
        .unwrap_or_else(|e| panic!("connect to {PG_URL_VAR}={base}: {e}"));
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("create database {name}: {e}"));
    let _ = admin.close().await;
    (with_database(base, &name), name)
}

/// A connection for `CREATE/DROP DATABASE`: the database the URL names if it exists, else the
/// server's maintenance databases, so the suite needs no database prepared beforehand — only a
/// role allowed to create databases.
async fn admin_connection(base: &str) -> Result<sqlx::PgConnection, sqlx::Error> {
    use sqlx::Connection;
    let first = match sqlx::PgConnection::connect(base).await {
        Ok(c) => return Ok(c),
        Err(e) => e,
    };
    for db in ["postgres", "template1"] {
        if let Ok(c) = sqlx::PgConnection::connect(&with_database(base, db)).await {
            return Ok(c);
        }
    }
    Err(first)
}

pub async fn drop_pg_database(base: &str, name: &str) {
    use sqlx::Connection;
    if let Ok(mut admin) = admin_connection(base).await {
        let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await;
        let _ = admin.close().await;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn replaces_database_name() {
        assert_eq!(
            super::with_database("postgres://u@h:5432/test", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            super::with_database("postgres://u@h/test?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(super::with_database("postgres://h", "x"), "postgres://h/x");
    }
}

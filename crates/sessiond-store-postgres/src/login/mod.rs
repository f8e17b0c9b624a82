//! Users, sessions, signing keys and JWT templates.

use sessiond_core::session::Session;
use sessiond_core::store::{StoreResult, StoredUser};
use sqlx::Postgres;
use sqlx::postgres::PgRow;

use crate::map_err;

use sessiond_store_sql::{Arg, Sql};

/// A statement with PostgreSQL's placeholders (`$1, $2…`).
pub(crate) fn sql(text: &str) -> Sql {
    Sql::new(sessiond_store_sql::Placeholders::Dollar, text)
}

/// An assembled statement as a sqlx query, every value bound as its native type.
pub(crate) trait Bind {
    fn query(&self) -> sqlx::query::Query<'_, Postgres, sqlx::postgres::PgArguments>;
}

impl Bind for Sql {
    fn query(&self) -> sqlx::query::Query<'_, Postgres, sqlx::postgres::PgArguments> {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(self.text.as_str()));
        for a in &self.args {
            q = match a {
                Arg::Str(s) => q.bind(s.as_str()),
                Arg::OptStr(s) => q.bind(s.as_deref()),
                Arg::I64(v) => q.bind(*v),
                Arg::OptI64(v) => q.bind(*v),
                Arg::Bytes(b) => q.bind(b.as_slice()),
                Arg::OptBytes(b) => q.bind(b.as_deref()),
            };
        }
        q
    }
}

impl crate::SqlStore {
    /// Column `n` of the one row `q` returns: a count, or how many rows a statement wrote.
    async fn n_of(&self, q: &Sql) -> StoreResult<i64> {
        let row = q.query().fetch_one(self.pool()).await.map_err(map_err)?;
        crate::get(&row, "n")
    }
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

// ---- users and sessions: columns and decoders shared with SQLite ----

pub(crate) use sessiond_store_sql::rows::{SESSION_COL_COUNT, SESSION_COLS, USER_COLS};
pub(crate) use sessiond_store_sql::{session_cols, user_cols};

fn user_from_row(row: &PgRow) -> StoreResult<StoredUser> {
    sessiond_store_sql::rows::user_at(&crate::Pg(row), 0)
}

/// A session from a row that starts with [`SESSION_COLS`].
fn session_from_row(row: &PgRow) -> StoreResult<Session> {
    sessiond_store_sql::rows::session_at(&crate::Pg(row))
}

async fn insert_identifiers(tx: &mut crate::pool::Tx, u: &StoredUser) -> StoreResult<()> {
    for (kind, hash) in &u.identifiers {
        sqlx::query(
            "INSERT INTO user_identifiers (application_id, kind, hash, user_id) VALUES ($1, $2, $3, $4)",
        )
        .bind(u.application_id.as_str())
        .bind(kind.as_str())
        .bind(&hash[..])
        .bind(u.id.as_str())
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
    }
    Ok(())
}

fn attributes_json(s: &Session) -> StoreResult<String> {
    sessiond_store_sql::columns::attributes_text(&s.attributes)
}

pub(crate) mod grouped;
mod sessions;
mod signing_keys;
mod templates;
mod upgrade;
mod users;

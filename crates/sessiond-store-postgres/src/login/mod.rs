//! Users, sessions, signing keys and JWT templates.

use serde_json::Value;
use sessiond_core::Timestamp;
use sessiond_core::application::AppId;
use sessiond_core::ids::{ClientId, SessionId, UserId};
use sessiond_core::session::{Session, SessionStatus};
use sessiond_core::store::{StoreError, StoreResult, StoredUser};
use sqlx::Postgres;
use sqlx::postgres::PgRow;

use crate::{corrupt, get, map_err};

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
                Arg::Bytes(b) => q.bind(b.as_slice()),
            };
        }
        q
    }
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

// ---- users ----

macro_rules! user_cols {
    () => {
        "u.id, u.application_id, u.external_id, u.profile, u.created_at, u.updated_at, u.version"
    };
}
const USER_COLS: &str = user_cols!();

/// A user's columns as `u_…` aliases, for statements that also select a session.
macro_rules! user_cols_aliased {
    () => {
        "u.id AS u_id, u.application_id AS u_application_id, \
     u.external_id AS u_external_id, u.profile AS u_profile, u.created_at AS u_created_at, \
     u.updated_at AS u_updated_at, u.version AS u_version"
    };
}

fn user_from_aliased_row(row: &PgRow) -> StoreResult<StoredUser> {
    Ok(StoredUser {
        id: UserId(get(row, "u_id")?),
        application_id: AppId(get(row, "u_application_id")?),
        external_id: get(row, "u_external_id")?,
        profile_sealed: get(row, "u_profile")?,
        identifiers: Vec::new(),
        created_at: Timestamp(get(row, "u_created_at")?),
        updated_at: Timestamp(get(row, "u_updated_at")?),
        version: get(row, "u_version")?,
    })
}

fn user_from_row(row: &PgRow) -> StoreResult<StoredUser> {
    Ok(StoredUser {
        id: UserId(get(row, "id")?),
        application_id: AppId(get(row, "application_id")?),
        external_id: get(row, "external_id")?,
        profile_sealed: get(row, "profile")?,
        identifiers: Vec::new(),
        created_at: Timestamp(get(row, "created_at")?),
        updated_at: Timestamp(get(row, "updated_at")?),
        version: get(row, "version")?,
    })
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

// ---- sessions ----

macro_rules! session_cols {
    () => {
        "s.id, s.application_id, s.user_id, s.client_id, s.status, s.actor, s.activity, \
     s.attributes, s.last_active_organization_id, s.created_at, s.updated_at, s.last_active_at, s.expire_at, \
     s.abandon_at, s.idle_deadline, s.version, s.sso"
    };
}
const SESSION_COLS: &str = session_cols!();

fn session_from_row(row: &PgRow) -> StoreResult<Session> {
    let status: String = get(row, "status")?;
    let actor: Option<String> = get(row, "actor")?;
    Ok(Session {
        id: SessionId(get(row, "id")?),
        application_id: AppId(get(row, "application_id")?),
        user_id: UserId(get(row, "user_id")?),
        client_id: ClientId(get(row, "client_id")?),
        status: SessionStatus::parse(&status).ok_or_else(|| corrupt("session status", &status))?,
        actor: actor
            .map(|a| serde_json::from_str::<Value>(&a))
            .transpose()
            .map_err(|e| corrupt("session actor", e))?,
        activity: get(row, "activity")?,
        sso: get(row, "sso")?,
        attributes: serde_json::from_str(&get::<String>(row, "attributes")?)
            .map_err(|e| corrupt("session attributes", e))?,
        last_active_organization_id: get(row, "last_active_organization_id")?,
        created_at: Timestamp(get(row, "created_at")?),
        updated_at: Timestamp(get(row, "updated_at")?),
        last_active_at: Timestamp(get(row, "last_active_at")?),
        expire_at: Timestamp(get(row, "expire_at")?),
        abandon_at: Timestamp(get(row, "abandon_at")?),
        idle_deadline: get::<Option<i64>>(row, "idle_deadline")?.map(Timestamp),
        version: get(row, "version")?,
    })
}

fn attributes_json(s: &Session) -> StoreResult<String> {
    serde_json::to_string(&s.attributes)
        .map_err(|e| StoreError::backend_caused("cannot encode a stored value", e))
}

mod sessions;
mod signing_keys;
mod templates;
mod upgrade;
mod users;

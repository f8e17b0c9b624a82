//! Users, sessions, signing keys and JWT templates.

use rusqlite::Row;
use serde_json::Value;
use sessiond_core::Timestamp;
use sessiond_core::application::AppId;
use sessiond_core::ids::{ClientId, SessionId, UserId};
use sessiond_core::session::{Session, SessionStatus};
use sessiond_core::store::{StoreError, StoreResult, StoredUser};

use crate::{corrupt, get};

// ---- users ----

/// A user's columns, in the order [`user_at`] reads them by position.
macro_rules! user_cols {
    () => {
        "u.id, u.application_id, u.external_id, u.profile, u.created_at, u.updated_at, u.version"
    };
}
const USER_COLS: &str = user_cols!();

/// A user from [`USER_COLS`] starting at column `at`. Columns are
/// read by position: looking them up by name costs a scan of the column names per field.
fn user_at(row: &Row<'_>, at: usize) -> StoreResult<StoredUser> {
    Ok(StoredUser {
        id: UserId(get(row, at)?),
        application_id: AppId(get(row, at + 1)?),
        external_id: get(row, at + 2)?,
        profile_sealed: get(row, at + 3)?,
        identifiers: Vec::new(),
        created_at: Timestamp(get(row, at + 4)?),
        updated_at: Timestamp(get(row, at + 5)?),
        version: get(row, at + 6)?,
    })
}

fn user_from_row(row: &Row<'_>) -> StoreResult<StoredUser> {
    user_at(row, 0)
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

/// Number of columns in [`SESSION_COLS`].
const SESSION_COL_COUNT: usize = 17;

/// A session from a row that starts with [`SESSION_COLS`], read by position.
fn session_from_row(row: &Row<'_>) -> StoreResult<Session> {
    let status: String = get(row, 4)?;
    let actor: Option<String> = get(row, 5)?;
    Ok(Session {
        id: SessionId(get(row, 0)?),
        application_id: AppId(get(row, 1)?),
        user_id: UserId(get(row, 2)?),
        client_id: ClientId(get(row, 3)?),
        status: SessionStatus::parse(&status).ok_or_else(|| corrupt("session status", &status))?,
        actor: actor
            .map(|a| serde_json::from_str::<Value>(&a))
            .transpose()
            .map_err(|e| corrupt("session actor", e))?,
        activity: get(row, 6)?,
        sso: get(row, 16)?,
        attributes: serde_json::from_str(&get::<String, _>(row, 7)?)
            .map_err(|e| corrupt("session attributes", e))?,
        last_active_organization_id: get(row, 8)?,
        created_at: Timestamp(get(row, 9)?),
        updated_at: Timestamp(get(row, 10)?),
        last_active_at: Timestamp(get(row, 11)?),
        expire_at: Timestamp(get(row, 12)?),
        abandon_at: Timestamp(get(row, 13)?),
        idle_deadline: get::<Option<i64>, _>(row, 14)?.map(Timestamp),
        version: get(row, 15)?,
    })
}

fn attributes_json(s: &Session) -> StoreResult<String> {
    serde_json::to_string(&s.attributes)
        .map_err(|e| StoreError::backend_caused("cannot encode a stored value", e))
}

mod sessions;
pub(crate) use sessions::{lapse_work, write_lapse_events};
mod signing_keys;
mod templates;
mod upgrade;
mod users;

//! Users, sessions, signing keys and JWT templates.

use rusqlite::Row;
use sessiond_core::session::Session;
use sessiond_core::store::{StoreResult, StoredUser};

// ---- users and sessions: columns and decoders shared with PostgreSQL ----

pub(crate) use sessiond_store_sql::rows::{SESSION_COL_COUNT, SESSION_COLS, USER_COLS};
pub(crate) use sessiond_store_sql::{session_cols, user_cols};

/// A user from [`USER_COLS`] starting at column `at`.
fn user_at(row: &Row<'_>, at: usize) -> StoreResult<StoredUser> {
    sessiond_store_sql::rows::user_at(&crate::Lite(row), at)
}

fn user_from_row(row: &Row<'_>) -> StoreResult<StoredUser> {
    user_at(row, 0)
}

/// A session from a row that starts with [`SESSION_COLS`].
fn session_from_row(row: &Row<'_>) -> StoreResult<Session> {
    sessiond_store_sql::rows::session_at(&crate::Lite(row))
}

fn attributes_json(s: &Session) -> StoreResult<String> {
    sessiond_store_sql::columns::attributes_text(&s.attributes)
}

mod sessions;
pub(crate) use sessions::{lapse_work, write_lapse_events};
mod signing_keys;
mod templates;
mod upgrade;
mod users;

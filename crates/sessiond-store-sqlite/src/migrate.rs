//! Schema migrations, compiled in.
//!
//! The history lives in `_sqlx_migrations`, the table (and checksums: SHA-384 of the file's text)
//! that sqlx's migrator used in earlier builds, so databases created by those builds continue
//! where they stopped. A database that knows a migration this binary does not (a newer build ran
//! on it), or whose applied migration differs from ours, is refused rather than guessed at.

use rusqlite::Connection;
use sessiond_core::store::{StoreError, StoreResult};
use sha2::{Digest, Sha384};

use crate::{all, exec, get, map_err};

/// (version, file name without `.sql`, SQL).
pub(crate) const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "0001_foundation",
        include_str!("../migrations/0001_foundation.sql"),
    ),
    (
        2,
        "0002_login_sessions",
        include_str!("../migrations/0002_login_sessions.sql"),
    ),
    (
        3,
        "0003_equisoft",
        include_str!("../migrations/0003_equisoft.sql"),
    ),
    (
        4,
        "0004_verification",
        include_str!("../migrations/0004_verification.sql"),
    ),
    (
        5,
        "0005_auth_epoch",
        include_str!("../migrations/0005_auth_epoch.sql"),
    ),
    (
        6,
        "0006_session_lapse",
        include_str!("../migrations/0006_session_lapse.sql"),
    ),
    (
        7,
        "0007_sealed_pii",
        include_str!("../migrations/0007_sealed_pii.sql"),
    ),
    (
        8,
        "0008_session_generations",
        include_str!("../migrations/0008_session_generations.sql"),
    ),
    (
        9,
        "0009_session_purges",
        include_str!("../migrations/0009_session_purges.sql"),
    ),
    (
        10,
        "0010_events",
        include_str!("../migrations/0010_events.sql"),
    ),
    (
        11,
        "0011_webhooks",
        include_str!("../migrations/0011_webhooks.sql"),
    ),
    (
        12,
        "0012_console",
        include_str!("../migrations/0012_console.sql"),
    ),
];

const HISTORY: &str = "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    success BOOLEAN NOT NULL,
    checksum BLOB NOT NULL,
    execution_time BIGINT NOT NULL
)";

fn description(name: &str) -> String {
    name.split_once('_')
        .map_or(name, |(_, d)| d)
        .replace('_', " ")
}

/// Applied migrations: (version, checksum, success).
fn applied(conn: &Connection) -> StoreResult<Vec<(i64, Vec<u8>, bool)>> {
    all(
        conn,
        "SELECT version, checksum, success FROM _sqlx_migrations ORDER BY version",
        [],
        |r| Ok((get(r, "version")?, get(r, "checksum")?, get(r, "success")?)),
    )
}

/// Runs inside the writer's transaction: every pending migration or none.
pub(crate) fn run(conn: &Connection) -> StoreResult<()> {
    conn.execute_batch(HISTORY).map_err(map_err)?;
    let done = applied(conn)?;
    for (version, checksum, success) in &done {
        let Some((_, name, sql)) = MIGRATIONS.iter().find(|m| m.0 == *version) else {
            return Err(StoreError::backend(format!(
                "the database has migration {version}, which this build does not know: \
                 it was used by a newer sessiond"
            )));
        };
        if !success {
            return Err(StoreError::backend(format!(
                "migration {name} failed earlier and left the database dirty"
            )));
        }
        if Sha384::digest(sql.as_bytes()).as_slice() != checksum.as_slice() {
            return Err(StoreError::backend(format!(
                "migration {name} was applied with different contents"
            )));
        }
    }
    for (version, name, sql) in MIGRATIONS {
        if done.iter().any(|d| d.0 == *version) {
            continue;
        }
        conn.execute_batch(sql)
            .map_err(|e| StoreError::backend_caused(format!("migration {name} failed"), e))?;
        exec(
            conn,
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (?1, ?2, TRUE, ?3, 0)",
            rusqlite::params![
                version,
                description(name),
                Sha384::digest(sql.as_bytes()).to_vec()
            ],
        )?;
    }
    Ok(())
}

/// Whether every migration this binary knows is applied, and no other.
pub(crate) fn current(conn: &Connection) -> StoreResult<bool> {
    let exists: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
            [],
            |r| r.get(0),
        )
        .map_err(map_err)?;
    if exists == 0 {
        return Ok(false);
    }
    let versions: Vec<i64> = applied(conn)?
        .into_iter()
        .filter(|a| a.2)
        .map(|a| a.0)
        .collect();
    let known: Vec<i64> = MIGRATIONS.iter().map(|m| m.0).collect();
    Ok(versions == known)
}

#[cfg(test)]
mod tests {
    use super::MIGRATIONS;

    /// Every file in `migrations/` is listed, in order, and nothing else is.
    #[test]
    fn compiled_in_migrations_match_the_folder() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let listed: Vec<(i64, &str)> = MIGRATIONS.iter().map(|m| (m.0, m.1)).collect();
        assert_eq!(
            sessiond_store_sql::check_migration_list(&dir, &listed),
            Ok(())
        );
    }
}

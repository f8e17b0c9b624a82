//! Meta values, applications and secret keys.

use crate::Lite;
use crate::engine::lock;
use async_trait::async_trait;
use rusqlite::{Connection, Row, params};
use sessiond_core::Timestamp;
use sessiond_core::apikey::{ApiKey, ApiKeyId};
use sessiond_core::application::{AppId, Application};
use sessiond_core::store::{
    ApiKeyStore, ApplicationStore, AuthEpochStore, MetaStore, StoreError, StoreResult,
};
use sessiond_store_sql::rows;
use sessiond_store_sql::statements;
use sessiond_store_sql::{app_cols, key_cols};

use crate::{SqliteStore, all, count, exec, first, get, is_foreign_key, map_err};

fn app_from_row(row: &Row<'_>) -> StoreResult<Application> {
    rows::application(&Lite(row))
}

fn key_from_row(row: &Row<'_>) -> StoreResult<ApiKey> {
    rows::api_key(&Lite(row))
}

fn get_application(conn: &Connection, id: &str) -> StoreResult<Option<Application>> {
    first(
        conn,
        concat!(
            "SELECT ",
            app_cols!(),
            " FROM applications a WHERE a.id = ?1"
        ),
        [id],
        app_from_row,
    )
}

fn insert_key(conn: &Connection, key: &ApiKey) -> rusqlite::Result<usize> {
    conn.prepare_cached(statements::INSERT_API_KEY)?
        .execute(params![
            key.id.as_str(),
            key.application_id.as_str(),
            &key.hash[..],
            key.hint.as_str(),
            key.created_at.0,
            key.revoked_at.map(|t| t.0),
        ])
}

#[async_trait]
impl MetaStore for SqliteStore {
    async fn get_meta(&self, name: &str) -> StoreResult<Option<Vec<u8>>> {
        self.read(|c| {
            first(c, "SELECT value FROM meta WHERE name = ?1", [name], |r| {
                get(r, "value")
            })
        })
    }

    async fn insert_meta_if_absent(
        &self,
        name: &str,
        value: &[u8],
        sealed: bool,
    ) -> StoreResult<bool> {
        let (name, value) = (name.to_owned(), value.to_vec());
        self.write(move |c| {
            let n = exec(
                c,
                statements::INSERT_META,
                params![name, value, i64::from(sealed)],
            )?;
            Ok(n == 1)
        })
        .await
    }
}

#[async_trait]
impl ApplicationStore for SqliteStore {
    async fn insert_application(&self, app: &Application, first_key: &ApiKey) -> StoreResult<()> {
        if first_key.application_id != app.id {
            return Err(StoreError::backend(
                "first key belongs to another application",
            ));
        }
        let settings = sessiond_store_sql::settings::to_json(&app.settings)?;
        let (app, key) = (app.clone(), first_key.clone());
        self.write(move |c| {
            exec(
                c,
                statements::INSERT_APPLICATION,
                params![
                    app.id.as_str(),
                    app.name.as_str(),
                    app.environment.as_str(),
                    settings,
                    app.created_at.0,
                    app.updated_at.0,
                    app.version
                ],
            )?;
            // Its sessions are read through this row (see `session_purges`).
            exec(c, statements::INSERT_SESSION_PURGES, [app.id.as_str()])?;
            insert_key(c, &key).map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn get_application(&self, id: &AppId) -> StoreResult<Option<Application>> {
        self.read(|c| get_application(c, id.as_str()))
    }

    async fn list_applications(&self) -> StoreResult<Vec<Application>> {
        self.read(|c| {
            all(
                c,
                concat!(
                    "SELECT ",
                    app_cols!(),
                    " FROM applications a ORDER BY a.created_at, a.id"
                ),
                [],
                app_from_row,
            )
        })
    }

    async fn count_applications(&self) -> StoreResult<u64> {
        self.read(|c| count(c, "SELECT COUNT(*) FROM applications", []))
    }

    async fn update_application(&self, app: &Application) -> StoreResult<()> {
        let settings = sessiond_store_sql::settings::to_json(&app.settings)?;
        let app = app.clone();
        self.write(move |c| {
            let n = exec(
                c,
                statements::UPDATE_APPLICATION,
                params![
                    app.name.as_str(),
                    settings,
                    app.updated_at.0,
                    app.version,
                    app.id.as_str(),
                    app.version - 1
                ],
            )?;
            if n == 1 {
                return Ok(());
            }
            match get_application(c, app.id.as_str())? {
                Some(_) => Err(StoreError::Conflict),
                None => Err(StoreError::NotFound),
            }
        })
        .await
    }

    async fn delete_application(&self, id: &AppId) -> StoreResult<bool> {
        let id = id.0.clone();
        self.write(move |c| {
            Ok(exec(c, "DELETE FROM applications WHERE id = ?1", [id.as_str()])? == 1)
        })
        .await
    }
}

#[async_trait]
impl ApiKeyStore for SqliteStore {
    async fn insert_api_key(&self, key: &ApiKey) -> StoreResult<()> {
        let key = key.clone();
        self.write(move |c| match insert_key(c, &key) {
            Ok(_) => Ok(()),
            // The application vanished between the caller's check and this insert.
            Err(e) if is_foreign_key(&e) => Err(StoreError::NotFound),
            Err(e) => Err(map_err(e)),
        })
        .await
    }

    async fn find_api_key_by_hash(
        &self,
        hash: &[u8; 32],
    ) -> StoreResult<Option<(ApiKey, Application)>> {
        self.read(|c| {
            first(
                c,
                concat!(
                    "SELECT ",
                    key_cols!(),
                    ", ",
                    app_cols!(),
                    " FROM api_keys k JOIN applications a ON a.id = k.application_id WHERE k.hash = ?1"
                ),
                [&hash[..]],
                |r| Ok((key_from_row(r)?, app_from_row(r)?)),
            )
        })
    }

    async fn list_api_keys(&self, app: &AppId) -> StoreResult<Vec<ApiKey>> {
        self.read(|c| {
            all(
                c,
                concat!(
                    "SELECT ",
                    key_cols!(),
                    " FROM api_keys k WHERE k.application_id = ?1 ORDER BY k.created_at, k.id"
                ),
                [app.as_str()],
                key_from_row,
            )
        })
    }

    async fn revoke_api_key(
        &self,
        app: &AppId,
        key: &ApiKeyId,
        now: Timestamp,
    ) -> StoreResult<Option<ApiKey>> {
        let (app, key) = (app.0.clone(), key.0.clone());
        self.write(move |c| {
            exec(c, statements::REVOKE_API_KEY, params![now.0, key, app])?;
            first(
                c,
                concat!(
                    "SELECT ",
                    key_cols!(),
                    " FROM api_keys k WHERE k.id = ?1 AND k.application_id = ?2"
                ),
                params![key, app],
                key_from_row,
            )
        })
        .await
    }

    async fn purge_revoked_api_keys(&self, cutoff: Timestamp) -> StoreResult<u64> {
        self.write(move |c| exec(c, statements::DELETE_REVOKED_API_KEYS, [cutoff.0]))
            .await
    }
}

#[async_trait]
impl AuthEpochStore for SqliteStore {
    /// Read from the table only when something was committed since the last read: any change
    /// of the epoch is a commit, and a commit by any connection of any process shows in the
    /// wal-index at once. A read of the file's state costs a `pread`; the table read it saves
    /// took a read transaction (8 % of the server's CPU under a read-only load, profiled).
    async fn auth_epoch(&self) -> StoreResult<i64> {
        // Before the table read: the value read is then at least as new as this state, and a
        // later commit changes the state, so a pair is never served past a change.
        let state = self.engine.last_commit();
        if let Some(state) = state {
            let known = *lock(&self.epoch);
            if let Some((at, epoch)) = known
                && at == state
            {
                return Ok(epoch);
            }
        }
        let epoch = self
            .read(|c| {
                first(c, "SELECT value FROM auth_epoch WHERE id = 1", [], |r| {
                    get(r, "value")
                })
            })?
            .unwrap_or_default();
        if let Some(state) = state {
            *lock(&self.epoch) = Some((state, epoch));
        }
        Ok(epoch)
    }
}

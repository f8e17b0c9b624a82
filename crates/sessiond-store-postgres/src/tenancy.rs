//! Meta values, applications and secret keys.

use crate::Pg;
use async_trait::async_trait;
use sessiond_core::Timestamp;
use sessiond_core::apikey::{ApiKey, ApiKeyId};
use sessiond_core::application::{AppId, Application};
use sessiond_core::store::{
    ApiKeyStore, ApplicationStore, AuthEpochStore, MetaStore, StoreError, StoreResult,
};
use sessiond_store_sql::rows;
use sessiond_store_sql::{app_cols, key_cols};
use sessiond_store_sql::{dollar, statements};
use sqlx::Row;
use sqlx::postgres::PgRow;

use crate::{SqlStore, map_err};

fn app_from_row(row: &PgRow) -> StoreResult<Application> {
    rows::application(&Pg(row))
}

fn key_from_row(row: &PgRow) -> StoreResult<ApiKey> {
    rows::api_key(&Pg(row))
}

#[async_trait]
impl MetaStore for SqlStore {
    async fn get_meta(&self, name: &str) -> StoreResult<Option<Vec<u8>>> {
        let row = sqlx::query("SELECT value FROM meta WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await
            .map_err(map_err)?;
        row.map(|r| r.try_get::<Vec<u8>, _>("value").map_err(map_err))
            .transpose()
    }

    async fn insert_meta_if_absent(
        &self,
        name: &str,
        value: &[u8],
        sealed: bool,
    ) -> StoreResult<bool> {
        let done = self
            .affected(
                sqlx::query(dollar!(statements::INSERT_META))
                    .bind(name)
                    .bind(value)
                    .bind(i64::from(sealed)),
            )
            .await?;
        Ok(done == 1)
    }
}

#[async_trait]
impl ApplicationStore for SqlStore {
    async fn insert_application(&self, app: &Application, first_key: &ApiKey) -> StoreResult<()> {
        if first_key.application_id != app.id {
            return Err(StoreError::backend(
                "first key belongs to another application",
            ));
        }
        let mut tx = self.pool().begin().await.map_err(map_err)?;
        sqlx::query(dollar!(statements::INSERT_APPLICATION))
            .bind(app.id.as_str())
            .bind(app.name.as_str())
            .bind(app.environment.as_str())
            .bind(sessiond_store_sql::settings::to_json(&app.settings)?)
            .bind(app.created_at.0)
            .bind(app.updated_at.0)
            .bind(app.version)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        // Its sessions are read through this row (see `session_purges`).
        sqlx::query(dollar!(statements::INSERT_SESSION_PURGES))
            .bind(app.id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        insert_key(&mut *tx, first_key).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn get_application(&self, id: &AppId) -> StoreResult<Option<Application>> {
        let sql = concat!(
            "SELECT ",
            app_cols!(),
            " FROM applications a WHERE a.id = $1"
        );
        self.row(sqlx::query(sql).bind(id.as_str()), app_from_row)
            .await
    }

    async fn list_applications(&self) -> StoreResult<Vec<Application>> {
        let sql = concat!(
            "SELECT ",
            app_cols!(),
            " FROM applications a ORDER BY a.created_at, a.id"
        );
        self.rows(sqlx::query(sql), app_from_row).await
    }

    async fn count_applications(&self) -> StoreResult<u64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM applications")
            .fetch_one(self.pool())
            .await
            .map_err(map_err)?;
        let n: i64 = row.try_get("n").map_err(map_err)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn update_application(&self, app: &Application) -> StoreResult<()> {
        let done = sqlx::query(dollar!(statements::UPDATE_APPLICATION))
            .bind(app.name.as_str())
            .bind(sessiond_store_sql::settings::to_json(&app.settings)?)
            .bind(app.updated_at.0)
            .bind(app.version)
            .bind(app.id.as_str())
            .bind(app.version - 1)
            .execute(self.pool())
            .await
            .map_err(map_err)?;
        if done.rows_affected() == 1 {
            return Ok(());
        }
        match self.get_application(&app.id).await? {
            Some(_) => Err(StoreError::Conflict),
            None => Err(StoreError::NotFound),
        }
    }

    async fn delete_application(&self, id: &AppId) -> StoreResult<bool> {
        let done = self
            .affected(sqlx::query("DELETE FROM applications WHERE id = $1").bind(id.as_str()))
            .await?;
        Ok(done == 1)
    }
}

async fn insert_key<'e, E>(exec: E, key: &ApiKey) -> StoreResult<()>
where
    E: sqlx::Executor<'e, Database = sqlx::Postgres>,
{
    sqlx::query(dollar!(statements::INSERT_API_KEY))
        .bind(key.id.as_str())
        .bind(key.application_id.as_str())
        .bind(&key.hash[..])
        .bind(key.hint.as_str())
        .bind(key.created_at.0)
        .bind(key.revoked_at.map(|t| t.0))
        .execute(exec)
        .await
        .map_err(map_err)?;
    Ok(())
}

#[async_trait]
impl ApiKeyStore for SqlStore {
    async fn insert_api_key(&self, key: &ApiKey) -> StoreResult<()> {
        match insert_key(self.pool(), key).await {
            // The application vanished between the caller's check and this insert.
            Err(e) if crate::is_foreign_key(&e) => Err(StoreError::NotFound),
            other => other,
        }
    }

    async fn find_api_key_by_hash(
        &self,
        hash: &[u8; 32],
    ) -> StoreResult<Option<(ApiKey, Application)>> {
        let sql = concat!(
            "SELECT ",
            key_cols!(),
            ", ",
            app_cols!(),
            " FROM api_keys k \
             JOIN applications a ON a.id = k.application_id WHERE k.hash = $1"
        );
        let row = sqlx::query(sql)
            .bind(&hash[..])
            .fetch_optional(self.pool())
            .await
            .map_err(map_err)?;
        row.map(|r| Ok((key_from_row(&r)?, app_from_row(&r)?)))
            .transpose()
    }

    async fn list_api_keys(&self, app: &AppId) -> StoreResult<Vec<ApiKey>> {
        let sql = concat!(
            "SELECT ",
            key_cols!(),
            " FROM api_keys k WHERE k.application_id = $1 ORDER BY k.created_at, k.id"
        );
        self.rows(sqlx::query(sql).bind(app.as_str()), key_from_row)
            .await
    }

    async fn revoke_api_key(
        &self,
        app: &AppId,
        key: &ApiKeyId,
        now: Timestamp,
    ) -> StoreResult<Option<ApiKey>> {
        sqlx::query(dollar!(statements::REVOKE_API_KEY))
            .bind(now.0)
            .bind(key.as_str())
            .bind(app.as_str())
            .execute(self.pool())
            .await
            .map_err(map_err)?;
        let sql = concat!(
            "SELECT ",
            key_cols!(),
            " FROM api_keys k WHERE k.id = $1 AND k.application_id = $2"
        );
        self.row(
            sqlx::query(sql).bind(key.as_str()).bind(app.as_str()),
            key_from_row,
        )
        .await
    }

    async fn purge_revoked_api_keys(&self, cutoff: Timestamp) -> StoreResult<u64> {
        let done = self
            .affected(sqlx::query(dollar!(statements::DELETE_REVOKED_API_KEYS)).bind(cutoff.0))
            .await?;
        Ok(done)
    }
}

#[async_trait]
impl AuthEpochStore for SqlStore {
    async fn auth_epoch(&self) -> StoreResult<i64> {
        match self.epoch_from_memory() {
            Some(v) => Ok(v),
            None => crate::epoch::read(self.pool()).await,
        }
    }
}

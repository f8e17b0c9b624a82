//! Signing keys and their rotation.

use crate::Pg;
use crate::{SqlStore, map_err};
use async_trait::async_trait;
use sessiond_core::Timestamp;
use sessiond_core::application::AppId;
use sessiond_core::ids::SigningKeyId;
use sessiond_core::store::{SigningKeyRecord, SigningKeyStore, StoreError, StoreResult};
use sessiond_store_sql::rows;
use sessiond_store_sql::{dollar, statements};
use sqlx::postgres::PgRow;

// ---- signing keys ----

pub(super) fn key_from_row(row: &PgRow) -> StoreResult<SigningKeyRecord> {
    rows::signing_key(&Pg(row))
}

#[async_trait]
impl SigningKeyStore for SqlStore {
    async fn insert_signing_key(&self, k: &SigningKeyRecord) -> StoreResult<()> {
        sqlx::query(dollar!(statements::INSERT_SIGNING_KEY))
            .bind(k.kid.as_str())
            .bind(k.application_id.as_str())
            .bind(k.algorithm.as_str())
            .bind(k.private_sealed.as_slice())
            .bind(k.public_jwk.as_str())
            .bind(k.state.as_str())
            .bind(k.created_at.0)
            .bind(k.activates_at.0)
            .bind(k.retired_at.map(|t| t.0))
            .bind(k.publish_until.0)
            .bind(k.version)
            .execute(self.pool())
            .await
            .map_err(|e| match map_err(e) {
                e if crate::is_foreign_key(&e) => StoreError::NotFound,
                other => other,
            })?;
        Ok(())
    }

    async fn list_signing_keys(&self, app: &AppId) -> StoreResult<Vec<SigningKeyRecord>> {
        self.rows(
            sqlx::query(dollar!(statements::SELECT_SIGNING_KEYS)).bind(app.as_str()),
            key_from_row,
        )
        .await
    }

    async fn promote_signing_key(
        &self,
        app: &AppId,
        next: &SigningKeyId,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let mut tx = self.pool().begin().await.map_err(map_err)?;
        sqlx::query(dollar!(statements::RETIRE_SIGNING_KEY))
            .bind(now.0)
            .bind(app.as_str())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let done = sqlx::query(dollar!(statements::ACTIVATE_SIGNING_KEY))
            .bind(now.0)
            .bind(app.as_str())
            .bind(next.as_str())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        if done.rows_affected() != 1 {
            tx.rollback().await.map_err(map_err)?;
            return Ok(false);
        }
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn extend_signing_key(
        &self,
        app: &AppId,
        kid: &SigningKeyId,
        until: Timestamp,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE signing_keys SET publish_until = $1 \
             WHERE application_id = $2 AND kid = $3 AND publish_until < $4",
        )
        .bind(until.0)
        .bind(app.as_str())
        .bind(kid.as_str())
        .bind(until.0)
        .execute(self.pool())
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn delete_expired_signing_keys(&self, app: &AppId, now: Timestamp) -> StoreResult<u64> {
        let done = self
            .affected(
                sqlx::query(dollar!(statements::DELETE_RETIRED_SIGNING_KEYS))
                    .bind(app.as_str())
                    .bind(now.0),
            )
            .await?;
        Ok(done)
    }
}

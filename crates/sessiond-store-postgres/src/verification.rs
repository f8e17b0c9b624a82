//! Identity-verification sessions and attachments.

use async_trait::async_trait;
use sessiond_core::Timestamp;
use sessiond_core::application::AppId;
use sessiond_core::events::NewEvent;
use sessiond_core::store::{
    StoreError, StoreResult, StoredAttachment, VerificationOrder, VerificationStore,
};
use sessiond_core::verification::{State, Verification, VerificationId};
use sessiond_store_sql::{dollar, statements};
use sqlx::postgres::PgRow;

use crate::login::Bind;
use crate::{PgQuery, SqlStore, map_err};

use sessiond_store_sql::rows::VERIFICATION_COLS as COLS;

fn from_row(row: &PgRow) -> StoreResult<Verification> {
    sessiond_store_sql::rows::verification(&crate::Pg(row))
}

fn json<T: serde::Serialize>(v: &T) -> StoreResult<String> {
    serde_json::to_string(v)
        .map_err(|e| StoreError::backend_caused("cannot encode a stored value", e))
}

/// Ends a verification's write: its new attachments, its event, the COMMIT.
async fn finish(
    mut tx: crate::pool::Tx,
    attachments: &[StoredAttachment],
    event: Option<&NewEvent>,
) -> StoreResult<()> {
    insert_attachments(&mut tx, attachments).await?;
    crate::events::append(&mut tx, event).await?;
    tx.commit().await.map_err(map_err)
}

async fn insert_attachments(
    tx: &mut crate::pool::Tx,
    atts: &[StoredAttachment],
) -> StoreResult<()> {
    for a in atts {
        sqlx::query(dollar!(statements::INSERT_ATTACHMENT))
            .bind(a.id.as_str())
            .bind(a.application_id.as_str())
            .bind(a.verification_id.as_str())
            .bind(a.sealed.as_slice())
            .bind(a.created_at.0)
            .execute(&mut **tx)
            .await
            .map_err(map_err)?;
    }
    Ok(())
}

/// Binds `$1`–`$16`, the same in the insert and the update: the id and application, then every
/// field a change may write.
fn bind_changeable<'q>(q: PgQuery<'q>, v: &'q Verification) -> StoreResult<PgQuery<'q>> {
    Ok(q.bind(v.id.as_str())
        .bind(v.application_id.as_str())
        .bind(v.state.as_str())
        .bind(i64::from(v.state.rank()))
        .bind(v.state.fail_reason().map(|r| r.as_str()))
        .bind(v.provider.clone())
        .bind(v.sub_provider.clone())
        .bind(json(&v.options)?)
        .bind(json(&v.step)?)
        .bind(v.input_sealed.clone())
        .bind(v.results_sealed.clone())
        .bind(v.browser_binding.map(|b| b.to_vec()))
        .bind(v.updated_at.0)
        .bind(v.finished_at.map(|t| t.0))
        .bind(v.redacted_at.map(|t| t.0))
        .bind(v.version))
}

impl SqlStore {
    async fn write_verification(
        &self,
        tx: &mut crate::pool::Tx,
        v: &Verification,
    ) -> StoreResult<bool> {
        let q = sqlx::query(
            "UPDATE verification_sessions SET state = $3, state_rank = $4, fail_reason = $5, \
             provider = $6, sub_provider = $7, options = $8, step = $9, input_sealed = $10, \
             results_sealed = $11, browser_binding = $12, updated_at = $13, finished_at = $14, \
             redacted_at = $15, version = $16 \
             WHERE id = $1 AND application_id = $2 AND version = $17",
        );
        let done = bind_changeable(q, v)?
            .bind(v.version - 1)
            .execute(&mut **tx)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn missing_or_conflict(&self, v: &Verification) -> StoreError {
        match self.get_verification(&v.application_id, &v.id).await {
            Ok(Some(_)) => StoreError::Conflict,
            Ok(None) => StoreError::NotFound,
            Err(e) => e,
        }
    }
}

#[async_trait]
impl VerificationStore for SqlStore {
    async fn insert_verification(
        &self,
        v: &Verification,
        attachments: &[StoredAttachment],
        event: Option<&NewEvent>,
    ) -> StoreResult<()> {
        let mut tx = self.pool().begin().await.map_err(map_err)?;
        let q = sqlx::query(
            "INSERT INTO verification_sessions (id, application_id, state, state_rank, \
             fail_reason, provider, sub_provider, options, step, input_sealed, results_sealed, \
             browser_binding, updated_at, finished_at, redacted_at, version, flow, \
             results_key_hash, results_public_key, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
             $18, $19, $20, $21)",
        );
        bind_changeable(q, v)?
            .bind(v.flow.as_str())
            .bind(v.results_key_hash.to_vec())
            .bind(v.results_public_key.to_vec())
            .bind(v.created_at.0)
            .bind(v.expires_at.0)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        finish(tx, attachments, event).await
    }

    async fn get_verification(
        &self,
        app: &AppId,
        id: &VerificationId,
    ) -> StoreResult<Option<Verification>> {
        let sql = format!(
            "SELECT {COLS} FROM verification_sessions WHERE application_id = $1 AND id = $2"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(app.as_str())
            .bind(id.as_str())
            .fetch_optional(self.pool())
            .await
            .map_err(map_err)?
            .as_ref()
            .map(from_row)
            .transpose()
    }

    async fn update_verification(
        &self,
        v: &Verification,
        attachments: &[StoredAttachment],
        event: Option<&NewEvent>,
    ) -> StoreResult<()> {
        let mut tx = self.pool().begin().await.map_err(map_err)?;
        if !self.write_verification(&mut tx, v).await? {
            drop(tx);
            return Err(self.missing_or_conflict(v).await);
        }
        finish(tx, attachments, event).await
    }

    async fn redact_verification(
        &self,
        v: &Verification,
        event: Option<&NewEvent>,
    ) -> StoreResult<()> {
        let mut tx = self.pool().begin().await.map_err(map_err)?;
        if !self.write_verification(&mut tx, v).await? {
            drop(tx);
            return Err(self.missing_or_conflict(v).await);
        }
        sqlx::query(dollar!(statements::DELETE_ATTACHMENTS))
            .bind(v.application_id.as_str())
            .bind(v.id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        crate::events::append(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(())
    }

    async fn list_verifications(
        &self,
        app: &AppId,
        order: VerificationOrder,
        descending: bool,
        limit: u32,
        offset: u64,
    ) -> StoreResult<(Vec<Verification>, u64)> {
        let page = sessiond_store_sql::filters::verifications_page(
            sessiond_store_sql::Placeholders::Dollar,
            app,
            order,
            descending,
            limit,
            offset,
        );
        let rows = page.query().fetch_all(self.pool()).await.map_err(map_err)?;
        let total: i64 = sqlx::query_scalar(dollar!(statements::COUNT_VERIFICATIONS))
            .bind(app.as_str())
            .fetch_one(self.pool())
            .await
            .map_err(map_err)?;
        let list = rows.iter().map(from_row).collect::<StoreResult<Vec<_>>>()?;
        Ok((list, u64::try_from(total).unwrap_or(0)))
    }

    async fn get_attachment(&self, app: &AppId, id: &str) -> StoreResult<Option<StoredAttachment>> {
        let row = sqlx::query(dollar!(statements::SELECT_ATTACHMENT))
            .bind(app.as_str())
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(map_err)?;
        row.map(|r| sessiond_store_sql::rows::attachment(&crate::Pg(&r)))
            .transpose()
    }

    async fn expire_verifications(&self, now: Timestamp) -> StoreResult<u64> {
        let done = self
            .affected(
                sqlx::query(dollar!(statements::EXPIRE_VERIFICATIONS))
                    .bind(i64::from(State::Expired.rank()))
                    .bind(r#"{"kind":"finished"}"#)
                    .bind(now.0),
            )
            .await?;
        Ok(done)
    }

    async fn redact_verifications_finished_before(
        &self,
        app: &AppId,
        cutoff: Timestamp,
        now: Timestamp,
    ) -> StoreResult<u64> {
        let mut tx = self.pool().begin().await.map_err(map_err)?;
        sqlx::query(
            "DELETE FROM verification_attachments WHERE application_id = $1 AND verification_id IN \
             (SELECT id FROM verification_sessions WHERE application_id = $2 \
              AND redacted_at IS NULL AND finished_at IS NOT NULL AND finished_at <= $3)",
        )
        .bind(app.as_str())
        .bind(app.as_str())
        .bind(cutoff.0)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        let redacted = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE verification_sessions SET results_sealed = NULL, input_sealed = NULL, \
             redacted_at = $1, version = version + 1 \
             WHERE application_id = $2 AND redacted_at IS NULL AND finished_at IS NOT NULL \
             AND finished_at <= $3 RETURNING {COLS}"
        )))
        .bind(now.0)
        .bind(app.as_str())
        .bind(cutoff.0)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        for row in &redacted {
            let v = from_row(row)?;
            let e = sessiond_core::events::verification_redacted(
                &v.application_id,
                v.id.as_str(),
                sessiond_core::events::verification_snapshot(&v),
                now,
            );
            crate::events::append(&mut tx, Some(&e)).await?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(redacted.len() as u64)
    }
}

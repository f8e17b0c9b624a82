//! JWT templates.

use crate::Pg;
use crate::{SqlStore, get, map_err};
use async_trait::async_trait;
use serde_json::Value;
use sessiond_core::application::AppId;
use sessiond_core::ids::TemplateId;
use sessiond_core::store::{StoreError, StoreResult, TemplateStore};
use sessiond_core::template::JwtTemplate;
use sessiond_store_sql::rows;
use sqlx::postgres::PgRow;

use super::*;

// ---- JWT templates ----

pub(super) use sessiond_store_sql::rows::TEMPLATE_COLS;

pub(super) fn template_from_row(row: &PgRow) -> StoreResult<JwtTemplate> {
    rows::template(&Pg(row))
}

pub(super) async fn fetch_template(store: &SqlStore, sql: Sql) -> StoreResult<Option<JwtTemplate>> {
    let row = sql
        .query()
        .fetch_optional(store.pool())
        .await
        .map_err(map_err)?;
    row.as_ref().map(template_from_row).transpose()
}

#[async_trait]
impl TemplateStore for SqlStore {
    async fn insert_template(&self, t: &JwtTemplate) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO jwt_templates (id, application_id, name, claims, lifetime, allowed_clock_skew, \
             custom_signing_key, signing_algorithm, signing_key, created_at, updated_at, version, claims_sealed) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(t.id.as_str())
        .bind(t.application_id.as_str())
        .bind(t.name.as_str())
        .bind(Value::Object(t.claims.clone()).to_string())
        .bind(i64_of(t.lifetime_secs))
        .bind(i64_of(t.allowed_clock_skew_secs))
        .bind(i64::from(t.custom_signing_key))
        .bind(t.signing_algorithm.as_str())
        .bind(t.signing_key_sealed.clone())
        .bind(t.created_at.0)
        .bind(t.updated_at.0)
        .bind(t.version)
        .bind(t.claims_sealed.clone())
        .execute(self.pool())
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn get_template(&self, app: &AppId, id: &TemplateId) -> StoreResult<Option<JwtTemplate>> {
        let mut sql = sql(&format!(
            "SELECT {TEMPLATE_COLS} FROM jwt_templates t WHERE t.application_id = "
        ));
        sql.bind(Arg::Str(app.0.clone()))
            .push(" AND t.id = ")
            .bind(Arg::Str(id.0.clone()));
        fetch_template(self, sql).await
    }

    async fn get_template_by_name(
        &self,
        app: &AppId,
        name: &str,
    ) -> StoreResult<Option<JwtTemplate>> {
        let mut sql = sql(&format!(
            "SELECT {TEMPLATE_COLS} FROM jwt_templates t WHERE t.application_id = "
        ));
        sql.bind(Arg::Str(app.0.clone()))
            .push(" AND t.name = ")
            .bind(Arg::Str(name.to_owned()));
        fetch_template(self, sql).await
    }

    async fn list_templates(
        &self,
        app: &AppId,
        limit: u32,
        offset: u64,
    ) -> StoreResult<(Vec<JwtTemplate>, u64)> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM jwt_templates WHERE application_id = $1")
            .bind(app.as_str())
            .fetch_one(self.pool())
            .await
            .map_err(map_err)?;
        let total: i64 = get(&row, "n")?;
        let mut sql = sql(&format!(
            "SELECT {TEMPLATE_COLS} FROM jwt_templates t WHERE t.application_id = "
        ));
        sql.bind(Arg::Str(app.0.clone()))
            .push(" ORDER BY t.created_at DESC, t.id DESC LIMIT ")
            .bind(Arg::I64(i64::from(limit)))
            .push(" OFFSET ")
            .bind(Arg::I64(i64_of(offset)));
        let rows = sql.query().fetch_all(self.pool()).await.map_err(map_err)?;
        let list = rows
            .iter()
            .map(template_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok((list, u64::try_from(total).unwrap_or(0)))
    }

    async fn update_template(&self, t: &JwtTemplate) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE jwt_templates SET name = $1, claims = $2, lifetime = $3, allowed_clock_skew = $4, \
             custom_signing_key = $5, signing_algorithm = $6, signing_key = $7, updated_at = $8, version = $9, \
             claims_sealed = $13 WHERE application_id = $10 AND id = $11 AND version = $12",
        )
        .bind(t.name.as_str())
        .bind(Value::Object(t.claims.clone()).to_string())
        .bind(i64_of(t.lifetime_secs))
        .bind(i64_of(t.allowed_clock_skew_secs))
        .bind(i64::from(t.custom_signing_key))
        .bind(t.signing_algorithm.as_str())
        .bind(t.signing_key_sealed.clone())
        .bind(t.updated_at.0)
        .bind(t.version)
        .bind(t.application_id.as_str())
        .bind(t.id.as_str())
        .bind(t.version - 1)
        .bind(t.claims_sealed.clone())
        .execute(self.pool())
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 1 {
            return Ok(());
        }
        match self.get_template(&t.application_id, &t.id).await? {
            Some(_) => Err(StoreError::Conflict),
            None => Err(StoreError::NotFound),
        }
    }

    async fn delete_template(&self, app: &AppId, id: &TemplateId) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM jwt_templates WHERE application_id = $1 AND id = $2")
            .bind(app.as_str())
            .bind(id.as_str())
            .execute(self.pool())
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }
}

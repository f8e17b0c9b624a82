//! JWT templates.

use crate::Pg;
use crate::{PgQuery, SqlStore, get, map_err};
use async_trait::async_trait;
use serde_json::Value;
use sessiond_core::application::AppId;
use sessiond_core::ids::TemplateId;
use sessiond_core::store::{StoreError, StoreResult, TemplateStore};
use sessiond_core::template::JwtTemplate;
use sessiond_store_sql::rows;
use sessiond_store_sql::{dollar, statements};
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

/// Binds `$1`–`$12`, the same in the insert and the update: the id and application, then every
/// field an update may write.
fn bind_changeable<'q>(q: PgQuery<'q>, t: &'q JwtTemplate) -> PgQuery<'q> {
    q.bind(t.id.as_str())
        .bind(t.application_id.as_str())
        .bind(t.name.as_str())
        .bind(Value::Object(t.claims.clone()).to_string())
        .bind(i64_of(t.lifetime_secs))
        .bind(i64_of(t.allowed_clock_skew_secs))
        .bind(i64::from(t.custom_signing_key))
        .bind(t.signing_algorithm.as_str())
        .bind(t.signing_key_sealed.clone())
        .bind(t.updated_at.0)
        .bind(t.version)
        .bind(t.claims_sealed.clone())
}

#[async_trait]
impl TemplateStore for SqlStore {
    async fn insert_template(&self, t: &JwtTemplate) -> StoreResult<()> {
        let q = sqlx::query(
            "INSERT INTO jwt_templates (id, application_id, name, claims, lifetime, allowed_clock_skew, \
             custom_signing_key, signing_algorithm, signing_key, updated_at, version, claims_sealed, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        );
        bind_changeable(q, t)
            .bind(t.created_at.0)
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
        let q = sqlx::query(
            "UPDATE jwt_templates SET name = $3, claims = $4, lifetime = $5, allowed_clock_skew = $6, \
             custom_signing_key = $7, signing_algorithm = $8, signing_key = $9, updated_at = $10, \
             version = $11, claims_sealed = $12 WHERE id = $1 AND application_id = $2 AND version = $13",
        );
        let done = bind_changeable(q, t)
            .bind(t.version - 1)
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
        let done = sqlx::query(dollar!(statements::DELETE_TEMPLATE))
            .bind(app.as_str())
            .bind(id.as_str())
            .execute(self.pool())
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }
}

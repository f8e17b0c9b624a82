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

pub(super) fn template_from_row(row: &PgRow) -> StoreResult<JwtTemplate> {
    rows::template(&Pg(row))
}

/// Binds `$1`–`$12`, the same in the insert and the update (see `statements::INSERT_TEMPLATE`).
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

impl SqlStore {
    /// The template named by `key` (its id or its name, as `sql` asks) in the application.
    async fn template_by(
        &self,
        sql: &'static str,
        app: &AppId,
        key: &str,
    ) -> StoreResult<Option<JwtTemplate>> {
        self.row(
            sqlx::query(sql).bind(app.as_str()).bind(key),
            template_from_row,
        )
        .await
    }
}

#[async_trait]
impl TemplateStore for SqlStore {
    async fn insert_template(&self, t: &JwtTemplate) -> StoreResult<()> {
        bind_changeable(sqlx::query(dollar!(statements::INSERT_TEMPLATE)), t)
            .bind(t.created_at.0)
            .execute(self.pool())
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn get_template(&self, app: &AppId, id: &TemplateId) -> StoreResult<Option<JwtTemplate>> {
        self.template_by(dollar!(statements::SELECT_TEMPLATE), app, id.as_str())
            .await
    }

    async fn get_template_by_name(
        &self,
        app: &AppId,
        name: &str,
    ) -> StoreResult<Option<JwtTemplate>> {
        self.template_by(dollar!(statements::SELECT_TEMPLATE_BY_NAME), app, name)
            .await
    }

    async fn list_templates(
        &self,
        app: &AppId,
        limit: u32,
        offset: u64,
    ) -> StoreResult<(Vec<JwtTemplate>, u64)> {
        let row = sqlx::query(dollar!(statements::COUNT_TEMPLATES))
            .bind(app.as_str())
            .fetch_one(self.pool())
            .await
            .map_err(map_err)?;
        let total: i64 = get(&row, "n")?;
        let rows = sqlx::query(dollar!(statements::LIST_TEMPLATES))
            .bind(app.as_str())
            .bind(i64::from(limit))
            .bind(i64_of(offset))
            .fetch_all(self.pool())
            .await
            .map_err(map_err)?;
        let list = rows
            .iter()
            .map(template_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok((list, u64::try_from(total).unwrap_or(0)))
    }

    async fn update_template(&self, t: &JwtTemplate) -> StoreResult<()> {
        let done = bind_changeable(sqlx::query(dollar!(statements::UPDATE_TEMPLATE)), t)
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
        let done = self
            .affected(
                sqlx::query(dollar!(statements::DELETE_TEMPLATE))
                    .bind(app.as_str())
                    .bind(id.as_str()),
            )
            .await?;
        Ok(done == 1)
    }
}

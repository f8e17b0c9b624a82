//! JWT templates.

use crate::Lite;
use crate::{SqliteStore, all, count, exec, first, i64_of};
use async_trait::async_trait;
use rusqlite::{Connection, Row, params};
use serde_json::Value;
use sessiond_core::application::AppId;
use sessiond_core::ids::TemplateId;
use sessiond_core::store::{StoreError, StoreResult, TemplateStore};
use sessiond_core::template::JwtTemplate;
use sessiond_store_sql::rows;
use sessiond_store_sql::statements;

// ---- JWT templates ----

pub(super) use sessiond_store_sql::rows::TEMPLATE_COLS;

pub(super) fn template_from_row(row: &Row<'_>) -> StoreResult<JwtTemplate> {
    rows::template(&Lite(row))
}

pub(super) fn get_template(
    conn: &Connection,
    app: &str,
    id: &str,
) -> StoreResult<Option<JwtTemplate>> {
    first(
        conn,
        &format!(
            "SELECT {TEMPLATE_COLS} FROM jwt_templates t WHERE t.application_id = ?1 AND t.id = ?2"
        ),
        [app, id],
        template_from_row,
    )
}

#[async_trait]
impl TemplateStore for SqliteStore {
    async fn insert_template(&self, t: &JwtTemplate) -> StoreResult<()> {
        let t = t.clone();
        self.write(move |c| {
            exec(
                c,
                "INSERT INTO jwt_templates (id, application_id, name, claims, lifetime, allowed_clock_skew, \
                 custom_signing_key, signing_algorithm, signing_key, created_at, updated_at, version, \
                 claims_sealed) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                params![
                    t.id.as_str(),
                    t.application_id.as_str(),
                    t.name.as_str(),
                    Value::Object(t.claims.clone()).to_string(),
                    i64_of(t.lifetime_secs),
                    i64_of(t.allowed_clock_skew_secs),
                    i64::from(t.custom_signing_key),
                    t.signing_algorithm.as_str(),
                    t.signing_key_sealed,
                    t.created_at.0,
                    t.updated_at.0,
                    t.version,
                    t.claims_sealed
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn get_template(&self, app: &AppId, id: &TemplateId) -> StoreResult<Option<JwtTemplate>> {
        self.read(|c| get_template(c, app.as_str(), id.as_str()))
    }

    async fn get_template_by_name(
        &self,
        app: &AppId,
        name: &str,
    ) -> StoreResult<Option<JwtTemplate>> {
        self.read(|c| {
            first(
                c,
                &format!(
                    "SELECT {TEMPLATE_COLS} FROM jwt_templates t WHERE t.application_id = ?1 AND t.name = ?2"
                ),
                [app.as_str(), name],
                template_from_row,
            )
        })
    }

    async fn list_templates(
        &self,
        app: &AppId,
        limit: u32,
        offset: u64,
    ) -> StoreResult<(Vec<JwtTemplate>, u64)> {
        self.read(|c| {
            let total = count(
                c,
                "SELECT COUNT(*) FROM jwt_templates WHERE application_id = ?1",
                [app.as_str()],
            )?;
            let list = all(
                c,
                &format!(
                    "SELECT {TEMPLATE_COLS} FROM jwt_templates t WHERE t.application_id = ?1 \
                     ORDER BY t.created_at DESC, t.id DESC LIMIT ?2 OFFSET ?3"
                ),
                params![app.as_str(), i64::from(limit), i64_of(offset)],
                template_from_row,
            )?;
            Ok((list, total))
        })
    }

    async fn update_template(&self, t: &JwtTemplate) -> StoreResult<()> {
        let t = t.clone();
        self.write(move |c| {
            let n = exec(
                c,
                "UPDATE jwt_templates SET name = ?1, claims = ?2, lifetime = ?3, allowed_clock_skew = ?4, \
                 custom_signing_key = ?5, signing_algorithm = ?6, signing_key = ?7, updated_at = ?8, version = ?9, \
                 claims_sealed = ?13 WHERE application_id = ?10 AND id = ?11 AND version = ?12",
                params![
                    t.name.as_str(),
                    Value::Object(t.claims.clone()).to_string(),
                    i64_of(t.lifetime_secs),
                    i64_of(t.allowed_clock_skew_secs),
                    i64::from(t.custom_signing_key),
                    t.signing_algorithm.as_str(),
                    t.signing_key_sealed,
                    t.updated_at.0,
                    t.version,
                    t.application_id.as_str(),
                    t.id.as_str(),
                    t.version - 1,
                    t.claims_sealed
                ],
            )?;
            if n == 1 {
                return Ok(());
            }
            match get_template(c, t.application_id.as_str(), t.id.as_str())? {
                Some(_) => Err(StoreError::Conflict),
                None => Err(StoreError::NotFound),
            }
        })
        .await
    }

    async fn delete_template(&self, app: &AppId, id: &TemplateId) -> StoreResult<bool> {
        self.write_one(statements::DELETE_TEMPLATE, app.as_str(), id.as_str(), None)
            .await
    }
}

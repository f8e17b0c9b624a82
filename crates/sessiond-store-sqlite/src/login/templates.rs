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
        statements::SELECT_TEMPLATE,
        [app, id],
        template_from_row,
    )
}

/// Runs the insert or the update: `?1`–`?12` are the same in both (see
/// `statements::INSERT_TEMPLATE`), `last` is `?13`.
fn write_template(c: &Connection, sql: &str, t: &JwtTemplate, last: i64) -> StoreResult<u64> {
    exec(
        c,
        sql,
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
            t.updated_at.0,
            t.version,
            t.claims_sealed,
            last
        ],
    )
}

#[async_trait]
impl TemplateStore for SqliteStore {
    async fn insert_template(&self, t: &JwtTemplate) -> StoreResult<()> {
        let t = t.clone();
        self.write(move |c| {
            write_template(c, statements::INSERT_TEMPLATE, &t, t.created_at.0)?;
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
                statements::SELECT_TEMPLATE_BY_NAME,
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
            let total = count(c, statements::COUNT_TEMPLATES, [app.as_str()])?;
            let list = all(
                c,
                statements::LIST_TEMPLATES,
                params![app.as_str(), i64::from(limit), i64_of(offset)],
                template_from_row,
            )?;
            Ok((list, total))
        })
    }

    async fn update_template(&self, t: &JwtTemplate) -> StoreResult<()> {
        let t = t.clone();
        self.write(move |c| {
            if write_template(c, statements::UPDATE_TEMPLATE, &t, t.version - 1)? == 1 {
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

//! Finding values older versions stored in clear, so the service can seal them.

use async_trait::async_trait;
use sessiond_core::session::Session;
use sessiond_core::store::{StoreResult, StoredUser, UpgradeStore};
use sessiond_core::template::JwtTemplate;
use sessiond_store_sql::{dollar, statements};

use super::templates::template_from_row;
use super::*;
use crate::SqlStore;

#[async_trait]
impl UpgradeStore for SqlStore {
    async fn users_with_clear_external_id(
        &self,
        after: &str,
        limit: u32,
    ) -> StoreResult<Vec<StoredUser>> {
        self.rows(
            sqlx::query(concat!(
                "SELECT ",
                user_cols!(),
                " FROM users u WHERE u.external_id IS NOT NULL AND u.id > $1 ORDER BY u.id LIMIT $2"
            ))
            .bind(after)
            .bind(i64::from(limit)),
            user_from_row,
        )
        .await
    }

    async fn sessions_with_clear_sso(&self, after: &str, limit: u32) -> StoreResult<Vec<Session>> {
        self.rows(
            sqlx::query(concat!(
                "SELECT ",
                session_cols!(),
                " FROM sessions s WHERE s.sso IS NULL AND s.attributes LIKE '%\"sso\":{%' \
             AND s.id > $1 ORDER BY s.id LIMIT $2"
            ))
            .bind(after)
            .bind(i64::from(limit)),
            session_from_row,
        )
        .await
    }

    async fn seal_session_sso(&self, s: &Session) -> StoreResult<bool> {
        let done = self
            .affected(
                sqlx::query(dollar!(statements::SEAL_SESSION_SSO))
                    .bind(s.sso.clone())
                    .bind(attributes_json(s)?)
                    .bind(s.application_id.as_str())
                    .bind(s.id.as_str())
                    .bind(s.version),
            )
            .await?;
        Ok(done == 1)
    }

    async fn templates_with_clear_claims(
        &self,
        after: &str,
        limit: u32,
    ) -> StoreResult<Vec<JwtTemplate>> {
        self.rows(
            sqlx::query(dollar!(statements::TEMPLATES_WITH_CLEAR_CLAIMS))
                .bind(after)
                .bind(i64::from(limit)),
            template_from_row,
        )
        .await
    }
}

//! Finding values older versions stored in clear, so the service can seal them.

use async_trait::async_trait;
use rusqlite::params;
use sessiond_core::session::Session;
use sessiond_core::store::{StoreResult, StoredUser, UpgradeStore};
use sessiond_core::template::JwtTemplate;
use sessiond_store_sql::statements;

use super::templates::template_from_row;
use super::*;
use crate::{SqliteStore, all, exec};

#[async_trait]
impl UpgradeStore for SqliteStore {
    async fn users_with_clear_external_id(
        &self,
        after: &str,
        limit: u32,
    ) -> StoreResult<Vec<StoredUser>> {
        self.read(|c| {
            all(
                c,
                concat!(
                    "SELECT ",
                    user_cols!(),
                    " FROM users u WHERE u.external_id IS NOT NULL AND u.id > ?1 ORDER BY u.id LIMIT ?2"
                ),
                rusqlite::params![after, limit],
                user_from_row,
            )
        })
    }

    async fn sessions_with_clear_sso(&self, after: &str, limit: u32) -> StoreResult<Vec<Session>> {
        self.read(|c| {
            all(
                c,
                concat!(
                    "SELECT ",
                    session_cols!(),
                    " FROM sessions s WHERE s.sso IS NULL AND s.attributes LIKE '%\"sso\":{%' \
                     AND s.id > ?1 ORDER BY s.id LIMIT ?2"
                ),
                rusqlite::params![after, limit],
                session_from_row,
            )
        })
    }

    async fn seal_session_sso(&self, s: &Session) -> StoreResult<bool> {
        let attributes = attributes_json(s)?;
        let s = s.clone();
        self.write(move |c| {
            let n = exec(
                c,
                statements::SEAL_SESSION_SSO,
                params![
                    s.sso,
                    attributes,
                    s.application_id.as_str(),
                    s.id.as_str(),
                    s.version
                ],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn templates_with_clear_claims(
        &self,
        after: &str,
        limit: u32,
    ) -> StoreResult<Vec<JwtTemplate>> {
        self.read(|c| {
            all(
                c,
                statements::TEMPLATES_WITH_CLEAR_CLAIMS,
                rusqlite::params![after, limit],
                template_from_row,
            )
        })
    }
}

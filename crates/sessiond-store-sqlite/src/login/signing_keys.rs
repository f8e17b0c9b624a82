//! Signing keys and their rotation.

use crate::Lite;
use crate::{SqliteStore, all, exec, is_foreign_key, map_err};
use async_trait::async_trait;
use rusqlite::{Row, params};
use sessiond_core::Timestamp;
use sessiond_core::application::AppId;
use sessiond_core::ids::SigningKeyId;
use sessiond_core::store::{SigningKeyRecord, SigningKeyStore, StoreError, StoreResult};
use sessiond_store_sql::rows;
use sessiond_store_sql::statements;

// ---- signing keys ----

pub(super) fn signing_key_from_row(row: &Row<'_>) -> StoreResult<SigningKeyRecord> {
    rows::signing_key(&Lite(row))
}

#[async_trait]
impl SigningKeyStore for SqliteStore {
    async fn insert_signing_key(&self, k: &SigningKeyRecord) -> StoreResult<()> {
        let k = k.clone();
        self.write(move |c| {
            let done = c
                .prepare_cached(statements::INSERT_SIGNING_KEY)
                .and_then(|mut stmt| {
                    stmt.execute(params![
                        k.kid.as_str(),
                        k.application_id.as_str(),
                        k.algorithm.as_str(),
                        k.private_sealed.as_slice(),
                        k.public_jwk.as_str(),
                        k.state.as_str(),
                        k.created_at.0,
                        k.activates_at.0,
                        k.retired_at.map(|t| t.0),
                        k.publish_until.0,
                        k.version
                    ])
                });
            match done {
                Ok(_) => Ok(()),
                Err(e) if is_foreign_key(&e) => Err(StoreError::NotFound),
                Err(e) => Err(map_err(e)),
            }
        })
        .await
    }

    async fn list_signing_keys(&self, app: &AppId) -> StoreResult<Vec<SigningKeyRecord>> {
        self.read(|c| {
            all(
                c,
                statements::SELECT_SIGNING_KEYS,
                [app.as_str()],
                signing_key_from_row,
            )
        })
    }

    async fn promote_signing_key(
        &self,
        app: &AppId,
        next: &SigningKeyId,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let (app, next) = (app.0.clone(), next.0.clone());
        let promoted = self
            .write(move |c| {
                exec(c, statements::RETIRE_SIGNING_KEY, params![now.0, app])?;
                let n = exec(
                    c,
                    statements::ACTIVATE_SIGNING_KEY,
                    params![now.0, app, next],
                )?;
                // Not promoted: undo the retirement too (the request's savepoint is rolled back).
                if n == 1 {
                    Ok(())
                } else {
                    Err(StoreError::Conflict)
                }
            })
            .await;
        match promoted {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn extend_signing_key(
        &self,
        app: &AppId,
        kid: &SigningKeyId,
        until: Timestamp,
    ) -> StoreResult<()> {
        let (app, kid) = (app.0.clone(), kid.0.clone());
        self.write(move |c| {
            exec(
                c,
                "UPDATE signing_keys SET publish_until = ?1 \
                 WHERE application_id = ?2 AND kid = ?3 AND publish_until < ?1",
                params![until.0, app, kid],
            )?;
            Ok(())
        })
        .await
    }

    async fn delete_expired_signing_keys(&self, app: &AppId, now: Timestamp) -> StoreResult<u64> {
        let app = app.0.clone();
        self.write(move |c| {
            exec(
                c,
                statements::DELETE_RETIRED_SIGNING_KEYS,
                params![app, now.0],
            )
        })
        .await
    }
}

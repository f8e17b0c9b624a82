//! Identity-verification sessions and attachments.

use async_trait::async_trait;
use rusqlite::{Connection, Row, params};
use sessiond_core::Timestamp;
use sessiond_core::application::AppId;
use sessiond_core::events::NewEvent;
use sessiond_core::store::{
    StoreError, StoreResult, StoredAttachment, VerificationOrder, VerificationStore,
};
use sessiond_core::verification::{State, Verification, VerificationId};
use sessiond_store_sql::statements;

use crate::{Run, SqliteStore, all, count, exec, first};

use sessiond_store_sql::rows::VERIFICATION_COLS as COLS;

fn from_row(row: &Row<'_>) -> StoreResult<Verification> {
    sessiond_store_sql::rows::verification(&crate::Lite(row))
}

fn json<T: serde::Serialize>(v: &T) -> StoreResult<String> {
    serde_json::to_string(v)
        .map_err(|e| StoreError::backend_caused("cannot encode a stored value", e))
}

fn insert_attachments(conn: &Connection, atts: &[StoredAttachment]) -> StoreResult<()> {
    for a in atts {
        exec(
            conn,
            statements::INSERT_ATTACHMENT,
            params![
                a.id,
                a.application_id.as_str(),
                a.verification_id.as_str(),
                a.sealed,
                a.created_at.0
            ],
        )?;
    }
    Ok(())
}

fn get_verification(conn: &Connection, app: &str, id: &str) -> StoreResult<Option<Verification>> {
    first(
        conn,
        &format!("SELECT {COLS} FROM verification_sessions WHERE application_id = ?1 AND id = ?2"),
        [app, id],
        from_row,
    )
}

/// The version-checked write of a loaded session; NotFound or Conflict when it did not apply.
fn write_verification(conn: &Connection, v: &Verification) -> StoreResult<()> {
    let n = exec(
        conn,
        "UPDATE verification_sessions SET state = ?1, state_rank = ?2, fail_reason = ?3, \
         provider = ?4, sub_provider = ?5, options = ?6, step = ?7, input_sealed = ?8, \
         results_sealed = ?9, browser_binding = ?10, updated_at = ?11, finished_at = ?12, \
         redacted_at = ?13, version = ?14 \
         WHERE application_id = ?15 AND id = ?16 AND version = ?17",
        params![
            v.state.as_str(),
            i64::from(v.state.rank()),
            v.state.fail_reason().map(|r| r.as_str()),
            v.provider,
            v.sub_provider,
            json(&v.options)?,
            json(&v.step)?,
            v.input_sealed,
            v.results_sealed,
            v.browser_binding.map(|b| b.to_vec()),
            v.updated_at.0,
            v.finished_at.map(|t| t.0),
            v.redacted_at.map(|t| t.0),
            v.version,
            v.application_id.as_str(),
            v.id.as_str(),
            v.version - 1
        ],
    )?;
    if n == 1 {
        return Ok(());
    }
    match get_verification(conn, v.application_id.as_str(), v.id.as_str())? {
        Some(_) => Err(StoreError::Conflict),
        None => Err(StoreError::NotFound),
    }
}

#[async_trait]
impl VerificationStore for SqliteStore {
    async fn insert_verification(
        &self,
        v: &Verification,
        attachments: &[StoredAttachment],
        event: Option<&NewEvent>,
    ) -> StoreResult<()> {
        let (options, step) = (json(&v.options)?, json(&v.step)?);
        let (v, attachments, event) = (v.clone(), attachments.to_vec(), event.cloned());
        self.write(move |c| {
            exec(
                c,
                "INSERT INTO verification_sessions (id, application_id, flow, state, state_rank, \
                 fail_reason, provider, sub_provider, options, step, results_key_hash, \
                 results_public_key, input_sealed, results_sealed, browser_binding, created_at, \
                 updated_at, expires_at, finished_at, redacted_at, version) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, \
                 ?18, ?19, ?20, ?21)",
                params![
                    v.id.as_str(),
                    v.application_id.as_str(),
                    v.flow.as_str(),
                    v.state.as_str(),
                    i64::from(v.state.rank()),
                    v.state.fail_reason().map(|r| r.as_str()),
                    v.provider,
                    v.sub_provider,
                    options,
                    step,
                    v.results_key_hash.to_vec(),
                    v.results_public_key.to_vec(),
                    v.input_sealed,
                    v.results_sealed,
                    v.browser_binding.map(|b| b.to_vec()),
                    v.created_at.0,
                    v.updated_at.0,
                    v.expires_at.0,
                    v.finished_at.map(|t| t.0),
                    v.redacted_at.map(|t| t.0),
                    v.version
                ],
            )?;
            insert_attachments(c, &attachments)?;
            crate::events::append(c, event.as_ref())
        })
        .await
    }

    async fn get_verification(
        &self,
        app: &AppId,
        id: &VerificationId,
    ) -> StoreResult<Option<Verification>> {
        self.read(|c| get_verification(c, app.as_str(), id.as_str()))
    }

    async fn update_verification(
        &self,
        v: &Verification,
        attachments: &[StoredAttachment],
        event: Option<&NewEvent>,
    ) -> StoreResult<()> {
        let (v, attachments, event) = (v.clone(), attachments.to_vec(), event.cloned());
        self.write(move |c| {
            write_verification(c, &v)?;
            insert_attachments(c, &attachments)?;
            crate::events::append(c, event.as_ref())
        })
        .await
    }

    async fn redact_verification(
        &self,
        v: &Verification,
        event: Option<&NewEvent>,
    ) -> StoreResult<()> {
        let (v, event) = (v.clone(), event.cloned());
        self.write(move |c| {
            write_verification(c, &v)?;
            exec(
                c,
                statements::DELETE_ATTACHMENTS,
                [v.application_id.as_str(), v.id.as_str()],
            )?;
            crate::events::append(c, event.as_ref())
        })
        .await?;
        self.scrub_wal().await;
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
            sessiond_store_sql::Placeholders::Question,
            app,
            order,
            descending,
            limit,
            offset,
        );
        self.read(|c| {
            let list = page.all(c, from_row)?;
            let total = count(c, statements::COUNT_VERIFICATIONS, [app.as_str()])?;
            Ok((list, total))
        })
    }

    async fn get_attachment(&self, app: &AppId, id: &str) -> StoreResult<Option<StoredAttachment>> {
        self.read(|c| {
            first(c, statements::SELECT_ATTACHMENT, [app.as_str(), id], |r| {
                sessiond_store_sql::rows::attachment(&crate::Lite(r))
            })
        })
    }

    async fn expire_verifications(&self, now: Timestamp) -> StoreResult<u64> {
        self.write(move |c| {
            exec(
                c,
                statements::EXPIRE_VERIFICATIONS,
                params![
                    i64::from(State::Expired.rank()),
                    r#"{"kind":"finished"}"#,
                    now.0
                ],
            )
        })
        .await
    }

    async fn redact_verifications_finished_before(
        &self,
        app: &AppId,
        cutoff: Timestamp,
        now: Timestamp,
    ) -> StoreResult<u64> {
        let app = app.0.clone();
        let n = self
            .write(move |c| {
                exec(
                    c,
                    "DELETE FROM verification_attachments WHERE application_id = ?1 AND verification_id IN \
                     (SELECT id FROM verification_sessions WHERE application_id = ?1 \
                      AND redacted_at IS NULL AND finished_at IS NOT NULL AND finished_at <= ?2)",
                    params![app, cutoff.0],
                )?;
                let redacted = all(
                    c,
                    &format!(
                        "UPDATE verification_sessions SET results_sealed = NULL, input_sealed = NULL, \
                         redacted_at = ?1, version = version + 1 \
                         WHERE application_id = ?2 AND redacted_at IS NULL AND finished_at IS NOT NULL \
                         AND finished_at <= ?3 RETURNING {COLS}"
                    ),
                    params![now.0, app, cutoff.0],
                    from_row,
                )?;
                for v in &redacted {
                    let e = sessiond_core::events::verification_redacted(
                        &v.application_id,
                        v.id.as_str(),
                        sessiond_core::events::verification_snapshot(v),
                        now,
                    );
                    crate::events::append(c, Some(&e))?;
                }
                Ok(redacted.len() as u64)
            })
            .await?;
        if n > 0 {
            self.scrub_wal().await;
        }
        Ok(n)
    }
}

//! Session deletion, the per-session token vault, and the impersonation audit trail.

use async_trait::async_trait;
use sessiond_core::Timestamp;
use sessiond_core::application::AppId;
use sessiond_core::ids::{SessionId, UserId};
use sessiond_core::store::{
    AuditStore, ImpersonationEvent, SessionDeleteStore, SessionDeletion, StoreError, StoreResult,
    VaultEntry, VaultStore,
};
use sessiond_store_sql::rows;
use sessiond_store_sql::session_is_live;
use sessiond_store_sql::{dollar, statements};
use sqlx::Row;

use crate::login::Bind;
use crate::{SqlStore, map_err};

/// Rows whose session is no longer usable at `$n` (mirrors `Session::effective_status`).
const UNUSABLE: &str = "(status NOT IN ('active', 'pending') OR expire_at <= $1 OR abandon_at <= $2 \
     OR (idle_deadline IS NOT NULL AND idle_deadline <= $3))";

/// A kind of bulk deletion the sweeper finishes: `pick` finds one (columns `app`, `scope`,
/// `bound`), `delete` removes up to `$4` of its rows, `done` records that none are left.
struct Sweep {
    pick: &'static str,
    delete: &'static str,
    done: &'static str,
}

/// All of a user's sessions (`scope`: the user) below a generation.
const USER_SWEEP: Sweep = Sweep {
    pick: "SELECT application_id AS app, user_id AS scope, below AS bound FROM session_sweeps \
           LIMIT 1 FOR UPDATE SKIP LOCKED",
    delete: "DELETE FROM sessions WHERE ctid = ANY (ARRAY(SELECT ctid FROM sessions \
             WHERE application_id = $1 AND user_id = $2 AND user_generation < $3 LIMIT $4))",
    done: dollar!(statements::DELETE_SESSION_SWEEP),
};

/// An application's sessions (`scope`: the application again) lapsed by a time; the search is
/// the expression of the sessions_by_lapse index, so it uses it.
const PURGE_SWEEP: Sweep = Sweep {
    pick: "SELECT application_id AS app, application_id AS scope, lapsed_through AS bound \
           FROM session_purges WHERE swept_through < lapsed_through LIMIT 1 FOR UPDATE SKIP LOCKED",
    delete: "DELETE FROM sessions WHERE ctid = ANY (ARRAY(SELECT ctid FROM sessions \
             WHERE application_id = $1 AND application_id = $2 \
             AND LEAST(expire_at, abandon_at, COALESCE(idle_deadline, expire_at)) <= $3 LIMIT $4))",
    done: dollar!(statements::ADVANCE_SWEPT_THROUGH),
};

#[async_trait]
impl SessionDeleteStore for SqlStore {
    async fn delete_session(
        &self,
        app: &AppId,
        id: &SessionId,
        event: Option<&sessiond_core::events::NewEvent>,
    ) -> StoreResult<bool> {
        const DELETE: &str = crate::events::delete_with_event!(concat!(
            "DELETE FROM sessions AS s WHERE application_id = $1 AND id = $2 AND ",
            session_is_live!()
        ));
        self.delete_one(DELETE, app, id.as_str(), event).await
    }

    async fn delete_sessions(&self, app: &AppId, which: &SessionDeletion) -> StoreResult<u64> {
        // Only the filters that are set become predicates, so each form uses its index
        // (a `($n = '' OR user_id = $m)` guard would force a full scan on SQLite).
        let mut sql = String::from("DELETE FROM sessions WHERE application_id = $1");
        let mut next = 2;
        if which.user_id.is_some() {
            sql.push_str(&format!(" AND user_id = ${next}"));
            next += 1;
        }
        if which.lapsed_at.is_some() {
            // Exactly the expression of the sessions_by_lapse index, so the search uses it.
            sql.push_str(&format!(
                " AND LEAST(expire_at, abandon_at, COALESCE(idle_deadline, expire_at)) <= ${next}"
            ));
        }
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(app.as_str());
        if let Some(u) = &which.user_id {
            q = q.bind(u.as_str());
        }
        if let Some(t) = which.lapsed_at {
            q = q.bind(t.0);
        }
        let done = self.affected(q).await?;
        Ok(done)
    }

    async fn delete_user_sessions(
        &self,
        app: &AppId,
        user: &UserId,
        now: Timestamp,
    ) -> StoreResult<bool> {
        // One statement: the generation moves on, the sweep is recorded, and the event lists
        // the sessions that were still usable (the CTEs read the sessions as they were).
        let row = sqlx::query(
            "WITH bumped AS (UPDATE users SET session_generation = session_generation + 1 \
             WHERE application_id = $1 AND id = $2 RETURNING application_id, id, session_generation), \
             swept AS (INSERT INTO session_sweeps (application_id, user_id, below) \
             SELECT application_id, id, session_generation FROM bumped \
             ON CONFLICT (application_id, user_id) DO UPDATE SET below = EXCLUDED.below), \
             usable AS (SELECT coalesce(json_agg(s.id ORDER BY s.created_at, s.id), '[]'::json) AS ids, \
             count(*) AS n FROM sessions s JOIN bumped b ON s.application_id = b.application_id \
             AND s.user_id = b.id AND s.user_generation = b.session_generation - 1 \
             WHERE s.status IN ('active', 'pending') \
             AND LEAST(s.expire_at, s.abandon_at, COALESCE(s.idle_deadline, s.expire_at)) > $3), \
             ev AS (INSERT INTO events (id, application_id, type, subject, occurred_at, data) \
             SELECT $4, $1, 'user.sessions.removed', $2, $3, \
             json_build_object('user_id', $2::text, 'session_ids', usable.ids)::text \
             FROM usable WHERE usable.n > 0) \
             SELECT count(*) AS n FROM bumped",
        )
        .bind(app.as_str())
        .bind(user.as_str())
        .bind(now.0)
        .bind(sessiond_crypto::ids::new_time_ordered_id(
            "evt",
            u64::try_from(now.0).unwrap_or(0),
        ))
        .fetch_one(self.pool())
        .await
        .map_err(map_err)?;
        Ok(row.try_get::<i64, _>("n").map_err(map_err)? == 1)
    }

    async fn delete_lapsed_sessions(&self, app: &AppId, through: Timestamp) -> StoreResult<()> {
        sqlx::query(
            "UPDATE session_purges SET lapsed_through = GREATEST(lapsed_through, $2) \
             WHERE application_id = $1",
        )
        .bind(app.as_str())
        .bind(through.0)
        .execute(self.pool())
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn sweep_deleted_sessions(&self, limit: u32) -> StoreResult<u64> {
        let mut left = i64::from(limit);
        for sweep in [&USER_SWEEP, &PURGE_SWEEP] {
            // One deletion at a time; SKIP LOCKED lets several nodes sweep different ones.
            while left > 0 {
                let mut tx = self.pool().begin().await.map_err(map_err)?;
                let Some(next) = sqlx::query(sweep.pick)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(map_err)?
                else {
                    break;
                };
                let (app, scope, bound): (String, String, i64) = (
                    next.try_get("app").map_err(map_err)?,
                    next.try_get("scope").map_err(map_err)?,
                    next.try_get("bound").map_err(map_err)?,
                );
                let n = sqlx::query(sweep.delete)
                    .bind(&app)
                    .bind(&scope)
                    .bind(bound)
                    .bind(left)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?
                    .rows_affected();
                left -= i64::try_from(n).unwrap_or(i64::MAX);
                if left > 0 {
                    // Fewer than asked: this deletion's rows are all gone.
                    sqlx::query(sweep.done)
                        .bind(&app)
                        .bind(&scope)
                        .bind(bound)
                        .execute(&mut *tx)
                        .await
                        .map_err(map_err)?;
                }
                tx.commit().await.map_err(map_err)?;
            }
        }
        Ok(u64::try_from(i64::from(limit) - left).unwrap_or(0))
    }
}

#[async_trait]
impl VaultStore for SqlStore {
    async fn put_session_token(
        &self,
        app: &AppId,
        session: &SessionId,
        token_id: &str,
        entry: &VaultEntry,
        max_tokens: usize,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let mut tx = self.pool().begin().await.map_err(map_err)?;
        let exists = sqlx::query(concat!(
            "SELECT 1 AS x FROM sessions AS s WHERE application_id = $1 AND id = $2 AND ",
            session_is_live!()
        ))
        .bind(app.as_str())
        .bind(session.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        if exists.is_none() {
            return Err(StoreError::NotFound);
        }
        let others: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM session_tokens WHERE session_id = $1 AND token_id <> $2",
        )
        .bind(session.as_str())
        .bind(token_id)
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?
        .try_get("n")
        .map_err(map_err)?;
        if usize::try_from(others).unwrap_or(usize::MAX) >= max_tokens {
            return Ok(false);
        }
        sqlx::query(dollar!(statements::DELETE_SESSION_TOKEN_BY_ID))
            .bind(session.as_str())
            .bind(token_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        sqlx::query(
            "INSERT INTO session_tokens (id, application_id, session_id, token_id, value, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(entry.row_id.as_str())
        .bind(app.as_str())
        .bind(session.as_str())
        .bind(token_id)
        .bind(entry.value_sealed.as_slice())
        .bind(now.0)
        .bind(now.0)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn get_session_token(
        &self,
        app: &AppId,
        session: &SessionId,
        token_id: &str,
    ) -> StoreResult<Option<VaultEntry>> {
        let row = sqlx::query(concat!(
            "SELECT t.id, t.value FROM session_tokens t JOIN sessions s ON s.id = t.session_id \
             WHERE t.application_id = $1 AND t.session_id = $2 AND t.token_id = $3 AND ",
            session_is_live!()
        ))
        .bind(app.as_str())
        .bind(session.as_str())
        .bind(token_id)
        .fetch_optional(self.pool())
        .await
        .map_err(map_err)?;
        row.map(|r| {
            Ok(VaultEntry {
                row_id: r.try_get("id").map_err(map_err)?,
                value_sealed: r.try_get("value").map_err(map_err)?,
            })
        })
        .transpose()
    }

    async fn delete_session_token(
        &self,
        app: &AppId,
        session: &SessionId,
        token_id: &str,
    ) -> StoreResult<bool> {
        let done = self
            .affected(
                sqlx::query(dollar!(statements::DELETE_SESSION_TOKEN))
                    .bind(app.as_str())
                    .bind(session.as_str())
                    .bind(token_id),
            )
            .await?;
        Ok(done == 1)
    }

    async fn delete_session_tokens(&self, app: &AppId, session: &SessionId) -> StoreResult<u64> {
        let done = self
            .affected(
                sqlx::query(dollar!(statements::DELETE_SESSION_TOKENS))
                    .bind(app.as_str())
                    .bind(session.as_str()),
            )
            .await?;
        Ok(done)
    }

    async fn purge_unusable_session_tokens(&self, now: Timestamp) -> StoreResult<u64> {
        let sql = format!(
            "DELETE FROM session_tokens WHERE session_id IN (SELECT id FROM sessions WHERE {UNUSABLE})"
        );
        let done = self
            .affected(
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(now.0)
                    .bind(now.0)
                    .bind(now.0),
            )
            .await?;
        Ok(done)
    }
}

#[async_trait]
impl AuditStore for SqlStore {
    async fn record_impersonation(&self, e: &ImpersonationEvent) -> StoreResult<()> {
        sqlx::query(dollar!(statements::INSERT_IMPERSONATION))
            .bind(e.id.as_str())
            .bind(e.application_id.as_str())
            .bind(e.session_id.as_str())
            .bind(e.actor_user_id.as_str())
            .bind(e.target_user_id.as_str())
            .bind(e.kind.as_str())
            .bind(e.at.0)
            .execute(self.pool())
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn list_impersonations(
        &self,
        app: &AppId,
        user: Option<&UserId>,
        limit: u32,
    ) -> StoreResult<Vec<ImpersonationEvent>> {
        let q = sessiond_store_sql::filters::impersonations(
            sessiond_store_sql::Placeholders::Dollar,
            app,
            user.map(UserId::as_str),
            limit,
        );
        let rows = q.query().fetch_all(self.pool()).await.map_err(map_err)?;
        rows.iter()
            .map(|r| rows::impersonation(&crate::Pg(r)))
            .collect()
    }
}

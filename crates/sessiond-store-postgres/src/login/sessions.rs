//! Sessions, with their user where a view needs both.

use crate::{SqlStore, get, map_err};
use async_trait::async_trait;
use serde_json::Value;
use sessiond_core::Timestamp;
use sessiond_core::application::AppId;
use sessiond_core::events::NewEvent;
use sessiond_core::ids::SessionId;
use sessiond_core::session::Session;
use sessiond_core::store::{SessionFilter, SessionStore, StoreError, StoreResult, StoredUser};
use sessiond_store_sql::{dollar, statements};

use super::*;
use sessiond_store_sql::filters::*;

/// One statement, one round trip: the conditional update of `update_session` and, for a terminal
/// status, the vault deletion (a data-modifying CTE that only sees the row if the update
/// matched), with the event. Its row's `n` is 1 when the session was written.
fn update_query<'q>(
    s: &'q Session,
    attributes: &'q str,
    event: Option<&'q NewEvent>,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    let q = sqlx::query(concat!(
        "WITH upd AS (UPDATE sessions AS s SET status = $1, actor = $2, activity = $3, \
         last_active_organization_id = $4, updated_at = $5, last_active_at = $6, abandon_at = $7, \
         idle_deadline = $8, version = $9, user_id = $13, attributes = $14, user_generation = \
         (SELECT session_generation FROM users WHERE application_id = $15 AND id = $16) \
         WHERE s.application_id = $10 AND s.id = $11 AND s.version = $12 \
         AND EXISTS (SELECT 1 FROM users WHERE application_id = $15 AND id = $16) AND ",
        sessiond_store_sql::session_is_live!(),
        " RETURNING s.id), \
         del AS (DELETE FROM session_tokens WHERE $17 AND application_id = $15 \
         AND session_id IN (SELECT id FROM upd)), ",
        crate::events::event_cte!("upd", 18, 19, 20, 21, 22, 23),
        " SELECT count(*) AS n FROM upd"
    ));
    crate::events::bind(
        q.bind(s.status.as_str())
            .bind(s.actor.as_ref().map(Value::to_string))
            .bind(s.activity.clone())
            .bind(s.last_active_organization_id.clone())
            .bind(s.updated_at.0)
            .bind(s.last_active_at.0)
            .bind(s.abandon_at.0)
            .bind(s.idle_deadline.map(|t| t.0))
            .bind(s.version)
            .bind(s.application_id.as_str())
            .bind(s.id.as_str())
            .bind(s.version - 1)
            .bind(s.user_id.as_str())
            .bind(attributes)
            .bind(s.application_id.as_str())
            .bind(s.user_id.as_str())
            .bind(s.status.is_terminal()),
        event,
    )
}

/// [`update_query`] for a change decided from `before` (`SessionStore::change_session`): one
/// statement, one round trip, that sets only the columns that differ (a touch sends three
/// numbers, not the attributes' JSON to parse again) and looks the user up once, in the
/// liveness check (the user is the one the session had). The vault deletion and the event are
/// in the statement only when there is one to do.
fn change_query(
    before: &Session,
    after: &Session,
    event: Option<&NewEvent>,
) -> StoreResult<sessiond_store_sql::Sql> {
    let app = || Arg::Str(after.application_id.0.clone());
    let mut q = sql("WITH upd AS (UPDATE sessions AS s SET ");
    q.assignments(sessiond_store_sql::session_changes(before, after)?)
        .push(" WHERE s.application_id = ")
        .bind(app())
        .push(" AND s.id = ")
        .bind(Arg::Str(after.id.0.clone()))
        .push(" AND s.version = ")
        .bind(Arg::I64(before.version))
        .push(concat!(
            " AND ",
            sessiond_store_sql::session_is_live!(),
            " RETURNING s.id)"
        ));
    if after.status.is_terminal() {
        q.push(", del AS (DELETE FROM session_tokens WHERE application_id = ")
            .bind(app())
            .push(" AND session_id IN (SELECT id FROM upd))");
    }
    if let Some(e) = event {
        crate::events::push_event_cte(&mut q, "upd", e);
    }
    q.push(" SELECT count(*) AS n FROM upd");
    Ok(q)
}

/// `update_sessions` as one set-based statement: the new states as arrays (`Columns`; `$24` the
/// ids of the sessions it ends), each session written under the same conditions as
/// [`update_query`], vaults of ended sessions emptied and each written session's event appended;
/// returns the ids written.
///
/// Each session is found through its primary key in a lateral subquery and then updated by
/// row address (`ctid`), whatever the planner believes of the table: joined directly, a table
/// whose statistics were not yet gathered was scanned once per session (60 ms for 100 sessions
/// among 3,000). A row another writer changed after it was found is not written (its new
/// version has another address), which the caller sees in the count.
const UPDATE_SESSIONS: &str = concat!(
    "WITH v AS (",
    super::grouped::unnest_sessions!(),
    "), found AS MATERIALIZED (SELECT f.at, v.* FROM v CROSS JOIN LATERAL (SELECT s.ctid AS at \
     FROM sessions AS s WHERE s.application_id = v.application_id AND s.id = v.id \
     AND s.version = v.version - 1 \
     AND EXISTS (SELECT 1 FROM users WHERE application_id = v.application_id AND id = v.user_id) AND ",
    sessiond_store_sql::session_is_live!(),
    ") AS f), \
     upd AS (UPDATE sessions AS s SET status = v.status, actor = v.actor, activity = v.activity, \
     last_active_organization_id = v.org, updated_at = v.updated_at, last_active_at = v.last_active_at, \
     abandon_at = v.abandon_at, idle_deadline = v.idle_deadline, version = v.version, user_id = v.user_id, \
     attributes = v.attributes, user_generation = \
     (SELECT session_generation FROM users WHERE application_id = v.application_id AND id = v.user_id) \
     FROM found AS v WHERE s.ctid = v.at AND s.version = v.version - 1 \
     RETURNING s.application_id, s.id), \
     del AS (DELETE FROM session_tokens t USING upd WHERE upd.id = ANY($24::text[]) \
     AND t.application_id = upd.application_id AND t.session_id = upd.id), \
     ev AS (INSERT INTO events (id, application_id, type, subject, occurred_at, data) \
     SELECT v.event_id, v.event_app, v.event_type, v.event_subject, v.event_at, v.event_data \
     FROM upd JOIN v ON v.application_id = upd.application_id AND v.id = upd.id \
     WHERE v.event_id IS NOT NULL) \
     SELECT id FROM upd"
);

impl SqlStore {
    /// Why the conditional update of `s` matched no row: it changed meanwhile, or it is gone.
    async fn why_not_updated(&self, s: &Session) -> StoreError {
        match self.get_session(&s.application_id, &s.id).await {
            Ok(Some(_)) => StoreError::Conflict,
            Ok(None) => StoreError::NotFound,
            Err(e) => e,
        }
    }
}

#[async_trait]
impl SessionStore for SqlStore {
    async fn insert_session(&self, s: &Session, event: Option<&NewEvent>) -> StoreResult<()> {
        // One statement: the session and its event, or neither; grouped with concurrent ones.
        match self.grouped() {
            Some(g) => g.insert(s, event).await,
            None => super::grouped::insert_one(self.pool(), s, event).await,
        }
    }

    async fn get_session(&self, app: &AppId, id: &SessionId) -> StoreResult<Option<Session>> {
        self.row(
            sqlx::query(concat!(
                "SELECT ",
                session_cols!(),
                sessiond_store_sql::live_sessions!(),
                " WHERE s.application_id = $1 AND s.id = $2 AND ",
                sessiond_store_sql::not_purged!("$1")
            ))
            .bind(app.as_str())
            .bind(id.as_str()),
            session_from_row,
        )
        .await
    }

    async fn get_session_with_user(
        &self,
        app: &AppId,
        id: &SessionId,
    ) -> StoreResult<Option<(Session, StoredUser)>> {
        // Built at compile time: this is the Equisoft read path, run on every request.
        const SQL: &str = sessiond_store_sql::session_with_user!("$1", "$2");
        let row = sqlx::query(SQL)
            .bind(app.as_str())
            .bind(id.as_str())
            .fetch_optional(self.pool())
            .await
            .map_err(map_err)?;
        row.map(|r| {
            Ok((
                session_from_row(&r)?,
                sessiond_store_sql::rows::user_at(&crate::Pg(&r), SESSION_COL_COUNT)?,
            ))
        })
        .transpose()
    }

    async fn list_sessions(
        &self,
        app: &AppId,
        filter: &SessionFilter,
        limit: u32,
        offset: u64,
        now: Timestamp,
    ) -> StoreResult<(Vec<Session>, u64)> {
        let mut count = sql(&format!("SELECT COUNT(*) AS n{LIVE_SESSIONS}"));
        session_where(app, filter, now, &mut count);
        let total = self.n_of(&count).await?;
        let sessions = self
            .list_sessions_page(app, filter, limit, offset, now)
            .await?;
        Ok((sessions, u64::try_from(total).unwrap_or(0)))
    }

    async fn list_sessions_page(
        &self,
        app: &AppId,
        filter: &SessionFilter,
        limit: u32,
        offset: u64,
        now: Timestamp,
    ) -> StoreResult<Vec<Session>> {
        let mut page = sql(&format!("SELECT {SESSION_COLS}{LIVE_SESSIONS}"));
        session_where(app, filter, now, &mut page);
        page.push(" ORDER BY s.created_at DESC, s.id DESC LIMIT ")
            .bind(Arg::I64(i64::from(limit)))
            .push(" OFFSET ")
            .bind(Arg::I64(i64_of(offset)));
        self.rows(page.query(), session_from_row).await
    }

    async fn update_session(&self, s: &Session, event: Option<&NewEvent>) -> StoreResult<()> {
        let attributes = attributes_json(s)?;
        let row = update_query(s, &attributes, event)
            .fetch_one(self.pool())
            .await
            .map_err(map_err)?;
        if get::<i64>(&row, "n")? == 1 {
            return Ok(());
        }
        Err(self.why_not_updated(s).await)
    }

    async fn change_session(
        &self,
        before: &Session,
        after: &Session,
        event: Option<&NewEvent>,
    ) -> StoreResult<()> {
        if before.user_id != after.user_id {
            return self.update_session(after, event).await;
        }
        if self.n_of(&change_query(before, after, event)?).await? == 1 {
            return Ok(());
        }
        Err(self.why_not_updated(after).await)
    }

    async fn update_sessions(&self, changes: &[(Session, Option<NewEvent>)]) -> StoreResult<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let columns = super::grouped::Columns::of(changes.iter().map(|(s, e)| (s, e.as_ref())))?;
        let ended: Vec<&str> = changes
            .iter()
            .filter(|(s, _)| s.status.is_terminal())
            .map(|(s, _)| s.id.as_str())
            .collect();
        // One statement for the whole set, in a transaction kept only if it wrote every session:
        // a row another writer changed in between is skipped by the statement, so the count
        // decides.
        let mut tx = self.pool().begin().await.map_err(map_err)?;
        let rows = columns
            .bind(sqlx::query(UPDATE_SESSIONS))
            .bind(ended)
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
        let written = rows
            .iter()
            .map(|r| get::<String>(r, "id"))
            .collect::<StoreResult<Vec<_>>>()?;
        if written.len() == changes.len() {
            return tx.commit().await.map_err(map_err);
        }
        // Dropping the transaction rolls the others back.
        drop(tx);
        match changes
            .iter()
            .find(|(s, _)| !written.iter().any(|id| id == s.id.as_str()))
        {
            Some((s, _)) => Err(self.why_not_updated(s).await),
            None => Err(StoreError::Conflict),
        }
    }

    async fn purge_sessions(&self, cutoff: Timestamp) -> StoreResult<u64> {
        let done = self
            .affected(
                sqlx::query(
                    "DELETE FROM sessions WHERE expire_at < $1 OR abandon_at < $2 \
             OR (idle_deadline IS NOT NULL AND idle_deadline < $3) \
             OR (status NOT IN ('active', 'pending') AND updated_at < $4)",
                )
                .bind(cutoff.0)
                .bind(cutoff.0)
                .bind(cutoff.0)
                .bind(cutoff.0),
            )
            .await?;
        Ok(done)
    }
}

/// Usable sessions of the application that lapsed after the cursor and by `now`, in lapse order.
const LAPSED: &str = dollar!(sessiond_store_sql::lapsed_sessions!(
    "LEAST(s.expire_at, s.abandon_at, COALESCE(s.idle_deadline, s.expire_at))"
));

impl SqlStore {
    /// Writes `session.expired` for the sessions that lapsed since each application's cursor
    /// (see `EventStore::write_lapse_events`), one transaction per application with work.
    pub(crate) async fn lapse_events(&self, now: Timestamp, limit: u32) -> StoreResult<u64> {
        let cursors = sqlx::query(dollar!(statements::SELECT_LAPSE_CURSORS))
            .fetch_all(self.pool())
            .await
            .map_err(map_err)?;
        let mut written = 0;
        for row in &cursors {
            let app: String = get(row, "application_id")?;
            let through: Option<i64> = get(row, "lapse_events_through")?;
            let after: String = get(row, "lapse_events_id")?;
            let mut tx = self.pool().begin().await.map_err(map_err)?;
            let mut here = 0;
            let (to, to_id) = match through {
                None => (now.0, "~".to_owned()),
                Some(through) => {
                    let lapsed = sqlx::query(LAPSED)
                        .bind(&app)
                        .bind(through)
                        .bind(&after)
                        .bind(now.0)
                        .bind(i64::from(limit))
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(map_err)?
                        .iter()
                        .map(session_from_row)
                        .collect::<StoreResult<Vec<_>>>()?;
                    if lapsed.is_empty() {
                        continue;
                    }
                    for s in &lapsed {
                        let e = sessiond_core::events::session_lapsed(s, now);
                        crate::events::append(&mut tx, Some(&e)).await?;
                    }
                    here = lapsed.len() as u64;
                    match lapsed.last() {
                        Some(last) if lapsed.len() == limit as usize => {
                            (last.lapse_time().0, last.id.to_string())
                        }
                        _ => (now.0, "~".to_owned()),
                    }
                }
            };
            // Only if no other node moved the cursor meanwhile; otherwise this pass is dropped.
            let moved = sqlx::query(
                "UPDATE session_purges SET lapse_events_through = $2, lapse_events_id = $3 \
                 WHERE application_id = $1 AND lapse_events_through IS NOT DISTINCT FROM $4 \
                 AND lapse_events_id = $5",
            )
            .bind(&app)
            .bind(to)
            .bind(&to_id)
            .bind(through)
            .bind(&after)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
            if moved.rows_affected() == 1 {
                tx.commit().await.map_err(map_err)?;
                written += here;
            }
        }
        Ok(written)
    }
}

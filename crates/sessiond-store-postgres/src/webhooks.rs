//! Webhook endpoints, deliveries and attempts.

use crate::Pg;
use async_trait::async_trait;
use sessiond_core::Timestamp;
use sessiond_core::application::AppId;
use sessiond_core::events::Position;
use sessiond_core::ids::EndpointId;
use sessiond_core::store::{StoreError, StoreResult, WebhookStore};
use sessiond_core::webhooks::{
    Attempt, Claimed, Delivery, DeliveryState, Endpoint, Fresh, NextStep, Replay,
};
use sessiond_store_sql::rows;
use sessiond_store_sql::{dollar, statements};
use sqlx::postgres::PgRow;

use crate::{PgQuery, SqlStore, get, map_err};
use sessiond_store_sql::columns::{event_types_text, wants};

use sessiond_store_sql::rows::ENDPOINT_COLS;

/// Only events of transactions older than every running one (see `events.rs`).
const SETTLED: &str = "txid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint";

fn i32_of(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

fn u32_of(v: i32) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

fn endpoint_from_row(r: &PgRow) -> StoreResult<Endpoint> {
    rows::endpoint(&Pg(r))
}

fn delivery_from_row(r: &PgRow) -> StoreResult<Delivery> {
    rows::delivery(&Pg(r))
}

fn attempt_from_row(r: &PgRow) -> StoreResult<Attempt> {
    rows::attempt(&Pg(r))
}

/// Records one attempt and moves its delivery on, if `holder` still holds its lease.
async fn finish_one(
    tx: &mut crate::pool::Tx,
    holder: &str,
    a: &Attempt,
    next: NextStep,
) -> StoreResult<bool> {
    insert_attempt(tx, a).await?;
    let (state, next_at) = next.state();
    let next_at = next_at.map(|t| t.0);
    let done = sqlx::query(dollar!(statements::UPDATE_DELIVERY))
        .bind(state.as_str())
        .bind(i32_of(a.number))
        .bind(next_at)
        .bind(a.response_code.map(i32::from))
        .bind(a.at.0)
        .bind(a.endpoint_id.as_str())
        .bind(&a.event_id)
        .bind(holder)
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
    Ok(done.rows_affected() == 1)
}

/// Records one attempt (unless its endpoint is gone).
async fn insert_attempt(tx: &mut crate::pool::Tx, a: &Attempt) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO webhook_attempts (id, endpoint_id, event_id, number, at, succeeded, \
         response_code, latency_ms, response_excerpt, error) \
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 \
         WHERE EXISTS (SELECT 1 FROM webhook_endpoints WHERE id = $2) \
         ON CONFLICT DO NOTHING",
    )
    .bind(&a.id)
    .bind(a.endpoint_id.as_str())
    .bind(&a.event_id)
    .bind(i32_of(a.number))
    .bind(a.at.0)
    .bind(a.succeeded)
    .bind(a.response_code.map(i32::from))
    .bind(i32_of(a.latency_ms))
    .bind(&a.response_excerpt)
    .bind(&a.error)
    .execute(&mut **tx)
    .await
    .map_err(map_err)?;
    Ok(())
}

/// Binds `$1`–`$11`, the same in the insert and the update (see `statements::UPDATE_ENDPOINT`).
fn bind_changeable<'q>(q: PgQuery<'q>, e: &'q Endpoint) -> PgQuery<'q> {
    q.bind(e.id.as_str())
        .bind(e.application_id.as_str())
        .bind(&e.url)
        .bind(&e.description)
        .bind(event_types_text(&e.event_types))
        .bind(e.enabled)
        .bind(&e.secret_sealed)
        .bind(&e.previous_secret_sealed)
        .bind(e.previous_until.map(|t| t.0))
        .bind(e.updated_at.0)
        .bind(e.version)
}

#[async_trait]
impl WebhookStore for SqlStore {
    async fn insert_endpoint(&self, e: &Endpoint) -> StoreResult<()> {
        // The cursor starts at the application's latest event: only later events are sent.
        let q = sqlx::query(
            "INSERT INTO webhook_endpoints (id, application_id, url, description, event_types, \
             enabled, secret, previous_secret, previous_until, updated_at, version, cursor_txid, \
             cursor_seq, created_at) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, coalesce(l.txid, 0), \
             coalesce(l.seq, 0), $12 FROM (SELECT 1) one LEFT JOIN LATERAL (SELECT txid, seq \
             FROM events WHERE application_id = $2 ORDER BY txid DESC, seq DESC LIMIT 1) l ON true",
        );
        bind_changeable(q, e)
            .bind(e.created_at.0)
            .execute(self.pool())
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn get_endpoint(&self, app: &AppId, id: &EndpointId) -> StoreResult<Option<Endpoint>> {
        let sql = format!(
            "SELECT {ENDPOINT_COLS} FROM webhook_endpoints WHERE application_id = $1 AND id = $2"
        );
        self.row(
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(app.as_str())
                .bind(id.as_str()),
            endpoint_from_row,
        )
        .await
    }

    async fn list_endpoints(&self, app: &AppId) -> StoreResult<Vec<Endpoint>> {
        let sql = format!(
            "SELECT {ENDPOINT_COLS} FROM webhook_endpoints WHERE application_id = $1 \
             ORDER BY created_at, id"
        );
        self.rows(
            sqlx::query(sqlx::AssertSqlSafe(sql)).bind(app.as_str()),
            endpoint_from_row,
        )
        .await
    }

    async fn update_endpoint(&self, e: &Endpoint) -> StoreResult<()> {
        let done = bind_changeable(sqlx::query(dollar!(statements::UPDATE_ENDPOINT)), e)
            .bind(e.version - 1)
            .execute(self.pool())
            .await
            .map_err(map_err)?;
        if done.rows_affected() == 1 {
            return Ok(());
        }
        Err(match self.get_endpoint(&e.application_id, &e.id).await? {
            Some(_) => StoreError::Conflict,
            None => StoreError::NotFound,
        })
    }

    async fn delete_endpoint(&self, app: &AppId, id: &EndpointId) -> StoreResult<bool> {
        let done = self
            .affected(
                sqlx::query(dollar!(statements::DELETE_ENDPOINT))
                    .bind(app.as_str())
                    .bind(id.as_str()),
            )
            .await?;
        Ok(done == 1)
    }

    async fn claim_fresh(
        &self,
        holder: &str,
        now: Timestamp,
        lease_until: Timestamp,
        endpoints: u32,
        limit: u32,
    ) -> StoreResult<Vec<Fresh>> {
        // One statement takes the leases: endpoints behind, unleased, not locked by another node.
        let picked = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE webhook_endpoints w SET lease_holder = $1, lease_until = $2 \
             FROM (SELECT w2.id FROM webhook_endpoints w2 WHERE w2.enabled AND w2.lease_until <= $3 \
             AND EXISTS (SELECT 1 FROM events e WHERE e.application_id = w2.application_id \
             AND (e.txid, e.seq) > (w2.cursor_txid, w2.cursor_seq) AND e.{SETTLED}) \
             LIMIT $4 FOR UPDATE OF w2 SKIP LOCKED) pick \
             WHERE w.id = pick.id RETURNING {}, w.cursor_txid, w.cursor_seq",
            ENDPOINT_COLS
                .split(", ")
                .map(|c| format!("w.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        )))
        .bind(holder)
        .bind(lease_until.0)
        .bind(now.0)
        .bind(i64::from(endpoints))
        .fetch_all(self.pool())
        .await
        .map_err(map_err)?;
        let mut out = Vec::with_capacity(picked.len());
        for row in &picked {
            let endpoint = endpoint_from_row(row)?;
            let events = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {} FROM events \
                 WHERE application_id = $1 AND (txid, seq) > ($2, $3) AND {SETTLED} \
                 ORDER BY txid, seq LIMIT $4",
                crate::events::EVENT_COLS
            )))
            .bind(endpoint.application_id.as_str())
            .bind(get::<i64>(row, "cursor_txid")?)
            .bind(get::<i64>(row, "cursor_seq")?)
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await
            .map_err(map_err)?
            .iter()
            .map(crate::events::event_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
            out.extend(Fresh::of(endpoint, events));
        }
        Ok(out)
    }

    async fn finish_fresh(
        &self,
        holder: &str,
        endpoint: &EndpointId,
        through: Position,
        done: &[(Attempt, NextStep)],
    ) -> StoreResult<bool> {
        let mut tx = self.pool().begin().await.map_err(map_err)?;
        for (a, _) in done {
            insert_attempt(&mut tx, a).await?;
        }
        let held = sqlx::query(
            "UPDATE webhook_endpoints SET cursor_txid = $3, cursor_seq = $4, lease_holder = NULL, \
             lease_until = 0 WHERE id = $1 AND lease_holder = $2 \
             AND (cursor_txid, cursor_seq) <= ($3, $4)",
        )
        .bind(endpoint.as_str())
        .bind(holder)
        .bind(through.txid)
        .bind(through.seq)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?
        .rows_affected()
            == 1;
        if held {
            for (a, next) in done.iter().filter(|(a, _)| !a.succeeded) {
                let (state, next_at) = next.state();
                let next_at = next_at.map(|t| t.0);
                sqlx::query(
                    "INSERT INTO webhook_deliveries (endpoint_id, event_id, state, attempts, \
                     next_at, lease_holder, lease_until, last_status, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, NULL, 0, $6, $7) \
                     ON CONFLICT (endpoint_id, event_id) DO NOTHING",
                )
                .bind(a.endpoint_id.as_str())
                .bind(&a.event_id)
                .bind(state.as_str())
                .bind(i32_of(a.number))
                .bind(next_at)
                .bind(a.response_code.map(i32::from))
                .bind(a.at.0)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            }
        }
        tx.commit().await.map_err(map_err)?;
        Ok(held)
    }

    async fn claim_deliveries(
        &self,
        holder: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<Claimed>> {
        let picked = sqlx::query(
            "UPDATE webhook_deliveries d SET lease_holder = $1, lease_until = $2 \
             FROM (SELECT d2.endpoint_id, d2.event_id FROM webhook_deliveries d2 \
             JOIN webhook_endpoints w ON w.id = d2.endpoint_id \
             WHERE d2.state = 'pending' AND d2.next_at <= $3 AND d2.lease_until <= $3 AND w.enabled \
             ORDER BY d2.next_at LIMIT $4 FOR UPDATE OF d2 SKIP LOCKED) pick \
             WHERE d.endpoint_id = pick.endpoint_id AND d.event_id = pick.event_id \
             RETURNING d.endpoint_id, d.event_id, d.attempts",
        )
        .bind(holder)
        .bind(lease_until.0)
        .bind(now.0)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await
        .map_err(map_err)?;
        if picked.is_empty() {
            return Ok(Vec::new());
        }
        let mut endpoint_ids: Vec<String> = Vec::new();
        let mut event_ids: Vec<String> = Vec::new();
        for p in &picked {
            endpoint_ids.push(get(p, "endpoint_id")?);
            event_ids.push(get(p, "event_id")?);
        }
        let endpoints = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ENDPOINT_COLS} FROM webhook_endpoints WHERE id = ANY($1)"
        )))
        .bind(&endpoint_ids)
        .fetch_all(self.pool())
        .await
        .map_err(map_err)?
        .iter()
        .map(endpoint_from_row)
        .collect::<StoreResult<Vec<_>>>()?;
        let events = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {} FROM events WHERE id = ANY($1)",
            crate::events::EVENT_COLS
        )))
        .bind(&event_ids)
        .fetch_all(self.pool())
        .await
        .map_err(map_err)?
        .iter()
        .map(crate::events::event_from_row)
        .collect::<StoreResult<Vec<_>>>()?;
        let mut out = Vec::with_capacity(picked.len());
        for p in &picked {
            let (ep, ev): (String, String) = (get(p, "endpoint_id")?, get(p, "event_id")?);
            let endpoint = endpoints.iter().find(|e| e.id.as_str() == ep);
            let event = events.iter().find(|e| e.event.id == ev);
            if let (Some(endpoint), Some(event)) = (endpoint, event) {
                out.push(Claimed {
                    endpoint: endpoint.clone(),
                    event: event.clone(),
                    attempts: u32_of(get(p, "attempts")?),
                });
            }
        }
        Ok(out)
    }

    async fn finish_deliveries(
        &self,
        holder: &str,
        done: &[(Attempt, NextStep)],
    ) -> StoreResult<Vec<bool>> {
        let mut tx = self.pool().begin().await.map_err(map_err)?;
        let mut moved = Vec::with_capacity(done.len());
        for (a, next) in done {
            moved.push(finish_one(&mut tx, holder, a, *next).await?);
        }
        tx.commit().await.map_err(map_err)?;
        Ok(moved)
    }

    async fn list_deliveries(
        &self,
        app: &AppId,
        endpoint: &EndpointId,
        state: Option<DeliveryState>,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>> {
        self.rows(
            sqlx::query(
                // Queued deliveries, and first attempts that succeeded (which queue nothing).
                "SELECT d.endpoint_id, d.event_id, d.state, d.attempts, d.next_at, d.last_status, \
             d.updated_at, e.type, e.occurred_at FROM webhook_deliveries d \
             JOIN webhook_endpoints w ON w.id = d.endpoint_id \
             JOIN events e ON e.id = d.event_id \
             WHERE w.application_id = $1 AND d.endpoint_id = $2 \
             AND ($3::text IS NULL OR d.state = $3) \
             UNION ALL \
             SELECT a.endpoint_id, a.event_id, 'succeeded' AS state, a.number AS attempts, \
             NULL::bigint AS next_at, a.response_code AS last_status, a.at AS updated_at, e.type, \
             e.occurred_at FROM webhook_attempts a \
             JOIN webhook_endpoints w ON w.id = a.endpoint_id \
             JOIN events e ON e.id = a.event_id \
             WHERE w.application_id = $1 AND a.endpoint_id = $2 AND a.number = 1 AND a.succeeded \
             AND ($3::text IS NULL OR $3 = 'succeeded') \
             AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d2 \
             WHERE d2.endpoint_id = a.endpoint_id AND d2.event_id = a.event_id) \
             ORDER BY occurred_at DESC, event_id DESC LIMIT $4",
            )
            .bind(app.as_str())
            .bind(endpoint.as_str())
            .bind(state.map(DeliveryState::as_str))
            .bind(i64::from(limit)),
            delivery_from_row,
        )
        .await
    }

    async fn list_attempts(
        &self,
        app: &AppId,
        endpoint: &EndpointId,
        event_id: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<Attempt>> {
        self.rows(sqlx::query(
            "SELECT a.id, a.endpoint_id, a.event_id, a.number, a.at, a.succeeded, a.response_code, \
             a.latency_ms, a.response_excerpt, a.error FROM webhook_attempts a \
             JOIN webhook_endpoints w ON w.id = a.endpoint_id \
             WHERE w.application_id = $1 AND a.endpoint_id = $2 \
             AND ($3::text IS NULL OR a.event_id = $3) \
             ORDER BY a.at DESC, a.number DESC, a.id DESC LIMIT $4",
        )
        .bind(app.as_str())
        .bind(endpoint.as_str())
        .bind(event_id)
        .bind(i64::from(limit)), attempt_from_row).await
    }

    async fn replay_deliveries(
        &self,
        app: &AppId,
        endpoint: &EndpointId,
        which: &Replay,
        now: Timestamp,
    ) -> StoreResult<u64> {
        let Some(e) = self.get_endpoint(app, endpoint).await? else {
            return Ok(0);
        };
        let q = match which {
            Replay::Event(id) => sqlx::query(dollar!(statements::SELECT_EVENT_TYPE))
                .bind(app.as_str())
                .bind(id.as_str()),
            Replay::Range { since, until } => sqlx::query(
                "SELECT id, type FROM events WHERE application_id = $1 AND occurred_at >= $2 \
                 AND occurred_at < $3 ORDER BY txid, seq LIMIT 10000",
            )
            .bind(app.as_str())
            .bind(since.0)
            .bind(until.0),
        };
        let rows = q.fetch_all(self.pool()).await.map_err(map_err)?;
        let mut ids = Vec::new();
        for r in &rows {
            if wants(&e.event_types, &get::<String>(r, "type")?) {
                ids.push(get::<String>(r, "id")?);
            }
        }
        if ids.is_empty() {
            return Ok(0);
        }
        let done = self.affected(sqlx::query(
            "INSERT INTO webhook_deliveries (endpoint_id, event_id, state, attempts, next_at, \
             lease_holder, lease_until, last_status, updated_at) \
             SELECT $1, ev, 'pending', 0, $2, NULL, 0, NULL, $2 FROM UNNEST($3::text[]) AS ev \
             ON CONFLICT (endpoint_id, event_id) DO UPDATE SET state = 'pending', attempts = 0, \
             next_at = EXCLUDED.next_at, lease_holder = NULL, lease_until = 0, \
             updated_at = EXCLUDED.updated_at",
        )
        .bind(endpoint.as_str())
        .bind(now.0)
        .bind(&ids)).await?;
        Ok(done)
    }

    async fn pending_deliveries(&self) -> StoreResult<u64> {
        let row = sqlx::query(
            "SELECT (SELECT count(*) FROM webhook_deliveries WHERE state = 'pending') \
             + (SELECT count(*) FROM webhook_endpoints w JOIN events e \
             ON e.application_id = w.application_id \
             AND (e.txid, e.seq) > (w.cursor_txid, w.cursor_seq) WHERE w.enabled \
             AND (w.event_types = '' \
             OR position(' ' || e.type || ' ' in ' ' || w.event_types || ' ') > 0)) AS n",
        )
        .fetch_one(self.pool())
        .await
        .map_err(map_err)?;
        Ok(u64::try_from(get::<i64>(&row, "n")?).unwrap_or(0))
    }

    async fn any_enabled_endpoint(&self) -> StoreResult<bool> {
        let row = sqlx::query("SELECT 1 AS one FROM webhook_endpoints WHERE enabled LIMIT 1")
            .fetch_optional(self.pool())
            .await
            .map_err(map_err)?;
        Ok(row.is_some())
    }
}

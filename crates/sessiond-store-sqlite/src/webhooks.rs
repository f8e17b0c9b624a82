//! Webhook endpoints, deliveries and attempts.

use crate::Lite;
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};
use sessiond_core::Timestamp;
use sessiond_core::application::AppId;
use sessiond_core::events::Position;
use sessiond_core::events::{Event, EventType};
use sessiond_core::ids::EndpointId;
use sessiond_core::store::{StoreError, StoreResult, WebhookStore};
use sessiond_core::webhooks::{
    Attempt, Claimed, Delivery, DeliveryState, Endpoint, Fresh, NextStep, Replay,
};
use sessiond_store_sql::rows;
use sessiond_store_sql::statements;

use crate::{SqliteStore, all, corrupt, exec, first, get, map_err};
use sessiond_store_sql::columns::{event_types_of, event_types_text, wants};

/// Enabled endpoints with events after their cursor and no live lease (`?1` now, `?2` limit).
const FRESH_DUE: &str = "SELECT w.id FROM webhook_endpoints w WHERE w.enabled = 1 \
     AND w.lease_until <= ?1 AND EXISTS (SELECT 1 FROM events e \
     WHERE e.application_id = w.application_id AND e.seq > w.cursor_seq) LIMIT ?2";

use sessiond_store_sql::rows::ENDPOINT_COLS;

fn types_of(text: &str) -> StoreResult<Vec<EventType>> {
    event_types_of(text).map_err(|t| corrupt("endpoint event type", t))
}

fn endpoint_from_row(r: &Row<'_>) -> StoreResult<Endpoint> {
    rows::endpoint(&Lite(r))
}

fn event_by_id(c: &Connection, id: &str) -> StoreResult<Option<Event>> {
    first(
        c,
        &format!(
            "SELECT {} FROM events WHERE id = ?1",
            crate::events::EVENT_COLS
        ),
        [id],
        crate::events::event_from_row,
    )
}

fn delivery_from_row(r: &Row<'_>) -> StoreResult<Delivery> {
    rows::delivery(&Lite(r))
}

fn attempt_from_row(r: &Row<'_>) -> StoreResult<Attempt> {
    rows::attempt(&Lite(r))
}

/// Records one attempt (unless its endpoint is gone).
fn insert_attempt(c: &Connection, a: &Attempt) -> StoreResult<()> {
    exec(
        c,
        "INSERT OR IGNORE INTO webhook_attempts (id, endpoint_id, event_id, number, at, succeeded, \
         response_code, latency_ms, response_excerpt, error) \
         SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10 \
         WHERE EXISTS (SELECT 1 FROM webhook_endpoints WHERE id = ?2)",
        params![
            a.id,
            a.endpoint_id.as_str(),
            a.event_id,
            a.number,
            a.at.0,
            a.succeeded,
            a.response_code,
            a.latency_ms,
            a.response_excerpt,
            a.error
        ],
    )?;
    Ok(())
}

/// Records one attempt and moves its delivery on, if `holder` still holds its lease.
fn finish_one(c: &Connection, holder: &str, a: &Attempt, next: NextStep) -> StoreResult<bool> {
    insert_attempt(c, a)?;
    let (state, next_at) = next.state();
    let next_at = next_at.map(|t| t.0);
    let n = exec(
        c,
        statements::UPDATE_DELIVERY,
        params![
            state.as_str(),
            a.number,
            next_at,
            a.response_code,
            a.at.0,
            a.endpoint_id.as_str(),
            a.event_id,
            holder
        ],
    )?;
    Ok(n == 1)
}

/// Runs the insert or the update: `?1`–`?11` are the same in both (see
/// `statements::UPDATE_ENDPOINT`), `last` is `?12`.
fn write_endpoint(c: &Connection, sql: &str, e: &Endpoint, last: i64) -> StoreResult<u64> {
    exec(
        c,
        sql,
        params![
            e.id.as_str(),
            e.application_id.as_str(),
            e.url,
            e.description,
            event_types_text(&e.event_types),
            e.enabled,
            e.secret_sealed,
            e.previous_secret_sealed,
            e.previous_until.map(|t| t.0),
            e.updated_at.0,
            e.version,
            last
        ],
    )
}

#[async_trait]
impl WebhookStore for SqliteStore {
    async fn insert_endpoint(&self, e: &Endpoint) -> StoreResult<()> {
        let e = e.clone();
        self.write(move |c| {
            // The cursor starts at the application's latest event: only later events are sent.
            write_endpoint(
                c,
                "INSERT INTO webhook_endpoints (id, application_id, url, description, event_types, \
                 enabled, secret, previous_secret, previous_until, updated_at, version, \
                 cursor_txid, cursor_seq, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 0, \
                 coalesce((SELECT max(seq) FROM events WHERE application_id = ?2), 0), ?12)",
                &e,
                e.created_at.0,
            )?;
            Ok(())
        })
        .await
    }

    async fn get_endpoint(&self, app: &AppId, id: &EndpointId) -> StoreResult<Option<Endpoint>> {
        let sql = format!(
            "SELECT {ENDPOINT_COLS} FROM webhook_endpoints WHERE application_id = ?1 AND id = ?2"
        );
        self.read(|c| first(c, &sql, [app.as_str(), id.as_str()], endpoint_from_row))
    }

    async fn list_endpoints(&self, app: &AppId) -> StoreResult<Vec<Endpoint>> {
        let sql = format!(
            "SELECT {ENDPOINT_COLS} FROM webhook_endpoints WHERE application_id = ?1 \
             ORDER BY created_at, id"
        );
        self.read(|c| all(c, &sql, [app.as_str()], endpoint_from_row))
    }

    async fn update_endpoint(&self, e: &Endpoint) -> StoreResult<()> {
        let e = e.clone();
        self.write(move |c| {
            let n = write_endpoint(c, statements::UPDATE_ENDPOINT, &e, e.version - 1)?;
            if n == 1 {
                return Ok(());
            }
            let exists = first(
                c,
                "SELECT 1 AS x FROM webhook_endpoints WHERE application_id = ?1 AND id = ?2",
                [e.application_id.as_str(), e.id.as_str()],
                |_| Ok(()),
            )?;
            Err(if exists.is_some() {
                StoreError::Conflict
            } else {
                StoreError::NotFound
            })
        })
        .await
    }

    async fn delete_endpoint(&self, app: &AppId, id: &EndpointId) -> StoreResult<bool> {
        self.write_one(statements::DELETE_ENDPOINT, app.as_str(), id.as_str(), None)
            .await
    }

    async fn claim_fresh(
        &self,
        holder: &str,
        now: Timestamp,
        lease_until: Timestamp,
        endpoints: u32,
        limit: u32,
    ) -> StoreResult<Vec<Fresh>> {
        // A read first: with no endpoint behind, a pass takes no write lock.
        let behind = self.read(|c| first(c, FRESH_DUE, params![now.0, 1], |_| Ok(())))?;
        if behind.is_none() {
            return Ok(Vec::new());
        }
        let holder = holder.to_owned();
        self.write(move |c| {
            let picked = all(c, FRESH_DUE, params![now.0, endpoints], |r| {
                get::<String, _>(r, "id")
            })?;
            let sql =
                format!("SELECT {ENDPOINT_COLS}, cursor_seq FROM webhook_endpoints WHERE id = ?1");
            let mut out = Vec::with_capacity(picked.len());
            for id in picked {
                exec(
                    c,
                    "UPDATE webhook_endpoints SET lease_holder = ?2, lease_until = ?3 WHERE id = ?1",
                    params![id, holder, lease_until.0],
                )?;
                let Some((endpoint, cursor)) = first(c, &sql, [id.as_str()], |r| {
                    Ok((endpoint_from_row(r)?, get::<i64, _>(r, "cursor_seq")?))
                })?
                else {
                    continue;
                };
                let events = all(
                    c,
                    &format!(
                        "SELECT {} FROM events WHERE application_id = ?1 AND seq > ?2 \
                         ORDER BY seq LIMIT ?3",
                        crate::events::EVENT_COLS
                    ),
                    params![endpoint.application_id.as_str(), cursor, limit],
                    crate::events::event_from_row,
                )?;
                out.extend(Fresh::of(endpoint, events));
            }
            Ok(out)
        })
        .await
    }

    async fn finish_fresh(
        &self,
        holder: &str,
        endpoint: &EndpointId,
        through: Position,
        done: &[(Attempt, NextStep)],
    ) -> StoreResult<bool> {
        let (holder, endpoint, done) = (holder.to_owned(), endpoint.clone(), done.to_vec());
        self.write(move |c| {
            for (a, _) in &done {
                insert_attempt(c, a)?;
            }
            let held = exec(
                c,
                "UPDATE webhook_endpoints SET cursor_seq = max(cursor_seq, ?3), lease_holder = NULL, \
                 lease_until = 0 WHERE id = ?1 AND lease_holder = ?2",
                params![endpoint.as_str(), holder, through.seq],
            )? == 1;
            if held {
                for (a, next) in done.iter().filter(|(a, _)| !a.succeeded) {
                    let (state, next_at) = next.state();
                let next_at = next_at.map(|t| t.0);
                    exec(
                        c,
                        "INSERT OR IGNORE INTO webhook_deliveries (endpoint_id, event_id, state, \
                         attempts, next_at, lease_holder, lease_until, last_status, updated_at) \
                         VALUES (?1, ?2, ?3, ?4, ?5, NULL, 0, ?6, ?7)",
                        params![
                            a.endpoint_id.as_str(),
                            a.event_id,
                            state.as_str(),
                            a.number,
                            next_at,
                            a.response_code,
                            a.at.0
                        ],
                    )?;
                }
            }
            Ok(held)
        })
        .await
    }

    async fn claim_deliveries(
        &self,
        holder: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<Claimed>> {
        let due = self.read(|c| {
            first(
                c,
                "SELECT 1 AS x FROM webhook_deliveries WHERE state = 'pending' AND next_at <= ?1 \
                 AND lease_until <= ?1 LIMIT 1",
                [now.0],
                |_| Ok(()),
            )
        })?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        let holder = holder.to_owned();
        self.write(move |c| {
            let picked = all(
                c,
                "UPDATE webhook_deliveries SET lease_holder = ?1, lease_until = ?2 \
                 WHERE (endpoint_id, event_id) IN (SELECT d.endpoint_id, d.event_id FROM webhook_deliveries d \
                 JOIN webhook_endpoints w ON w.id = d.endpoint_id \
                 WHERE d.state = 'pending' AND d.next_at <= ?3 AND d.lease_until <= ?3 \
                 AND w.enabled = 1 ORDER BY d.next_at LIMIT ?4) \
                 RETURNING endpoint_id, event_id, attempts",
                params![holder, lease_until.0, now.0, limit],
                |r| {
                    Ok((
                        get::<String, _>(r, "endpoint_id")?,
                        get::<String, _>(r, "event_id")?,
                        get::<u32, _>(r, "attempts")?,
                    ))
                },
            )?;
            let sql = format!("SELECT {ENDPOINT_COLS} FROM webhook_endpoints WHERE id = ?1");
            let mut out = Vec::with_capacity(picked.len());
            for (endpoint, event, attempts) in picked {
                let e = first(c, &sql, [endpoint.as_str()], endpoint_from_row)?;
                let ev = event_by_id(c, &event)?;
                if let (Some(endpoint), Some(event)) = (e, ev) {
                    out.push(Claimed {
                        endpoint,
                        event,
                        attempts,
                    });
                }
            }
            Ok(out)
        })
        .await
    }

    async fn finish_deliveries(
        &self,
        holder: &str,
        done: &[(Attempt, NextStep)],
    ) -> StoreResult<Vec<bool>> {
        let (holder, done) = (holder.to_owned(), done.to_vec());
        self.write(move |c| {
            let mut moved = Vec::with_capacity(done.len());
            for (a, next) in &done {
                moved.push(finish_one(c, &holder, a, *next)?);
            }
            Ok(moved)
        })
        .await
    }

    async fn list_deliveries(
        &self,
        app: &AppId,
        endpoint: &EndpointId,
        state: Option<DeliveryState>,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>> {
        self.read(|c| {
            all(
                c,
                // Queued deliveries, and first attempts that succeeded (which queue nothing).
                "SELECT d.endpoint_id, d.event_id, d.state, d.attempts, d.next_at, d.last_status, \
                 d.updated_at, e.type, e.occurred_at FROM webhook_deliveries d \
                 JOIN webhook_endpoints w ON w.id = d.endpoint_id \
                 JOIN events e ON e.id = d.event_id \
                 WHERE w.application_id = ?1 AND d.endpoint_id = ?2 AND (?3 IS NULL OR d.state = ?3) \
                 UNION ALL \
                 SELECT a.endpoint_id, a.event_id, 'succeeded' AS state, a.number AS attempts, \
                 NULL AS next_at, a.response_code AS last_status, a.at AS updated_at, e.type, \
                 e.occurred_at FROM webhook_attempts a \
                 JOIN webhook_endpoints w ON w.id = a.endpoint_id \
                 JOIN events e ON e.id = a.event_id \
                 WHERE w.application_id = ?1 AND a.endpoint_id = ?2 AND a.number = 1 \
                 AND a.succeeded = 1 AND (?3 IS NULL OR ?3 = 'succeeded') \
                 AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d2 \
                 WHERE d2.endpoint_id = a.endpoint_id AND d2.event_id = a.event_id) \
                 ORDER BY occurred_at DESC, event_id DESC LIMIT ?4",
                params![app.as_str(), endpoint.as_str(), state.map(DeliveryState::as_str), limit],
                delivery_from_row,
            )
        })
    }

    async fn list_attempts(
        &self,
        app: &AppId,
        endpoint: &EndpointId,
        event_id: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<Attempt>> {
        self.read(|c| {
            all(
                c,
                "SELECT a.id, a.endpoint_id, a.event_id, a.number, a.at, a.succeeded, a.response_code, \
                 a.latency_ms, a.response_excerpt, a.error FROM webhook_attempts a \
                 JOIN webhook_endpoints w ON w.id = a.endpoint_id \
                 WHERE w.application_id = ?1 AND a.endpoint_id = ?2 AND (?3 IS NULL OR a.event_id = ?3) \
                 ORDER BY a.at DESC, a.number DESC, a.id DESC LIMIT ?4",
                params![app.as_str(), endpoint.as_str(), event_id, limit],
                attempt_from_row,
            )
        })
    }

    async fn replay_deliveries(
        &self,
        app: &AppId,
        endpoint: &EndpointId,
        which: &Replay,
        now: Timestamp,
    ) -> StoreResult<u64> {
        let (app, endpoint, which) = (app.clone(), endpoint.clone(), which.clone());
        self.write(move |c| {
            let Some(types) = c
                .query_row(
                    "SELECT event_types FROM webhook_endpoints WHERE application_id = ?1 AND id = ?2",
                    [app.as_str(), endpoint.as_str()],
                    |r| r.get::<_, String>(0),
                )
                .optional()
                .map_err(map_err)?
            else {
                return Ok(0);
            };
            let wanted = types_of(&types)?;
            let events = match &which {
                Replay::Event(id) => all(
                    c,
                    statements::SELECT_EVENT_TYPE,
                    params![app.as_str(), id],
                    |r| Ok((get::<String, _>(r, "id")?, get::<String, _>(r, "type")?)),
                )?,
                Replay::Range { since, until } => all(
                    c,
                    "SELECT id, type FROM events WHERE application_id = ?1 AND occurred_at >= ?2 \
                     AND occurred_at < ?3 ORDER BY seq LIMIT 10000",
                    params![app.as_str(), since.0, until.0],
                    |r| Ok((get::<String, _>(r, "id")?, get::<String, _>(r, "type")?)),
                )?,
            };
            let mut n = 0;
            for (id, kind) in events {
                if !wants(&wanted, &kind) {
                    continue;
                }
                n += exec(
                    c,
                    "INSERT INTO webhook_deliveries (endpoint_id, event_id, state, attempts, next_at, \
                     lease_holder, lease_until, last_status, updated_at) \
                     VALUES (?1, ?2, 'pending', 0, ?3, NULL, 0, NULL, ?3) \
                     ON CONFLICT (endpoint_id, event_id) DO UPDATE SET state = 'pending', attempts = 0, \
                     next_at = excluded.next_at, lease_holder = NULL, lease_until = 0, \
                     updated_at = excluded.updated_at",
                    params![endpoint.as_str(), id, now.0],
                )?;
            }
            Ok(n)
        })
        .await
    }

    async fn pending_deliveries(&self) -> StoreResult<u64> {
        self.read(|c| {
            let n: i64 = first(
                c,
                "SELECT (SELECT COUNT(*) FROM webhook_deliveries WHERE state = 'pending') \
                 + (SELECT COUNT(*) FROM webhook_endpoints w JOIN events e \
                 ON e.application_id = w.application_id AND e.seq > w.cursor_seq \
                 WHERE w.enabled = 1 AND (w.event_types = '' \
                 OR instr(' ' || w.event_types || ' ', ' ' || e.type || ' ') > 0)) AS n",
                [],
                |r| get(r, "n"),
            )?
            .unwrap_or(0);
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    async fn any_enabled_endpoint(&self) -> StoreResult<bool> {
        self.read(|c| {
            Ok(first(
                c,
                "SELECT 1 FROM webhook_endpoints WHERE enabled = 1 LIMIT 1",
                [],
                |_| Ok(()),
            )?
            .is_some())
        })
    }
}

//! The outbox: events written inside the writes that cause them, and read back in order.

use crate::Lite;
use async_trait::async_trait;
use rusqlite::{Connection, params};
use sessiond_core::Timestamp;
use sessiond_core::application::AppId;
use sessiond_core::events::{Event, EventType, NewEvent, Position};
use sessiond_core::store::{EventStore, StoreResult};
use sessiond_store_sql::rows;
use sessiond_store_sql::statements;

use crate::{Arg, Run, SqliteStore, exec, first, get, sql};

/// An event's columns, in the order `event_from_row` reads them by name.
pub(crate) const EVENT_COLS: &str = "seq, id, application_id, type, subject, occurred_at, data";

/// Appends `event` on the writer's connection, inside the caller's transaction.
pub(crate) fn append(c: &Connection, event: Option<&NewEvent>) -> StoreResult<()> {
    if let Some(e) = event {
        exec(
            c,
            "INSERT INTO events (application_id, seq, id, type, subject, occurred_at, data) \
             VALUES (?2, (SELECT coalesce(max(seq), 0) + 1 FROM events WHERE application_id = ?2), \
             ?1, ?3, ?4, ?5, ?6)",
            params![
                e.id,
                e.application_id.as_str(),
                e.kind.as_str(),
                e.subject,
                e.occurred_at.0,
                e.data.to_string()
            ],
        )?;
    }
    Ok(())
}

pub(crate) fn event_from_row(r: &rusqlite::Row<'_>) -> StoreResult<Event> {
    let seq = get(r, "seq")?;
    rows::event(&Lite(r), Position { txid: 0, seq })
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn events_after(
        &self,
        app: &AppId,
        after: Position,
        kinds: &[EventType],
        limit: u32,
    ) -> StoreResult<Vec<Event>> {
        let mut q = sql(&format!(
            "SELECT {EVENT_COLS} FROM events WHERE application_id = "
        ));
        q.bind(Arg::Str(app.0.clone()))
            .push(" AND seq > ")
            .bind(Arg::I64(after.seq));
        if !kinds.is_empty() {
            q.push(" AND type IN ")
                .bind_list(kinds.iter().map(|k| Arg::Str(k.as_str().to_owned())));
        }
        q.push(" ORDER BY seq LIMIT ")
            .bind(Arg::I64(i64::from(limit)));
        self.read(|c| q.all(c, event_from_row))
    }

    async fn write_lapse_events(&self, now: Timestamp, limit: u32) -> StoreResult<u64> {
        // A read first: a pass with nothing lapsed takes no write lock.
        if !self.read(|c| crate::login::lapse_work(c, now))? {
            return Ok(0);
        }
        self.write(move |c| crate::login::write_lapse_events(c, now, limit))
            .await
    }

    async fn purge_events(&self, cutoff: Timestamp) -> StoreResult<u64> {
        self.write(move |c| {
            // Attempts are history of the same age; the key's endpoint prefix finds them.
            exec(c, statements::DELETE_ATTEMPTS_BEFORE, [cutoff.0])?;
            // Per application: its events are in `seq` order, which is time order, so the first
            // one young enough ends the range to delete (reading only what goes). The newest
            // always stays, so the next `seq` is never one a reader has already passed.
            let apps = crate::all(c, "SELECT id FROM applications", [], |r| {
                get::<String, _>(r, 0)
            })?;
            let mut n = 0;
            for app in apps {
                let Some(newest) = first(
                    c,
                    "SELECT max(seq) AS s FROM events WHERE application_id = ?1",
                    [&app],
                    |r| get::<Option<i64>, _>(r, "s"),
                )?
                .flatten() else {
                    continue;
                };
                let keep_from = first(
                    c,
                    "SELECT seq FROM events WHERE application_id = ?1 AND occurred_at >= ?2 \
                     ORDER BY seq LIMIT 1",
                    params![app, cutoff.0],
                    |r| get::<i64, _>(r, 0),
                )?
                .unwrap_or(newest)
                .min(newest);
                n += exec(
                    c,
                    "DELETE FROM events WHERE application_id = ?1 AND seq < ?2",
                    params![app, keep_from],
                )?;
            }
            Ok(n)
        })
        .await
    }
}

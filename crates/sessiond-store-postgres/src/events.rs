//! The outbox: events written inside the writes that cause them, and read back in commit order.

use crate::Pg;
use async_trait::async_trait;
use sessiond_core::Timestamp;
use sessiond_core::application::AppId;
use sessiond_core::events::{Event, EventType, NewEvent, Position};
use sessiond_core::store::{EventStore, StoreResult};
use sessiond_store_sql::rows;
use sessiond_store_sql::{dollar, statements};
use sqlx::Postgres;
use sqlx::postgres::{PgArguments, PgRow};
use sqlx::query::Query;

use crate::login::{Bind, sql};
use crate::{SqlStore, get, map_err};
use sessiond_store_sql::Arg;

/// The CTE that writes an event when the statement named `main` matched a row. Its six
/// parameters start at `$first`; [`bind`] binds them (all NULL, and nothing written, without an
/// event).
macro_rules! event_cte {
    ($main:literal, $a:literal, $b:literal, $c:literal, $d:literal, $e:literal, $f:literal) => {
        concat!(
            "ev AS (INSERT INTO events (id, application_id, type, subject, occurred_at, data) \
             SELECT $",
            $a,
            ", $",
            $b,
            ", $",
            $c,
            ", $",
            $d,
            ", $",
            $e,
            ", $",
            $f,
            " FROM ",
            $main,
            " WHERE $",
            $a,
            "::text IS NOT NULL)"
        )
    };
}
pub(crate) use event_cte;

/// `$delete`, a DELETE of at most one row by application (`$1`) and id (`$2`), with its event
/// (`$3`–`$8`, [`event_cte!`]) written only if a row went; answers how many did as `n`. Run it
/// with [`SqlStore::delete_one`].
macro_rules! delete_with_event {
    ($delete:expr) => {
        concat!(
            "WITH d AS (",
            $delete,
            " RETURNING 1), ",
            $crate::events::event_cte!("d", 3, 4, 5, 6, 7, 8),
            " SELECT count(*) AS n FROM d"
        )
    };
}
pub(crate) use delete_with_event;

impl SqlStore {
    /// Runs a [`delete_with_event!`] statement: whether it deleted the row.
    pub(crate) async fn delete_one(
        &self,
        sql: &'static str,
        app: &AppId,
        id: &str,
        event: Option<&NewEvent>,
    ) -> StoreResult<bool> {
        let q = sqlx::query(sql).bind(app.as_str()).bind(id);
        let row = bind(q, event)
            .fetch_one(self.pool())
            .await
            .map_err(map_err)?;
        Ok(get::<i64>(&row, "n")? == 1)
    }
}

/// [`event_cte!`] for a statement assembled at run time: appends `, ev AS (…)`, which writes
/// `e` for each row of the CTE `main`, its values bound at the next placeholders.
pub(crate) fn push_event_cte(q: &mut sessiond_store_sql::Sql, main: &str, e: &NewEvent) {
    q.push(
        ", ev AS (INSERT INTO events (id, application_id, type, subject, occurred_at, data) SELECT ",
    )
    .bind(Arg::Str(e.id.clone()))
    .push(", ")
    .bind(Arg::Str(e.application_id.0.clone()))
    .push(", ")
    .bind(Arg::Str(e.kind.as_str().to_owned()))
    .push(", ")
    .bind(Arg::Str(e.subject.clone()))
    .push(", ")
    .bind(Arg::I64(e.occurred_at.0))
    .push(", ")
    .bind(Arg::Str(e.data.to_string()))
    .push(" FROM ")
    .push(main)
    .push(")");
}

/// Binds an [`event_cte!`]'s six parameters, in order.
pub(crate) fn bind<'q>(
    q: Query<'q, Postgres, PgArguments>,
    event: Option<&'q NewEvent>,
) -> Query<'q, Postgres, PgArguments> {
    q.bind(event.map(|e| e.id.as_str()))
        .bind(event.map(|e| e.application_id.as_str()))
        .bind(event.map(|e| e.kind.as_str()))
        .bind(event.map(|e| e.subject.as_str()))
        .bind(event.map(|e| e.occurred_at.0))
        .bind(event.map(|e| e.data.to_string()))
}

/// Appends `event` inside an open transaction.
pub(crate) async fn append(tx: &mut crate::pool::Tx, event: Option<&NewEvent>) -> StoreResult<()> {
    let Some(e) = event else { return Ok(()) };
    sqlx::query(
        "INSERT INTO events (id, application_id, type, subject, occurred_at, data) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(e.id.as_str())
    .bind(e.application_id.as_str())
    .bind(e.kind.as_str())
    .bind(e.subject.as_str())
    .bind(e.occurred_at.0)
    .bind(e.data.to_string())
    .execute(&mut **tx)
    .await
    .map_err(map_err)?;
    Ok(())
}

/// An event's columns, as `event_from_row` reads them by name.
pub(crate) const EVENT_COLS: &str =
    "seq, txid, id, application_id, type, subject, occurred_at, data";

pub(crate) fn event_from_row(r: &PgRow) -> StoreResult<Event> {
    let position = Position {
        txid: get(r, "txid")?,
        seq: get(r, "seq")?,
    };
    rows::event(&Pg(r), position)
}

#[async_trait]
impl EventStore for SqlStore {
    async fn events_after(
        &self,
        app: &AppId,
        after: Position,
        kinds: &[EventType],
        limit: u32,
    ) -> StoreResult<Vec<Event>> {
        // Only transactions older than every running one: none of them can still commit an
        // event that sorts before what this read returns.
        let mut q = sql(&format!(
            "SELECT {EVENT_COLS} FROM events \
                 WHERE txid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint \
                 AND application_id = "
        ));
        q.bind(Arg::Str(app.0.clone()))
            .push(" AND (txid, seq) > (")
            .bind(Arg::I64(after.txid))
            .push(", ")
            .bind(Arg::I64(after.seq))
            .push(")");
        if !kinds.is_empty() {
            q.push(" AND type IN ")
                .bind_list(kinds.iter().map(|k| Arg::Str(k.as_str().to_owned())));
        }
        q.push(" ORDER BY txid, seq LIMIT ")
            .bind(Arg::I64(i64::from(limit)));
        self.rows(q.query(), event_from_row).await
    }

    async fn write_lapse_events(&self, now: Timestamp, limit: u32) -> StoreResult<u64> {
        self.lapse_events(now, limit).await
    }

    async fn purge_events(&self, cutoff: Timestamp) -> StoreResult<u64> {
        // Attempts are history of the same age; the key's endpoint prefix finds them.
        sqlx::query(dollar!(statements::DELETE_ATTEMPTS_BEFORE))
            .bind(cutoff.0)
            .execute(self.pool())
            .await
            .map_err(map_err)?;
        // Each application's newest event stays, as on SQLite (there it keeps `seq` from going back).
        let done = self.affected(sqlx::query(
            "DELETE FROM events e WHERE e.occurred_at < $1 AND EXISTS (SELECT 1 FROM events n \
             WHERE n.application_id = e.application_id AND (n.txid, n.seq) > (e.txid, e.seq))",
        )
        .bind(cutoff.0)).await?;
        Ok(done)
    }
}

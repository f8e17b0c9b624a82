//! The operator console's audit log and its counts over the outbox.

use crate::Pg;
use async_trait::async_trait;
use sessiond_core::Timestamp;
use sessiond_core::application::AppId;
use sessiond_core::events::{Event, EventType};
use sessiond_core::store::{ActionFilter, ConsoleStore, EventCount, OperatorAction, StoreResult};
use sessiond_store_sql::Placeholders::Dollar;
use sessiond_store_sql::console as q;
use sessiond_store_sql::rows;
use sqlx::postgres::PgRow;

use crate::events::{EVENT_COLS, event_from_row};
use crate::login::Bind;
use crate::{SqlStore, corrupt, get, map_err};

fn action_from_row(r: &PgRow) -> StoreResult<OperatorAction> {
    rows::operator_action(&Pg(r))
}

#[async_trait]
impl ConsoleStore for SqlStore {
    async fn record_operator_action(&self, a: &OperatorAction) -> StoreResult<()> {
        q::insert_operator_action(
            Dollar,
            &a.id,
            a.at.0,
            &a.operator_id,
            &a.action,
            a.application_id.as_ref().map(AppId::as_str),
            &a.target,
            &a.detail,
        )
        .query()
        .execute(self.pool())
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn list_operator_actions(
        &self,
        filter: &ActionFilter,
        limit: u32,
    ) -> StoreResult<Vec<OperatorAction>> {
        let stmt = q::operator_actions(
            Dollar,
            filter.application_id.as_ref().map(AppId::as_str),
            filter.operator_id.as_deref(),
            filter.before.as_ref().map(|(at, id)| (at.0, id.as_str())),
            limit,
        );
        self.rows(stmt.query(), action_from_row).await
    }

    async fn count_events(
        &self,
        app: &AppId,
        since: Timestamp,
        bucket_ms: i64,
    ) -> StoreResult<Vec<EventCount>> {
        let stmt = q::count_events(Dollar, app.as_str(), since.0, bucket_ms.max(1));
        let rows = stmt.query().fetch_all(self.pool()).await.map_err(map_err)?;
        rows.iter()
            .map(|r| {
                let kind: String = get(r, "type")?;
                Ok(EventCount {
                    bucket: get(r, "bucket")?,
                    kind: EventType::parse(&kind).ok_or_else(|| corrupt("event type", &kind))?,
                    count: get::<i64>(r, "n")?.unsigned_abs(),
                })
            })
            .collect()
    }

    async fn events_about(
        &self,
        app: &AppId,
        subject: &str,
        limit: u32,
    ) -> StoreResult<Vec<Event>> {
        let stmt = q::events_about(
            Dollar,
            EVENT_COLS,
            "txid DESC, seq DESC",
            app.as_str(),
            subject,
            limit,
        );
        self.rows(stmt.query(), event_from_row).await
    }
}

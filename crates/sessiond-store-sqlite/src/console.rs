//! The operator console's audit log and its counts over the outbox.

use crate::Lite;
use async_trait::async_trait;
use sessiond_core::Timestamp;
use sessiond_core::application::AppId;
use sessiond_core::events::{Event, EventType};
use sessiond_core::store::{ActionFilter, ConsoleStore, EventCount, OperatorAction, StoreResult};
use sessiond_store_sql::Placeholders::Question;
use sessiond_store_sql::console as q;
use sessiond_store_sql::rows;

use crate::events::EVENT_COLS;
use crate::{Run, SqliteStore, corrupt, get};

fn action_from_row(r: &rusqlite::Row<'_>) -> StoreResult<OperatorAction> {
    rows::operator_action(&Lite(r))
}

#[async_trait]
impl ConsoleStore for SqliteStore {
    async fn record_operator_action(&self, a: &OperatorAction) -> StoreResult<()> {
        let stmt = q::insert_operator_action(
            Question,
            &a.id,
            a.at.0,
            &a.operator_id,
            &a.action,
            a.application_id.as_ref().map(AppId::as_str),
            &a.target,
            &a.detail,
        );
        self.write(move |c| stmt.execute(c).map(drop)).await
    }

    async fn list_operator_actions(
        &self,
        filter: &ActionFilter,
        limit: u32,
    ) -> StoreResult<Vec<OperatorAction>> {
        let stmt = q::operator_actions(
            Question,
            filter.application_id.as_ref().map(AppId::as_str),
            filter.operator_id.as_deref(),
            filter.before.as_ref().map(|(at, id)| (at.0, id.as_str())),
            limit,
        );
        self.read(|c| stmt.all(c, action_from_row))
    }

    async fn count_events(
        &self,
        app: &AppId,
        since: Timestamp,
        bucket_ms: i64,
    ) -> StoreResult<Vec<EventCount>> {
        let stmt = q::count_events(Question, app.as_str(), since.0, bucket_ms.max(1));
        self.read(|c| {
            stmt.all(c, |r| {
                let kind: String = get(r, "type")?;
                Ok(EventCount {
                    bucket: get(r, "bucket")?,
                    kind: EventType::parse(&kind).ok_or_else(|| corrupt("event type", &kind))?,
                    count: get::<i64, _>(r, "n")?.unsigned_abs(),
                })
            })
        })
    }

    async fn events_about(
        &self,
        app: &AppId,
        subject: &str,
        limit: u32,
    ) -> StoreResult<Vec<Event>> {
        let stmt = q::events_about(
            Question,
            EVENT_COLS,
            "seq DESC",
            app.as_str(),
            subject,
            limit,
        );
        self.read(|c| stmt.all(c, crate::events::event_from_row))
    }
}

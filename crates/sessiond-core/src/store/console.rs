//! What the operator console reads and writes beyond the tenants' own data: the operators'
//! audit log, and counts over the outbox for its charts and timelines.

use async_trait::async_trait;

use super::StoreResult;
use crate::application::AppId;
use crate::clock::Timestamp;
use crate::events::{Event, EventType};

/// One action an operator took, as the audit log keeps it. Nothing here is personal data of an
/// application's users: targets are ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorAction {
    /// Time-ordered id (`oact_…`).
    pub id: String,
    pub at: Timestamp,
    /// The operator (a user id of the console's own application).
    pub operator_id: String,
    /// What was done, e.g. `session.revoke` (see `console::Action`).
    pub action: String,
    /// The application acted on, where there is one.
    pub application_id: Option<AppId>,
    /// The object acted on (a session, user, key, endpoint… id), or empty.
    pub target: String,
    /// A short, non-secret detail (e.g. which settings changed).
    pub detail: String,
}

/// Which audit entries to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActionFilter {
    pub application_id: Option<AppId>,
    pub operator_id: Option<String>,
    /// Only entries older than this one (its `(at, id)`), for paging.
    pub before: Option<(Timestamp, String)>,
}

/// How many events of one type fell into one time bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventCount {
    /// Start of the bucket (Unix milliseconds, a multiple of the bucket width).
    pub bucket: i64,
    pub kind: EventType,
    pub count: u64,
}

#[async_trait]
pub trait ConsoleStore: Send + Sync {
    /// Appends one entry to the audit log.
    async fn record_operator_action(&self, a: &OperatorAction) -> StoreResult<()>;
    /// Entries matching `filter`, newest first, at most `limit`.
    async fn list_operator_actions(
        &self,
        filter: &ActionFilter,
        limit: u32,
    ) -> StoreResult<Vec<OperatorAction>>;
    /// The application's events that occurred at or after `since`, counted per bucket of
    /// `bucket_ms` and per type (only buckets with events are returned).
    async fn count_events(
        &self,
        app: &AppId,
        since: Timestamp,
        bucket_ms: i64,
    ) -> StoreResult<Vec<EventCount>>;
    /// The newest events about one subject (a session or user id), newest first.
    async fn events_about(&self, app: &AppId, subject: &str, limit: u32)
    -> StoreResult<Vec<Event>>;
}

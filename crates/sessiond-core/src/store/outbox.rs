//! The storage contract of the outbox and of webhook deliveries.

use async_trait::async_trait;

use super::StoreResult;
use crate::application::AppId;
use crate::clock::Timestamp;

/// The outbox. Writers never call it: every operation above that takes an `event` writes it in
/// the same transaction as its change, and only if the change is written.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// The application's events after `after`, oldest first, of the given kinds (all kinds when
    /// empty), at most `limit`. On PostgreSQL an event appears only once every transaction that
    /// began before its own has ended, so a reader never moves past an event still committing.
    async fn events_after(
        &self,
        app: &AppId,
        after: crate::events::Position,
        kinds: &[crate::events::EventType],
        limit: u32,
    ) -> StoreResult<Vec<crate::events::Event>>;
    /// Deletes events that occurred before `cutoff`, except each application's newest (so
    /// positions never go back), with the webhook attempts made before `cutoff`; returns how many
    /// events went.
    async fn purge_events(&self, cutoff: Timestamp) -> StoreResult<u64>;
    /// Writes a `session.expired` event ([`crate::events::session_lapsed`]) for each usable
    /// session that lapsed (expiry, idle deadline or abandonment) since the last call, up to
    /// `limit` per application, and remembers how far it got. The first call for an application
    /// only marks `now` as its start. Returns how many events were written.
    async fn write_lapse_events(&self, now: Timestamp, limit: u32) -> StoreResult<u64>;
}

/// Webhook endpoints and the deliveries of events to them.
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Inserts an endpoint; it receives the events written after this call.
    async fn insert_endpoint(&self, e: &crate::webhooks::Endpoint) -> StoreResult<()>;
    async fn get_endpoint(
        &self,
        app: &AppId,
        id: &crate::ids::EndpointId,
    ) -> StoreResult<Option<crate::webhooks::Endpoint>>;
    /// The application's endpoints, oldest first.
    async fn list_endpoints(&self, app: &AppId) -> StoreResult<Vec<crate::webhooks::Endpoint>>;
    /// Writes `e` if the stored version is `e.version - 1` ([`StoreError::Conflict`] otherwise).
    async fn update_endpoint(&self, e: &crate::webhooks::Endpoint) -> StoreResult<()>;
    /// Deletes an endpoint with its deliveries and attempts; returns whether it existed.
    async fn delete_endpoint(&self, app: &AppId, id: &crate::ids::EndpointId) -> StoreResult<bool>;
    /// The first attempt at new events goes by each endpoint's cursor, without a delivery row:
    /// claims, for `holder` until `lease_until`, up to `endpoints` enabled endpoints that have
    /// events after their cursor and no live lease, each with those events (at most `limit` read,
    /// only the kinds it wants returned) and the position through which they were read. Two
    /// nodes never hold one endpoint's lease at once.
    async fn claim_fresh(
        &self,
        holder: &str,
        now: Timestamp,
        lease_until: Timestamp,
        endpoints: u32,
        limit: u32,
    ) -> StoreResult<Vec<crate::webhooks::Fresh>>;
    /// Ends a fresh claim in one transaction: records every attempt; and, if `holder` still
    /// holds the endpoint's lease, moves its cursor to `through`, queues a delivery for each
    /// attempt that did not succeed (its `NextStep`: a retry time, or failed) and releases the
    /// lease. Returns whether the lease was still held (if not, another node sends them again).
    async fn finish_fresh(
        &self,
        holder: &str,
        endpoint: &crate::ids::EndpointId,
        through: crate::events::Position,
        done: &[(crate::webhooks::Attempt, crate::webhooks::NextStep)],
    ) -> StoreResult<bool>;
    /// Retries and replays: claims up to `limit` pending deliveries due at `now` whose lease (if any) has ended,
    /// for `holder` until `lease_until`, with their endpoint and event. Deliveries of disabled
    /// endpoints are not claimed.
    async fn claim_deliveries(
        &self,
        holder: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<crate::webhooks::Claimed>>;
    /// Records each attempt and moves its delivery on (its `NextStep`), releasing `holder`'s
    /// lease, all in one transaction. Returns, per attempt, whether the delivery moved on: false
    /// (only the attempt is recorded) when the lease was lost to another node.
    async fn finish_deliveries(
        &self,
        holder: &str,
        done: &[(crate::webhooks::Attempt, crate::webhooks::NextStep)],
    ) -> StoreResult<Vec<bool>>;
    /// An endpoint's deliveries, newest event first, optionally in one state: queued ones
    /// (retries, replays, failures) and those whose first attempt succeeded.
    async fn list_deliveries(
        &self,
        app: &AppId,
        endpoint: &crate::ids::EndpointId,
        state: Option<crate::webhooks::DeliveryState>,
        limit: u32,
    ) -> StoreResult<Vec<crate::webhooks::Delivery>>;
    /// An endpoint's attempts, newest first, optionally of one event.
    async fn list_attempts(
        &self,
        app: &AppId,
        endpoint: &crate::ids::EndpointId,
        event_id: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<crate::webhooks::Attempt>>;
    /// Makes the chosen events pending again for the endpoint, due at `now`, with a fresh
    /// attempt count (events it does not want are skipped); returns how many.
    async fn replay_deliveries(
        &self,
        app: &AppId,
        endpoint: &crate::ids::EndpointId,
        which: &crate::webhooks::Replay,
        now: Timestamp,
    ) -> StoreResult<u64>;
    /// How many deliveries wait: pending retries and replays, and events after enabled
    /// endpoints' cursors (the outbox depth the metrics show).
    async fn pending_deliveries(&self) -> StoreResult<u64>;
    /// Whether any application has an enabled endpoint: with none, the delivery loop has
    /// nothing to claim and can skip its passes.
    async fn any_enabled_endpoint(&self) -> StoreResult<bool>;
}

//! The storage contract: small capability traits that every backend implements.
//!
//! Rules every implementation follows (the conformance suite checks each one):
//! - **Tenancy.** Every method on tenant-owned data takes the owning [`AppId`] and touches only
//!   rows of that application. A foreign id behaves exactly like a missing one.
//! - **Time is an argument.** No method reads the clock; expiry and retention compare against the
//!   `now` passed in.
//! - **Optimistic concurrency.** Mutable records carry a `version`; an update names the version it
//!   read and fails with [`StoreError::Conflict`] if another writer got there first.
//! - **Atomicity.** A method either applies completely or not at all.
//!
//! Construction, connection and migrations belong to the concrete backend, not to these traits.

use async_trait::async_trait;

use crate::apikey::{ApiKey, ApiKeyId};
use crate::application::{AppId, Application};
use crate::clock::Timestamp;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A version mismatch or a uniqueness violation: someone else wrote first.
    #[error("conflict")]
    Conflict,
    /// The database cannot be reached right now (pool timeout, connection refused).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Backend(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Server-wide named values (not tenant data), e.g. the sealed API-key pepper.
#[async_trait]
pub trait MetaStore: Send + Sync {
    async fn get_meta(&self, name: &str) -> StoreResult<Option<Vec<u8>>>;
    /// Inserts `value` unless `name` exists; returns whether it inserted. Nodes racing to
    /// initialise the same value all end up reading the single winner.
    async fn insert_meta_if_absent(
        &self,
        name: &str,
        value: &[u8],
        sealed: bool,
    ) -> StoreResult<bool>;
}

#[async_trait]
pub trait ApplicationStore: Send + Sync {
    /// Inserts an application together with its first secret key, atomically.
    async fn insert_application(&self, app: &Application, first_key: &ApiKey) -> StoreResult<()>;
    async fn get_application(&self, id: &AppId) -> StoreResult<Option<Application>>;
    /// All applications, oldest first.
    async fn list_applications(&self) -> StoreResult<Vec<Application>>;
    async fn count_applications(&self) -> StoreResult<u64>;
    /// Writes `app` (name and settings) if the stored version is `app.version - 1`.
    /// [`StoreError::NotFound`] if absent, [`StoreError::Conflict`] on a version mismatch.
    async fn update_application(&self, app: &Application) -> StoreResult<()>;
    /// Deletes the application and everything it owns. Returns whether it existed.
    async fn delete_application(&self, id: &AppId) -> StoreResult<bool>;
}

#[async_trait]
pub trait ApiKeyStore: Send + Sync {
    async fn insert_api_key(&self, key: &ApiKey) -> StoreResult<()>;
    /// Looks a key up by its keyed hash (an indexed, O(1) lookup) together with its application.
    /// Revoked keys are returned too, so callers can tell "revoked" from "unknown".
    async fn find_api_key_by_hash(
        &self,
        hash: &[u8; 32],
    ) -> StoreResult<Option<(ApiKey, Application)>>;
    /// Keys of one application, oldest first.
    async fn list_api_keys(&self, app: &AppId) -> StoreResult<Vec<ApiKey>>;
    /// Marks a key revoked at `now` (idempotent: a second revoke keeps the first time).
    /// `None` if the application has no such key.
    async fn revoke_api_key(
        &self,
        app: &AppId,
        key: &ApiKeyId,
        now: Timestamp,
    ) -> StoreResult<Option<ApiKey>>;
    /// Deletes keys revoked before `cutoff`; returns how many.
    async fn purge_revoked_api_keys(&self, cutoff: Timestamp) -> StoreResult<u64>;
}

/// Where a sealed value lives, as far as the re-sealing pass needs to know. Opaque to the core.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SealedRef {
    /// Which kind of sealed column (e.g. `meta`); also the sealing context prefix.
    pub kind: String,
    /// Row identity within that kind.
    pub id: String,
}

impl SealedRef {
    /// The sealing context bound into the value's authenticated data.
    pub fn context(&self) -> String {
        format!("{}:{}", self.kind, self.id)
    }
}

/// Enumeration and compare-and-swap of every sealed value, for master-key rotation.
#[async_trait]
pub trait SealedStore: Send + Sync {
    /// Sealed values ordered by `(kind, id)`, starting after `after`.
    async fn sealed_page(
        &self,
        after: Option<&SealedRef>,
        limit: u32,
    ) -> StoreResult<Vec<(SealedRef, Vec<u8>)>>;
    /// Replaces a sealed value if it still equals `old`; returns whether it replaced.
    async fn replace_sealed(&self, r: &SealedRef, old: &[u8], new: &[u8]) -> StoreResult<bool>;
}

/// Exclusive claims on job runs, so that several nodes sharing one database run each scheduled
/// run of a job exactly once.
#[async_trait]
pub trait JobLeaseStore: Send + Sync {
    /// Claims run `slot` of `job` for `holder`. Exactly one caller per `(job, slot)` gets `true`.
    async fn claim_job_run(
        &self,
        job: &str,
        slot: i64,
        holder: &str,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// Records the outcome of a claimed run.
    async fn finish_job_run(
        &self,
        job: &str,
        slot: i64,
        outcome: &str,
        now: Timestamp,
    ) -> StoreResult<()>;
    /// Deletes run records started before `cutoff`.
    async fn purge_job_runs(&self, cutoff: Timestamp) -> StoreResult<u64>;
}

/// Liveness of the database itself.
#[async_trait]
pub trait HealthStore: Send + Sync {
    /// Whether the database answers a trivial query.
    async fn ping(&self) -> StoreResult<()>;
    /// Whether every migration this binary knows is applied (and no unknown one is).
    async fn migrations_current(&self) -> StoreResult<bool>;
}

/// Everything a running server needs from storage.
pub trait Store:
    MetaStore + ApplicationStore + ApiKeyStore + SealedStore + JobLeaseStore + HealthStore
{
}

impl<T> Store for T where
    T: MetaStore + ApplicationStore + ApiKeyStore + SealedStore + JobLeaseStore + HealthStore
{
}

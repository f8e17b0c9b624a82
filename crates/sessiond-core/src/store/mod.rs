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
use crate::events::NewEvent;

pub use crate::error::{Failure, StoreError, StoreResult};

mod console;
mod outbox;
mod verification;
pub use console::{ActionFilter, ConsoleStore, EventCount, OperatorAction};
pub use outbox::{EventStore, WebhookStore};
pub use verification::{StoredAttachment, VerificationOrder, VerificationStore};

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

/// A counter that changes whenever a secret key or an application changes — whichever node or
/// process changed it (the backends bump it with triggers in the same transaction). Lets a node
/// keep verified keys and parsed settings in memory and still see a revocation at once.
#[async_trait]
pub trait AuthEpochStore: Send + Sync {
    /// The current value; cheaper than any key lookup.
    async fn auth_epoch(&self) -> StoreResult<i64>;
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
    /// Records the outcome of a claimed run (at most `jobs::MAX_OUTCOME_CHARS` characters).
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

/// Declares [`Store`] as every capability trait at once, and implements it for every type that
/// has them all, from one list.
macro_rules! store_of {
    ($($cap:ident),+ $(,)?) => {
        /// Everything a running server needs from storage.
        pub trait Store: $($cap +)+ {}
        impl<T> Store for T where T: $($cap +)+ {}
    };
}

store_of!(
    MetaStore,
    ApplicationStore,
    ApiKeyStore,
    AuthEpochStore,
    SealedStore,
    JobLeaseStore,
    HealthStore,
    UserStore,
    SessionStore,
    SigningKeyStore,
    TemplateStore,
    SessionDeleteStore,
    VaultStore,
    AuditStore,
    VerificationStore,
    UpgradeStore,
    EventStore,
    WebhookStore,
    ConsoleStore,
);

/// A user as stored: clear columns for filtering, the profile sealed, and blind-index hashes of
/// its identifiers (for uniqueness and lookup).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredUser {
    pub id: crate::ids::UserId,
    pub application_id: AppId,
    pub external_id: Option<String>,
    pub profile_sealed: Vec<u8>,
    /// (kind, hash) pairs, unique per application and kind.
    pub identifiers: Vec<(String, [u8; 32])>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub version: i64,
}

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Inserts a user; [`StoreError::Conflict`] if an identifier is taken in the application.
    async fn insert_user(&self, user: &StoredUser, event: Option<&NewEvent>) -> StoreResult<()>;
    async fn get_user(
        &self,
        app: &AppId,
        id: &crate::ids::UserId,
    ) -> StoreResult<Option<StoredUser>>;
    /// Users matching `filter`, newest first, and the total count ignoring limit/offset.
    async fn list_users(
        &self,
        app: &AppId,
        filter: &crate::user::UserFilter,
        limit: u32,
        offset: u64,
    ) -> StoreResult<(Vec<StoredUser>, u64)>;
    /// Writes the user (and replaces its identifiers) if the stored version is `version - 1`.
    async fn update_user(&self, user: &StoredUser, event: Option<&NewEvent>) -> StoreResult<()>;
    /// Deletes the user and their sessions. Returns whether it existed.
    async fn delete_user(
        &self,
        app: &AppId,
        id: &crate::ids::UserId,
        event: Option<&NewEvent>,
    ) -> StoreResult<bool>;
}

/// Filters of a session listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionFilter {
    pub user_id: Option<crate::ids::UserId>,
    pub client_id: Option<crate::ids::ClientId>,
    /// Effective statuses (as of `now`) to include; empty means any.
    pub statuses: Vec<crate::session::SessionStatus>,
}

/// What a read-modify-write of one session decided, from the session as stored.
// Made once per operation and moved once: boxing the large variant would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum SessionChange {
    /// Nothing to write.
    Unchanged,
    /// Write this session (its version already the next one) and its event.
    Write(crate::session::Session, Option<NewEvent>),
    /// The change is refused for this reason; nothing is written.
    Refused(crate::error::Error),
}

/// The decision of a [`SessionStore::modify_session`], run where the store reads the session.
pub type SessionStep =
    std::sync::Arc<dyn Fn(&crate::session::Session) -> SessionChange + Send + Sync>;

/// What a [`SessionStore::modify_session`] did.
// As `SessionChange`: one per operation, moved once.
#[allow(clippy::large_enum_variant)]
pub enum Modified {
    /// No such session (or not a live one).
    Missing,
    /// The step wrote nothing; the session as stored.
    Unchanged(crate::session::Session),
    /// The step refused; nothing was written.
    Refused(crate::error::Error),
    /// The session before and after; `evented` if an event was written with it.
    Written {
        before: crate::session::Session,
        after: crate::session::Session,
        evented: bool,
    },
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Inserts a new session; [`StoreError::NotFound`] (nothing written) when its user is not one
    /// of its application's users.
    async fn insert_session(
        &self,
        s: &crate::session::Session,
        event: Option<&NewEvent>,
    ) -> StoreResult<()>;
    async fn get_session(
        &self,
        app: &AppId,
        id: &crate::ids::SessionId,
    ) -> StoreResult<Option<crate::session::Session>>;
    /// The session together with its user, in one read (views that show both).
    async fn get_session_with_user(
        &self,
        app: &AppId,
        id: &crate::ids::SessionId,
    ) -> StoreResult<Option<(crate::session::Session, StoredUser)>>;
    /// Sessions matching `filter` (statuses evaluated at `now`), newest first, and the total.
    async fn list_sessions(
        &self,
        app: &AppId,
        filter: &SessionFilter,
        limit: u32,
        offset: u64,
        now: Timestamp,
    ) -> StoreResult<(Vec<crate::session::Session>, u64)>;
    /// The same page as [`SessionStore::list_sessions`] without counting the total, for callers
    /// that do not return one (counting grows with the number of matching sessions).
    async fn list_sessions_page(
        &self,
        app: &AppId,
        filter: &SessionFilter,
        limit: u32,
        offset: u64,
        now: Timestamp,
    ) -> StoreResult<Vec<crate::session::Session>>;
    /// Writes the session if the stored version is `version - 1`. When `s` is in a terminal
    /// status its token vault is deleted by the same statement or transaction: a session that can
    /// no longer be used keeps no secrets, and revoking one is a single store operation.
    async fn update_session(
        &self,
        s: &crate::session::Session,
        event: Option<&NewEvent>,
    ) -> StoreResult<()>;
    /// [`SessionStore::update_session`] of `after`, a change the caller decided from `before`,
    /// the session as it read it (`after.version` is `before.version + 1`). The outcome is the
    /// same; a store whose writes cost by the columns they set (SQLite rewrites every index
    /// naming a column an UPDATE sets, changed or not) writes only the fields that differ.
    async fn change_session(
        &self,
        _before: &crate::session::Session,
        after: &crate::session::Session,
        event: Option<&NewEvent>,
    ) -> StoreResult<()> {
        self.update_session(after, event).await
    }
    /// Reads session `id`, runs `step` on it and writes what it decides (as
    /// [`SessionStore::update_session`] would), all in one transaction, so no other write can
    /// come between the read and the write. `Ok(None)`: this store does not offer it, because a
    /// read and a conditional write cost it less (the caller does those, under optimistic
    /// concurrency). `step` may run more than once; only its last decision is written.
    async fn modify_session(
        &self,
        _app: &AppId,
        _id: &crate::ids::SessionId,
        _step: SessionStep,
    ) -> StoreResult<Option<Modified>> {
        Ok(None)
    }
    /// Runs `step` on each session of the page `filter` selects (at most `limit`, newest first,
    /// statuses as of `now`) and writes what it decides, all in one transaction; how many it
    /// wrote. Refusals are left as they are. `Ok(None)`: not offered, as for
    /// [`SessionStore::modify_session`].
    async fn modify_sessions(
        &self,
        _app: &AppId,
        _filter: &SessionFilter,
        _limit: u32,
        _now: Timestamp,
        _step: SessionStep,
    ) -> StoreResult<Option<u64>> {
        Ok(None)
    }
    /// [`SessionStore::update_session`] for several sessions at once, each with its event, in
    /// one transaction: all are written or none. [`StoreError::Conflict`] when any of them was
    /// changed meanwhile, [`StoreError::NotFound`] when any is gone.
    async fn update_sessions(
        &self,
        changes: &[(crate::session::Session, Option<NewEvent>)],
    ) -> StoreResult<()>;
    /// Deletes sessions that ended, or passed a deadline, before `cutoff`; returns how many.
    async fn purge_sessions(&self, cutoff: Timestamp) -> StoreResult<u64>;
}

/// Lifecycle of a signing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyState {
    /// Published in the JWKS, not yet signing.
    Next,
    /// Signing (one per application).
    Current,
    /// No longer signing; published until its last token expires.
    Retired,
}

impl KeyState {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Next => "next",
            KeyState::Current => "current",
            KeyState::Retired => "retired",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [KeyState::Next, KeyState::Current, KeyState::Retired]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    pub kid: crate::ids::SigningKeyId,
    pub application_id: AppId,
    pub algorithm: String,
    /// PKCS#8 DER, sealed.
    pub private_sealed: Vec<u8>,
    /// The public JWK (JSON text, with kid/alg/use).
    pub public_jwk: String,
    pub state: KeyState,
    pub created_at: Timestamp,
    pub activates_at: Timestamp,
    pub retired_at: Option<Timestamp>,
    /// Latest `exp` of any token this key may have signed; retired keys stay published until then.
    pub publish_until: Timestamp,
    pub version: i64,
}

#[async_trait]
pub trait SigningKeyStore: Send + Sync {
    /// Inserts a key; [`StoreError::Conflict`] if it would be a second `Current` key.
    async fn insert_signing_key(&self, k: &SigningKeyRecord) -> StoreResult<()>;
    /// The application's keys, oldest first.
    async fn list_signing_keys(&self, app: &AppId) -> StoreResult<Vec<SigningKeyRecord>>;
    /// Atomically makes `next` current and the current key retired at `now`; `false` if either
    /// key changed meanwhile.
    async fn promote_signing_key(
        &self,
        app: &AppId,
        next: &crate::ids::SigningKeyId,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// Raises `publish_until` to `until` if it is lower.
    async fn extend_signing_key(
        &self,
        app: &AppId,
        kid: &crate::ids::SigningKeyId,
        until: Timestamp,
    ) -> StoreResult<()>;
    /// Deletes retired keys whose `publish_until` is before `now`; returns how many.
    async fn delete_expired_signing_keys(&self, app: &AppId, now: Timestamp) -> StoreResult<u64>;
}

#[async_trait]
pub trait TemplateStore: Send + Sync {
    /// [`StoreError::Conflict`] if the name is taken in the application.
    async fn insert_template(&self, t: &crate::template::JwtTemplate) -> StoreResult<()>;
    async fn get_template(
        &self,
        app: &AppId,
        id: &crate::ids::TemplateId,
    ) -> StoreResult<Option<crate::template::JwtTemplate>>;
    async fn get_template_by_name(
        &self,
        app: &AppId,
        name: &str,
    ) -> StoreResult<Option<crate::template::JwtTemplate>>;
    /// Newest first, with the total.
    async fn list_templates(
        &self,
        app: &AppId,
        limit: u32,
        offset: u64,
    ) -> StoreResult<(Vec<crate::template::JwtTemplate>, u64)>;
    /// Writes if the stored version is `version - 1`; [`StoreError::Conflict`] also on a taken name.
    async fn update_template(&self, t: &crate::template::JwtTemplate) -> StoreResult<()>;
    async fn delete_template(&self, app: &AppId, id: &crate::ids::TemplateId) -> StoreResult<bool>;
}

/// Which sessions a bulk delete removes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionDeletion {
    /// Only this user's sessions.
    pub user_id: Option<crate::ids::UserId>,
    /// Only sessions that have lapsed (expired, suspended or abandoned) as of this time.
    pub lapsed_at: Option<Timestamp>,
}

#[async_trait]
pub trait SessionDeleteStore: Send + Sync {
    /// Deletes one session (and its vault). Returns whether it existed.
    async fn delete_session(
        &self,
        app: &AppId,
        id: &crate::ids::SessionId,
        event: Option<&NewEvent>,
    ) -> StoreResult<bool>;
    /// Deletes the application's sessions matching `which`; returns how many rows went.
    async fn delete_sessions(&self, app: &AppId, which: &SessionDeletion) -> StoreResult<u64>;
    /// Deletes every session of `user` (with their vaults) in one row write, however many there
    /// are: from the moment this returns, no read sees them, and sessions created afterwards
    /// are unaffected. Their rows are removed later by [`Self::sweep_deleted_sessions`].
    /// Returns whether the user exists. In the same write, a `user.sessions.removed` event lists
    /// the sessions that were still usable at `now` (none: no event).
    async fn delete_user_sessions(
        &self,
        app: &AppId,
        user: &crate::ids::UserId,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// Deletes every session of the application that lapsed (expiry, abandonment or idle
    /// deadline) at or before `through`, in one row write, however many there are: from the
    /// moment this returns, no read sees them. Their rows are removed later by
    /// [`Self::sweep_deleted_sessions`]. A `through` earlier than a previous one changes nothing.
    async fn delete_lapsed_sessions(&self, app: &AppId, through: Timestamp) -> StoreResult<()>;
    /// Removes up to `limit` rows of sessions deleted by [`Self::delete_user_sessions`] or
    /// [`Self::delete_lapsed_sessions`] (with their vaults); returns how many. Zero means none
    /// are left.
    async fn sweep_deleted_sessions(&self, limit: u32) -> StoreResult<u64>;
}

/// A sealed value of a session's token vault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultEntry {
    /// Row identity (`vt_…`); the sealing context is `session_tokens:<row id>`.
    pub row_id: String,
    pub value_sealed: Vec<u8>,
}

#[async_trait]
pub trait VaultStore: Send + Sync {
    /// Stores or replaces `token_id` of a session. [`StoreError::NotFound`] if the session is not
    /// the application's; `Ok(false)` if the session already holds `max_tokens` other tokens.
    #[allow(clippy::too_many_arguments)]
    async fn put_session_token(
        &self,
        app: &AppId,
        session: &crate::ids::SessionId,
        token_id: &str,
        entry: &VaultEntry,
        max_tokens: usize,
        now: Timestamp,
    ) -> StoreResult<bool>;
    async fn get_session_token(
        &self,
        app: &AppId,
        session: &crate::ids::SessionId,
        token_id: &str,
    ) -> StoreResult<Option<VaultEntry>>;
    async fn delete_session_token(
        &self,
        app: &AppId,
        session: &crate::ids::SessionId,
        token_id: &str,
    ) -> StoreResult<bool>;
    /// Destroys a session's whole vault; returns how many tokens.
    async fn delete_session_tokens(
        &self,
        app: &AppId,
        session: &crate::ids::SessionId,
    ) -> StoreResult<u64>;
    /// Destroys the vaults of sessions that are no longer usable at `now`.
    async fn purge_unusable_session_tokens(&self, now: Timestamp) -> StoreResult<u64>;
}

/// One start or end of an impersonation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImpersonationEvent {
    pub id: String,
    pub application_id: AppId,
    pub session_id: crate::ids::SessionId,
    /// Who impersonates.
    pub actor_user_id: crate::ids::UserId,
    /// Whom.
    pub target_user_id: crate::ids::UserId,
    /// `start` or `end`.
    pub kind: String,
    pub at: Timestamp,
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn record_impersonation(&self, e: &ImpersonationEvent) -> StoreResult<()>;
    /// Newest first; with `user`, only the entries where that user is the actor or the target.
    async fn list_impersonations(
        &self,
        app: &AppId,
        user: Option<&crate::ids::UserId>,
        limit: u32,
    ) -> StoreResult<Vec<ImpersonationEvent>>;
}

/// Values that versions before sealing stored in clear, found so that the service can move them
/// under seal when a node starts. Each finder returns at most `limit` rows with an id after
/// `after` (`""` to start), in id order.
#[async_trait]
pub trait UpgradeStore: Send + Sync {
    /// Users whose external id is still in the clear `external_id` column.
    async fn users_with_clear_external_id(
        &self,
        after: &str,
        limit: u32,
    ) -> StoreResult<Vec<StoredUser>>;
    /// Sessions with no sealed SSO whose attributes still hold one in clear.
    async fn sessions_with_clear_sso(
        &self,
        after: &str,
        limit: u32,
    ) -> StoreResult<Vec<crate::session::Session>>;
    /// Writes `s.sso` and `s.attributes` if the row is still at `s.version` and has no sealed
    /// SSO; returns whether it wrote. The version does not change: the session is the same.
    async fn seal_session_sso(&self, s: &crate::session::Session) -> StoreResult<bool>;
    /// Templates whose claims are still in clear.
    async fn templates_with_clear_claims(
        &self,
        after: &str,
        limit: u32,
    ) -> StoreResult<Vec<crate::template::JwtTemplate>>;
}

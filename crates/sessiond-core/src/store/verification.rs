//! The storage contract of identity-verification sessions.

use async_trait::async_trait;

use super::StoreResult;
use crate::application::AppId;
use crate::clock::Timestamp;
use crate::events::NewEvent;

/// Sort key of a verification-session listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerificationOrder {
    Created,
    Updated,
    /// Lifecycle order of the stored state (created … expired).
    State,
}

/// An attachment of a verification session, sealed to its own access key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAttachment {
    pub id: String,
    pub application_id: AppId,
    pub verification_id: crate::verification::VerificationId,
    pub sealed: Vec<u8>,
    pub created_at: Timestamp,
}

/// Identity-verification sessions and their attachments.
#[async_trait]
pub trait VerificationStore: Send + Sync {
    /// Inserts a session together with any attachments it already has, atomically.
    async fn insert_verification(
        &self,
        v: &crate::verification::Verification,
        attachments: &[StoredAttachment],
        event: Option<&NewEvent>,
    ) -> StoreResult<()>;
    async fn get_verification(
        &self,
        app: &AppId,
        id: &crate::verification::VerificationId,
    ) -> StoreResult<Option<crate::verification::Verification>>;
    /// Writes the session if the stored version is `v.version - 1`, inserting `attachments` in
    /// the same transaction (a provider's results and their images land together or not at all).
    async fn update_verification(
        &self,
        v: &crate::verification::Verification,
        attachments: &[StoredAttachment],
        event: Option<&NewEvent>,
    ) -> StoreResult<()>;
    /// Writes the redacted session (version-checked) and deletes all its attachments, atomically.
    async fn redact_verification(
        &self,
        v: &crate::verification::Verification,
        event: Option<&NewEvent>,
    ) -> StoreResult<()>;
    /// A page of the application's sessions ordered by `order` (ties broken by id), and the total.
    async fn list_verifications(
        &self,
        app: &AppId,
        order: VerificationOrder,
        descending: bool,
        limit: u32,
        offset: u64,
    ) -> StoreResult<(Vec<crate::verification::Verification>, u64)>;
    async fn get_attachment(&self, app: &AppId, id: &str) -> StoreResult<Option<StoredAttachment>>;
    /// Marks unfinished sessions whose `expires_at` is at or before `now` as expired (finished at
    /// their expiry) and drops their sealed input; returns how many.
    async fn expire_verifications(&self, now: Timestamp) -> StoreResult<u64>;
    /// Redacts the application's sessions that finished at or before `cutoff` and are not yet
    /// redacted: results, input and attachments removed, `redacted_at = now`, and a
    /// `verification.redacted` event written for each. Returns how many.
    async fn redact_verifications_finished_before(
        &self,
        app: &AppId,
        cutoff: Timestamp,
        now: Timestamp,
    ) -> StoreResult<u64>;
}

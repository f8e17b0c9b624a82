//! Secret API key records. The plaintext key is shown once at creation and never stored.

use crate::application::AppId;
use crate::clock::Timestamp;

/// Id of a key record (`key_…`); safe to show and to pass to `keys revoke`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct ApiKeyId(pub String);

impl ApiKeyId {
    pub fn new() -> Self {
        ApiKeyId(sessiond_crypto::ids::new_id("key"))
    }
    pub fn parse(s: &str) -> Option<Self> {
        sessiond_crypto::ids::is_id(s, "key").then(|| ApiKeyId(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for ApiKeyId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for ApiKeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub application_id: AppId,
    /// `HMAC-SHA256(pepper, key)`: the only stored form of the secret.
    pub hash: [u8; 32],
    /// Non-secret hint for listings, such as `sk_test_…9fQa`.
    pub hint: String,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

impl ApiKey {
    pub fn is_revoked(&self) -> bool {
        self.revoked_at.is_some()
    }
}

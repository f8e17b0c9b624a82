//! The login-session service: users, sessions, session tokens and JWT templates of an
//! application. Every dialect that speaks login sessions calls this.
//!
//! One `impl LoginService` per concern: `users`, `sessions`, `tokens`, `impersonation`,
//! `token_vault`, `templates`; `profiles` keeps opened user profiles; this file holds the
//! service, its limits and shared helpers.

mod impersonation;
mod profiles;
mod sessions;
mod templates;
mod token_vault;
mod tokens;
mod upgrade;
mod users;

pub use profiles::DEFAULT_ENTRIES as DEFAULT_PROFILE_CACHE_ENTRIES;
pub use sessions::REVOKE_PAGE;
pub use upgrade::Sealed;

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::ids::{SessionId, TemplateId, UserId};
use crate::session::TransitionError;
use crate::signing::Signer;
use crate::store::Store;
use crate::vault::Vault;

/// The values of a minted token's category header (`cat`): session tokens and template tokens
/// carry different ones, and a token presented as a session token must carry the session one,
/// so a template token is never accepted as a session token. Which values the verifying SDKs
/// expect is a dialect's to say ([`LoginService::with_token_categories`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenCategories {
    pub session: &'static str,
    pub template: &'static str,
}

impl Default for TokenCategories {
    fn default() -> Self {
        TokenCategories {
            session: "session",
            template: "template",
        }
    }
}
/// Bounds of `expires_in_seconds` on token requests.
pub const MIN_TOKEN_SECS: u64 = 30;
pub const MAX_TOKEN_SECS: u64 = 315_360_000;
/// Session tokens are valid from 10 s before issue, to absorb clock skew between servers.
const SESSION_TOKEN_NBF_SKEW_SECS: u64 = 10;
/// Users opened per store read when a listing must look inside sealed profiles.
pub const SCAN_CHUNK: u32 = 1000;
/// Largest value the token vault stores.
pub const MAX_VAULT_VALUE: usize = 16 * 1024;
/// Most tokens one session's vault holds.
pub const MAX_VAULT_TOKENS: usize = 32;
/// Longest vault token id.
pub const MAX_TOKEN_ID: usize = 256;

fn validate_token_id(t: &str) -> Result<()> {
    if t.is_empty() || t.len() > MAX_TOKEN_ID || t.chars().any(char::is_control) {
        return Err(Error::invalid(
            "token_id",
            format!("must be 1 to {MAX_TOKEN_ID} bytes without control characters"),
        ));
    }
    Ok(())
}

pub struct LoginService {
    store: Arc<dyn Store>,
    vault: Arc<Vault>,
    signer: Arc<Signer>,
    sweeps: Arc<crate::jobs::SweepSignal>,
    events: Arc<crate::events::EventSignal>,
    profiles: profiles::Profiles,
    categories: TokenCategories,
}

fn user_context(id: &UserId) -> String {
    format!("users:{id}")
}

fn template_context(id: &TemplateId) -> String {
    format!("jwt_templates:{id}")
}

fn template_claims_context(id: &TemplateId) -> String {
    format!("jwt_template_claims:{id}")
}

fn session_sso_context(id: &SessionId) -> String {
    format!("session_sso:{id}")
}

fn not_found(kind: &'static str) -> Error {
    Error::NotFound { kind }
}

fn map_transition(e: TransitionError) -> Error {
    match e {
        TransitionError::NotUsable(status) => Error::SessionNotUsable { status },
    }
}

impl LoginService {
    pub fn new(store: Arc<dyn Store>, vault: Arc<Vault>, signer: Arc<Signer>) -> Self {
        LoginService {
            store,
            vault,
            signer,
            sweeps: Arc::default(),
            events: Arc::default(),
            profiles: profiles::Profiles::new(profiles::DEFAULT_ENTRIES),
            categories: TokenCategories::default(),
        }
    }

    /// Mints (and checks) tokens with these category values.
    #[must_use]
    pub fn with_token_categories(mut self, categories: TokenCategories) -> Self {
        self.categories = categories;
        self
    }

    /// Keeps at most `entries` opened user profiles in memory (0: none); see `profiles`.
    #[must_use]
    pub fn with_profile_cache(mut self, entries: usize) -> Self {
        self.profiles = profiles::Profiles::new(entries);
        self
    }

    /// Raised whenever this service has written an event; long-polling readers wait on it.
    pub fn event_signal(&self) -> Arc<crate::events::EventSignal> {
        self.events.clone()
    }

    pub fn signer(&self) -> &Arc<Signer> {
        &self.signer
    }

    /// Marked whenever this service deletes sessions in bulk; the session sweeper watches it.
    pub fn sweep_signal(&self) -> Arc<crate::jobs::SweepSignal> {
        self.sweeps.clone()
    }
}

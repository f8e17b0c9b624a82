//! The operator console's domain: operators (people, not applications' users) with roles and
//! application scopes, their sign-in with lockout and an optional TOTP factor, console sessions
//! on sessiond's own session core, the audit log of every operator action, and the figures
//! behind the overview charts.
//!
//! # Layout
//! - [`operator`]: roles, scopes, the record kept in the operator's sealed profile, the
//!   lockout policy.
//! - [`service`]: [`ConsoleService`]: operators, sign-in, console sessions, cookies and
//!   anti-forgery tokens, the audit log.
//! - [`overview`]: pure series for the charts, from counts over the outbox.

pub mod operator;
pub mod overview;
pub mod service;

pub use operator::{Operator, Role};
pub use service::{ConsoleService, ConsoleSession, NewOperator, OperatorPatch};

/// Console session settings of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsoleSettings {
    /// A console session with no activity for this long ends.
    pub idle_timeout_secs: u64,
    /// A console session ends this long after sign-in, active or not.
    pub max_lifetime_secs: u64,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        ConsoleSettings {
            idle_timeout_secs: 30 * 60,
            max_lifetime_secs: 12 * 3600,
        }
    }
}

/// What an operator did, as the audit log names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    SignIn,
    /// A refused sign-in (wrong factor, locked, disabled).
    SignInRefused,
    SignOut,
    SignOutEverywhere,
    SessionRevoke,
    UserSessionsRevoke,
    UserUpdate,
    ApplicationCreate,
    ApplicationUpdate,
    KeyCreate,
    KeyRevoke,
    SigningKeyRotate,
    VerificationRedact,
    VerificationResultsView,
    WebhookCreate,
    WebhookUpdate,
    WebhookDelete,
    WebhookReplay,
    /// From the CLI: operators managed by whoever holds the database and master key.
    OperatorCreate,
    OperatorUpdate,
    OperatorDelete,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::SignIn => "operator.sign_in",
            Action::SignInRefused => "operator.sign_in_refused",
            Action::SignOut => "operator.sign_out",
            Action::SignOutEverywhere => "operator.sign_out_everywhere",
            Action::SessionRevoke => "session.revoke",
            Action::UserSessionsRevoke => "user.sessions.revoke",
            Action::UserUpdate => "user.update",
            Action::ApplicationCreate => "application.create",
            Action::ApplicationUpdate => "application.update",
            Action::KeyCreate => "key.create",
            Action::KeyRevoke => "key.revoke",
            Action::SigningKeyRotate => "signing_key.rotate",
            Action::VerificationRedact => "verification.redact",
            Action::VerificationResultsView => "verification.results.view",
            Action::WebhookCreate => "webhook.create",
            Action::WebhookUpdate => "webhook.update",
            Action::WebhookDelete => "webhook.delete",
            Action::WebhookReplay => "webhook.replay",
            Action::OperatorCreate => "operator.create",
            Action::OperatorUpdate => "operator.update",
            Action::OperatorDelete => "operator.delete",
        }
    }
}

//! Identity-verification sessions: their own aggregate, separate from login sessions.
//!
//! - [`model`]: the aggregate and its pure state machine.
//! - [`negotiate`]: pure decisions: the capabilities an advanced session needs, which providers
//!   suit a user.
//! - [`identity`]: the identity data providers produce (plaintext only in memory).
//! - [`provider`]: the provider trait and registry (the providers themselves live in
//!   `sessiond-providers`).
//! - [`service`]: every operation, including the hosted pages' flow and result sealing.

pub mod identity;
pub mod model;
pub mod negotiate;
pub mod provider;
pub mod service;

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests;

pub use model::{
    Event, FailReason, Flow, Options, State, Step, TransitionError, Verification, VerificationId,
    transition,
};
pub use service::VerificationService;

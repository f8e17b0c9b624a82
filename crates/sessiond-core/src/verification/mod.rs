//! Identity-verification sessions: their own aggregate, separate from login sessions.
//!
//! - [`model`]: the aggregate, its pure state machine and its mapping to both Trinsic
//!   generations.
//! - [`identity`]: the identity data providers produce (plaintext only in memory).
//! - [`provider`]: the provider trait and registry; [`testing`]: the built-in sandbox providers.
//! - [`service`]: every operation, including the hosted pages' flow and result sealing.

pub mod identity;
pub mod model;
pub mod provider;
pub mod service;
pub mod testing;

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests;

pub use model::{
    Event, FailReason, Flow, Options, State, Step, TransitionError, Verification, VerificationId,
    transition,
};
pub use service::VerificationService;

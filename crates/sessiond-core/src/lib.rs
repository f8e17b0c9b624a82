//! The domain core of sessiond. It decides; adapters translate.
//!
//! This crate has no web and no SQL code, and it never reads the wall clock: every operation that
//! depends on time takes `now` as an argument, so tests drive time with [`clock::ManualClock`].
//!
//! # Layout
//! - [`clock`]: [`Timestamp`] and the [`Clock`] trait.
//! - [`application`]: applications (tenants), their settings and publishable keys.
//! - [`apikey`]: secret-key records.
//! - [`ids`]: typed ids of tenant-owned objects.
//! - [`session`]: login sessions and their pure state machine.
//! - [`user`]: the users directory: sealed profiles, blind-indexed identifiers, search.
//! - [`template`]: JWT templates and their claim renderer.
//! - [`signing`]: per-application signing keys, their rotation and the JWKS.
//! - [`login`]: the login-session service (users, sessions, tokens, impersonation, token vault,
//!   templates) every login dialect calls.
//! - [`store`]: the storage contract, as small capability traits every backend implements.
//! - [`verification`]: identity-verification sessions, providers and sealed results.
//! - [`vault`]: the master keyring in use, and the server pepper sealed under it.
//! - [`tenancy`]: the service behind applications, keys and request authentication.
//! - [`rotation`]: re-sealing everything under a new master key.
//! - [`retry`]: optimistic read-modify-write, the one retry loop every service uses.
//! - [`jobs`]: background job logic as `run_once(now)`.
//! - [`events`]: what changed, as the outbox records it: event kinds, session snapshots, feed
//!   positions.
//! - [`webhooks`]: webhook endpoints and the at-least-once delivery of events to them.
//! - [`console`]: the operator console: operators, their sign-in and sessions, the audit log,
//!   the overview's figures.
//! - [`error`]: the core error type and its stable codes.

pub mod apikey;
pub mod application;
pub mod clock;
pub mod console;
pub mod error;
pub mod events;
pub mod ids;
pub mod jobs;
pub mod login;
pub mod retry;
pub mod rotation;
pub mod session;
pub mod signing;
pub mod store;
pub mod template;
pub mod tenancy;
pub mod user;
pub mod vault;
pub mod verification;
pub mod webhooks;

pub use clock::{Clock, Timestamp};
pub use error::{Error, ErrorCode};

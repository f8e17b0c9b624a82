//! The identity-verification providers sessiond ships, each behind the core's
//! [`Provider`](sessiond_core::verification::provider::Provider) trait. The core knows providers
//! only through that trait and a [`Providers`] registry; which ones a node offers is decided
//! here and wired in by the server.
//!
//! # Layout
//! - `sandbox`: providers that follow the sandbox contract verification clients test against
//!   (database lookup, sub-providers, a test wallet), with their test images in `assets/`.

pub mod sandbox;

use std::sync::Arc;

use sessiond_core::verification::provider::Providers;

/// The providers a node offers: the sandbox providers.
pub fn builtin() -> Providers {
    Providers::new(vec![
        Arc::new(sandbox::DatabaseLookup::new()),
        Arc::new(sandbox::SubProviders::new()),
        Arc::new(sandbox::Wallet::new()),
    ])
}

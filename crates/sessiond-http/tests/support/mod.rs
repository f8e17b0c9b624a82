//! What every in-process HTTP test sets up: the node's state over [`Services`], with a driven
//! clock.

use std::sync::Arc;

use sessiond_core::clock::ManualClock;
use sessiond_core::console::{ConsoleService, ConsoleSettings};
use sessiond_http::{AppServices, AppState};
use sessiond_store_conformance::services::Services;

/// The state a node would build, over `services`, reading time from `clock`.
pub fn state(services: &Services, clock: Arc<ManualClock>) -> AppState {
    let store = services.db.store.clone();
    AppState::new(AppServices {
        tenancy: services.tenancy.clone(),
        login: services.login.clone(),
        verification: services.verification.clone(),
        events: Arc::new(sessiond_core::events::EventService::new(
            store.clone(),
            services.login.event_signal(),
        )),
        webhooks: Arc::new(sessiond_core::webhooks::WebhookService::new(
            store.clone(),
            services.vault.clone(),
        )),
        console: Arc::new(ConsoleService::new(
            store.clone(),
            services.tenancy.clone(),
            services.login.clone(),
            ConsoleSettings::default(),
        )),
        clock,
        health: store,
        metrics: None,
        pool_stats: Arc::new(sessiond_http::DbStats::default),
        options: sessiond_http::HttpOptions::default(),
        limiter: Default::default(),
    })
}

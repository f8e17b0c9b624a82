//! Shared state of the HTTP layer.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use sessiond_core::clock::Clock;
use sessiond_core::login::LoginService;
use sessiond_core::store::HealthStore;
use sessiond_core::tenancy::Tenancy;
use sessiond_core::verification::VerificationService;

/// Reports (open, idle) connections of the database pool for the metrics endpoint.
pub type PoolStats = Arc<dyn Fn() -> (u32, usize) + Send + Sync>;

#[derive(Clone)]
pub struct AppState {
    pub tenancy: Arc<Tenancy>,
    pub login: Arc<LoginService>,
    pub verification: Arc<VerificationService>,
    /// The only source of `now` for handlers.
    pub clock: Arc<dyn Clock>,
    pub health: Arc<dyn HealthStore>,
    /// `None` when no recorder is installed (in-process tests); `/metrics` then answers 503.
    pub metrics: Option<PrometheusHandle>,
    pub pool_stats: PoolStats,
}

//! Shared state of the HTTP layer.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use sessiond_core::clock::Clock;
use sessiond_core::login::LoginService;
use sessiond_core::store::HealthStore;
use sessiond_core::tenancy::Tenancy;
use sessiond_core::verification::VerificationService;

/// What the database layer reports to the metrics endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DbStats {
    /// Open connections.
    pub open: u32,
    /// Idle connections.
    pub idle: usize,
    /// (transactions, write requests) of a group-committing writer (SQLite): their ratio is
    /// the batching the writer achieves. `None` where writes are not batched.
    pub group_commit: Option<(u64, u64)>,
    /// (sessions held, hits, misses) of the SQLite hot-session cache; `None` where there is none.
    pub session_cache: Option<(usize, u64, u64)>,
}

/// Reports [`DbStats`] for the metrics endpoint.
pub type PoolStats = Arc<dyn Fn() -> DbStats + Send + Sync>;

/// The state every handler extracts, behind one `Arc`: axum clones the state for each request,
/// and one reference-count increment is cheaper than one per service.
#[derive(Clone)]
pub struct AppState(Arc<AppServices>);

impl AppState {
    pub fn new(services: AppServices) -> Self {
        AppState(Arc::new(services))
    }
}

impl std::ops::Deref for AppState {
    type Target = AppServices;
    fn deref(&self) -> &AppServices {
        &self.0
    }
}

/// What [`AppState`] holds.
pub struct AppServices {
    pub tenancy: Arc<Tenancy>,
    pub login: Arc<LoginService>,
    pub verification: Arc<VerificationService>,
    /// The outbox's readers: the revocation feed.
    pub events: Arc<sessiond_core::events::EventService>,
    /// Webhook endpoints (the native API's `/sessiond/v1/webhooks`).
    pub webhooks: Arc<sessiond_core::webhooks::WebhookService>,
    /// The operator console's service (operators, console sessions, audit log).
    pub console: Arc<sessiond_core::console::ConsoleService>,
    /// The only source of `now` for handlers.
    pub clock: Arc<dyn Clock>,
    pub health: Arc<dyn HealthStore>,
    /// `None` when no recorder is installed (in-process tests); `/metrics` then answers 503.
    pub metrics: Option<PrometheusHandle>,
    pub pool_stats: PoolStats,
    pub options: HttpOptions,
    /// The node's rate limits (shared by every dialect).
    pub limiter: Arc<crate::limit::RateLimiter>,
}

/// Operator settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Longest a request may take (body included) before it is answered 408.
    pub request_timeout: std::time::Duration,
    /// Whether the main router serves the console (`/console`); off when it has a listener of
    /// its own or is turned off.
    pub console_on_main: bool,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            request_timeout: std::time::Duration::from_secs(30),
            console_on_main: true,
        }
    }
}

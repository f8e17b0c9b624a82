//! `sessiond serve`: build the node, serve until a signal, shut down gracefully.

use sessiond_core::login::LoginService;
use sessiond_core::tenancy::Tenancy;
use sessiond_core::webhooks::{DispatchSettings, Dispatcher, WebhookService};
use sessiond_http::dialect::clerk::webhooks::ClerkPayloads;
use sessiond_store_postgres::{PoolOptions, SqlStore};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sessiond_core::clock::Clock;
use sessiond_core::jobs::{
    Job, LapseEvents, LapsedVaults, OldEvents, OldJobRuns, OldSessions, PurgeJob, RevokedKeys,
    SessionSweeper, VerificationRetention,
};
use sessiond_core::signing::MaintainKeys;
use sessiond_core::verification::VerificationService;
use sessiond_http::{AppServices, AppState};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::ConsoleMount;
use crate::config::{Config, KeySource};
use crate::runtime::{self, SystemClock};

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

fn install_metrics() -> anyhow::Result<PrometheusHandle> {
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("duration_seconds".into()), LATENCY_BUCKETS)
        .context("invalid metric buckets")?
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).context("metrics recorder already installed")?;
    Ok(handle)
}

/// Resolves on SIGTERM or SIGINT.
async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!(signal = "SIGINT", "shutting down"),
        () = term => tracing::info!(signal = "SIGTERM", "shutting down"),
    }
}

pub async fn serve(cfg: Config) -> anyhow::Result<()> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let rt = runtime::open(&cfg, runtime::Create::Allowed).await?;
    tracing::info!(
        backend = rt.db.backend_name(),
        "database ready (migrations applied)"
    );
    // Values that versions before sealing kept in clear are sealed before anything is served.
    let sealed = rt
        .login
        .seal_legacy_values()
        .await
        .context("cannot seal values older versions stored in clear")?;
    if sealed != sessiond_core::login::Sealed::default() {
        tracing::info!(
            users = sealed.users,
            sessions = sealed.sessions,
            templates = sealed.templates,
            "sealed values an older version stored in clear"
        );
    }
    if sealed.users_left > 0 {
        tracing::warn!(
            users = sealed.users_left,
            "users share an external id with another user of their application; their external \
             ids stay in clear, and are not found by it, until one of them is changed"
        );
    }

    if let Some(created) = rt
        .tenancy
        .bootstrap(cfg.bootstrap_secret_key.clone(), clock.now())
        .await
        .context("cannot create the default application")?
    {
        rt.signer
            .ensure_key(&created.application.id, clock.now())
            .await
            .context("cannot create the default application's signing key")?;
        // Shown once, on stderr, and never logged.
        eprintln!(
            "\nsessiond: created the default application {}\n  secret key:      {}\n  publishable key: {}\n\
             Store the secret key now; it cannot be shown again (create more with `sessiond keys create`).\n",
            created.application.id,
            created.secret_key.expose(),
            created.application.publishable_key()
        );
    }

    let handle = install_metrics()?;
    let limits = listener_limits(&cfg);
    let stop = CancellationToken::new();
    let mut tasks = Vec::new();

    // Metrics upkeep keeps histogram storage bounded.
    {
        let handle = handle.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tokio::select! {
                    _ = tick.tick() => handle.run_upkeep(),
                    () = stop.cancelled() => break,
                }
            }
        }));
    }

    // Nodes pick up a key added by `keys rotate-master` (and seal with it) within 15 s.
    if let KeySource::File(path) = rt.key_source.clone() {
        let vault = rt.vault.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut last = std::fs::read(&path).ok();
            let mut tick = tokio::time::interval(Duration::from_secs(15));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = stop.cancelled() => break,
                }
                let now = std::fs::read(&path).ok();
                if now.is_some() && now != last {
                    match runtime::read_key_file(&path) {
                        Ok(ring) => {
                            tracing::info!(active = %ring.active().id(), "master keyring reloaded");
                            vault.replace_keyring(ring);
                            last = now;
                        }
                        Err(e) => tracing::error!(error = %e, "master key file changed but is invalid; keeping the old keyring"),
                    }
                }
            }
        }));
    }

    let store = rt.store.clone();
    let purge: Arc<dyn Job> = Arc::new(
        PurgeJob::new(cfg.purge_interval_secs)
            .register(Arc::new(RevokedKeys(store.clone())))
            .register(Arc::new(OldJobRuns(store.clone())))
            .register(Arc::new(LapsedVaults(store.clone())))
            .register(Arc::new(OldSessions(store.clone())))
            .register(Arc::new(OldEvents(store.clone())))
            .register(Arc::new(VerificationRetention(store.clone()))),
    );
    let keys: Arc<dyn Job> = Arc::new(MaintainKeys {
        signer: rt.signer.clone(),
        store: store.clone(),
    });
    let sweeper: Arc<dyn Job> =
        Arc::new(SessionSweeper::new(store.clone(), rt.login.sweep_signal()));
    let lapses: Arc<dyn Job> = Arc::new(LapseEvents::new(store.clone(), rt.login.event_signal()));
    let holder = sessiond_crypto::ids::new_id("node");
    tasks.extend(crate::scheduler::spawn(
        vec![purge, keys, sweeper, lapses],
        store.clone(),
        holder.clone(),
        clock.clone(),
        stop.clone(),
    ));
    // Endpoint writes on this node tell its delivery loop to look at the endpoints again.
    let endpoint_changes = Arc::new(sessiond_core::events::EventSignal::default());
    let webhooks = Arc::new(
        WebhookService::new(store.clone(), rt.vault.clone())
            .with_change_signal(endpoint_changes.clone()),
    );
    let dispatch = DispatchSettings {
        retry_schedule_secs: cfg.webhooks.retry_schedule_secs.clone(),
        // Past the transport's own timeout, so a live sender is never overtaken.
        lease_secs: cfg.webhooks.timeout.as_secs() * 2 + 5,
        ..DispatchSettings::default()
    };
    let build = {
        let transport = Arc::new(crate::webhooks::HttpTransport::new(&cfg.webhooks)?);
        let (store, vault, signer) = (store.clone(), rt.vault.clone(), rt.signer.clone());
        let (tenancy, login) = (rt.tenancy.clone(), rt.login.clone());
        let profile_cache = cfg.user_cache_entries;
        let endpoint_changes = endpoint_changes.clone();
        let (dispatch, postgres) = (
            dispatch.clone(),
            (!cfg.uses_sqlite()).then(|| {
                (
                    cfg.database_url.clone(),
                    PoolOptions {
                        max_connections: 4,
                        acquire_timeout: Duration::from_millis(cfg.database_acquire_timeout_ms),
                        // The loop authenticates nothing.
                        watch_auth_epoch: false,
                    },
                )
            }),
        );
        move || async move {
            // PostgreSQL: a small pool of the loop's own (see `webhooks::spawn`); SQLite's store
            // does its I/O on its own threads and is shared.
            let (store, tenancy, login) = match postgres {
                Some((url, opts)) => {
                    let own: Arc<dyn sessiond_core::store::Store> =
                        Arc::new(SqlStore::connect(&url, &opts).await?);
                    (
                        own.clone(),
                        Arc::new(
                            Tenancy::new(own.clone(), vault.clone())
                                .with_frontend_url(sessiond_http::dialect::clerk::frontend_url),
                        ),
                        Arc::new(
                            LoginService::new(own, vault.clone(), signer)
                                .with_profile_cache(profile_cache)
                                .with_token_categories(
                                    sessiond_http::dialect::clerk::TOKEN_CATEGORIES,
                                ),
                        ),
                    )
                }
                None => (store, tenancy, login),
            };
            let webhooks = Arc::new(WebhookService::new(store.clone(), vault));
            let dispatcher = Arc::new(
                Dispatcher::new(
                    store.clone(),
                    webhooks,
                    Arc::new(ClerkPayloads::new(tenancy, login)),
                    transport,
                    dispatch,
                    holder,
                )
                .with_endpoint_changes(endpoint_changes),
            );
            Ok((dispatcher, store))
        }
    };
    tasks.push(crate::webhooks::spawn(
        build,
        dispatch.batch as usize,
        rt.login.event_signal(),
        clock.clone(),
        stop.clone(),
    ));

    let listener = TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    let public_url = match &cfg.public_url {
        Some(u) => u.clone(),
        None if addr.ip().is_unspecified() => {
            let url = format!("http://127.0.0.1:{}", addr.port());
            tracing::warn!(public_url = %url, "listening on all interfaces without public_url; verification links will point at loopback");
            url
        }
        None => format!("http://{addr}"),
    };
    let verification = Arc::new(VerificationService::new(
        store.clone(),
        rt.vault.clone(),
        sessiond_providers::builtin(),
        public_url.clone(),
    ));
    let pool_db = rt.db.clone();
    let state = AppState::new(AppServices {
        tenancy: rt.tenancy.clone(),
        login: rt.login.clone(),
        verification,
        events: Arc::new(sessiond_core::events::EventService::new(
            store.clone(),
            rt.login.event_signal(),
        )),
        webhooks,
        console: Arc::new(sessiond_core::console::ConsoleService::new(
            store.clone(),
            rt.tenancy.clone(),
            rt.login.clone(),
            cfg.console_sessions,
        )),
        clock: clock.clone(),
        health: store.clone(),
        metrics: Some(handle),
        pool_stats: Arc::new(move || pool_db.stats()),
        options: sessiond_http::HttpOptions {
            request_timeout: Duration::from_secs(cfg.http_request_timeout_secs),
            console_on_main: cfg.console == ConsoleMount::Main,
        },
        limiter: Arc::new(sessiond_http::limit::RateLimiter::new(cfg.rate_limits)),
    });
    let state_for_trusted = state.clone();
    let app = sessiond_http::router(state);
    tracing::info!(addr = %addr, url = %format!("http://{addr}"), public_url = %public_url, "listening");

    let signals = {
        let stop = stop.clone();
        tokio::spawn(async move {
            signal().await;
            stop.cancel();
        })
    };
    let budget = Duration::from_secs(cfg.shutdown_timeout_secs);
    let trusted = match &cfg.equisoft_trusted {
        Some((addr, app_id)) => {
            rt.tenancy
                .get_application(app_id)
                .await
                .with_context(|| format!("equisoft_application {app_id} does not exist"))?;
            if !addr.ip().is_loopback() {
                tracing::warn!(addr = %addr, "the trusted Equisoft listener is not on loopback; it serves without authentication");
            }
            let l = TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr}"))?;
            let local = l.local_addr()?;
            tracing::info!(addr = %local, application = %app_id, "listening (trusted Equisoft dialect, no authentication)");
            let router = sessiond_http::dialect::equisoft::trusted_router(
                state_for_trusted.clone(),
                app_id.clone(),
            );
            Some(tokio::spawn(crate::listener::serve(
                l,
                router,
                limits,
                stop.clone(),
                budget,
            )))
        }
        None => None,
    };
    let console = match cfg.console {
        ConsoleMount::Listen(addr) => {
            let l = TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (console)"))?;
            let local = l.local_addr()?;
            tracing::info!(addr = %local, url = %format!("http://{local}/console"), "listening (operator console)");
            Some(tokio::spawn(crate::listener::serve(
                l,
                sessiond_http::console_router(state_for_trusted.clone()),
                limits,
                stop.clone(),
                budget,
            )))
        }
        ConsoleMount::Main => {
            tracing::info!(url = %format!("{public_url}/console"), "operator console");
            None
        }
        ConsoleMount::Off => None,
    };
    crate::listener::serve(listener, app, limits, stop.clone(), budget).await;
    for t in [trusted, console].into_iter().flatten() {
        let _ = t.await;
    }
    signals.abort();
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
    }
    rt.db.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// The listener's limits: the configured connection cap, lowered to leave descriptors for the
/// database, files and the process itself under the open-file limit (raised to its hard limit
/// first).
fn listener_limits(cfg: &Config) -> crate::listener::Limits {
    const RESERVED_FDS: u64 = 64;
    let nofile = crate::listener::raise_nofile_limit();
    let reserve = RESERVED_FDS + 4 * u64::from(cfg.database_max_connections);
    let cap = nofile.map_or(usize::MAX, |n| {
        usize::try_from(n.saturating_sub(reserve).max(16)).unwrap_or(usize::MAX)
    });
    let max_connections = cfg.http_max_connections.min(cap);
    if max_connections < cfg.http_max_connections {
        tracing::warn!(
            open_file_limit = nofile,
            max_connections,
            "the open-file limit caps the number of client connections"
        );
    }
    crate::listener::Limits {
        max_connections,
        header_read_timeout: Duration::from_secs(cfg.http_header_read_timeout_secs),
        idle_timeout: Duration::from_secs(cfg.http_idle_timeout_secs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const LIMITS: crate::listener::Limits = crate::listener::Limits {
        max_connections: 100,
        header_read_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(60),
    };

    /// Serves `app` until the returned token is cancelled (with `budget` to finish in-flight
    /// requests), and starts a GET of `path` on a connection of its own.
    async fn serving(
        app: axum::Router,
        path: &str,
        budget: Duration,
    ) -> (
        std::net::SocketAddr,
        CancellationToken,
        tokio::task::JoinHandle<bool>,
        tokio::net::TcpStream,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let stop = CancellationToken::new();
        let server = tokio::spawn(crate::listener::serve(
            listener,
            app,
            LIMITS,
            stop.clone(),
            budget,
        ));
        let mut conn = tokio::net::TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        conn.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        (addr, stop, server, conn)
    }

    async fn slow() -> &'static str {
        tokio::time::sleep(Duration::from_millis(800)).await;
        "done"
    }

    #[tokio::test]
    async fn in_flight_request_finishes_and_new_connections_are_refused() {
        let app = axum::Router::new().route("/slow", get(slow));
        let (addr, stop, server, mut conn) = serving(app, "/slow", Duration::from_secs(10)).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let started = std::time::Instant::now();
        stop.cancel();
        let mut buf = Vec::new();
        let _ = conn.read_to_end(&mut buf).await;
        let text = String::from_utf8_lossy(&buf);
        assert!(
            text.starts_with("HTTP/1.1 200"),
            "in-flight request completed: {text}"
        );
        assert!(text.ends_with("done"), "{text}");
        let finished = server.await.unwrap_or(false);
        assert!(finished, "shutdown reports all requests finished");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(
            tokio::net::TcpStream::connect(addr).await.is_err(),
            "no new connections after shutdown"
        );
    }

    #[tokio::test]
    async fn budget_bounds_a_stuck_request() {
        async fn stuck() -> &'static str {
            tokio::time::sleep(Duration::from_secs(60)).await;
            "never"
        }
        let app = axum::Router::new().route("/stuck", get(stuck));
        let (_, stop, server, _conn) = serving(app, "/stuck", Duration::from_millis(300)).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = std::time::Instant::now();
        stop.cancel();
        assert!(!server.await.unwrap_or(true), "a stuck request is reported");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the budget bounds shutdown"
        );
    }
}

//! Operations endpoints: liveness, readiness and Prometheus metrics. Unauthenticated by design;
//! they reveal nothing about tenants.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Status {
    /// `ok`, `ready` or `not_ready`.
    pub status: &'static str,
    /// Why the node is not ready, when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

/// Liveness: the process is up and serving.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Alive", body = Status)))]
async fn healthz() -> Json<Status> {
    Json(Status {
        status: "ok",
        reason: None,
    })
}

/// Readiness: the database answers and every migration is applied.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready to serve", body = Status),
        (status = 503, description = "Not ready", body = Status),
    ))]
async fn readyz(State(state): State<AppState>) -> Response {
    let not_ready = |reason| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Status {
                status: "not_ready",
                reason: Some(reason),
            }),
        )
            .into_response()
    };
    // A probe with a one-second timeout must get a 503, not a timeout of its own, whatever the
    // database does.
    let check = async {
        state.health.ping().await?;
        state.health.migrations_current().await
    };
    match tokio::time::timeout(READY_BUDGET, check).await {
        Ok(Ok(true)) => Json(Status {
            status: "ready",
            reason: None,
        })
        .into_response(),
        Ok(Ok(false)) => not_ready("migrations not current"),
        Ok(Err(_)) | Err(_) => not_ready("database unreachable"),
    }
}

/// Longest `/readyz` waits for the database.
const READY_BUDGET: std::time::Duration = std::time::Duration::from_millis(800);

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
async fn metrics(State(state): State<AppState>) -> Response {
    let Some(handle) = &state.metrics else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics recorder not installed\n",
        )
            .into_response();
    };
    let db = (state.pool_stats)();
    metrics::gauge!("db_pool_connections").set(f64::from(db.open));
    metrics::gauge!("db_pool_idle_connections").set(db.idle as f64);
    if let Some((transactions, requests)) = db.group_commit {
        metrics::counter!("db_write_transactions_total").absolute(transactions);
        metrics::counter!("db_write_requests_total").absolute(requests);
    }
    if let Some((held, hits, misses)) = db.session_cache {
        metrics::gauge!("db_session_cache_entries").set(held as f64);
        metrics::counter!("db_session_cache_hits_total").absolute(hits);
        metrics::counter!("db_session_cache_misses_total").absolute(misses);
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response()
}

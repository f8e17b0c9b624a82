//! HTTP adapters of sessiond. Handlers extract, call one core service method and map the result;
//! no decision about sessions or tenants is made here.
//!
//! # Layout
//! - [`state`]: [`AppState`], what every handler can reach.
//! - [`assets`]: files compiled into the binary, served.
//! - [`body`]: JSON request bodies for every dialect: parsed once, members checked by name and
//!   type; each dialect words the problems.
//! - [`auth`]: the bearer-key middleware, with a hook so each dialect renders 401s its own way.
//! - [`middleware`]: request ids, per-request log spans, request metrics, limits.
//! - [`limit`]: rate limits per application and per client address (failed authentications).
//! - [`ops`]: `/healthz`, `/readyz`, `/metrics`.
//! - [`native`]: sessiond's own API under `/sessiond/v1`: the application, the revocation feed,
//!   webhook endpoints.
//! - [`dialect`]: vendor dialects (Clerk under `/v1`, Equisoft under `/sessions` and
//!   `/users/{uuid}/sessions`, Trinsic under `/api/v1`).
//! - [`pages`]: the hosted identity-verification pages under `/verify`.
//! - [`console`]: the operator console under `/console`.
//! - [`docs`]: the OpenAPI document at `/openapi.json` and the offline docs page at `/docs`.

pub mod assets;
pub mod auth;
pub mod body;
pub mod console;
pub mod dialect;
pub mod docs;
pub mod limit;
pub mod middleware;
pub mod native;
pub mod ops;
pub mod pages;
pub mod state;

pub use state::{AppServices, AppState, DbStats, HttpOptions};

use axum::Router;

/// Largest request body any endpoint accepts.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The whole HTTP surface of a node.
pub fn router(state: AppState) -> Router {
    let (api, openapi) = native::router(state.clone())
        .merge(dialect::clerk::router(state.clone()))
        .merge(dialect::equisoft::router(state.clone()))
        .merge(dialect::trinsic::router(state.clone()))
        .split_for_parts();
    let mut app = Router::new()
        .merge(api)
        .merge(docs::router(openapi))
        .merge(
            pages::router().layer(axum::middleware::map_response_with_state(
                state.clone(),
                pages::hsts,
            )),
        )
        .fallback(route_miss);
    if state.options.console_on_main {
        app = app.merge(console::router());
    }
    let app = app.layer(middleware::RecordMetrics);
    let timeout = state.options.request_timeout;
    middleware::with_common_layers(app.with_state(state), timeout)
}

/// The console alone, for a listener of its own (`--console-listen`).
pub fn console_router(state: AppState) -> Router {
    let timeout = state.options.request_timeout;
    let app = console::router()
        .fallback(console::not_found_page)
        .layer(middleware::RecordMetrics);
    middleware::with_common_layers(app.with_state(state), timeout)
}

/// A path no route serves answers in the error shape of the API its prefix belongs to, so that
/// each vendor's client can read it.
async fn route_miss(uri: axum::http::Uri) -> axum::response::Response {
    use axum::response::IntoResponse;
    let plain = axum::http::StatusCode::NOT_FOUND.into_response();
    let path = uri.path();
    let under = |prefix: &str| {
        path.strip_prefix(prefix)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    if under("/v1") {
        dialect::clerk::clerk_shaped(plain).await
    } else if under("/api/v1") {
        dialect::trinsic::trinsic_shaped(plain).await
    } else if under("/sessions") || under("/users") {
        dialect::equisoft::equisoft_shaped(plain).await
    } else {
        native::not_found().await
    }
}

/// The value of cookie `name` in a request, if present and at most 256 bytes (no cookie this
/// server sets is longer; a longer one is not ours).
pub(crate) fn cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
        .filter(|v| v.len() <= 256)
}

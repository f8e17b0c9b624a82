//! What every in-process HTTP test sets up: the node's state over [`Services`], with a driven
//! clock. Each test binary uses part of it.
#![allow(dead_code)]

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

/// An answer read whole: status, headers and the body as text.
pub struct Resp {
    pub status: axum::http::StatusCode,
    /// The content type, empty when there is none.
    pub ct: String,
    pub headers: axum::http::HeaderMap,
    pub text: String,
}

impl Resp {
    /// The body as JSON; `Null` when it is empty or not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.text).unwrap_or(serde_json::Value::Null)
    }
}

/// A request with an optional bearer key and content type.
pub fn request(
    method: &str,
    path: &str,
    bearer: Option<&str>,
    ct: Option<&str>,
    body: impl Into<axum::body::Body>,
) -> axum::http::Request<axum::body::Body> {
    let mut req = axum::http::Request::builder().method(method).uri(path);
    if let Some(key) = bearer {
        req = req.header("authorization", format!("Bearer {key}"));
    }
    if let Some(ct) = ct {
        req = req.header("content-type", ct);
    }
    req.body(body.into()).unwrap_or_else(|e| panic!("{e}"))
}

/// Sends `req` through `router` and reads the whole answer.
pub async fn send(router: &axum::Router, req: axum::http::Request<axum::body::Body>) -> Resp {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let resp = router
        .clone()
        .oneshot(req)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let status = resp.status();
    let headers = resp.headers().clone();
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    Resp {
        status,
        ct,
        headers,
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

//! Cross-cutting layers: request ids, log spans, request metrics, limits and panic handling.

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, Response, StatusCode, header};
use axum::middleware::Next;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Route label for metrics: the matched route template, so ids never explode label cardinality.
fn route_of(req: &Request) -> String {
    req.extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned())
}

/// Records `http_requests_total` and `http_request_duration_seconds` by route, method and status.
pub async fn record_metrics(req: Request, next: Next) -> axum::response::Response {
    let start = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = route_of(&req);
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    let labels = [("route", route), ("method", method), ("status", status)];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels)
        .record(start.elapsed().as_secs_f64());
    resp
}

fn make_span(req: &Request) -> tracing::Span {
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    // The query string is left out: it can carry access keys.
    tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %req.method(),
        path = %req.uri().path(),
        app = tracing::field::Empty,
    )
}

fn on_response<B>(resp: &Response<B>, latency: Duration, _span: &tracing::Span) {
    let status = resp.status().as_u16();
    let ms = latency.as_secs_f64() * 1000.0;
    if resp.status().is_server_error() {
        tracing::error!(status, latency_ms = ms, "response");
    } else {
        tracing::info!(status, latency_ms = ms, "response");
    }
}

fn panic_response(_: Box<dyn std::any::Any + Send>) -> Response<String> {
    tracing::error!("handler panicked");
    let mut resp = Response::new(
        r#"{"error":{"code":"internal","message":"internal server error"}}"#.to_owned(),
    );
    *resp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp
}

/// Wraps `router` in the layers every route shares. Listed innermost first; the request id is
/// set outermost so that every log line of the request carries it.
/// `timeout` bounds each request, body included (408 past it).
pub fn with_common_layers<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    timeout: Duration,
) -> Router<S> {
    router
        // Enforced where handlers read the body, so that the 413 passes through each dialect's
        // error shaping (an outer limit layer would answer in plain text).
        .layer(axum::extract::DefaultBodyLimit::max(crate::MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(make_span)
                .on_request(())
                .on_response(on_response),
        )
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
        ]))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// The framework's own rejections (unparseable path, wrong method, body over the limit) come as
/// plain text; a dialect passes them through this to answer in its own error shape.
pub fn is_plain_client_error(resp: &axum::response::Response) -> bool {
    resp.status().is_client_error()
        && !resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| {
                ct.starts_with("application/json")
                    || ct.starts_with("application/problem+json")
                    || ct.starts_with("text/html")
            })
}

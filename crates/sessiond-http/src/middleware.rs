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
        .layer(axum::middleware::map_response(retry_after))
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

/// Every 503 (database unreachable, not ready) and 429 tells the client when to retry, in every
/// dialect: their clients honour Retry-After.
async fn retry_after(mut resp: axum::response::Response) -> axum::response::Response {
    let status = resp.status();
    if (status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS)
        && !resp.headers().contains_key(header::RETRY_AFTER)
    {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    }
    resp
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

/// Whether `raw` is strictly percent-encoded UTF-8: every `%` starts two hex digits and the
/// decoded bytes are UTF-8. Lenient decoders turn `%FF` into U+FFFD and answer for a value the
/// client never sent.
pub fn strictly_encoded(raw: &str) -> bool {
    let b = raw.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = |c: u8| (c as char).to_digit(16);
            match (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            ) {
                (Some(h), Some(l)) => out.push(u8::try_from(h * 16 + l).unwrap_or(0)),
                _ => return false,
            }
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    std::str::from_utf8(&out).is_ok()
}

fn has_body(req: &Request) -> bool {
    let h = req.headers();
    h.get(header::TRANSFER_ENCODING).is_some()
        || h.get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_some_and(|n| n > 0)
}

/// `application/json`, or any `…/…+json`, with or without parameters.
fn is_json_media(ct: &str) -> bool {
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || essence
            .split_once('/')
            .is_some_and(|(_, sub)| sub.ends_with("+json"))
}

/// Refuses what a JSON API cannot have meant: a query or path that is not strictly
/// percent-encoded UTF-8 (plain 400) and a body that is not declared JSON (plain 415), except
/// `text/plain` where `text_ok` says a vendor client sends it. Each dialect renders the plain
/// rejection in its own shape.
pub async fn strict_input(
    text_ok: fn(&Request) -> bool,
    req: Request,
    next: Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let uri = req.uri();
    if !strictly_encoded(uri.path()) || !uri.query().is_none_or(strictly_encoded) {
        return StatusCode::BAD_REQUEST.into_response();
    }
    if has_body(&req) {
        let ct = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let text = ct
            .split(';')
            .next()
            .is_some_and(|e| e.trim().eq_ignore_ascii_case("text/plain"));
        if !(is_json_media(ct) || (text && text_ok(&req))) {
            return StatusCode::UNSUPPORTED_MEDIA_TYPE.into_response();
        }
    }
    next.run(req).await
}

/// For dialects whose every body is JSON.
pub fn json_only(_: &Request) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_encoding_and_json_media() {
        assert!(strictly_encoded("user_id=a%2Cb&q=%C3%A9t%C3%A9"));
        assert!(!strictly_encoded("q=%FF"));
        assert!(!strictly_encoded("q=%G1"));
        assert!(!strictly_encoded("q=%4"));
        assert!(is_json_media("application/json; charset=utf-8"));
        assert!(is_json_media("Application/Problem+JSON"));
        assert!(!is_json_media("text/plain"));
        assert!(!is_json_media("application/x-www-form-urlencoded"));
        assert!(!is_json_media(""));
    }
}

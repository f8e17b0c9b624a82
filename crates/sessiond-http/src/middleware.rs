//! Cross-cutting layers: request ids, log spans, request metrics, limits and panic handling.

use std::panic::AssertUnwindSafe;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Response, StatusCode, header};
use axum::middleware::Next;
use axum::response::IntoResponse;
use tracing::Instrument;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Route label for metrics: the matched route template, so ids never explode label cardinality.
fn route_of(req: &Request) -> String {
    req.extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned())
}

/// Records `http_requests_total` and `http_request_duration_seconds` by route, method and status.
/// A tower layer of its own rather than `from_fn`, which clones and boxes the inner route into a
/// `Next` on every request: that machinery, not the recording, was 8 % of a cached session
/// read's CPU (profiled, then measured by taking the layer out).
#[derive(Clone, Copy, Default)]
pub struct RecordMetrics;

impl<S> tower::Layer<S> for RecordMetrics {
    type Service = Recorded<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Recorded { inner }
    }
}

/// A route with its request metrics recorded (see [`RecordMetrics`]).
#[derive(Clone)]
pub struct Recorded<S> {
    inner: S,
}

impl<S> tower::Service<Request> for Recorded<S>
where
    S: tower::Service<
            Request,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        >,
    S::Future: Send + 'static,
{
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<Box<dyn Future<Output = Answer> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let start = Instant::now();
        let method = req.method().as_str().to_owned();
        let route = route_of(&req);
        let answer = self.inner.call(req);
        Box::pin(async move {
            let resp = answer.await?;
            let status = resp.status().as_u16().to_string();
            let labels = [("route", route), ("method", method), ("status", status)];
            metrics::counter!("http_requests_total", &labels).increment(1);
            metrics::histogram!("http_request_duration_seconds", &labels)
                .record(start.elapsed().as_secs_f64());
            Ok(resp)
        })
    }
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

fn on_response<B>(resp: &Response<B>, latency: Duration) {
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

/// Wraps a whole router in what every request shares: a request id (the client's
/// `x-request-id`, or a new one), echoed on the response and carried by every log line of the
/// request; `Authorization` and `Cookie` marked sensitive so that no debug output shows them; a
/// time limit of `timeout` (408 past it, body included); a panic answered 500 instead of
/// dropping the connection; Retry-After on 503 and 429; one log line per response.
///
/// One service around the router rather than a stack of layers on each route: a router layer
/// is cloned, boxed, for every request, and the stack of seven cost 13 % of a keep-alive read
/// (`bench/README.md`).
pub fn with_common_layers(router: Router, timeout: Duration) -> Router {
    // Enforced where handlers read the body, so that the 413 passes through each dialect's
    // error shaping (an outer limit would answer in plain text).
    let inner = router.layer(axum::extract::DefaultBodyLimit::max(crate::MAX_BODY_BYTES));
    Router::new().fallback_service(Common { inner, timeout })
}

#[derive(Clone)]
struct Common {
    inner: Router,
    timeout: Duration,
}

type Answer = Result<axum::response::Response, std::convert::Infallible>;

impl tower::Service<Request> for Common {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<Box<dyn Future<Output = Answer> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // A router is always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let id = request_id(&mut req);
        for name in [header::AUTHORIZATION, header::COOKIE] {
            if let header::Entry::Occupied(mut values) = req.headers_mut().entry(name) {
                for v in values.iter_mut() {
                    v.set_sensitive(true);
                }
            }
        }
        let span = make_span(&req);
        let start = Instant::now();
        let routed = {
            let _in = span.enter();
            tower::Service::call(&mut self.inner, req)
        };
        let limited = tokio::time::timeout(self.timeout, routed);
        let answer = async move {
            let mut limited = std::pin::pin!(limited);
            let outcome = std::future::poll_fn(|cx| {
                match std::panic::catch_unwind(AssertUnwindSafe(|| limited.as_mut().poll(cx))) {
                    Ok(Poll::Pending) => Poll::Pending,
                    Ok(Poll::Ready(done)) => Poll::Ready(Ok(done)),
                    Err(panic) => Poll::Ready(Err(panic)),
                }
            })
            .await;
            let mut resp = match outcome {
                Ok(Ok(Ok(resp))) => resp,
                Ok(Ok(Err(never))) => match never {},
                Ok(Err(_elapsed)) => StatusCode::REQUEST_TIMEOUT.into_response(),
                Err(panic) => panic_response(panic).map(axum::body::Body::from),
            };
            retry_after(&mut resp);
            resp.headers_mut().entry(REQUEST_ID).or_insert(id);
            on_response(&resp, start.elapsed());
            Ok(resp)
        };
        Box::pin(answer.instrument(span))
    }
}

/// The client's request id, or a new one set on the request.
fn request_id(req: &mut Request) -> HeaderValue {
    if let Some(id) = req.headers().get(&REQUEST_ID) {
        return id.clone();
    }
    let id = HeaderValue::try_from(uuid::Uuid::new_v4().to_string())
        .unwrap_or_else(|_| HeaderValue::from_static("-"));
    req.headers_mut().insert(REQUEST_ID, id.clone());
    id
}

/// Every 503 (database unreachable, not ready) and 429 tells the client when to retry, in every
/// dialect: their clients honour Retry-After.
fn retry_after(resp: &mut axum::response::Response) {
    let status = resp.status();
    if (status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS)
        && !resp.headers().contains_key(header::RETRY_AFTER)
    {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
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
/// rejection in its own shape. Routes that authenticate run this inside the authentication
/// middleware instead (`AuthState::with_strict_input`): a layer of its own cost 10 % of a
/// cached session read's CPU.
pub async fn strict_input(
    text_ok: fn(&Request) -> bool,
    req: Request,
    next: Next,
) -> axum::response::Response {
    match strict_rejection(text_ok, &req) {
        Some(refused) => refused,
        None => next.run(req).await,
    }
}

/// The answer [`strict_input`] gives `req`, if it refuses it.
pub fn strict_rejection(
    text_ok: fn(&Request) -> bool,
    req: &Request,
) -> Option<axum::response::Response> {
    let uri = req.uri();
    if !strictly_encoded(uri.path()) || !uri.query().is_none_or(strictly_encoded) {
        return Some(StatusCode::BAD_REQUEST.into_response());
    }
    if has_body(req) {
        let ct = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let text = ct
            .split(';')
            .next()
            .is_some_and(|e| e.trim().eq_ignore_ascii_case("text/plain"));
        if !(is_json_media(ct) || (text && text_ok(req))) {
            return Some(StatusCode::UNSUPPORTED_MEDIA_TYPE.into_response());
        }
    }
    None
}

/// For dialects whose every body is JSON.
pub fn json_only(_: &Request) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use tower::ServiceExt;

    fn wrapped() -> Router {
        let app = Router::new()
            .route(
                "/ok",
                get(|req: Request| async move {
                    // What the handler sees: its request id, and credentials marked sensitive.
                    let h = req.headers();
                    let sensitive = h
                        .get(header::AUTHORIZATION)
                        .is_some_and(HeaderValue::is_sensitive)
                        && h.get_all(header::COOKIE)
                            .iter()
                            .all(HeaderValue::is_sensitive);
                    let id = h.get(&REQUEST_ID).cloned();
                    (
                        [("x-seen-id", id.unwrap_or(HeaderValue::from_static("none")))],
                        if sensitive { "sensitive" } else { "clear" },
                    )
                }),
            )
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    "late"
                }),
            )
            .route("/panic", get(panicking))
            .route("/busy", get(|| async { StatusCode::SERVICE_UNAVAILABLE }));
        with_common_layers(app, Duration::from_millis(100))
    }

    async fn panicking() -> &'static str {
        let bug: Option<&'static str> = std::hint::black_box(None);
        bug.unwrap_or_else(|| panic!("handler bug"))
    }

    async fn call(path: &str, headers: &[(HeaderName, &str)]) -> axum::response::Response {
        let mut req = Request::builder().uri(path);
        for (k, v) in headers {
            req = req.header(k, *v);
        }
        let req = req
            .body(axum::body::Body::empty())
            .unwrap_or_else(|e| panic!("{e}"));
        wrapped().oneshot(req).await.unwrap_or_else(|e| match e {})
    }

    async fn text(resp: axum::response::Response) -> String {
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[tokio::test]
    async fn request_ids_are_kept_or_made_and_reach_the_handler() {
        let resp = call("/ok", &[(REQUEST_ID, "trace-me")]).await;
        assert_eq!(resp.headers()[&REQUEST_ID], "trace-me");
        assert_eq!(resp.headers()["x-seen-id"], "trace-me");
        let resp = call("/ok", &[]).await;
        let made = resp.headers()[&REQUEST_ID]
            .to_str()
            .unwrap_or_default()
            .to_owned();
        assert!(uuid::Uuid::parse_str(&made).is_ok(), "a new id: {made}");
        assert_eq!(resp.headers()["x-seen-id"], made.as_str());
        assert_ne!(
            call("/ok", &[]).await.headers()[&REQUEST_ID],
            made.as_str(),
            "each request gets its own"
        );
    }

    #[tokio::test]
    async fn credentials_are_marked_sensitive_before_any_handler() {
        let resp = call(
            "/ok",
            &[
                (header::AUTHORIZATION, "Bearer sk_test_x"),
                (header::COOKIE, "a=1"),
                (header::COOKIE, "b=2"),
            ],
        )
        .await;
        assert_eq!(text(resp).await, "sensitive");
    }

    #[tokio::test]
    async fn slow_requests_time_out_and_panics_answer_500() {
        let started = Instant::now();
        let resp = call("/slow", &[]).await;
        assert_eq!(resp.status(), StatusCode::REQUEST_TIMEOUT);
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(resp.headers().contains_key(&REQUEST_ID));
        let resp = call("/panic", &[(REQUEST_ID, "p-1")]).await;
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(resp.headers()[&REQUEST_ID], "p-1");
        assert!(text(resp).await.contains("internal server error"));
        // The service is still there for the next request.
        assert_eq!(call("/ok", &[]).await.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn unavailable_answers_say_when_to_retry() {
        let resp = call("/busy", &[]).await;
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "1");
        assert!(
            !call("/ok", &[])
                .await
                .headers()
                .contains_key(header::RETRY_AFTER)
        );
    }

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

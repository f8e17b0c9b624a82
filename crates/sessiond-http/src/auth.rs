//! Bearer-key authentication. Every authenticated route resolves the calling application from the
//! secret key before the handler runs; handlers receive it as [`Caller`] and pass its id to every
//! core call, which is what keeps one application's key away from another's data.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Request};
use axum::http::HeaderValue;
use axum::http::header::{AUTHORIZATION, RETRY_AFTER};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use sessiond_core::application::Application;
use sessiond_core::clock::Clock;
use sessiond_core::error::AuthFailure;
use sessiond_core::tenancy::Tenancy;

use crate::limit::RateLimiter;

/// The application a request authenticated as.
#[derive(Debug, Clone)]
pub struct Caller(pub Arc<Application>);

/// How a dialect renders a core error (here: an authentication failure) in its own shape. The
/// request is there for dialects whose shape depends on it (Trinsic: which generation is asking).
pub type RenderError = fn(&sessiond_core::Error, &Request) -> Response;

/// State of the authentication middleware: the tenancy service, the node's rate limiter, the
/// clock and the dialect's renderer.
#[derive(Clone)]
pub struct AuthState {
    pub tenancy: Arc<Tenancy>,
    pub limiter: Arc<RateLimiter>,
    pub clock: Arc<dyn Clock>,
    pub render: RenderError,
    /// [`crate::middleware::strict_input`]'s checks, run first, for dialects that want them.
    pub strict: Option<fn(&Request) -> bool>,
}

impl AuthState {
    pub fn new(state: &crate::AppState, render: RenderError) -> Self {
        AuthState {
            tenancy: state.tenancy.clone(),
            limiter: state.limiter.clone(),
            clock: state.clock.clone(),
            render,
            strict: None,
        }
    }

    /// Refuses what [`crate::middleware::strict_input`] refuses before authenticating, in the
    /// same layer (`text_ok`: where a plain-text body is accepted).
    pub fn with_strict_input(mut self, text_ok: fn(&Request) -> bool) -> Self {
        self.strict = Some(text_ok);
        self
    }

    /// A 429 in the dialect's shape, with the exact Retry-After.
    fn limited(&self, req: &Request, limit: &'static str, secs: u64) -> Response {
        metrics::counter!("http_rate_limited_total", "limit" => limit).increment(1);
        let mut resp = (self.render)(
            &sessiond_core::Error::RateLimited {
                retry_after_secs: secs,
            },
            req,
        );
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            resp.headers_mut().insert(RETRY_AFTER, v);
        }
        resp
    }
}

/// The authentication middleware, as a tower layer (`route_layer(auth_state)`): resolves the
/// caller or answers with the dialect's 401, and applies the rate limits. A layer of its own
/// rather than `from_fn`, which clones and boxes the inner route into a `Next` per request.
impl<S> tower::Layer<S> for AuthState {
    type Service = Authenticated<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticated {
            auth: self.clone(),
            inner,
        }
    }
}

/// A route that only authenticated requests reach (see [`AuthState`]'s layer).
#[derive(Clone)]
pub struct Authenticated<S> {
    auth: AuthState,
    inner: S,
}

impl<S> tower::Service<Request> for Authenticated<S>
where
    S: tower::Service<Request, Response = Response, Error = std::convert::Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Response, std::convert::Infallible>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        // The service that was polled ready answers; a clone stays for the next request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let auth = self.auth.clone();
        Box::pin(async move {
            match admit(&auth, req).await {
                Ok(req) => inner.call(req).await,
                Err(refused) => Ok(refused),
            }
        })
    }
}

/// The request with its [`Caller`], or the answer refusing it. A client address whose failed
/// authentications used up its allowance is refused before its key is even looked at; an
/// application over its rate is refused after.
async fn admit(auth: &AuthState, mut req: Request) -> Result<Request, Response> {
    if let Some(text_ok) = auth.strict
        && let Some(refused) = crate::middleware::strict_rejection(text_ok, &req)
    {
        return Err(refused);
    }
    let now = auth.clock.now();
    let client = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if let Some(ip) = client
        && let Err(secs) = auth.limiter.check_client(ip, now)
    {
        return Err(auth.limited(&req, "auth_failures", secs));
    }
    let header = req.headers().get(AUTHORIZATION).map(|v| v.as_bytes());
    match auth.tenancy.authenticate(header).await {
        Ok(app) => {
            if let Err(secs) = auth
                .limiter
                .admit_app(&app.id, app.settings.rate_limit_per_sec, now)
            {
                return Err(auth.limited(&req, "application", secs));
            }
            tracing::Span::current().record("app", app.id.as_str());
            req.extensions_mut().insert(Caller(app));
            Ok(req)
        }
        Err(e) => {
            if let sessiond_core::Error::Unauthenticated(why) = &e {
                tracing::info!(reason = %why, "request not authenticated");
                // A request without credentials is a probe or a misconfiguration; a wrong key
                // may be a guess.
                if !matches!(why, AuthFailure::Missing)
                    && let Some(ip) = client
                {
                    auth.limiter.failed_auth(ip, now);
                }
            }
            Err((auth.render)(&e, &req))
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        // Present on every route behind the authentication layer; its absence is a wiring bug.
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            tracing::error!("Caller extractor used on a route without authentication");
            axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response()
        })
    }
}

/// Adds the `WWW-Authenticate` challenge that RFC 6750 asks of a 401 answer; any other answer
/// passes unchanged.
pub fn with_challenge(mut resp: Response, challenge: &'static str) -> Response {
    if resp.status() == axum::http::StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            axum::http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        );
    }
    resp
}

//! Bearer-key authentication. Every authenticated route resolves the calling application from the
//! secret key before the handler runs; handlers receive it as [`Caller`] and pass its id to every
//! core call, which is what keeps one application's key away from another's data.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::HeaderValue;
use axum::http::header::{AUTHORIZATION, RETRY_AFTER};
use axum::http::request::Parts;
use axum::middleware::Next;
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

/// Middleware: resolves the caller or answers with the dialect's 401, and applies the rate
/// limits: a client address whose failed authentications used up its allowance is refused before
/// its key is even looked at; an application over its rate is refused after.
pub async fn require_application(
    State(auth): State<AuthState>,
    mut req: Request,
    next: Next,
) -> Response {
    if let Some(text_ok) = auth.strict
        && let Some(refused) = crate::middleware::strict_rejection(text_ok, &req)
    {
        return refused;
    }
    let now = auth.clock.now();
    let client = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if let Some(ip) = client
        && let Err(secs) = auth.limiter.check_client(ip, now)
    {
        return auth.limited(&req, "auth_failures", secs);
    }
    let header = req.headers().get(AUTHORIZATION).map(|v| v.as_bytes());
    match auth.tenancy.authenticate(header).await {
        Ok(app) => {
            if let Err(secs) = auth
                .limiter
                .admit_app(&app.id, app.settings.rate_limit_per_sec, now)
            {
                return auth.limited(&req, "application", secs);
            }
            tracing::Span::current().record("app", app.id.as_str());
            req.extensions_mut().insert(Caller(app));
            next.run(req).await
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
            (auth.render)(&e, &req)
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        // Present on every route behind `require_application`; its absence is a wiring bug.
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

//! Bearer-key authentication. Every authenticated route resolves the calling application from the
//! secret key before the handler runs; handlers receive it as [`Caller`] and pass its id to every
//! core call, which is what keeps one application's key away from another's data.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sessiond_core::application::Application;
use sessiond_core::tenancy::Tenancy;

/// The application a request authenticated as.
#[derive(Debug, Clone)]
pub struct Caller(pub Arc<Application>);

/// How a dialect renders a core error (here: an authentication failure) in its own shape. The
/// request is there for dialects whose shape depends on it (Trinsic: which generation is asking).
pub type RenderError = fn(&sessiond_core::Error, &Request) -> Response;

/// State of the authentication middleware: the tenancy service and the dialect's renderer.
#[derive(Clone)]
pub struct AuthState {
    pub tenancy: Arc<Tenancy>,
    pub render: RenderError,
}

/// Middleware: resolves the caller or answers with the dialect's 401.
pub async fn require_application(
    State(auth): State<AuthState>,
    mut req: Request,
    next: Next,
) -> Response {
    let header = req.headers().get(AUTHORIZATION).map(|v| v.as_bytes());
    match auth.tenancy.authenticate(header).await {
        Ok(app) => {
            tracing::Span::current().record("app", app.id.as_str());
            req.extensions_mut().insert(Caller(app));
            next.run(req).await
        }
        Err(e) => {
            if let sessiond_core::Error::Unauthenticated(why) = &e {
                tracing::info!(reason = %why, "request not authenticated");
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

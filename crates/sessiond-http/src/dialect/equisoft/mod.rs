//! The Equisoft account-service Session API dialect, at the service's own paths (`/sessions…`,
//! `/users/{uuid}/sessions`). Wire facts: the
//! account-service SDKs' generated clients (Kotlin, TypeScript, PHP); see `docs/design/dialects.md`.
//!
//! Equisoft's SDKs send no credentials. On the main listener this dialect requires the
//! application's secret key like every other surface; an operator may add a trusted listener
//! bound to one application (`--equisoft-trusted-listen`), see [`trusted_router`].

mod error;
mod handlers;
mod views;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::{AuthState, Caller};
pub use error::{EquisoftError, render_auth_error};

/// Framework rejections as an ErrorPayload (BAD_REQUEST, or NOT_FOUND for unknown routes).
pub(crate) async fn equisoft_shaped(resp: Response) -> Response {
    if !crate::middleware::is_plain_client_error(&resp) {
        return resp;
    }
    let status = resp.status();
    let (message, description) = match status.as_u16() {
        404 => ("NOT_FOUND", "no such route".to_owned()),
        405 => (
            "BAD_REQUEST",
            "this path does not support the request method".to_owned(),
        ),
        413 => (
            "BAD_REQUEST",
            format!("the request body exceeds {} bytes", crate::MAX_BODY_BYTES),
        ),
        415 => (
            "BAD_REQUEST",
            "the request body must be application/json".to_owned(),
        ),
        _ => (
            "BAD_REQUEST",
            "the request path or parameters could not be parsed".to_owned(),
        ),
    };
    EquisoftError::new(status, message, description).into_response()
}

/// Token values are text: the PHP and TypeScript clients send them as `text/plain`.
fn token_body(req: &axum::extract::Request) -> bool {
    req.uri().path().contains("/tokens/")
}

fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(
            handlers::create_session,
            handlers::delete_all_sessions
        ))
        .routes(routes!(handlers::delete_expired_sessions))
        .routes(routes!(handlers::get_session, handlers::delete_session))
        .routes(routes!(handlers::enable_session))
        .routes(routes!(handlers::enable_session_for_service))
        .routes(routes!(
            handlers::get_token,
            handlers::put_token,
            handlers::delete_token
        ))
        .routes(routes!(handlers::impersonate))
        .routes(routes!(handlers::revert_identity))
        .routes(routes!(handlers::delete_user_sessions))
}

/// The dialect on the main listener: the application comes from the bearer secret key.
pub fn router(state: AppState) -> OpenApiRouter<AppState> {
    let auth = AuthState::new(&state, render_auth_error).with_strict_input(token_body);
    routes()
        .route_layer(auth)
        .layer(axum::middleware::map_response(equisoft_shaped))
}

#[derive(Clone)]
struct Bound {
    state: AppState,
    app: sessiond_core::application::AppId,
}

async fn bind_application(State(b): State<Bound>, mut req: Request, next: Next) -> Response {
    // Read per request so that setting changes and deletion apply at once.
    match b.state.tenancy.get_application(&b.app).await {
        Ok(app) => {
            req.extensions_mut().insert(Caller(Arc::new(app)));
            next.run(req).await
        }
        Err(e) => EquisoftError::from_core(&e).into_response(),
    }
}

/// The dialect for a trusted listener: no credentials, every request acts for `app`. Only for
/// a listener that untrusted clients cannot reach (see the README).
pub fn trusted_router(state: AppState, app: sessiond_core::application::AppId) -> axum::Router {
    let bound = Bound {
        state: state.clone(),
        app,
    };
    let (router, _) = routes()
        .route_layer(axum::middleware::from_fn_with_state(
            bound,
            bind_application,
        ))
        .layer(axum::middleware::from_fn(|req, next| {
            crate::middleware::strict_input(token_body, req, next)
        }))
        .layer(axum::middleware::map_response(equisoft_shaped))
        .split_for_parts();
    let timeout = state.options.request_timeout;
    crate::middleware::with_common_layers(
        router
            .fallback(|| async { EquisoftError::not_found("no such route").into_response() })
            .layer(crate::middleware::RecordMetrics)
            .with_state(state),
        timeout,
    )
}

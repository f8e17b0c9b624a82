//! The Clerk Backend API dialect, under `/v1`: sessions, session tokens, JWT templates, JWKS and
//! users, in the shapes Clerk's official SDKs parse. Wire facts: Clerk's published
//! Backend API document (its schemas, reduced, in `tests/schemas/clerk/`) and the official SDKs.
//!
//! Every success is `200` with `Content-Type: application/json` exactly (the JS SDK compares the
//! header string), and never a 5xx for bad input (the Python SDK retries 5xx for an hour).

mod error;
mod handlers;
mod input;
mod views;
pub mod webhooks;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::AuthState;
pub use error::{ClerkError, render_auth_error};

/// A Clerk JSON response (200).
pub struct ClerkJson(Vec<u8>);

impl ClerkJson {
    /// A typed view, serialized once with no intermediate JSON tree.
    pub fn typed(v: &impl serde::Serialize) -> Self {
        // Views are plain structs and string-keyed maps, which cannot fail to serialize; the
        // fallback keeps a request path free of panics all the same.
        ClerkJson(serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec()))
    }
}

impl From<serde_json::Value> for ClerkJson {
    fn from(v: serde_json::Value) -> Self {
        ClerkJson(v.to_string().into_bytes())
    }
}

impl IntoResponse for ClerkJson {
    fn into_response(self) -> Response {
        ([(header::CONTENT_TYPE, "application/json")], self.0).into_response()
    }
}

pub type ClerkResult = Result<ClerkJson, ClerkError>;

/// The category header values (`cat`) Clerk's SDKs check on session and template tokens. The
/// server gives them to `LoginService::with_token_categories`.
pub const TOKEN_CATEGORIES: sessiond_core::login::TokenCategories =
    sessiond_core::login::TokenCategories {
        session: "cl_B7d4PD111AAA",
        template: "cl_B7d4PD222AAA",
    };

/// `https://clerk.<app id>.sessiond.localhost`, a new application's frontend URL. The `clerk.`
/// label is what Clerk's SDKs look for when they check a token's issuer with default options
/// (the Go SDK accepts only `https://clerk.…` or `….clerk.accounts…`), so tokens of a new
/// application verify unchanged. The server gives it to `Tenancy::with_frontend_url`.
pub fn frontend_url(id: &sessiond_core::application::AppId) -> String {
    format!(
        "https://clerk.{}",
        sessiond_core::application::default_frontend_url(id).trim_start_matches("https://")
    )
}

pub fn router(state: AppState) -> OpenApiRouter<AppState> {
    let auth = AuthState::new(&state, render_auth_error);
    OpenApiRouter::new()
        .routes(routes!(handlers::create_session, handlers::list_sessions))
        .routes(routes!(handlers::get_session))
        .routes(routes!(handlers::revoke_session))
        .routes(routes!(handlers::verify_session))
        .routes(routes!(handlers::refresh_session))
        .routes(routes!(handlers::create_session_token))
        .routes(routes!(handlers::create_template_token))
        .routes(routes!(handlers::get_jwks))
        .routes(routes!(handlers::list_templates, handlers::create_template))
        .routes(routes!(
            handlers::get_template,
            handlers::update_template,
            handlers::delete_template
        ))
        .routes(routes!(handlers::create_user, handlers::list_users))
        .routes(routes!(handlers::count_users))
        .routes(routes!(
            handlers::get_user,
            handlers::update_user,
            handlers::delete_user
        ))
        .routes(routes!(
            handlers::merge_user_metadata,
            handlers::replace_user_metadata
        ))
        .routes(routes!(handlers::verify_password))
        .route_layer(auth.with_strict_input(crate::middleware::json_only))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(handlers::public_jwks))
                .layer(axum::middleware::from_fn(|req, next| {
                    crate::middleware::strict_input(crate::middleware::json_only, req, next)
                })),
        )
        .layer(axum::middleware::map_response(clerk_shaped))
}

/// Framework rejections in Clerk's error envelope.
pub(crate) async fn clerk_shaped(resp: Response) -> Response {
    if !crate::middleware::is_plain_client_error(&resp) {
        return resp;
    }
    let status = resp.status();
    let (code, message, long) = match status.as_u16() {
        404 => (
            "resource_not_found",
            "Resource not found",
            "No such resource.".to_owned(),
        ),
        405 => (
            "method_not_allowed",
            "Method not allowed",
            "This endpoint does not support the request method.".to_owned(),
        ),
        413 => (
            "request_body_invalid",
            "Request body too large",
            format!("The request body exceeds {} bytes.", crate::MAX_BODY_BYTES),
        ),
        415 => (
            "request_body_invalid",
            "Unsupported content type",
            "The request body must be sent as application/json.".to_owned(),
        ),
        _ => (
            "malformed_request_parameters",
            "Malformed request parameters",
            "The request path or parameters could not be parsed.".to_owned(),
        ),
    };
    ClerkError::new(status, code, message, long).into_response()
}

#[cfg(test)]
mod tests {
    use sessiond_core::application::AppId;

    #[test]
    fn a_new_applications_frontend_host_carries_the_clerk_label() {
        let id = AppId("app_2AbC".into());
        assert_eq!(
            super::frontend_url(&id),
            "https://clerk.app-2abc.sessiond.localhost"
        );
    }
}

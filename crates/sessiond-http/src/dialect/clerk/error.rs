//! Clerk's error envelope: `{"errors": [{message, long_message, code, meta?}], "clerk_trace_id"}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sessiond_core::error::AuthFailure;
use sessiond_core::{Error, ErrorCode};

/// One Clerk error, ready to render.
#[derive(Debug)]
pub struct ClerkError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub long_message: String,
    pub param: Option<String>,
}

impl ClerkError {
    pub fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
        long: impl Into<String>,
    ) -> Self {
        ClerkError {
            status,
            code,
            message: message.into(),
            long_message: long.into(),
            param: None,
        }
    }

    pub fn param(mut self, p: impl Into<String>) -> Self {
        self.param = Some(p.into());
        self
    }

    pub fn body_invalid(why: impl Into<String>) -> Self {
        ClerkError::new(
            StatusCode::BAD_REQUEST,
            "request_body_invalid",
            "Request body invalid",
            why,
        )
    }

    pub fn unknown_param(p: &str) -> Self {
        ClerkError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form_param_unknown",
            "is unknown",
            format!("{p} is not a valid parameter for this request."),
        )
        .param(p)
    }

    pub fn missing(p: &str) -> Self {
        ClerkError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form_param_missing",
            "is missing",
            format!("{p} must be included."),
        )
        .param(p)
    }

    pub fn type_invalid(p: &str, ty: &str) -> Self {
        ClerkError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form_param_type_invalid",
            "is invalid",
            format!("`{p}` must be a `{ty}`."),
        )
        .param(p)
    }

    pub fn value_invalid(p: &str, why: impl Into<String>) -> Self {
        ClerkError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "form_param_value_invalid",
            "is invalid",
            why,
        )
        .param(p)
    }

    pub fn not_found(kind: &str, id: &str) -> Self {
        let (message, long) = match kind {
            "session" => (
                "Session not found".to_owned(),
                format!("No session was found with id {id}"),
            ),
            "user" => (
                "not found".to_owned(),
                format!("No user was found with id {id}"),
            ),
            "jwt_template" => (
                "JWT template not found".to_owned(),
                format!("No JWT template exists with {id}"),
            ),
            other => (
                "Resource not found".to_owned(),
                format!("No {other} was found with {id}"),
            ),
        };
        ClerkError::new(StatusCode::NOT_FOUND, "resource_not_found", message, long)
    }

    /// Maps a core error; `what` names the object of the request (e.g. `session`, `id sess_…`).
    /// The match is on [`ErrorCode`] and exhaustive, so a new code does not compile until this
    /// dialect decides its answer; within a code, the variant adds Clerk's specifics.
    pub fn from_core(e: &Error, what: &str) -> Self {
        match e.code() {
            ErrorCode::NotFound => match e {
                Error::NotFound { kind } => ClerkError::not_found(kind, what),
                _ => ClerkError::not_found("resource", what),
            },
            ErrorCode::InvalidInput => match e {
                Error::InvalidInput { field, reason } => {
                    ClerkError::value_invalid(field, format!("{field} {reason}"))
                }
                Error::ReservedClaim(claim) => ClerkError::new(
                    StatusCode::BAD_REQUEST,
                    "jwt_template_reserved_claim",
                    "Reserved claim used",
                    format!("You can't use the reserved claim: '{claim}'"),
                )
                .param("claims"),
                Error::InvalidToken(why) => ClerkError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_session_token",
                    "Invalid session token",
                    format!("The session token is invalid: {why}."),
                ),
                _ => ClerkError::new(
                    StatusCode::BAD_REQUEST,
                    "limit_exceeded",
                    "Limit exceeded",
                    e.to_string(),
                ),
            },
            ErrorCode::AlreadyExists => ClerkError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "form_identifier_exists",
                "That value is taken. Please try another.",
                e.to_string(),
            ),
            ErrorCode::InvalidState => match e {
                Error::SessionNotUsable { status } => ClerkError::new(
                    StatusCode::BAD_REQUEST,
                    "session_not_active",
                    "Session is not active",
                    format!(
                        "The session is {}; only active sessions can be used for this request.",
                        status.as_str()
                    ),
                ),
                _ => ClerkError::new(
                    StatusCode::BAD_REQUEST,
                    "session_state_invalid",
                    "Invalid session state",
                    e.to_string(),
                ),
            },
            ErrorCode::Forbidden => ClerkError::new(
                StatusCode::FORBIDDEN,
                "authorization_invalid",
                "Unauthorized request",
                e.to_string(),
            ),
            ErrorCode::Conflict => ClerkError::new(
                StatusCode::CONFLICT,
                "conflict",
                "Conflict",
                "The resource was changed concurrently; retry the request.",
            ),
            ErrorCode::Unauthenticated => {
                let why = match e {
                    Error::Unauthenticated(why) => *why,
                    _ => AuthFailure::UnknownKey,
                };
                let code = match why {
                    AuthFailure::Missing => "authentication_invalid",
                    AuthFailure::Malformed => "authorization_header_format_invalid",
                    AuthFailure::UnknownKey | AuthFailure::RevokedKey => "clerk_key_invalid",
                };
                let long = match why {
                    AuthFailure::Missing => "No Authorization header with a secret key was sent.".to_owned(),
                    AuthFailure::Malformed => "Invalid Authorization header format. Must be \"Bearer <YOUR_API_KEY>\"".to_owned(),
                    AuthFailure::UnknownKey => "The provided Clerk Secret Key is invalid. Make sure that your Clerk Secret Key is correct.".to_owned(),
                    AuthFailure::RevokedKey => "The provided Clerk Secret Key has been revoked.".to_owned(),
                };
                ClerkError::new(
                    StatusCode::UNAUTHORIZED,
                    code,
                    "Invalid authentication",
                    long,
                )
            }
            ErrorCode::RateLimited => ClerkError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                "Too many requests",
                match e {
                    Error::RateLimited { retry_after_secs } => {
                        format!("Too many requests; retry in {retry_after_secs} seconds.")
                    }
                    _ => "Too many requests; retry later.".to_owned(),
                },
            ),
            ErrorCode::Unavailable => {
                tracing::error!(error = %e.report(), "request failed");
                ClerkError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "service_unavailable",
                    "Service unavailable",
                    "The database is unavailable; retry later.",
                )
            }
            ErrorCode::Internal => {
                tracing::error!(error = %e.report(), "request failed");
                ClerkError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal_clerk_error",
                    "Oops, an unexpected error occurred",
                    "There was an internal error on our servers.",
                )
            }
        }
    }

    fn body(&self) -> Value {
        let mut err = json!({
            "message": self.message,
            "long_message": self.long_message,
            "code": self.code,
        });
        if let Some(p) = &self.param {
            err["meta"] = json!({ "param_name": p });
        }
        json!({ "errors": [err] })
    }
}

impl IntoResponse for ClerkError {
    fn into_response(self) -> Response {
        crate::auth::with_challenge((self.status, Json(self.body())).into_response(), "Bearer")
    }
}

/// The authentication hook of this dialect.
pub fn render_auth_error(e: &Error, _: &axum::extract::Request) -> Response {
    ClerkError::from_core(e, "").into_response()
}

//! Equisoft's `ErrorPayload {message, description}`, with `message` from the ErrorMessage enum.
//!
//! | situation | HTTP | message |
//! | --- | --- | --- |
//! | malformed body or parameter, unknown enum value, oversized or invalid token | 400 | `BAD_REQUEST` |
//! | session not enabled (NEW) or no longer usable | 400 | `SESSION_NOT_ENABLED` |
//! | impersonating an impersonated session | 400 | `SESSION_ALREADY_IMPERSONATED` |
//! | reverting a session that is not impersonated | 400 | `SESSION_NOT_IMPERSONATED` |
//! | Equisoft/Connect concurrent-access limit reached | 400 | `CONCURRENT_ACCESS` |
//! | invalid cookie domain | 400 | `INVALID_COOKIE_DOMAIN_NAME` |
//! | missing or invalid credentials | 401 | `ACCESS_DENIED` |
//! | user without the impersonation capability | 403 | `ACCESS_DENIED` |
//! | unknown (or another application's) session, user or token | 404 | `NOT_FOUND` |
//! | concurrent modification after retries | 409 | `CONFLICT` |
//! | rate limit (application, or failed authentications of the client) | 429 | `TOO_MANY_REQUESTS` |
//! | database unreachable | 503 | `SERVER_ERROR` |
//! | server fault | 500 | `SERVER_ERROR` |

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sessiond_core::{Error, ErrorCode};

#[derive(Debug)]
pub struct EquisoftError {
    pub status: StatusCode,
    pub message: &'static str,
    pub description: String,
}

impl EquisoftError {
    pub fn new(status: StatusCode, message: &'static str, description: impl Into<String>) -> Self {
        EquisoftError {
            status,
            message,
            description: description.into(),
        }
    }

    pub fn bad_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", description)
    }

    pub fn not_found(description: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", description)
    }

    /// A core error in Equisoft's shape. The match is on [`ErrorCode`] and exhaustive, so a new
    /// code does not compile until this dialect decides its answer.
    pub fn from_core(e: &Error) -> Self {
        match e.code() {
            ErrorCode::NotFound => match e {
                Error::NotFound { kind } => Self::not_found(format!("{kind} not found")),
                _ => Self::not_found("not found"),
            },
            ErrorCode::InvalidInput => match e {
                Error::InvalidInput { field, reason } => {
                    let field = match field.as_str() {
                        "target_user" => "userUuid".to_owned(),
                        f => crate::dialect::camel_case(f),
                    };
                    Self::bad_request(format!("{field} {reason}"))
                }
                _ => Self::bad_request(e.to_string()),
            },
            ErrorCode::AlreadyExists | ErrorCode::Conflict => {
                Self::new(StatusCode::CONFLICT, "CONFLICT", e.to_string())
            }
            ErrorCode::InvalidState => {
                let message = match e {
                    Error::AlreadyImpersonated => "SESSION_ALREADY_IMPERSONATED",
                    Error::NotImpersonated => "SESSION_NOT_IMPERSONATED",
                    Error::ConcurrentAccess { .. } => "CONCURRENT_ACCESS",
                    // A session that is not usable (lapsed, revoked…) is not enabled.
                    _ => "SESSION_NOT_ENABLED",
                };
                let description = match e {
                    Error::ConcurrentAccess { limit } => format!(
                        "the user already has {limit} concurrent sessions enabled for \
                         Equisoft/Connect"
                    ),
                    _ => e.to_string(),
                };
                Self::new(StatusCode::BAD_REQUEST, message, description)
            }
            ErrorCode::Forbidden => {
                Self::new(StatusCode::FORBIDDEN, "ACCESS_DENIED", e.to_string())
            }
            ErrorCode::Unauthenticated => {
                Self::new(StatusCode::UNAUTHORIZED, "ACCESS_DENIED", e.to_string())
            }
            ErrorCode::RateLimited => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "TOO_MANY_REQUESTS",
                e.to_string(),
            ),
            ErrorCode::Unavailable => {
                tracing::error!(error = %e.report(), "request failed");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "SERVER_ERROR",
                    "the database is unavailable; retry later",
                )
            }
            ErrorCode::Internal => {
                tracing::error!(error = %e.report(), "request failed");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "SERVER_ERROR",
                    "internal server error",
                )
            }
        }
    }
}

impl IntoResponse for EquisoftError {
    fn into_response(self) -> Response {
        let body = json!({ "message": self.message, "description": self.description }).to_string();
        crate::auth::with_challenge(
            (
                self.status,
                [(header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response(),
            "Bearer",
        )
    }
}

pub fn render_auth_error(e: &Error, _: &axum::extract::Request) -> Response {
    EquisoftError::from_core(e).into_response()
}

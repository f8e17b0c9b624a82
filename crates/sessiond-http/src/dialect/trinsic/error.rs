//! Errors in each Trinsic generation's shape.
//!
//! | situation | HTTP | generation A body | generation B body |
//! | --- | --- | --- | --- |
//! | malformed body, bad field, unknown provider, unmet capabilities, wrong results key, finished session | 400 | `[{memberNames, errorMessage}]` | ProblemDetails with `errors: {field: [message]}` |
//! | missing or invalid secret key | 401 | ProblemDetails + `message` (the generation is not known before authentication) | same |
//! | unknown (or another application's) session or attachment | 404 | `{message}` | ProblemDetails |
//! | concurrent modification after retries | 409 | `{message}` | ProblemDetails |
//! | rate limit | 429 | `{message}` | ProblemDetails |
//! | database unreachable | 503 | `{message}` | ProblemDetails |
//! | server fault | 500 | `{message}` | ProblemDetails |
//!
//! ProblemDetails (RFC 7807) are sent as `application/problem+json` with `type`, `title`,
//! `status`, `detail`, `instance` and a W3C-style `traceId`, as Trinsic's ASP.NET service does.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sessiond_core::{Error, ErrorCode};

/// Which generation's shape an error takes. `Unknown` (before authentication, or a framework
/// rejection) sends a ProblemDetails that also carries generation A's `message`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gen {
    A,
    B,
    Unknown,
}

#[derive(Debug)]
pub struct TrinsicError {
    pub gen_: Gen,
    pub status: StatusCode,
    pub field: Option<String>,
    pub detail: String,
}

/// A core field name as both generations spell it: camelCase, the input of a provider under
/// `providerInput` with the provider's own key left as it is.
fn wire_field(core: &str) -> String {
    let (head, rest) = match core.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (core, None),
    };
    let head = match head {
        "fallback_to_hosted" => "fallbackToHostedUI".to_owned(),
        h => crate::dialect::camel_case(h),
    };
    match rest {
        Some(r) => format!("{head}.{r}"),
        None => head,
    }
}

fn title(status: StatusCode) -> &'static str {
    status.canonical_reason().unwrap_or("Error")
}

fn type_uri(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "https://tools.ietf.org/html/rfc7231#section-6.5.1",
        401 => "https://tools.ietf.org/html/rfc7235#section-3.1",
        403 => "https://tools.ietf.org/html/rfc7231#section-6.5.3",
        404 => "https://tools.ietf.org/html/rfc7231#section-6.5.4",
        405 => "https://tools.ietf.org/html/rfc7231#section-6.5.5",
        409 => "https://tools.ietf.org/html/rfc7231#section-6.5.8",
        413 => "https://tools.ietf.org/html/rfc7231#section-6.5.11",
        _ => "https://tools.ietf.org/html/rfc7231#section-6.6.1",
    }
}

fn trace_id() -> String {
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    format!(
        "00-{}-{}-00",
        hex(&sessiond_crypto::random_bytes::<16>()),
        hex(&sessiond_crypto::random_bytes::<8>())
    )
}

impl TrinsicError {
    pub fn new(gen_: Gen, status: StatusCode, detail: impl Into<String>) -> Self {
        TrinsicError {
            gen_,
            status,
            field: None,
            detail: detail.into(),
        }
    }

    pub fn bad_request(gen_: Gen, field: &str, detail: impl Into<String>) -> Self {
        TrinsicError {
            gen_,
            status: StatusCode::BAD_REQUEST,
            field: Some(field.to_owned()),
            detail: detail.into(),
        }
    }

    pub fn not_found(gen_: Gen, what: &str) -> Self {
        Self::new(gen_, StatusCode::NOT_FOUND, format!("{what} not found"))
    }

    /// A core error in Trinsic's shape. The match is on [`ErrorCode`] and exhaustive, so a new
    /// code does not compile until this dialect decides its answer.
    pub fn from_core(gen_: Gen, e: &Error) -> Self {
        match e.code() {
            ErrorCode::NotFound => match e {
                Error::NotFound { kind } => Self::not_found(gen_, kind),
                _ => Self::not_found(gen_, "resource"),
            },
            ErrorCode::InvalidInput => match e {
                Error::InvalidInput { field, reason } => {
                    Self::bad_request(gen_, &wire_field(field), reason.clone())
                }
                _ => Self::bad_request(gen_, "", e.to_string()),
            },
            ErrorCode::InvalidState => Self::bad_request(gen_, "", e.to_string()),
            ErrorCode::AlreadyExists | ErrorCode::Conflict => {
                Self::new(gen_, StatusCode::CONFLICT, e.to_string())
            }
            ErrorCode::Forbidden => Self::new(gen_, StatusCode::FORBIDDEN, e.to_string()),
            ErrorCode::Unauthenticated => Self::new(gen_, StatusCode::UNAUTHORIZED, e.to_string()),
            ErrorCode::RateLimited => Self::new(gen_, StatusCode::TOO_MANY_REQUESTS, e.to_string()),
            ErrorCode::Unavailable => {
                tracing::error!(error = %e.report(), "request failed");
                Self::new(
                    gen_,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The service is temporarily unavailable; retry later.",
                )
            }
            ErrorCode::Internal => {
                tracing::error!(error = %e.report(), "request failed");
                Self::new(
                    gen_,
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "An unexpected error occurred.",
                )
            }
        }
    }

    fn problem(&self) -> Value {
        let mut p = json!({
            "type": type_uri(self.status),
            "title": title(self.status),
            "status": self.status.as_u16(),
            "detail": self.detail,
            "traceId": trace_id(),
        });
        if let Some(f) = self.field.as_deref().filter(|f| !f.is_empty()) {
            p["errors"] = json!({ f: [self.detail] });
        }
        p
    }
}

impl IntoResponse for TrinsicError {
    fn into_response(self) -> Response {
        let (content_type, body) = match self.gen_ {
            Gen::A if self.status == StatusCode::BAD_REQUEST => (
                "application/json; charset=utf-8",
                json!([{
                    "memberNames": self.field.iter().filter(|f| !f.is_empty()).collect::<Vec<_>>(),
                    "errorMessage": self.detail,
                }]),
            ),
            Gen::A => (
                "application/json; charset=utf-8",
                json!({ "message": self.detail }),
            ),
            Gen::B => ("application/problem+json; charset=utf-8", self.problem()),
            Gen::Unknown => {
                let mut p = self.problem();
                p["message"] = Value::String(self.detail.clone());
                ("application/problem+json; charset=utf-8", p)
            }
        };
        crate::auth::with_challenge(
            (
                self.status,
                [(header::CONTENT_TYPE, content_type)],
                body.to_string(),
            )
                .into_response(),
            "Bearer",
        )
    }
}

/// Authentication failures come before the application (and its generation) is known: the
/// shape follows the request (see [`super::request_gen`]).
pub fn render_auth_error(e: &Error, req: &axum::extract::Request) -> Response {
    TrinsicError::from_core(super::request_gen(req), e).into_response()
}

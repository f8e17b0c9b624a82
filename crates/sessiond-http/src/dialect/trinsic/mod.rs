//! The Trinsic dialects under `/api/v1`: generation A (Trinsic Connect, SDK 0.3–1.2) and
//! generation B (Trinsic API, SDK 2.0–2.1). Wire facts:
//! Trinsic's published documents (schemas, reduced, in `tests/schemas/trinsic/`) and SDKs.
//!
//! Paths that exist in only one generation always answer in that generation's shape. Paths both
//! share (`/api/v1/sessions/{id}`, `/results`, `/cancel`, `/redact`, attachments, network) answer
//! in the generation of the calling application's `trinsic_generation` setting (default `api`,
//! generation B), so one server serves both generations' SDKs through two applications.

mod error;
mod handlers;
mod states;
mod views;

use axum::extract::Request;
use axum::http::header::USER_AGENT;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::AuthState;
pub use error::{Gen, TrinsicError, render_auth_error};
use sessiond_core::application::VerificationGeneration;
pub use views::rfc3339;

/// How the native API, the CLI and the console spell the application setting that picks the
/// generation answering on shared paths (`trinsic_generation`): `connect` is generation A
/// (Trinsic Connect), `api` generation B (Trinsic API).
pub fn generation_name(g: VerificationGeneration) -> &'static str {
    match g {
        VerificationGeneration::A => "connect",
        VerificationGeneration::B => "api",
    }
}

/// The setting's value from its spelling; `a` and `b` (either case) are accepted too.
pub fn parse_generation(s: &str) -> Option<VerificationGeneration> {
    match s {
        "connect" | "a" | "A" => Some(VerificationGeneration::A),
        "api" | "b" | "B" => Some(VerificationGeneration::B),
        _ => None,
    }
}

/// Framework rejections (unknown method, oversized body, unparseable path) as ProblemDetails.
pub(crate) async fn trinsic_shaped(resp: Response) -> Response {
    if !crate::middleware::is_plain_client_error(&resp) {
        return resp;
    }
    let status = resp.status();
    let detail = match status.as_u16() {
        404 => "no such route".to_owned(),
        405 => "this path does not support the request method".to_owned(),
        413 => format!("the request body exceeds {} bytes", crate::MAX_BODY_BYTES),
        415 => "the request body must be application/json".to_owned(),
        _ => "the request path or parameters could not be parsed".to_owned(),
    };
    TrinsicError::new(Gen::Unknown, status, detail).into_response()
}

/// The generation a request is written for, before the application is known: from the path
/// where only one generation has it, else from the SDK's `User-Agent`
/// (`OpenAPI-Generator/<version>/<language>`; versions below 2 are Trinsic Connect).
pub(crate) fn request_gen(req: &Request) -> Gen {
    let path = req.uri().path();
    let method = req.method();
    let a_only = (path == "/api/v1/sessions")
        || path.ends_with("/results/exchange")
        || (path.starts_with("/api/v1/sessions/") && path.ends_with("/exchange"))
        || path == "/api/v1/attachments/exchange";
    let b_only = path == "/api/v1/sessions/list"
        || path == "/api/v1/sessions/widget"
        || path.starts_with("/api/v1/sessions/provider/")
        || path.ends_with("/step/refresh")
        || path == "/api/v1/network/providers/contracts";
    if a_only && method != axum::http::Method::DELETE {
        return Gen::A;
    }
    if b_only {
        return Gen::B;
    }
    let major = req
        .headers()
        .get(USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .and_then(|ua| ua.strip_prefix("OpenAPI-Generator/"))
        .and_then(|rest| rest.split(['.', '/']).next())
        .and_then(|m| m.parse::<u32>().ok());
    match major {
        Some(0 | 1) => Gen::A,
        Some(_) => Gen::B,
        None => Gen::Unknown,
    }
}

pub fn router(state: AppState) -> OpenApiRouter<AppState> {
    let auth = AuthState::new(&state, render_auth_error);
    OpenApiRouter::new()
        .routes(routes!(handlers::a_create, handlers::a_list))
        .routes(routes!(handlers::b_list))
        .routes(routes!(handlers::b_widget))
        .routes(routes!(handlers::b_hosted))
        .routes(routes!(handlers::b_advanced))
        .routes(routes!(handlers::get_session))
        .routes(routes!(handlers::get_results))
        .routes(routes!(handlers::a_exchange_results))
        .routes(routes!(handlers::a_exchange_token))
        .routes(routes!(handlers::cancel))
        .routes(routes!(handlers::redact))
        .routes(routes!(handlers::b_refresh))
        .routes(routes!(handlers::get_attachment))
        .routes(routes!(handlers::a_exchange_attachment))
        .routes(routes!(handlers::list_providers))
        .routes(routes!(handlers::b_contracts))
        .routes(routes!(handlers::recommend))
        .route_layer(auth.with_strict_input(crate::middleware::json_only))
        .layer(axum::middleware::map_response(trinsic_shaped))
}

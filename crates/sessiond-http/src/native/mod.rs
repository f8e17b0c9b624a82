//! sessiond's own API under `/sessiond/v1`: what an operator's automation needs that no vendor
//! dialect offers: who am I (the calling application) and its settings, and the revocation
//! feed (`revocations`), and webhook endpoints (`webhooks`).

mod revocations;
mod webhooks;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sessiond_core::application::{AppId, AppSettings, Application};
use sessiond_core::{Error, ErrorCode};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::{AuthState, Caller};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "sessiond",
        description = "Self-hosted sessions server. Operations endpoints and sessiond's own API; \
                       the vendor dialects (Clerk, Trinsic, Equisoft) are listed under their own tags.",
        license(name = "Apache-2.0")
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "operations", description = "Health, readiness and metrics"),
        (name = "sessiond", description = "sessiond's own API"),
        (name = "equisoft", description = "Equisoft account-service Session API dialect"),
        (name = "clerk", description = "Clerk Backend API dialect (sessions, tokens, JWT templates, JWKS, users)"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "secret_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("sk_test_… / sk_live_…")
                    .build(),
            ),
        );
    }
}

/// Authenticated routes of the native API, plus the unauthenticated operations routes.
pub fn router(state: AppState) -> OpenApiRouter<AppState> {
    let auth = AuthState::new(&state, |e, _| render_error(e));
    let authed = OpenApiRouter::new()
        .routes(routes!(current_application))
        .routes(routes!(get_application))
        .routes(routes!(revocations::revocations))
        .routes(routes!(webhooks::create_endpoint, webhooks::list_endpoints))
        .routes(routes!(
            webhooks::get_endpoint,
            webhooks::update_endpoint,
            webhooks::delete_endpoint
        ))
        .routes(routes!(webhooks::rotate_secret))
        .routes(routes!(webhooks::list_deliveries))
        .routes(routes!(webhooks::list_attempts))
        .routes(routes!(webhooks::replay))
        .route_layer(auth);
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(authed)
        .merge(crate::ops::router())
}

/// Application settings as shown by the API.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettingsView {
    pub session_max_lifetime_secs: u64,
    pub inactivity_timeout_secs: Option<u64>,
    pub abandon_period_secs: u64,
    pub session_token_lifetime_secs: u64,
    pub verification_retention_secs: u64,
    pub verification_session_lifetime_secs: u64,
    /// `api` (Trinsic API 2.x) or `connect` (Trinsic Connect 1.x): the generation that answers
    /// where the two share a path.
    pub trinsic_generation: &'static str,
    pub frontend_url: String,
    pub allowed_redirect_origins: Vec<String>,
    /// Requests per second per node; `null` is the server's default, 0 is unlimited.
    pub rate_limit_per_sec: Option<u32>,
}

/// An application (tenant).
#[derive(Debug, Serialize, ToSchema)]
pub struct ApplicationView {
    /// Always `application`.
    pub object: &'static str,
    pub id: String,
    pub name: String,
    /// `test` or `live`.
    pub environment: &'static str,
    /// `pk_<env>_…`, encoding the frontend host; safe to embed in front ends.
    pub publishable_key: String,
    pub settings: SettingsView,
    /// PEM of the public key that verifies this application's session tokens (Clerk's
    /// `jwtKey`); present on `GET /sessiond/v1/application`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt_public_key: Option<String>,
    /// Path of the application's public JWKS.
    pub jwks_path: String,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<&AppSettings> for SettingsView {
    fn from(s: &AppSettings) -> Self {
        // Destructured field by field so that a new setting fails to compile until it is shown.
        let AppSettings {
            session_max_lifetime_secs,
            inactivity_timeout_secs,
            abandon_period_secs,
            session_token_lifetime_secs,
            verification_retention_secs,
            verification_session_lifetime_secs,
            verification_generation,
            frontend_url,
            allowed_redirect_origins,
            rate_limit_per_sec,
        } = s;
        SettingsView {
            session_max_lifetime_secs: *session_max_lifetime_secs,
            inactivity_timeout_secs: *inactivity_timeout_secs,
            abandon_period_secs: *abandon_period_secs,
            session_token_lifetime_secs: *session_token_lifetime_secs,
            verification_retention_secs: *verification_retention_secs,
            verification_session_lifetime_secs: *verification_session_lifetime_secs,
            trinsic_generation: crate::dialect::trinsic::generation_name(*verification_generation),
            frontend_url: frontend_url.clone(),
            allowed_redirect_origins: allowed_redirect_origins.clone(),
            rate_limit_per_sec: *rate_limit_per_sec,
        }
    }
}

impl From<&Application> for ApplicationView {
    fn from(a: &Application) -> Self {
        ApplicationView {
            object: "application",
            id: a.id.to_string(),
            name: a.name.clone(),
            environment: a.environment.as_str(),
            publishable_key: a.publishable_key(),
            settings: SettingsView::from(&a.settings),
            jwt_public_key: None,
            jwks_path: format!("/v1/apps/{}/.well-known/jwks.json", a.id),
            created_at: a.created_at.as_millis(),
            updated_at: a.updated_at.as_millis(),
        }
    }
}

/// The native error body: `{"error": {"code", "message"}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code.
    pub code: &'static str,
    pub message: String,
}

/// HTTP status for each core error code. Exhaustive, so a new code cannot ship unmapped.
pub fn status_for(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::InvalidInput => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::Conflict => StatusCode::CONFLICT,
        ErrorCode::AlreadyExists => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::InvalidState => StatusCode::BAD_REQUEST,
        ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Renders a core error in the native shape. 5xx bodies are opaque; the detail goes to the log.
pub fn render_error(e: &Error) -> Response {
    let code = e.code();
    let status = status_for(code);
    let message = if status.is_server_error() {
        tracing::error!(error = %e.report(), "request failed");
        match code {
            ErrorCode::Unavailable => "the database is unavailable; retry later".to_owned(),
            _ => "internal server error".to_owned(),
        }
    } else {
        e.to_string()
    };
    let body = ErrorBody {
        error: ErrorDetail {
            code: code.as_str(),
            message,
        },
    };
    crate::auth::with_challenge(
        (status, Json(body)).into_response(),
        "Bearer realm=\"sessiond\"",
    )
}

/// A core error on its way out of a native handler.
pub struct ApiError(pub Error);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        render_error(&self.0)
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

/// The calling application.
#[utoipa::path(
    get,
    path = "/sessiond/v1/application",
    tag = "sessiond",
    security(("secret_key" = [])),
    responses(
        (status = 200, description = "The application the secret key belongs to", body = ApplicationView),
        (status = 401, description = "Missing, malformed, unknown or revoked key", body = ErrorBody),
    )
)]
async fn current_application(
    State(st): State<AppState>,
    Caller(app): Caller,
) -> Result<Json<ApplicationView>, ApiError> {
    let keys = st.login.signer().keyset(&app.id, st.clock.now()).await?;
    let mut view = ApplicationView::from(app.as_ref());
    view.jwt_public_key = keys.public_pem.clone();
    Ok(Json(view))
}

/// An application by id. A key only ever sees its own application; any other id is 404.
#[utoipa::path(
    get,
    path = "/sessiond/v1/applications/{app_id}",
    tag = "sessiond",
    security(("secret_key" = [])),
    params(("app_id" = String, Path, description = "Application id (`app_…`)")),
    responses(
        (status = 200, description = "The application", body = ApplicationView),
        (status = 401, description = "Missing, malformed, unknown or revoked key", body = ErrorBody),
        (status = 404, description = "No such application for this key", body = ErrorBody),
    )
)]
async fn get_application(
    Caller(app): Caller,
    Path(app_id): Path<String>,
) -> Result<Json<ApplicationView>, ApiError> {
    // Another tenant's id is indistinguishable from an unknown one.
    match AppId::parse(&app_id) {
        Some(id) if id == app.id => Ok(Json(ApplicationView::from(app.as_ref()))),
        _ => Err(Error::NotFound {
            kind: "application",
        }
        .into()),
    }
}

/// Fallback for unknown paths.
pub async fn not_found() -> Response {
    render_error(&Error::NotFound { kind: "route" })
}

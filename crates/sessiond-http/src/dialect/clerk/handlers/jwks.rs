//! The JSON Web Key Sets: the application's, and the public one by application id.

use crate::AppState;
use crate::auth::Caller;
use crate::dialect::clerk::error::ClerkError;
use crate::dialect::clerk::{ClerkJson, ClerkResult};
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use sessiond_core::application::AppId;

use super::*;

// ---- JWKS ----

#[utoipa::path(get, path = "/v1/jwks", tag = TAG, security(("secret_key" = [])),
    responses((status = 200, description = "`{keys: [...]}`", body = Object)))]
pub async fn get_jwks(State(st): State<AppState>, Caller(app): Caller) -> ClerkResult {
    let jwks = st
        .login
        .signer()
        .jwks(&app.id, st.clock.now())
        .await
        .map_err(core(""))?;
    Ok(ClerkJson::from(jwks))
}

/// Public JWKS of an application, for third-party verifiers. No authentication; cacheable for
/// less than the key-rotation lead time.
#[utoipa::path(get, path = "/v1/apps/{app_id}/.well-known/jwks.json", tag = TAG,
    params(("app_id" = String, Path)),
    responses((status = 200, description = "`{keys: [...]}`", body = Object), (status = 404, description = "Unknown application")))]
pub async fn public_jwks(
    State(st): State<AppState>,
    Path(app_id): Path<String>,
) -> Result<axum::response::Response, ClerkError> {
    let missing = || ClerkError::not_found("application", &app_id);
    let id = AppId::parse(&app_id).ok_or_else(missing)?;
    let app = st
        .tenancy
        .get_application(&id)
        .await
        .map_err(|_| missing())?;
    let jwks = st
        .login
        .signer()
        .jwks(&app.id, st.clock.now())
        .await
        .map_err(core(""))?;
    let mut resp = ClerkJson::from(jwks).into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("public, max-age=300"),
    );
    Ok(resp)
}

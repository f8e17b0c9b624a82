//! JWT templates.

use crate::AppState;
use crate::auth::Caller;
use crate::dialect::clerk::error::ClerkError;
use crate::dialect::clerk::input::{Body, Query};
use crate::dialect::clerk::{ClerkJson, ClerkResult, views};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use sessiond_core::template::TemplateInput;

use super::*;

// ---- JWT templates ----

pub(super) const TEMPLATE_FIELDS: [&str; 7] = [
    "name",
    "claims",
    "lifetime",
    "allowed_clock_skew",
    "custom_signing_key",
    "signing_algorithm",
    "signing_key",
];

pub(super) fn template_input(body: &Body) -> Result<TemplateInput, ClerkError> {
    body.only(&TEMPLATE_FIELDS)?;
    let opt_u64 = |k: &str| -> Result<Option<Option<u64>>, ClerkError> {
        if body.has(k) {
            Ok(Some(body.u64(k)?))
        } else {
            Ok(None)
        }
    };
    Ok(TemplateInput {
        name: body.str("name")?,
        claims: body.object("claims")?,
        lifetime: opt_u64("lifetime")?,
        allowed_clock_skew: opt_u64("allowed_clock_skew")?,
        custom_signing_key: body.bool("custom_signing_key")?,
        signing_algorithm: body.str_patch("signing_algorithm")?,
        signing_key: body.str_patch("signing_key")?,
    })
}

#[utoipa::path(get, path = "/v1/jwt_templates", tag = TAG, security(("secret_key" = [])),
    params(("paginated" = Option<bool>, Query), ("limit" = Option<u32>, Query), ("offset" = Option<u64>, Query)),
    responses((status = 200, description = "Array of templates, or `{data, total_count}`", body = Object)))]
pub async fn list_templates(
    State(st): State<AppState>,
    Caller(app): Caller,
    RawQuery(q): RawQuery,
) -> ClerkResult {
    let q = Query::parse(q.as_deref())?;
    q.only(&["paginated", "limit", "offset"])?;
    let paginated = q.bool("paginated")?.unwrap_or(false);
    let limit = q.int("limit", 10, 1, 500)?;
    let offset = q.int("offset", 0, 0, u64::from(u32::MAX))?;
    let (list, total) = st
        .login
        .list_templates(&app, u32::try_from(limit).unwrap_or(500), offset)
        .await
        .map_err(core(""))?;
    Ok(views::list(
        list.iter().map(views::template).collect(),
        total,
        paginated,
    ))
}

#[utoipa::path(post, path = "/v1/jwt_templates", tag = TAG, security(("secret_key" = [])),
    request_body(content = Object, description = "`{name, claims, lifetime?, allowed_clock_skew?, custom_signing_key?, signing_algorithm?, signing_key?}`"),
    responses((status = 200, description = "Template", body = Object), (status = 400, description = "Reserved claim"), (status = 422, description = "Invalid parameters")))]
pub async fn create_template(
    State(st): State<AppState>,
    Caller(app): Caller,
    body: Bytes,
) -> ClerkResult {
    let body = Body::parse(&body)?;
    if !body.has("name") {
        return Err(ClerkError::missing("name"));
    }
    if !body.has("claims") {
        return Err(ClerkError::missing("claims"));
    }
    let input = template_input(&body)?;
    let t = st
        .login
        .create_template(&app, input, st.clock.now())
        .await
        .map_err(core(""))?;
    Ok(ClerkJson::from(views::template(&t)))
}

#[utoipa::path(get, path = "/v1/jwt_templates/{template_id}", tag = TAG, security(("secret_key" = [])),
    params(("template_id" = String, Path)),
    responses((status = 200, description = "Template", body = Object), (status = 404, description = "Not found")))]
pub async fn get_template(
    State(st): State<AppState>,
    Caller(app): Caller,
    Path(id): Path<String>,
) -> ClerkResult {
    let tid = template_id(&id)?;
    let t = st
        .login
        .get_template(&app, &tid)
        .await
        .map_err(core(&format!("id: {id}")))?;
    Ok(ClerkJson::from(views::template(&t)))
}

#[utoipa::path(patch, path = "/v1/jwt_templates/{template_id}", tag = TAG, security(("secret_key" = [])),
    params(("template_id" = String, Path)), request_body(content = Object),
    responses((status = 200, description = "Template", body = Object), (status = 404, description = "Not found"), (status = 422, description = "Invalid parameters")))]
pub async fn update_template(
    State(st): State<AppState>,
    Caller(app): Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ClerkResult {
    let tid = template_id(&id)?;
    let input = template_input(&Body::parse(&body)?)?;
    let t = st
        .login
        .update_template(&app, &tid, input, st.clock.now())
        .await
        .map_err(core(&format!("id: {id}")))?;
    Ok(ClerkJson::from(views::template(&t)))
}

#[utoipa::path(delete, path = "/v1/jwt_templates/{template_id}", tag = TAG, security(("secret_key" = [])),
    params(("template_id" = String, Path)),
    responses((status = 200, description = "`{object, id, deleted: true}`", body = Object), (status = 404, description = "Not found")))]
pub async fn delete_template(
    State(st): State<AppState>,
    Caller(app): Caller,
    Path(id): Path<String>,
) -> ClerkResult {
    let tid = template_id(&id)?;
    st.login
        .delete_template(&app, &tid)
        .await
        .map_err(core(&format!("id: {id}")))?;
    Ok(ClerkJson::from(views::deleted("jwt_template", &id)))
}

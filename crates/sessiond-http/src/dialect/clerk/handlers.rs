//! Handlers of the Clerk dialect: parse, call the login service, render.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::Value;
use sessiond_core::application::AppId;
use sessiond_core::ids::{ClientId, SessionId, TemplateId, UserId};
use sessiond_core::store::SessionFilter;
use sessiond_core::template::TemplateInput;
use sessiond_core::user::{
    NewUser, PasswordCheck, PasswordInput, UserOrder, UserPatch, UserQuery, UserSearch,
    UserSortField,
};

use super::error::ClerkError;
use super::input::{Body, Query};
use super::{ClerkJson, ClerkResult, views};
use crate::AppState;
use crate::auth::Caller;

const TAG: &str = "clerk";

fn session_id(id: &str) -> Result<SessionId, ClerkError> {
    SessionId::parse(id).ok_or_else(|| ClerkError::not_found("session", id))
}

fn user_id(id: &str) -> Result<UserId, ClerkError> {
    UserId::parse(id).ok_or_else(|| ClerkError::not_found("user", id))
}

fn template_id(id: &str) -> Result<TemplateId, ClerkError> {
    TemplateId::parse(id).ok_or_else(|| ClerkError::not_found("jwt_template", &format!("id: {id}")))
}

fn core(what: &str) -> impl Fn(sessiond_core::Error) -> ClerkError + '_ {
    move |e| ClerkError::from_core(&e, what)
}

// ---- sessions ----

/// Create a session for a user (testing helper in Clerk; always available here).
#[utoipa::path(post, path = "/v1/sessions", tag = TAG, security(("secret_key" = [])),
    request_body(content = Object, description = "`{user_id}`"),
    responses((status = 200, description = "Session", body = Object), (status = 404, description = "Unknown user"), (status = 422, description = "Invalid parameters")))]
pub async fn create_session(
    State(st): State<AppState>,
    Caller(app): Caller,
    body: Bytes,
) -> ClerkResult {
    let body = Body::parse(&body)?;
    body.only(&["user_id", "active_organization_id"])?;
    let uid = body
        .str("user_id")?
        .ok_or_else(|| ClerkError::missing("user_id"))?;
    if body.str("active_organization_id")?.is_some() {
        return Err(ClerkError::value_invalid(
            "active_organization_id",
            "organizations are not supported by this server",
        ));
    }
    let uid = user_id(&uid)?;
    let now = st.clock.now();
    let s = st
        .login
        .create_session(&app, &uid, false, now)
        .await
        .map_err(core(uid.as_str()))?;
    Ok(ClerkJson::typed(&views::session(&s, now)))
}

/// List sessions of a client or a user, newest first.
#[utoipa::path(get, path = "/v1/sessions", tag = TAG, security(("secret_key" = [])),
    params(("client_id" = Option<String>, Query), ("user_id" = Option<String>, Query), ("status" = Option<String>, Query),
           ("paginated" = Option<bool>, Query), ("limit" = Option<u32>, Query), ("offset" = Option<u64>, Query)),
    responses((status = 200, description = "Array of sessions, or `{data, total_count}` with paginated=true", body = Object), (status = 422, description = "Invalid parameters")))]
pub async fn list_sessions(
    State(st): State<AppState>,
    Caller(app): Caller,
    RawQuery(q): RawQuery,
) -> ClerkResult {
    let q = Query::parse(q.as_deref())?;
    q.only(&[
        "client_id",
        "user_id",
        "status",
        "paginated",
        "limit",
        "offset",
    ])?;
    let paginated = q.bool("paginated")?.unwrap_or(false);
    let limit = q.int("limit", 10, 1, 500)?;
    let offset = q.int("offset", 0, 0, u64::from(u32::MAX))?;
    let client = q.one("client_id").filter(|v| !v.is_empty());
    let user = q.one("user_id").filter(|v| !v.is_empty());
    if client.is_none() && user.is_none() {
        return Err(ClerkError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "form_param_missing",
            "at least one parameter must be provided",
            "at least one of `client_id`, `user_id` must be provided",
        )
        .param("client_id,user_id"));
    }
    let statuses = match q.one("status") {
        None | Some("") => Vec::new(),
        Some(s) => views::statuses_for(s).ok_or_else(|| {
            ClerkError::value_invalid("status", "status must be one of abandoned, active, ended, expired, removed, replaced, revoked")
        })?,
    };
    // Ids that this server could not have issued match nothing.
    let (client_id, user_id) = (client.map(ClientId::parse), user.map(UserId::parse));
    if matches!(client_id, Some(None)) || matches!(user_id, Some(None)) {
        return Ok(views::list(Vec::<Value>::new(), 0, paginated));
    }
    let filter = SessionFilter {
        user_id: user_id.flatten(),
        client_id: client_id.flatten(),
        statuses,
    };
    let now = st.clock.now();
    let limit = u32::try_from(limit).unwrap_or(500);
    // Only the paginated shape carries a total; the bare array skips the count query.
    let (list, total) = if paginated {
        st.login
            .list_sessions(&app, &filter, limit, offset, now)
            .await
            .map_err(core(""))?
    } else {
        let page = st
            .login
            .list_sessions_page(&app, &filter, limit, offset, now)
            .await
            .map_err(core(""))?;
        (page, 0)
    };
    Ok(views::list(
        list.iter().map(|s| views::session(s, now)).collect(),
        total,
        paginated,
    ))
}

#[utoipa::path(get, path = "/v1/sessions/{session_id}", tag = TAG, security(("secret_key" = [])),
    params(("session_id" = String, Path)),
    responses((status = 200, description = "Session", body = Object), (status = 404, description = "Not found")))]
pub async fn get_session(
    State(st): State<AppState>,
    Caller(app): Caller,
    Path(id): Path<String>,
) -> ClerkResult {
    let sid = session_id(&id)?;
    let s = st.login.get_session(&app, &sid).await.map_err(core(&id))?;
    Ok(ClerkJson::typed(&views::session(&s, st.clock.now())))
}

#[utoipa::path(post, path = "/v1/sessions/{session_id}/revoke", tag = TAG, security(("secret_key" = [])),
    params(("session_id" = String, Path)), request_body(content = Option<Object>, description = "none, `{}` or `null`"),
    responses((status = 200, description = "The session, revoked", body = Object), (status = 404, description = "Not found")))]
pub async fn revoke_session(
    State(st): State<AppState>,
    Caller(app): Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ClerkResult {
    Body::parse(&body)?.only(&[])?;
    let sid = session_id(&id)?;
    let now = st.clock.now();
    let s = st
        .login
        .revoke_session(&app, &sid, now)
        .await
        .map_err(core(&id))?;
    Ok(ClerkJson::typed(&views::session(&s, now)))
}

/// Deprecated by Clerk; kept for SDKs that still call it.
#[utoipa::path(post, path = "/v1/sessions/{session_id}/verify", tag = TAG, security(("secret_key" = [])),
    params(("session_id" = String, Path)), request_body(content = Object, description = "`{token}`"),
    responses((status = 200, description = "Session", body = Object), (status = 400, description = "Invalid token"), (status = 404, description = "Not found")))]
pub async fn verify_session(
    State(st): State<AppState>,
    Caller(app): Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ClerkResult {
    let body = Body::parse(&body)?;
    body.only(&["token"])?;
    let token = body
        .str("token")?
        .ok_or_else(|| ClerkError::missing("token"))?;
    let sid = session_id(&id)?;
    let now = st.clock.now();
    let s = st
        .login
        .verify_session(&app, &sid, &token, now)
        .await
        .map_err(core(&id))?;
    Ok(ClerkJson::typed(&views::session(&s, now)))
}

/// The refresh a backend does without Clerk's frontend API: the session token it holds (usually
/// expired) proves which session it is. Every failure is 401, which the SDKs read as "fall back
/// to the handshake".
#[utoipa::path(post, path = "/v1/sessions/{session_id}/refresh", tag = TAG, security(("secret_key" = [])),
    params(("session_id" = String, Path)),
    request_body(content = Object, description = "`{expired_token, refresh_token?, request_origin?, request_headers?, format?, request_originating_ip?}`"),
    responses((status = 200, description = "`{object: token, jwt}`, or `{object: cookies, cookies}` with `format: cookie`", body = Object),
              (status = 401, description = "Not refreshable: missing or invalid token, another session's token, or a session that is not active")))]
pub async fn refresh_session(
    State(st): State<AppState>,
    Caller(app): Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ClerkResult {
    let b = Body::parse(&body)?;
    b.only(&[
        "expired_token",
        "refresh_token",
        "request_origin",
        "request_headers",
        "format",
        "request_originating_ip",
    ])?;
    b.str("refresh_token")?;
    b.object("request_headers")?;
    b.str("request_originating_ip")?;
    let origin = b.str("request_origin")?;
    let cookie = match b.str("format")?.as_deref() {
        None | Some("token") => false,
        Some("cookie") => true,
        Some(_) => {
            return Err(ClerkError::value_invalid(
                "format",
                "format must be token or cookie",
            ));
        }
    };
    let refused = |why: &str| {
        ClerkError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            "authentication_invalid",
            "Session refresh refused",
            format!("The session cannot be refreshed: {why}."),
        )
    };
    let token = b
        .str("expired_token")?
        .ok_or_else(|| refused("expired_token is missing"))?;
    let sid = SessionId::parse(&id).ok_or_else(|| refused("no such session"))?;
    let jwt = st
        .login
        .refresh_session_token(&app, &sid, &token, st.clock.now())
        .await
        .map_err(|e| match e {
            sessiond_core::Error::Unavailable(_) | sessiond_core::Error::Internal(_) => {
                ClerkError::from_core(&e, &id)
            }
            other => refused(&other.to_string()),
        })?;
    if cookie {
        let secure = if origin.as_deref().is_some_and(|o| o.starts_with("https://")) {
            "; Secure"
        } else {
            ""
        };
        let c = format!("__session={jwt}; Path=/; SameSite=Lax{secure}");
        return Ok(ClerkJson::from(
            serde_json::json!({"object": "cookies", "cookies": [c]}),
        ));
    }
    Ok(ClerkJson::from(views::token(jwt)))
}

fn expires_in(body: &Body) -> Result<Option<u64>, ClerkError> {
    body.only(&["expires_in_seconds"])?;
    body.u64("expires_in_seconds")
}

#[utoipa::path(post, path = "/v1/sessions/{session_id}/tokens", tag = TAG, security(("secret_key" = [])),
    params(("session_id" = String, Path)), request_body(content = Option<Object>, description = "optional `{expires_in_seconds}`"),
    responses((status = 200, description = "`{object: token, jwt}`", body = Object), (status = 404, description = "Not found")))]
pub async fn create_session_token(
    State(st): State<AppState>,
    Caller(app): Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ClerkResult {
    let exp = expires_in(&Body::parse(&body)?)?;
    let sid = session_id(&id)?;
    let jwt = st
        .login
        .create_session_token(&app, &sid, exp, st.clock.now())
        .await
        .map_err(core(&id))?;
    Ok(ClerkJson::from(views::token(jwt)))
}

#[utoipa::path(post, path = "/v1/sessions/{session_id}/tokens/{template_name}", tag = TAG, security(("secret_key" = [])),
    params(("session_id" = String, Path), ("template_name" = String, Path)),
    request_body(content = Option<Object>, description = "optional `{expires_in_seconds}`"),
    responses((status = 200, description = "`{object: token, jwt}`", body = Object), (status = 404, description = "Unknown session or template")))]
pub async fn create_template_token(
    State(st): State<AppState>,
    Caller(app): Caller,
    Path((id, name)): Path<(String, String)>,
    body: Bytes,
) -> ClerkResult {
    let exp = expires_in(&Body::parse(&body)?)?;
    let sid = session_id(&id)?;
    let jwt = st
        .login
        .create_template_token(&app, &sid, &name, exp, st.clock.now())
        .await
        .map_err(|e| match &e {
            sessiond_core::Error::NotFound {
                kind: "jwt_template",
            } => ClerkError::not_found("jwt_template", &format!("name: {name}")),
            _ => ClerkError::from_core(&e, &id),
        })?;
    Ok(ClerkJson::from(views::token(jwt)))
}

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

// ---- JWT templates ----

const TEMPLATE_FIELDS: [&str; 7] = [
    "name",
    "claims",
    "lifetime",
    "allowed_clock_skew",
    "custom_signing_key",
    "signing_algorithm",
    "signing_key",
];

fn template_input(body: &Body) -> Result<TemplateInput, ClerkError> {
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

// ---- users ----

const USER_CREATE_FIELDS: [&str; 17] = [
    "locale",
    "external_id",
    "first_name",
    "last_name",
    "username",
    "email_address",
    "phone_number",
    "image_url",
    "public_metadata",
    "private_metadata",
    "unsafe_metadata",
    "created_at",
    "skip_password_checks",
    "skip_password_requirement",
    "password",
    "password_digest",
    "password_hasher",
];

const USER_UPDATE_FIELDS: [&str; 17] = [
    "locale",
    "notify_primary_email_address_changed",
    "external_id",
    "first_name",
    "last_name",
    "username",
    "image_url",
    "primary_email_address_id",
    "primary_phone_number_id",
    "public_metadata",
    "private_metadata",
    "unsafe_metadata",
    "password",
    "password_digest",
    "password_hasher",
    "skip_password_checks",
    "sign_out_of_other_sessions",
];

/// `password`, or `password_digest` with `password_hasher` (an import from another system).
fn password_input(b: &Body) -> Result<Option<PasswordInput>, ClerkError> {
    let skip_checks = b.bool("skip_password_checks")?.unwrap_or(false);
    let hasher = b.str("password_hasher")?;
    match (b.str("password")?, b.str("password_digest")?) {
        (Some(_), Some(_)) => Err(ClerkError::value_invalid(
            "password_digest",
            "password and password_digest cannot be given together",
        )),
        (Some(password), None) => Ok(Some(PasswordInput::Plain {
            password,
            skip_checks,
        })),
        (None, Some(digest)) => {
            let hasher = hasher.ok_or_else(|| ClerkError::missing("password_hasher"))?;
            Ok(Some(PasswordInput::Digest { hasher, digest }))
        }
        (None, None) if hasher.is_some() => Err(ClerkError::missing("password_digest")),
        (None, None) => Ok(None),
    }
}

/// Clerk takes `created_at` as an RFC 3339 date-time string.
fn parse_created_at(v: &str) -> Result<sessiond_core::Timestamp, ClerkError> {
    time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
        .map(|t| sessiond_core::Timestamp((t.unix_timestamp_nanos() / 1_000_000) as i64))
        .map_err(|_| {
            ClerkError::value_invalid("created_at", "created_at must be an RFC 3339 date-time")
        })
}

#[utoipa::path(post, path = "/v1/users", tag = TAG, security(("secret_key" = [])),
    request_body(content = Object),
    responses((status = 200, description = "User", body = Object), (status = 422, description = "Invalid or unsupported parameters")))]
pub async fn create_user(
    State(st): State<AppState>,
    Caller(app): Caller,
    body: Bytes,
) -> ClerkResult {
    let b = Body::parse(&body)?;
    b.only(&USER_CREATE_FIELDS)?;
    // sessiond never requires a password, so there is no requirement to skip.
    b.bool("skip_password_requirement")?;
    let input = NewUser {
        external_id: b.str("external_id")?,
        first_name: b.str("first_name")?,
        last_name: b.str("last_name")?,
        username: b.str("username")?,
        email_addresses: b.strings("email_address")?,
        phone_numbers: b.strings("phone_number")?,
        image_url: b.str("image_url")?,
        public_metadata: b.object("public_metadata")?,
        private_metadata: b.object("private_metadata")?,
        unsafe_metadata: b.object("unsafe_metadata")?,
        created_at: b
            .str("created_at")?
            .as_deref()
            .map(parse_created_at)
            .transpose()?,
        locale: b.str("locale")?,
        password: password_input(&b)?,
    };
    let u = st
        .login
        .create_user(&app, input, st.clock.now())
        .await
        .map_err(core(""))?;
    Ok(ClerkJson::from(views::user(&u)))
}

#[utoipa::path(get, path = "/v1/users", tag = TAG, security(("secret_key" = [])),
    params(("email_address" = Option<Vec<String>>, Query), ("external_id" = Option<Vec<String>>, Query), ("user_id" = Option<Vec<String>>, Query),
           ("query" = Option<String>, Query, description = "Partial match on emails, phone numbers, username, names, user id and external id"),
           ("email_address_query" = Option<String>, Query), ("phone_number_query" = Option<String>, Query), ("username_query" = Option<String>, Query), ("name_query" = Option<String>, Query),
           ("limit" = Option<u32>, Query), ("offset" = Option<u64>, Query),
           ("order_by" = Option<String>, Query, description = "`[+|-]` created_at, updated_at, email_address, first_name, last_name, phone_number, username, last_active_at or last_sign_in_at; default -created_at")),
    responses((status = 200, description = "Array of users, newest first", body = Object)))]
pub async fn list_users(
    State(st): State<AppState>,
    Caller(app): Caller,
    RawQuery(q): RawQuery,
) -> ClerkResult {
    let (users, _) = query_users(&st, &app, q.as_deref(), true).await?;
    Ok(ClerkJson::from(Value::Array(users)))
}

#[utoipa::path(get, path = "/v1/users/count", tag = TAG, security(("secret_key" = [])),
    params(("email_address" = Option<Vec<String>>, Query), ("external_id" = Option<Vec<String>>, Query), ("user_id" = Option<Vec<String>>, Query),
           ("query" = Option<String>, Query), ("email_address_query" = Option<String>, Query), ("phone_number_query" = Option<String>, Query),
           ("username_query" = Option<String>, Query), ("name_query" = Option<String>, Query)),
    responses((status = 200, description = "`{object: total_count, total_count}`", body = Object)))]
pub async fn count_users(
    State(st): State<AppState>,
    Caller(app): Caller,
    RawQuery(q): RawQuery,
) -> ClerkResult {
    let (_, total) = query_users(&st, &app, q.as_deref(), false).await?;
    Ok(ClerkJson::from(
        serde_json::json!({"object": "total_count", "total_count": total}),
    ))
}

/// `[+|-]field`; no sign is ascending. A `+` sent unencoded in a query string arrives as a space.
fn parse_user_order(v: &str) -> Result<UserOrder, ClerkError> {
    let (descending, field) = match v.as_bytes().first() {
        Some(b'-') => (true, &v[1..]),
        Some(b'+' | b' ') => (false, &v[1..]),
        _ => (false, v),
    };
    let field = UserSortField::parse(field).ok_or_else(|| {
        ClerkError::value_invalid(
            "order_by",
            "order_by must be one of created_at, updated_at, email_address, first_name, \
             last_name, phone_number, username, last_active_at, last_sign_in_at, with an \
             optional + or - prefix",
        )
    })?;
    Ok(UserOrder { field, descending })
}

async fn query_users(
    st: &AppState,
    app: &sessiond_core::application::Application,
    raw: Option<&str>,
    page: bool,
) -> Result<(Vec<Value>, u64), ClerkError> {
    let q = Query::parse(raw)?;
    q.only(&[
        "email_address",
        "external_id",
        "user_id",
        "query",
        "email_address_query",
        "phone_number_query",
        "username_query",
        "name_query",
        "limit",
        "offset",
        "order_by",
    ])?;
    // Clerk keeps the first `order_by` when several are sent.
    let order = match q.first("order_by") {
        None | Some("") => UserOrder::default(),
        Some(o) => parse_user_order(o)?,
    };
    let text = |k: &str| -> Result<Option<String>, ClerkError> {
        match q.one(k) {
            Some(v) if v.chars().count() > 256 => Err(ClerkError::value_invalid(
                k,
                format!("{k} must be at most 256 characters"),
            )),
            v => Ok(v.map(str::to_owned)),
        }
    };
    let query = UserQuery {
        any: text("query")?,
        email: text("email_address_query")?,
        phone: text("phone_number_query")?,
        username: text("username_query")?,
        name: text("name_query")?,
    };
    let limit = if page { q.int("limit", 10, 1, 500)? } else { 1 };
    let offset = if page {
        q.int("offset", 0, 0, u64::from(u32::MAX))?
    } else {
        0
    };
    let ids = q.all("user_id")?;
    let user_ids: Vec<UserId> = ids.iter().filter_map(|i| UserId::parse(i)).collect();
    if !ids.is_empty() && user_ids.is_empty() {
        return Ok((Vec::new(), 0));
    }
    let (users, total) = st
        .login
        .list_users(
            app,
            &UserSearch {
                user_ids,
                external_ids: q.all("external_id")?,
                emails: q.all("email_address")?,
                query,
                order,
                limit: u32::try_from(limit).unwrap_or(500),
                offset,
            },
        )
        .await
        .map_err(core(""))?;
    Ok((users.iter().map(views::user).collect(), total))
}

#[utoipa::path(get, path = "/v1/users/{user_id}", tag = TAG, security(("secret_key" = [])),
    params(("user_id" = String, Path)),
    responses((status = 200, description = "User", body = Object), (status = 404, description = "Not found")))]
pub async fn get_user(
    State(st): State<AppState>,
    Caller(app): Caller,
    Path(id): Path<String>,
) -> ClerkResult {
    let uid = user_id(&id)?;
    let u = st.login.get_user(&app, &uid).await.map_err(core(&id))?;
    Ok(ClerkJson::from(views::user(&u)))
}

#[utoipa::path(patch, path = "/v1/users/{user_id}", tag = TAG, security(("secret_key" = [])),
    params(("user_id" = String, Path)), request_body(content = Object),
    responses((status = 200, description = "User", body = Object), (status = 404, description = "Not found"), (status = 422, description = "Invalid or unsupported parameters")))]
pub async fn update_user(
    State(st): State<AppState>,
    Caller(app): Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ClerkResult {
    let b = Body::parse(&body)?;
    b.only(&USER_UPDATE_FIELDS)?;
    // The Python SDK always sends this flag (false); sessiond sends no emails, so `true` cannot be
    // honoured and is refused rather than ignored.
    if b.bool("notify_primary_email_address_changed")? == Some(true) {
        return Err(ClerkError::value_invalid(
            "notify_primary_email_address_changed",
            "sessiond sends no emails; notify_primary_email_address_changed must be false",
        ));
    }
    let idn = |k: &str| -> Result<Option<sessiond_core::ids::IdentificationId>, ClerkError> {
        match b.str(k)? {
            None => Ok(None),
            Some(v) => sessiond_core::ids::IdentificationId::parse(&v)
                .map(Some)
                .ok_or_else(|| {
                    ClerkError::value_invalid(
                        k,
                        format!("{k} is not one of the user's identifications"),
                    )
                }),
        }
    };
    let patch = UserPatch {
        external_id: b.str_patch("external_id")?,
        first_name: b.str_patch("first_name")?,
        last_name: b.str_patch("last_name")?,
        username: b.str_patch("username")?,
        image_url: b.str_patch("image_url")?,
        primary_email_address_id: idn("primary_email_address_id")?,
        primary_phone_number_id: idn("primary_phone_number_id")?,
        public_metadata: b.object("public_metadata")?,
        private_metadata: b.object("private_metadata")?,
        unsafe_metadata: b.object("unsafe_metadata")?,
        locale: b.str_patch("locale")?,
        password: password_input(&b)?,
        ..UserPatch::default()
    };
    let sign_out = b.bool("sign_out_of_other_sessions")?.unwrap_or(false);
    let new_password = patch.password.is_some();
    let uid = user_id(&id)?;
    let now = st.clock.now();
    let u = st
        .login
        .update_user(&app, &uid, patch, now)
        .await
        .map_err(core(&id))?;
    if sign_out && new_password {
        st.login
            .revoke_user_sessions(&app, &uid, now)
            .await
            .map_err(core(&id))?;
    }
    Ok(ClerkJson::from(views::user(&u)))
}

const METADATA_FIELDS: [&str; 3] = ["public_metadata", "private_metadata", "unsafe_metadata"];

async fn change_metadata(
    st: &AppState,
    app: &sessiond_core::application::Application,
    id: &str,
    body: &Bytes,
    merge: bool,
) -> ClerkResult {
    let b = Body::parse(body)?;
    b.only(&METADATA_FIELDS)?;
    let patch = UserPatch {
        public_metadata: b.object("public_metadata")?,
        private_metadata: b.object("private_metadata")?,
        unsafe_metadata: b.object("unsafe_metadata")?,
        merge_metadata: merge,
        ..UserPatch::default()
    };
    let uid = user_id(id)?;
    let u = st
        .login
        .update_user(app, &uid, patch, st.clock.now())
        .await
        .map_err(core(id))?;
    Ok(ClerkJson::from(views::user(&u)))
}

/// Deep merge: nested objects merge, a `null` value removes its key.
#[utoipa::path(patch, path = "/v1/users/{user_id}/metadata", tag = TAG, security(("secret_key" = [])),
    params(("user_id" = String, Path)), request_body(content = Object, description = "`{public_metadata?, private_metadata?, unsafe_metadata?}`"),
    responses((status = 200, description = "User", body = Object), (status = 404, description = "Not found"), (status = 422, description = "Invalid or unsupported parameters")))]
pub async fn merge_user_metadata(
    State(st): State<AppState>,
    Caller(app): Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ClerkResult {
    change_metadata(&st, &app, &id, &body, true).await
}

/// Replaces each metadata object given; the others are left as they are.
#[utoipa::path(put, path = "/v1/users/{user_id}/metadata", tag = TAG, security(("secret_key" = [])),
    params(("user_id" = String, Path)), request_body(content = Object, description = "`{public_metadata?, private_metadata?, unsafe_metadata?}`"),
    responses((status = 200, description = "User", body = Object), (status = 404, description = "Not found"), (status = 422, description = "Invalid or unsupported parameters")))]
pub async fn replace_user_metadata(
    State(st): State<AppState>,
    Caller(app): Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ClerkResult {
    change_metadata(&st, &app, &id, &body, false).await
}

#[utoipa::path(post, path = "/v1/users/{user_id}/verify_password", tag = TAG, security(("secret_key" = [])),
    params(("user_id" = String, Path)), request_body(content = Object, description = "`{password}`"),
    responses((status = 200, description = "`{verified: true}`", body = Object), (status = 400, description = "The user has no password"),
              (status = 404, description = "Not found"), (status = 422, description = "Incorrect password")))]
pub async fn verify_password(
    State(st): State<AppState>,
    Caller(app): Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ClerkResult {
    let b = Body::parse(&body)?;
    b.only(&["password"])?;
    let password = b
        .str("password")?
        .ok_or_else(|| ClerkError::missing("password"))?;
    let uid = user_id(&id)?;
    let check = st
        .login
        .verify_password(&app, &uid, &password, st.clock.now())
        .await
        .map_err(core(&id))?;
    match check {
        PasswordCheck::Verified => Ok(ClerkJson::from(serde_json::json!({"verified": true}))),
        PasswordCheck::Incorrect => Err(ClerkError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "form_password_incorrect",
            "Password is incorrect.",
            "The password does not match the user's password.",
        )
        .param("password")),
        PasswordCheck::NotSet => Err(ClerkError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "password_not_set",
            "No password is set",
            "This user has no password; set one with password or password_digest.",
        )),
    }
}

#[utoipa::path(delete, path = "/v1/users/{user_id}", tag = TAG, security(("secret_key" = [])),
    params(("user_id" = String, Path)),
    responses((status = 200, description = "`{object: user, id, deleted: true}`", body = Object), (status = 404, description = "Not found")))]
pub async fn delete_user(
    State(st): State<AppState>,
    Caller(app): Caller,
    Path(id): Path<String>,
) -> ClerkResult {
    let uid = user_id(&id)?;
    st.login.delete_user(&app, &uid).await.map_err(core(&id))?;
    Ok(ClerkJson::from(views::deleted("user", &id)))
}

//! Sessions and their tokens.

use crate::AppState;
use crate::auth::Caller;
use crate::dialect::clerk::error::ClerkError;
use crate::dialect::clerk::input::{Body, Query};
use crate::dialect::clerk::{ClerkJson, ClerkResult, views};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use serde_json::Value;
use sessiond_core::ids::{ClientId, SessionId, UserId};
use sessiond_core::store::SessionFilter;

use super::*;

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
    let uid = body.required_str("user_id")?;
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
    let token = body.required_str("token")?;
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
        .map_err(|e| {
            use sessiond_core::error::ErrorCode;
            match e.code() {
                // The server's failures stay what they are; anything about the token or the
                // session is Clerk's refusal to refresh.
                ErrorCode::Unavailable | ErrorCode::Internal | ErrorCode::RateLimited => {
                    ClerkError::from_core(&e, &id)
                }
                ErrorCode::NotFound
                | ErrorCode::InvalidInput
                | ErrorCode::Conflict
                | ErrorCode::AlreadyExists
                | ErrorCode::InvalidState
                | ErrorCode::Unauthenticated
                | ErrorCode::Forbidden => refused(&e.to_string()),
            }
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

pub(super) fn expires_in(body: &Body) -> Result<Option<u64>, ClerkError> {
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

//! Handlers of the Equisoft dialect. Bodies come in each client's encoding: Kotlin sends JSON
//! (a token as a JSON string literal, `null` for "no body"); TypeScript and PHP send text/plain.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sessiond_core::application::Application;
use sessiond_core::ids::SessionId;
use sessiond_core::session::{Session, SessionAttributes, SsoDetails};
use sessiond_core::store::SessionDeletion;

use super::error::EquisoftError;
use super::views;
use crate::AppState;
use crate::auth::Caller;
use crate::body::{JsonObject, Problem};

const TAG: &str = "equisoft";
type EResult = Result<Response, EquisoftError>;

fn json_ok(status: StatusCode, v: impl serde::Serialize) -> Response {
    match serde_json::to_vec(&v) {
        Ok(body) => (status, [(header::CONTENT_TYPE, "application/json")], body).into_response(),
        // Only a map with non-string keys fails to serialize; no view has one.
        Err(e) => {
            EquisoftError::from_core(&sessiond_core::Error::Internal(e.to_string())).into_response()
        }
    }
}

fn core(e: sessiond_core::Error) -> EquisoftError {
    EquisoftError::from_core(&e)
}

fn session_id(id: &str) -> Result<SessionId, EquisoftError> {
    SessionId::parse(id).ok_or_else(|| EquisoftError::not_found("user session not found"))
}

/// A body problem in Equisoft's words.
fn equisoft(p: Problem) -> EquisoftError {
    EquisoftError::bad_request(match p {
        Problem::NotUtf8 => "body is not UTF-8".to_owned(),
        Problem::NotJson(_) => "body is not valid JSON".to_owned(),
        Problem::NotAnObject => "body must be a JSON object".to_owned(),
        Problem::Unknown(k) => format!("unknown field `{k}`"),
        Problem::Type { member, expected } => format!("`{member}` must be a {expected}"),
        Problem::Missing(k) => format!("`{k}` is required"),
        Problem::TooLong { member, max } => format!("`{member}` must be at most {max} bytes"),
        Problem::TooManyItems { member, max_items } => {
            format!("`{member}` must have at most {max_items} items")
        }
        Problem::BadItem { member, .. } => format!("`{member}` holds an invalid item"),
    })
}

/// A JSON object body, or `None` for an empty body or a literal `null`.
fn json_body(bytes: &Bytes) -> Result<Option<JsonObject>, EquisoftError> {
    let body = JsonObject::parse(bytes).map_err(equisoft)?;
    Ok(body.was_sent().then_some(body))
}

/// A text body: raw text/plain (PHP), a JSON string literal (Kotlin), or — the TypeScript
/// client's runtime JSON-encodes every body, whatever its content type — a JSON string literal
/// sent as text/plain. A text/plain body that is exactly one JSON string literal is decoded, so a
/// value set through any client reads back the same; any other text is taken verbatim. An empty
/// value is no value.
fn text_body(headers: &HeaderMap, bytes: &Bytes) -> Result<Option<String>, EquisoftError> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| EquisoftError::bad_request("body is not UTF-8"))?;
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("application/json"));
    if !is_json {
        let value = match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
            Some(_) => serde_json::from_str::<String>(text).unwrap_or_else(|_| text.to_owned()),
            None => text.to_owned(),
        };
        return Ok((!value.is_empty()).then_some(value));
    }
    if text.trim().is_empty() {
        return Ok(None);
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::String(s)) => Ok((!s.is_empty()).then_some(s)),
        Ok(Value::Null) => Ok(None),
        _ => Err(EquisoftError::bad_request(
            "a JSON body here must be a string",
        )),
    }
}

fn only(m: &JsonObject, allowed: &[&str]) -> Result<(), EquisoftError> {
    m.only(allowed).map_err(equisoft)
}

fn opt_bool(m: &JsonObject, k: &str) -> Result<Option<bool>, EquisoftError> {
    m.bool(k).map_err(equisoft)
}

fn req_str(m: &JsonObject, k: &str) -> Result<String, EquisoftError> {
    m.required_str(k).map_err(equisoft)
}

fn valid_cookie_domain(d: &str) -> bool {
    let d = d.strip_prefix('.').unwrap_or(d);
    !d.is_empty()
        && d.len() <= 253
        && d.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Renders a session with its user and actor, or 404 for sessions Equisoft sees as deleted.
async fn render(st: &AppState, app: &Application, s: &Session, status: StatusCode) -> EResult {
    let user = st.login.get_user(app, &s.user_id).await.map_err(core)?;
    render_with(st, app, s, &user, status).await
}

/// Renders a session whose user the caller already holds (read together with the session).
async fn render_with(
    st: &AppState,
    app: &Application,
    s: &Session,
    user: &sessiond_core::user::User,
    status: StatusCode,
) -> EResult {
    let now = st.clock.now();
    let state =
        views::state(s, now).ok_or_else(|| EquisoftError::not_found("user session not found"))?;
    let actor = match s.actor_user() {
        Some(a) => Some(st.login.get_user(app, &a).await.map_err(core)?),
        None => None,
    };
    let sso = st.login.session_sso(s).map_err(core)?;
    Ok(json_ok(
        status,
        views::session(
            s,
            state,
            views::user(user),
            actor.as_ref().map(views::user),
            sso.as_ref(),
        ),
    ))
}

/// The session if Equisoft can see it (not revoked, ended, removed or replaced through another
/// dialect).
async fn visible(st: &AppState, app: &Application, id: &str) -> Result<Session, EquisoftError> {
    let sid = session_id(id)?;
    let s = st.login.get_session(app, &sid).await.map_err(core)?;
    views::state(&s, st.clock.now())
        .ok_or_else(|| EquisoftError::not_found("user session not found"))?;
    Ok(s)
}

fn no_content(status: StatusCode) -> Response {
    status.into_response()
}

/// Create a user session (201).
#[utoipa::path(post, path = "/sessions", tag = TAG, security(("secret_key" = [])),
    request_body(content = Object, description = "SessionPayload `{userUuid, enable?, sso?, publicComputer?, mobileDevice?, cookieDomain?}`"),
    responses((status = 201, description = "Session", body = Object), (status = 400, description = "ErrorPayload"), (status = 404, description = "Unknown user")))]
pub async fn create_session(
    State(st): State<AppState>,
    Caller(app): Caller,
    body: Bytes,
) -> EResult {
    let m = json_body(&body)?
        .ok_or_else(|| EquisoftError::bad_request("a SessionPayload is required"))?;
    only(
        &m,
        &[
            "userUuid",
            "enable",
            "sso",
            "publicComputer",
            "mobileDevice",
            "cookieDomain",
            "isPublicComputer",
            "isMobileDevice",
        ],
    )?;
    let user_ref = req_str(&m, "userUuid")?;
    let enable = opt_bool(&m, "enable")?.unwrap_or(true);
    let sso = match m.get("sso") {
        None | Some(Value::Null) => None,
        Some(Value::Object(o)) => {
            let o = JsonObject::from_map(o.clone());
            only(&o, &["provider", "identifier"])?;
            Some(SsoDetails {
                provider: req_str(&o, "provider")?,
                identifier: req_str(&o, "identifier")?,
            })
        }
        Some(_) => return Err(EquisoftError::bad_request("`sso` must be an object")),
    };
    let cookie_domain = match m.get("cookieDomain") {
        None | Some(Value::Null) => None,
        // Stored as given: clients compare it with what they sent.
        Some(Value::String(d)) if valid_cookie_domain(d) => Some(d.clone()),
        Some(Value::String(_)) => {
            return Err(EquisoftError::new(
                StatusCode::BAD_REQUEST,
                "INVALID_COOKIE_DOMAIN_NAME",
                "cookieDomain is not a valid domain name",
            ));
        }
        Some(_) => {
            return Err(EquisoftError::bad_request(
                "`cookieDomain` must be a string",
            ));
        }
    };
    let attributes = SessionAttributes {
        mobile: opt_bool(&m, "mobileDevice")?
            .or(opt_bool(&m, "isMobileDevice")?)
            .unwrap_or(false),
        public_computer: opt_bool(&m, "publicComputer")?
            .or(opt_bool(&m, "isPublicComputer")?)
            .unwrap_or(false),
        cookie_domain,
        sso,
        concurrent_access: false,
    };
    let user = st.login.resolve_user(&app, &user_ref).await.map_err(core)?;
    let s = st
        .login
        .create_session_with(&app, &user.id, !enable, attributes, st.clock.now())
        .await
        .map_err(core)?;
    render(&st, &app, &s, StatusCode::CREATED).await
}

/// Get a session; `keepAlive=true` records activity (slides `suspend`, never `expire`).
#[utoipa::path(get, path = "/sessions/{uuid}", tag = TAG, security(("secret_key" = [])),
    params(("uuid" = String, Path), ("keepAlive" = Option<bool>, Query)),
    responses((status = 200, description = "Session", body = Object), (status = 404, description = "ErrorPayload")))]
pub async fn get_session(
    State(st): State<AppState>,
    Caller(app): Caller,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> EResult {
    let mut keep_alive = false;
    for (k, v) in form_urlencoded::parse(q.as_deref().unwrap_or("").as_bytes()) {
        match (k.as_ref(), v.as_ref()) {
            ("keepAlive", "true" | "1") => keep_alive = true,
            // The TypeScript client sends `keepAlive=null` for an unset parameter.
            ("keepAlive", "false" | "0" | "null") => keep_alive = false,
            ("keepAlive", other) => {
                return Err(EquisoftError::bad_request(format!(
                    "keepAlive must be true or false, not `{other}`"
                )));
            }
            (other, _) => {
                return Err(EquisoftError::bad_request(format!(
                    "unknown query parameter `{other}`"
                )));
            }
        }
    }
    // One read for the session and its user; a keep-alive works on that copy (a coalesced
    // touch writes nothing, a due one is one conditional update).
    let sid = session_id(&id)?;
    let (s, user) = st
        .login
        .get_session_with_user(&app, &sid)
        .await
        .map_err(core)?;
    views::state(&s, st.clock.now())
        .ok_or_else(|| EquisoftError::not_found("user session not found"))?;
    let s = if keep_alive {
        st.login
            .keep_alive_loaded(&app, s, st.clock.now())
            .await
            .map_err(core)?
    } else {
        s
    };
    render_with(&st, &app, &s, &user, StatusCode::OK).await
}

#[utoipa::path(delete, path = "/sessions/{uuid}", tag = TAG, security(("secret_key" = [])),
    params(("uuid" = String, Path)),
    responses((status = 204, description = "Deleted (with its token vault)"), (status = 404, description = "ErrorPayload")))]
pub async fn delete_session(
    State(st): State<AppState>,
    Caller(app): Caller,
    Path(id): Path<String>,
) -> EResult {
    let s = visible(&st, &app, &id).await?;
    st.login
        .delete_session(&app, &s, st.clock.now())
        .await
        .map_err(core)?;
    Ok(no_content(StatusCode::NO_CONTENT))
}

/// Delete every session of the calling application.
#[utoipa::path(delete, path = "/sessions", tag = TAG, security(("secret_key" = [])),
    responses((status = 204, description = "All sessions deleted")))]
pub async fn delete_all_sessions(State(st): State<AppState>, Caller(app): Caller) -> EResult {
    st.login
        .delete_sessions(&app, &SessionDeletion::default())
        .await
        .map_err(core)?;
    Ok(no_content(StatusCode::NO_CONTENT))
}

/// Delete the application's lapsed (expired, suspended or abandoned) sessions. Idempotent.
#[utoipa::path(delete, path = "/sessions/expired", tag = TAG, security(("secret_key" = [])),
    responses((status = 204, description = "Expired sessions deleted")))]
pub async fn delete_expired_sessions(State(st): State<AppState>, Caller(app): Caller) -> EResult {
    st.login
        .delete_lapsed_sessions(&app, st.clock.now())
        .await
        .map_err(core)?;
    Ok(no_content(StatusCode::NO_CONTENT))
}

/// Delete every session of one user (204 even when there are none).
#[utoipa::path(delete, path = "/users/{uuid}/sessions", tag = TAG, security(("secret_key" = [])),
    params(("uuid" = String, Path)),
    responses((status = 204, description = "The user's sessions deleted")))]
pub async fn delete_user_sessions(
    State(st): State<AppState>,
    Caller(app): Caller,
    Path(uuid): Path<String>,
) -> EResult {
    // 204 whether or not the user exists, as Equisoft answers.
    st.login
        .delete_user_sessions(&app, &uuid, st.clock.now())
        .await
        .map_err(core)?;
    Ok(no_content(StatusCode::NO_CONTENT))
}

/// Enable a session created with `enable: false` (NEW → ENABLED).
#[utoipa::path(post, path = "/sessions/{uuid}/enable", tag = TAG, security(("secret_key" = [])),
    params(("uuid" = String, Path)), request_body(content = Option<String>, description = "ignored"),
    responses((status = 204, description = "Enabled"), (status = 400, description = "ErrorPayload"), (status = 404, description = "ErrorPayload")))]
pub async fn enable_session(
    State(st): State<AppState>,
    Caller(app): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> EResult {
    let _ = text_body(&headers, &body)?;
    let s = visible(&st, &app, &id).await?;
    st.login
        .enable_session(&app, &s.id, st.clock.now())
        .await
        .map_err(core)?;
    Ok(no_content(StatusCode::NO_CONTENT))
}

/// Enable a session for a service; only `EQUISOFT_CONNECT` is enabled per session (202).
#[utoipa::path(post, path = "/sessions/{uuid}/enable/{service}", tag = TAG, security(("secret_key" = [])),
    params(("uuid" = String, Path), ("service" = String, Path, description = "EQUISOFT_CONNECT")),
    request_body(content = Option<Object>, description = "optional `{disableOldestSessions}`"),
    responses((status = 202, description = "Enabled for Equisoft/Connect"), (status = 400, description = "ErrorPayload (CONCURRENT_ACCESS, SESSION_NOT_ENABLED)"), (status = 404, description = "ErrorPayload")))]
pub async fn enable_session_for_service(
    State(st): State<AppState>,
    Caller(app): Caller,
    Path((id, service)): Path<(String, String)>,
    body: Bytes,
) -> EResult {
    if service != "EQUISOFT_CONNECT" {
        return Err(EquisoftError::bad_request(format!(
            "`{service}` is not a service sessions can be enabled for"
        )));
    }
    let disable_oldest = match json_body(&body)? {
        Some(m) => {
            only(&m, &["disableOldestSessions"])?;
            opt_bool(&m, "disableOldestSessions")?.unwrap_or(false)
        }
        None => false,
    };
    let s = visible(&st, &app, &id).await?;
    st.login
        .enable_for_concurrent_access(&app, &s.id, disable_oldest, st.clock.now())
        .await
        .map_err(core)?;
    Ok(no_content(StatusCode::ACCEPTED))
}

#[utoipa::path(get, path = "/sessions/{uuid}/tokens/{tokenId}", tag = TAG, security(("secret_key" = [])),
    params(("uuid" = String, Path), ("tokenId" = String, Path)),
    responses((status = 200, description = "SsoToken `{id, value}`", body = Object), (status = 404, description = "ErrorPayload")))]
pub async fn get_token(
    State(st): State<AppState>,
    Caller(app): Caller,
    Path((id, token_id)): Path<(String, String)>,
) -> EResult {
    let s = visible(&st, &app, &id).await?;
    let value = st
        .login
        .get_token(&app, &s.id, &token_id, st.clock.now())
        .await
        .map_err(core)?;
    Ok(json_ok(
        StatusCode::OK,
        json!({ "id": token_id, "value": value }),
    ))
}

/// Store (or replace) an SSO token; the body is the raw value.
#[utoipa::path(put, path = "/sessions/{uuid}/tokens/{tokenId}", tag = TAG, security(("secret_key" = [])),
    params(("uuid" = String, Path), ("tokenId" = String, Path)),
    request_body(content = String, description = "the token (text/plain, or a JSON string)"),
    responses((status = 200, description = "Stored"), (status = 400, description = "ErrorPayload"), (status = 404, description = "ErrorPayload")))]
pub async fn put_token(
    State(st): State<AppState>,
    Caller(app): Caller,
    Path((id, token_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> EResult {
    let value = text_body(&headers, &body)?
        .ok_or_else(|| EquisoftError::bad_request("the token value is required"))?;
    let s = visible(&st, &app, &id).await?;
    st.login
        .put_token(&app, &s.id, &token_id, &value, st.clock.now())
        .await
        .map_err(core)?;
    Ok(no_content(StatusCode::OK))
}

#[utoipa::path(delete, path = "/sessions/{uuid}/tokens/{tokenId}", tag = TAG, security(("secret_key" = [])),
    params(("uuid" = String, Path), ("tokenId" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, description = "ErrorPayload")))]
pub async fn delete_token(
    State(st): State<AppState>,
    Caller(app): Caller,
    Path((id, token_id)): Path<(String, String)>,
) -> EResult {
    let s = visible(&st, &app, &id).await?;
    st.login
        .delete_token(&app, &s.id, &token_id, st.clock.now())
        .await
        .map_err(core)?;
    Ok(no_content(StatusCode::NO_CONTENT))
}

/// The session's user (holding the impersonation capability) starts acting as `userUuid`.
#[utoipa::path(post, path = "/sessions/{uuid}/impersonate", tag = TAG, security(("secret_key" = [])),
    params(("uuid" = String, Path)), request_body(content = Object, description = "ImpersonatePayload `{userUuid}`"),
    responses((status = 200, description = "Session", body = Object), (status = 400, description = "ErrorPayload"), (status = 403, description = "ACCESS_DENIED"), (status = 404, description = "ErrorPayload")))]
pub async fn impersonate(
    State(st): State<AppState>,
    Caller(app): Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> EResult {
    let m = json_body(&body)?
        .ok_or_else(|| EquisoftError::bad_request("an ImpersonatePayload is required"))?;
    only(&m, &["userUuid"])?;
    let target_ref = req_str(&m, "userUuid")?;
    let s = visible(&st, &app, &id).await?;
    let target = st
        .login
        .resolve_user(&app, &target_ref)
        .await
        .map_err(core)?;
    let s = st
        .login
        .impersonate(&app, &s.id, &target.id, st.clock.now())
        .await
        .map_err(core)?;
    render(&st, &app, &s, StatusCode::OK).await
}

#[utoipa::path(post, path = "/sessions/{uuid}/revertIdentity", tag = TAG, security(("secret_key" = [])),
    params(("uuid" = String, Path)), request_body(content = Option<String>, description = "ignored"),
    responses((status = 200, description = "Session", body = Object), (status = 400, description = "SESSION_NOT_IMPERSONATED"), (status = 404, description = "ErrorPayload")))]
pub async fn revert_identity(
    State(st): State<AppState>,
    Caller(app): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> EResult {
    let _ = text_body(&headers, &body)?;
    let s = visible(&st, &app, &id).await?;
    let s = st
        .login
        .revert_identity(&app, &s.id, st.clock.now())
        .await
        .map_err(core)?;
    render(&st, &app, &s, StatusCode::OK).await
}

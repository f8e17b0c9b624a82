//! Operations both generations share, answered in the calling application's generation.

use crate::AppState;
use crate::auth::Caller;
use crate::dialect::trinsic::error::{Gen, TrinsicError};
use crate::dialect::trinsic::views;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use base64::Engine;
use serde_json::{Value, json};
use sessiond_core::application::Application;
use sessiond_core::store::VerificationOrder;
use sessiond_core::verification::negotiate;

use super::*;

pub(super) struct ListQuery {
    order: VerificationOrder,
    descending: bool,
    page_size: u32,
    page: u64,
}

pub(super) fn list_query(g: Gen, raw: Option<&str>) -> Result<ListQuery, TrinsicError> {
    let mut q = ListQuery {
        order: VerificationOrder::Created,
        descending: false,
        page_size: DEFAULT_PAGE_SIZE,
        page: 1,
    };
    let raw = raw.unwrap_or("");
    if raw.len() > 2048 {
        return Err(TrinsicError::bad_request(
            g,
            "",
            "the query string is too long",
        ));
    }
    for (k, v) in form_urlencoded::parse(raw.as_bytes()) {
        let bad = |why: &str| TrinsicError::bad_request(g, &k, format!("`{k}` {why}"));
        match k.to_ascii_lowercase().as_str() {
            "orderby" => {
                q.order = match v.to_ascii_lowercase().as_str() {
                    "created" | "0" => VerificationOrder::Created,
                    "updated" | "1" => VerificationOrder::Updated,
                    "state" | "2" => VerificationOrder::State,
                    _ => return Err(bad("must be Created, Updated or State")),
                }
            }
            "orderdirection" => {
                q.descending = match v.to_ascii_lowercase().as_str() {
                    "ascending" | "0" => false,
                    "descending" | "1" => true,
                    _ => return Err(bad("must be Ascending or Descending")),
                }
            }
            "pagesize" => {
                q.page_size = v
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
                    .ok_or_else(|| bad(&format!("must be between 1 and {MAX_PAGE_SIZE}")))?;
            }
            "page" => {
                q.page = v
                    .parse::<u64>()
                    .ok()
                    .filter(|n| (1..=i32::MAX as u64).contains(n))
                    .ok_or_else(|| bad("must be between 1 and 2147483647"))?;
            }
            _ => return Err(bad("is not a parameter of this operation")),
        }
    }
    Ok(q)
}

pub(super) async fn list(st: &AppState, app: &Application, g: Gen, raw: Option<&str>) -> TResult {
    let q = list_query(g, raw)?;
    let offset = (q.page - 1) * u64::from(q.page_size);
    let now = st.clock.now();
    let (list, total) = st
        .verification
        .list(app, q.order, q.descending, q.page_size, offset, now)
        .await
        .map_err(core(g))?;
    let more = offset + (list.len() as u64) < total;
    Ok(ok(json!({
        "sessions": list.iter().map(|v| session_view(g, v)).collect::<Vec<_>>(),
        "total": i32::try_from(total).unwrap_or(i32::MAX),
        "more": more,
    })))
}

// ---- shared paths ----

#[utoipa::path(get, path = "/api/v1/sessions/{sessionId}", tag = TAG, security(("secret_key" = [])),
    params(("sessionId" = String, Path)),
    responses((status = 200, description = "GetSessionResponse `{session}` in the application's generation", body = Object), (status = 404, description = "Unknown session")))]
pub async fn get_session(
    State(st): State<AppState>,
    Caller(app): Caller,
    Path(id): Path<String>,
) -> TResult {
    let g = shared_gen(&app);
    let id = session_id(g, &id)?;
    let v = st
        .verification
        .get(&app, &id, st.clock.now())
        .await
        .map_err(core(g))?;
    Ok(ok(json!({ "session": session_view(g, &v) })))
}

pub(super) fn session_view(g: Gen, v: &sessiond_core::verification::Verification) -> Value {
    if g == Gen::A {
        views::session_a(v)
    } else {
        views::session_b(v)
    }
}

pub(super) async fn results(
    st: &AppState,
    app: &Application,
    g: Gen,
    id: &str,
    body: &Bytes,
    member: &str,
) -> Result<
    (
        sessiond_core::verification::Verification,
        Option<sessiond_core::verification::identity::IdentityData>,
    ),
    TrinsicError,
> {
    let id = session_id(g, id)?;
    let b = Body::parse(g, body)?;
    b.only(&[member])?;
    let key = b.required_string(member, 200)?;
    st.verification
        .results(app, &id, &key, st.clock.now())
        .await
        .map_err(|e| match e {
            sessiond_core::Error::InvalidInput { reason, .. } => {
                TrinsicError::bad_request(g, member, reason)
            }
            other => TrinsicError::from_core(g, &other),
        })
}

pub(super) fn results_view(
    g: Gen,
    v: &sessiond_core::verification::Verification,
    data: Option<&sessiond_core::verification::identity::IdentityData>,
    legacy: bool,
) -> Value {
    if g == Gen::A {
        let mut out = json!({ "session": views::session_a(v) });
        if let Some(d) = data {
            out["identityData"] = views::identity_a(v, d, legacy);
        }
        out
    } else {
        json!({
            "session": views::session_b(v),
            "identityData": data.map(views::identity_b),
        })
    }
}

#[utoipa::path(post, path = "/api/v1/sessions/{sessionId}/results", tag = TAG, security(("secret_key" = [])),
    params(("sessionId" = String, Path)),
    request_body(content = Object, description = "GetSessionResultRequest `{resultsAccessKey}`"),
    responses((status = 200, description = "GetSessionResultResponse `{session, identityData}`; `identityData` is null/absent until the session succeeds", body = Object), (status = 400, description = "Wrong results access key")))]
pub async fn get_results(
    State(st): State<AppState>,
    Caller(app): Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> TResult {
    let g = shared_gen(&app);
    let (v, data) = results(&st, &app, g, &id, &body, "resultsAccessKey").await?;
    Ok(ok(results_view(g, &v, data.as_ref(), false)))
}

#[utoipa::path(post, path = "/api/v1/sessions/{sessionId}/cancel", tag = TAG, security(("secret_key" = [])),
    params(("sessionId" = String, Path)),
    responses((status = 200, description = "CancelSessionResponse `{session}`", body = Object), (status = 400, description = "The session already finished")))]
pub async fn cancel(
    State(st): State<AppState>,
    Caller(app): Caller,
    Path(id): Path<String>,
) -> TResult {
    let g = shared_gen(&app);
    let id = session_id(g, &id)?;
    let v = st
        .verification
        .cancel(&app, &id, st.clock.now())
        .await
        .map_err(core(g))?;
    Ok(ok(json!({ "session": session_view(g, &v) })))
}

#[utoipa::path(post, path = "/api/v1/sessions/{sessionId}/redact", tag = TAG, security(("secret_key" = [])),
    params(("sessionId" = String, Path)),
    responses((status = 200, description = "Identity data and attachments removed for good (an unfinished session is cancelled first)")))]
pub async fn redact(
    State(st): State<AppState>,
    Caller(app): Caller,
    Path(id): Path<String>,
) -> TResult {
    let g = shared_gen(&app);
    let id = session_id(g, &id)?;
    st.verification
        .redact(&app, &id, st.clock.now())
        .await
        .map_err(core(g))?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
    )
        .into_response())
}

// ---- attachments and network ----

pub(super) async fn attachment(st: &AppState, app: &Application, g: Gen, body: &Bytes) -> TResult {
    let b = Body::parse(g, body)?;
    b.only(&["attachmentAccessKey"])?;
    let key = b.required_string("attachmentAccessKey", 200)?;
    let a = st
        .verification
        .attachment(app, &key)
        .await
        .map_err(core(g))?;
    Ok(ok(json!({
        "content": base64::engine::general_purpose::STANDARD.encode(&a.content),
        "contentType": a.content_type,
    })))
}

#[utoipa::path(post, path = "/api/v1/attachments/attachment", tag = TAG, security(("secret_key" = [])),
    request_body(content = Object, description = "`{attachmentAccessKey}`"),
    responses((status = 200, description = "`{content (base64), contentType}`", body = Object), (status = 404, description = "Unknown or redacted attachment")))]
pub async fn get_attachment(
    State(st): State<AppState>,
    Caller(app): Caller,
    body: Bytes,
) -> TResult {
    let g = shared_gen(&app);
    attachment(&st, &app, g, &body).await
}

#[utoipa::path(get, path = "/api/v1/network/providers", tag = TAG, security(("secret_key" = [])),
    params(("health" = Option<String>, Query, description = "online | offline | all (generation B)")),
    responses((status = 200, description = "`{providers}` in the application's generation", body = Object)))]
pub async fn list_providers(
    State(st): State<AppState>,
    Caller(app): Caller,
    RawQuery(q): RawQuery,
) -> TResult {
    let g = shared_gen(&app);
    let mut offline_only = false;
    for (k, v) in form_urlencoded::parse(q.as_deref().unwrap_or("").as_bytes()) {
        if !k.eq_ignore_ascii_case("health") {
            return Err(TrinsicError::bad_request(
                g,
                &k,
                format!("`{k}` is not a parameter of this operation"),
            ));
        }
        offline_only = match v.to_ascii_lowercase().as_str() {
            "online" | "all" | "" => false,
            "offline" => true,
            _ => {
                return Err(TrinsicError::bad_request(
                    g,
                    "health",
                    "`health` must be online, offline or all",
                ));
            }
        };
    }
    let url = st.verification.public_url();
    // Built-in providers are always online.
    let providers: Vec<Value> = if offline_only {
        Vec::new()
    } else {
        st.verification
            .available_providers(&app)
            .map(|p| {
                if g == Gen::A {
                    views::provider_a(url, p.as_ref())
                } else {
                    views::provider_b(url, p.as_ref())
                }
            })
            .collect()
    };
    Ok(ok(json!({ "providers": providers })))
}

#[utoipa::path(post, path = "/api/v1/network/recommend", tag = TAG, security(("secret_key" = [])),
    request_body(content = Object, description = "Generation A `{phoneNumber, countries?, states?}`; generation B `{recommendationInfo?, health?}`"),
    responses((status = 200, description = "`{recognized, relevant, remainder}`", body = Object)))]
pub async fn recommend(State(st): State<AppState>, Caller(app): Caller, body: Bytes) -> TResult {
    let g = shared_gen(&app);
    let b = Body::parse(g, &body)?;
    let (phone, countries) = if g == Gen::A {
        b.only(&["phoneNumber", "countries", "states"])?;
        let phone = b.required_string("phoneNumber", 32)?;
        b.strings("states", 100)?;
        (Some(phone), b.strings("countries", 300)?)
    } else {
        b.only(&["recommendationInfo", "health"])?;
        let health = b.string("health", 16)?;
        if let Some(h) = &health
            && !["online", "offline", "all"].contains(&h.to_ascii_lowercase().as_str())
        {
            return Err(b.bad("health", "must be online, offline or all"));
        }
        let info = b.object("recommendationInfo")?.unwrap_or_default();
        let inner = Body::nested(g, info);
        inner.only(&["phoneNumber", "countries", "subdivisions", "ipAddresses"])?;
        inner.strings("subdivisions", 100)?;
        inner.strings("ipAddresses", 100)?;
        (
            inner.string("phoneNumber", 32)?,
            inner.strings("countries", 300)?,
        )
    };
    let url = st.verification.public_url();
    let render = |p: &std::sync::Arc<dyn sessiond_core::verification::provider::Provider>| {
        if g == Gen::A {
            views::recommendation_a(url, p.as_ref())
        } else {
            views::recommendation_b(url, p.as_ref())
        }
    };
    let negotiate::Recommendation {
        relevant,
        remainder,
    } = negotiate::recommend(
        st.verification.available_providers(&app).cloned(),
        phone.as_deref(),
        &countries,
    );
    // sessiond keeps no network of reusable identities, so nothing is ever "recognized".
    Ok(ok(json!({
        "recognized": [],
        "relevant": relevant.iter().map(&render).collect::<Vec<_>>(),
        "remainder": remainder.iter().map(&render).collect::<Vec<_>>(),
    })))
}

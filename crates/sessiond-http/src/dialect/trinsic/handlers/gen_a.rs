//! Operations only generation A (Trinsic Connect) has.

use crate::AppState;
use crate::auth::Caller;
use crate::dialect::trinsic::error::{Gen, TrinsicError};
use crate::dialect::trinsic::views;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use serde_json::{Value, json};
use sessiond_core::verification::service::NewVerification;
use sessiond_core::verification::{Flow, Options};

use super::*;

// ---- generation A ----

#[utoipa::path(post, path = "/api/v1/sessions", tag = TAG_A, security(("secret_key" = [])),
    request_body(content = Object, description = "CreateSessionRequest `{launchProviderDirectly?, providers?, enableRememberMe?, knownIdentityData?, disclosedFields?}` (may be empty)"),
    responses((status = 200, description = "CreateSessionResponse `{session, launchUrl}`", body = Object), (status = 400, description = "Array of ValidationResult")))]
pub async fn a_create(State(st): State<AppState>, Caller(app): Caller, body: Bytes) -> TResult {
    let g = Gen::A;
    let b = Body::parse(g, &body)?;
    b.only(&[
        "launchProviderDirectly",
        "launchMethodDirectly",
        "redirectUrl",
        "providers",
        "enableRememberMe",
        "knownIdentityData",
        "disclosedFields",
    ])?;
    let known = b.object("knownIdentityData")?;
    let req = NewVerification {
        flow: Some(Flow::Connect),
        options: Options {
            providers: b.strings("providers", 100)?,
            redirect_url: b.string("redirectUrl", 2048)?,
            disclosed_fields: disclosed_fields(&b)?,
            launch_directly: b.bool("launchProviderDirectly")? || b.bool("launchMethodDirectly")?,
            remember_me: b.bool("enableRememberMe")?,
            ..Options::default()
        },
        known_identity: known.map(Value::Object),
        ..NewVerification::default()
    };
    let now = st.clock.now();
    let c = st
        .verification
        .create(&app, req, now)
        .await
        .map_err(core(g))?;
    Ok(ok(json!({
        "session": views::session_a(&c.verification),
        "launchUrl": c.launch_url,
    })))
}
#[utoipa::path(get, path = "/api/v1/sessions", tag = TAG_A, security(("secret_key" = [])),
    params(("OrderBy" = Option<String>, Query, description = "Created | Updated | State"), ("OrderDirection" = Option<String>, Query, description = "Ascending | Descending"), ("PageSize" = Option<u32>, Query, description = "1..50, default 10"), ("Page" = Option<u32>, Query, description = "≥ 1")),
    responses((status = 200, description = "ListSessionsResponse `{sessions, total, more}` (generation A sessions)", body = Object)))]
pub async fn a_list(
    State(st): State<AppState>,
    Caller(app): Caller,
    RawQuery(q): RawQuery,
) -> TResult {
    list(&st, &app, Gen::A, q.as_deref()).await
}

#[utoipa::path(post, path = "/api/v1/sessions/{sessionId}/results/exchange", tag = TAG_A, security(("secret_key" = [])),
    params(("sessionId" = String, Path)),
    request_body(content = Object, description = "ExchangeResultsKeyRequest `{resultsAccessKey}` (Connect 0.2.3–0.3.0)"),
    responses((status = 200, description = "ExchangeResultsKeyResponse `{session, identityData?}`", body = Object)))]
pub async fn a_exchange_results(
    State(st): State<AppState>,
    Caller(app): Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> TResult {
    let (v, data) = results(&st, &app, Gen::A, &id, &body, "resultsAccessKey").await?;
    Ok(ok(results_view(Gen::A, &v, data.as_ref(), true)))
}

#[utoipa::path(post, path = "/api/v1/sessions/{sessionId}/exchange", tag = TAG_A, security(("secret_key" = [])),
    params(("sessionId" = String, Path)),
    request_body(content = Object, description = "ExchangeIdentityTokenRequest `{identityToken}` (the oldest Connect clients; the token is the results access key)"),
    responses((status = 200, description = "ExchangeIdentityTokenResponse `{identityData}`", body = Object), (status = 400, description = "No identity data (yet)")))]
pub async fn a_exchange_token(
    State(st): State<AppState>,
    Caller(app): Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> TResult {
    let (v, data) = results(&st, &app, Gen::A, &id, &body, "identityToken").await?;
    let Some(d) = data else {
        return Err(TrinsicError::bad_request(
            Gen::A,
            "identityToken",
            "the session has no identity data: it has not succeeded, or it was redacted",
        ));
    };
    Ok(ok(
        json!({ "identityData": views::identity_a(&v, &d, true) }),
    ))
}

#[utoipa::path(post, path = "/api/v1/attachments/exchange", tag = TAG_A, security(("secret_key" = [])),
    request_body(content = Object, description = "`{attachmentAccessKey}` (Connect 0.2.3)"),
    responses((status = 200, description = "`{content (base64), contentType}`", body = Object)))]
pub async fn a_exchange_attachment(
    State(st): State<AppState>,
    Caller(app): Caller,
    body: Bytes,
) -> TResult {
    attachment(&st, &app, Gen::A, &body).await
}

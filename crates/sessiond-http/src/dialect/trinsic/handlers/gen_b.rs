//! Operations only generation B (Trinsic API) has.

use crate::AppState;
use crate::auth::Caller;
use crate::dialect::trinsic::error::{Gen, TrinsicError};
use crate::dialect::trinsic::states;
use crate::dialect::trinsic::views;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use serde_json::{Value, json};
use sessiond_core::verification::negotiate::Capability;
use sessiond_core::verification::service::{Created, NewVerification};
use sessiond_core::verification::{Flow, Options};

use super::*;

#[utoipa::path(get, path = "/api/v1/sessions/list", tag = TAG_B, security(("secret_key" = [])),
    params(("OrderBy" = Option<String>, Query, description = "Created | Updated | State"), ("OrderDirection" = Option<String>, Query, description = "Ascending | Descending"), ("PageSize" = Option<u32>, Query, description = "1..50, default 10"), ("Page" = Option<u32>, Query, description = "≥ 1")),
    responses((status = 200, description = "ListSessionsResponse `{sessions, total, more}` (generation B sessions)", body = Object)))]
pub async fn b_list(
    State(st): State<AppState>,
    Caller(app): Caller,
    RawQuery(q): RawQuery,
) -> TResult {
    list(&st, &app, Gen::B, q.as_deref()).await
}

// ---- generation B creation and steps ----

/// Creates a verification of `app` now.
async fn create(
    st: &AppState,
    app: &Application,
    req: NewVerification,
) -> Result<Created, TrinsicError> {
    st.verification
        .create(app, req, st.clock.now())
        .await
        .map_err(core(Gen::B))
}

/// Creates a verification of `app` and answers as generation B's hosted and widget calls do.
async fn start(st: &AppState, app: &Application, req: NewVerification) -> TResult {
    Ok(created_b(&create(st, app, req).await?))
}

pub(super) fn created_b(c: &Created) -> Response {
    ok(json!({
        "sessionId": c.verification.id.as_str(),
        "launchUrl": c.launch_url,
        "resultsAccessKey": c.results_access_key.as_str(),
    }))
}

#[utoipa::path(post, path = "/api/v1/sessions/widget", tag = TAG_B, security(("secret_key" = [])),
    request_body(content = Object, description = "CreateWidgetSessionRequest `{redirectUrl?, providers?, recommendationInfo?}` (may be empty)"),
    responses((status = 200, description = "CreateWidgetSessionResponse `{sessionId, launchUrl, resultsAccessKey}`", body = Object), (status = 400, description = "ProblemDetails")))]
pub async fn b_widget(State(st): State<AppState>, Caller(app): Caller, body: Bytes) -> TResult {
    let g = Gen::B;
    let b = Body::parse(g, &body)?;
    b.only(&["redirectUrl", "providers", "recommendationInfo"])?;
    let req = NewVerification {
        flow: Some(Flow::Widget),
        options: Options {
            providers: b.strings("providers", 100)?,
            redirect_url: b.string("redirectUrl", 2048)?,
            ..Options::default()
        },
        known_identity: b.object("recommendationInfo")?.map(Value::Object),
        ..NewVerification::default()
    };
    start(&st, &app, req).await
}

#[utoipa::path(post, path = "/api/v1/sessions/provider/hosted", tag = TAG_B, security(("secret_key" = [])),
    request_body(content = Object, description = "CreateHostedProviderSessionRequest `{provider, redirectUrl, providerInput?}`"),
    responses((status = 200, description = "CreateHostedProviderSessionResponse `{sessionId, launchUrl, resultsAccessKey}`", body = Object), (status = 400, description = "ProblemDetails")))]
pub async fn b_hosted(State(st): State<AppState>, Caller(app): Caller, body: Bytes) -> TResult {
    let g = Gen::B;
    let b = Body::parse(g, &body)?;
    b.only(&["provider", "redirectUrl", "providerInput"])?;
    let req = NewVerification {
        flow: Some(Flow::Hosted),
        provider: Some(b.required_string("provider", MAX_ID_LEN)?),
        options: Options {
            redirect_url: Some(b.required_string("redirectUrl", 2048)?),
            ..Options::default()
        },
        provider_input: b.object("providerInput")?,
        ..NewVerification::default()
    };
    start(&st, &app, req).await
}

#[utoipa::path(post, path = "/api/v1/sessions/provider/advanced", tag = TAG_B, security(("secret_key" = [])),
    request_body(content = Object, description = "CreateAdvancedProviderSessionRequest `{provider, capabilities, redirectUrl?, fallbackToHostedUI?, providerInput?}`"),
    responses((status = 200, description = "CreateAdvancedProviderSessionResponse `{sessionId, resultCollection, nextStep}`", body = Object), (status = 400, description = "ProblemDetails: unknown provider, unmet capabilities, bad input")))]
pub async fn b_advanced(State(st): State<AppState>, Caller(app): Caller, body: Bytes) -> TResult {
    let g = Gen::B;
    let b = Body::parse(g, &body)?;
    b.only(&[
        "provider",
        "capabilities",
        "redirectUrl",
        "fallbackToHostedUI",
        "providerInput",
    ])?;
    let names = b.strings("capabilities", 20)?;
    if names.is_empty() {
        return Err(b.bad("capabilities", "must list at least one capability"));
    }
    let mut capabilities = Vec::with_capacity(names.len());
    for name in &names {
        let Some(c) = states::capability(name) else {
            let known: Vec<&str> = Capability::ALL
                .into_iter()
                .map(states::capability_name)
                .collect();
            return Err(b.bad(
                "capabilities",
                &format!(
                    "has an unknown capability `{name}`; known: {}",
                    known.join(", ")
                ),
            ));
        };
        capabilities.push(c);
    }
    let req = NewVerification {
        flow: Some(Flow::Advanced),
        provider: Some(b.required_string("provider", MAX_ID_LEN)?),
        options: Options {
            redirect_url: b.string("redirectUrl", 2048)?.filter(|s| !s.is_empty()),
            capabilities,
            fallback_to_hosted: b.bool("fallbackToHostedUI")?,
            ..Options::default()
        },
        provider_input: b.object("providerInput")?,
        ..NewVerification::default()
    };
    let c = create(&st, &app, req).await?;
    let (Some(step), Some(collection)) = (&c.next_step, c.collection) else {
        return Err(TrinsicError::from_core(
            g,
            &sessiond_core::Error::Internal("advanced session without a step".into()),
        ));
    };
    Ok(ok(json!({
        "sessionId": c.verification.id.as_str(),
        "resultCollection": {
            "method": states::collection_name(collection),
            "resultsAccessKey": c.results_access_key.as_str(),
        },
        "nextStep": views::step(step),
    })))
}

#[utoipa::path(post, path = "/api/v1/sessions/{sessionId}/step/refresh", tag = TAG_B, security(("secret_key" = [])),
    params(("sessionId" = String, Path, description = "The acceptance session id")),
    request_body(content = Object, description = "RefreshStepContentRequest `{resultsAccessKey}`"),
    responses((status = 200, description = "RefreshStepContentResponse `{nextStep}` with new content and timing", body = Object), (status = 400, description = "No refreshable step, or wrong key")))]
pub async fn b_refresh(
    State(st): State<AppState>,
    Caller(app): Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> TResult {
    let g = Gen::B;
    let id = session_id(g, &id)?;
    let b = Body::parse(g, &body)?;
    b.only(&["resultsAccessKey"])?;
    let key = b.required_string("resultsAccessKey", 200)?;
    let step = st
        .verification
        .refresh_step(&app, &id, &key, st.clock.now())
        .await
        .map_err(core(g))?;
    Ok(ok(json!({ "nextStep": views::step(&step) })))
}

#[utoipa::path(get, path = "/api/v1/network/providers/contracts", tag = TAG_B, security(("secret_key" = [])),
    responses((status = 200, description = "`{providerContracts}`: what each provider needs and supports", body = Object)))]
pub async fn b_contracts(State(st): State<AppState>, Caller(app): Caller) -> TResult {
    let url = st.verification.public_url();
    let list: Vec<Value> = st
        .verification
        .available_providers(&app)
        .map(|p| views::contract(url, p.as_ref()))
        .collect();
    Ok(ok(json!({ "providerContracts": list })))
}

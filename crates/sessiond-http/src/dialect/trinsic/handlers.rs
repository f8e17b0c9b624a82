//! Handlers of both Trinsic generations. Each parses and bounds its input, calls one
//! verification-service method, and renders the generation's shape.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Map, Value, json};
use sessiond_core::application::{Application, TrinsicGeneration};
use sessiond_core::store::VerificationOrder;
use sessiond_core::verification::model::DISCLOSED_FIELDS;
use sessiond_core::verification::service::NewVerification;
use sessiond_core::verification::{Flow, Options, VerificationId};

use super::error::{Gen, TrinsicError};
use super::views;
use crate::AppState;
use crate::auth::Caller;

const TAG_A: &str = "trinsic-connect";
const TAG_B: &str = "trinsic-api";
const TAG: &str = "trinsic";
type TResult = Result<Response, TrinsicError>;

/// Largest page of a session listing (both generations' SDKs enforce 1..50).
const MAX_PAGE_SIZE: u32 = 50;
const DEFAULT_PAGE_SIZE: u32 = 10;
const MAX_ID_LEN: usize = 100;
/// Capabilities generation B clients may declare (2.1.0).
const CAPABILITIES: [&str; 7] = [
    "LaunchBrowser",
    "DeeplinkToMobile",
    "ShowContent",
    "RefreshStepContent",
    "CaptureRedirect",
    "PollResult",
    "PollAfterRedirect",
];

fn ok(v: Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        v.to_string(),
    )
        .into_response()
}

/// The generation that answers on paths both generations share.
fn shared_gen(app: &Application) -> Gen {
    match app.settings.trinsic_generation {
        TrinsicGeneration::Connect => Gen::A,
        TrinsicGeneration::Api => Gen::B,
    }
}

fn core(g: Gen) -> impl Fn(sessiond_core::Error) -> TrinsicError {
    move |e| TrinsicError::from_core(g, &e)
}

fn session_id(g: Gen, id: &str) -> Result<VerificationId, TrinsicError> {
    VerificationId::parse(id).ok_or_else(|| TrinsicError::not_found(g, "session"))
}

/// A JSON object body with case-insensitive member names (the real service binds them that way).
/// An empty body or `null` is an empty object: the SDKs send nothing when no request is given.
struct Body {
    g: Gen,
    members: Vec<(String, Value)>,
}

impl Body {
    fn parse(g: Gen, bytes: &Bytes) -> Result<Self, TrinsicError> {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| TrinsicError::bad_request(g, "", "the body is not UTF-8"))?;
        if text.trim().is_empty() {
            return Ok(Body {
                g,
                members: Vec::new(),
            });
        }
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(m)) => Ok(Body {
                g,
                members: m.into_iter().collect(),
            }),
            Ok(Value::Null) => Ok(Body {
                g,
                members: Vec::new(),
            }),
            Ok(_) => Err(TrinsicError::bad_request(
                g,
                "",
                "the body must be a JSON object",
            )),
            Err(e) => Err(TrinsicError::bad_request(
                g,
                "",
                format!("the body is not valid JSON: {e}"),
            )),
        }
    }

    /// Fails on a member that is not in `known` (compared case-insensitively).
    fn only(&self, known: &[&str]) -> Result<(), TrinsicError> {
        match self
            .members
            .iter()
            .find(|(k, _)| !known.iter().any(|n| n.eq_ignore_ascii_case(k)))
        {
            Some((k, _)) => Err(TrinsicError::bad_request(
                self.g,
                k,
                format!("`{k}` is not a member of this request"),
            )),
            None => Ok(()),
        }
    }

    fn get(&self, name: &str) -> Option<&Value> {
        self.members
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
            .filter(|v| !v.is_null())
    }

    fn bad(&self, name: &str, why: &str) -> TrinsicError {
        TrinsicError::bad_request(self.g, name, format!("`{name}` {why}"))
    }

    fn string(&self, name: &str, max: usize) -> Result<Option<String>, TrinsicError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) if s.len() <= max && !s.chars().any(char::is_control) => {
                Ok(Some(s.clone()))
            }
            Some(Value::String(_)) => Err(self.bad(
                name,
                &format!("must be at most {max} bytes without control characters"),
            )),
            Some(_) => Err(self.bad(name, "must be a string")),
        }
    }

    fn required_string(&self, name: &str, max: usize) -> Result<String, TrinsicError> {
        match self.string(name, max)? {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(self.bad(name, "is required")),
        }
    }

    fn bool(&self, name: &str) -> Result<bool, TrinsicError> {
        match self.get(name) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(self.bad(name, "must be true or false")),
        }
    }

    fn strings(&self, name: &str, max_items: usize) -> Result<Vec<String>, TrinsicError> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(Value::Array(a)) if a.len() <= max_items => a
                .iter()
                .map(|v| match v {
                    Value::String(s) if !s.is_empty() && s.len() <= MAX_ID_LEN => Ok(s.clone()),
                    _ => Err(self.bad(
                        name,
                        &format!("must hold non-empty strings of at most {MAX_ID_LEN} bytes"),
                    )),
                })
                .collect(),
            Some(_) => Err(self.bad(
                name,
                &format!("must be an array of at most {max_items} strings"),
            )),
        }
    }

    fn object(&self, name: &str) -> Result<Option<Map<String, Value>>, TrinsicError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m.clone())),
            Some(_) => Err(self.bad(name, "must be an object")),
        }
    }
}

/// Generation A's twelve disclosure flags; omitted flags are requested (true).
fn disclosed_fields(b: &Body) -> Result<Option<Vec<bool>>, TrinsicError> {
    let Some(m) = b.object("disclosedFields")? else {
        return Ok(None);
    };
    if let Some(k) = m
        .keys()
        .find(|k| !DISCLOSED_FIELDS.iter().any(|f| f.eq_ignore_ascii_case(k)))
    {
        return Err(b.bad("disclosedFields", &format!("has an unknown member `{k}`")));
    }
    DISCLOSED_FIELDS
        .iter()
        .map(|f| {
            match m
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(f))
                .map(|(_, v)| v)
            {
                None | Some(Value::Null) => Ok(true),
                Some(Value::Bool(v)) => Ok(*v),
                Some(_) => Err(b.bad("disclosedFields", &format!("`{f}` must be a boolean"))),
            }
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

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

struct ListQuery {
    order: VerificationOrder,
    descending: bool,
    page_size: u32,
    page: u64,
}

fn list_query(g: Gen, raw: Option<&str>) -> Result<ListQuery, TrinsicError> {
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

async fn list(st: &AppState, app: &Application, g: Gen, raw: Option<&str>) -> TResult {
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

fn session_view(g: Gen, v: &sessiond_core::verification::Verification) -> Value {
    if g == Gen::A {
        views::session_a(v)
    } else {
        views::session_b(v)
    }
}

async fn results(
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

fn results_view(
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

// ---- generation B creation and steps ----

fn created_b(c: &sessiond_core::verification::service::Created) -> Response {
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
    let c = st
        .verification
        .create(&app, req, st.clock.now())
        .await
        .map_err(core(g))?;
    Ok(created_b(&c))
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
    let c = st
        .verification
        .create(&app, req, st.clock.now())
        .await
        .map_err(core(g))?;
    Ok(created_b(&c))
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
    let capabilities = b.strings("capabilities", 20)?;
    if capabilities.is_empty() {
        return Err(b.bad("capabilities", "must list at least one capability"));
    }
    if let Some(c) = capabilities
        .iter()
        .find(|c| !CAPABILITIES.contains(&c.as_str()))
    {
        return Err(b.bad(
            "capabilities",
            &format!(
                "has an unknown capability `{c}`; known: {}",
                CAPABILITIES.join(", ")
            ),
        ));
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
    let c = st
        .verification
        .create(&app, req, st.clock.now())
        .await
        .map_err(core(g))?;
    let (Some(step), Some(collection)) = (&c.next_step, c.collection) else {
        return Err(TrinsicError::from_core(
            g,
            &sessiond_core::Error::Internal("advanced session without a step".into()),
        ));
    };
    Ok(ok(json!({
        "sessionId": c.verification.id.as_str(),
        "resultCollection": {
            "method": collection.as_str(),
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

// ---- attachments and network ----

async fn attachment(st: &AppState, app: &Application, g: Gen, body: &Bytes) -> TResult {
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

/// ITU country calling codes of the countries our providers cover, longest first.
fn country_of_phone(phone: &str) -> Option<&'static str> {
    let digits = phone.strip_prefix('+')?;
    [
        ("1", "US"),
        ("44", "GB"),
        ("52", "MX"),
        ("55", "BR"),
        ("62", "ID"),
    ]
    .into_iter()
    .find(|(code, _)| digits.starts_with(code))
    .map(|(_, c)| c)
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
        let inner = Body {
            g,
            members: info.into_iter().collect(),
        };
        inner.only(&["phoneNumber", "countries", "subdivisions", "ipAddresses"])?;
        inner.strings("subdivisions", 100)?;
        inner.strings("ipAddresses", 100)?;
        (
            inner.string("phoneNumber", 32)?,
            inner.strings("countries", 300)?,
        )
    };
    let mut wanted: Vec<String> = countries.iter().map(|c| c.to_ascii_uppercase()).collect();
    if let Some(c) = phone.as_deref().and_then(country_of_phone) {
        wanted.push(c.to_owned());
    }
    let url = st.verification.public_url();
    let render = |p: &std::sync::Arc<dyn sessiond_core::verification::provider::Provider>| {
        if g == Gen::A {
            views::recommendation_a(url, p.as_ref())
        } else {
            views::recommendation_b(url, p.as_ref())
        }
    };
    let (relevant, remainder): (Vec<_>, Vec<_>) =
        st.verification.available_providers(&app).partition(|p| {
            p.info()
                .geography
                .iter()
                .any(|g| wanted.iter().any(|w| w == g))
        });
    // sessiond keeps no network of reusable identities, so nothing is ever "recognized".
    Ok(ok(json!({
        "recognized": [],
        "relevant": relevant.iter().map(|p| render(p)).collect::<Vec<_>>(),
        "remainder": remainder.iter().map(|p| render(p)).collect::<Vec<_>>(),
    })))
}

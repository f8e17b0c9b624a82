//! Webhook endpoints of the calling application: register, change, rotate the secret, look at
//! deliveries and attempts, replay.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sessiond_core::Error;
use sessiond_core::clock::Timestamp;
use sessiond_core::ids::EndpointId;
use sessiond_core::webhooks::{
    Attempt, Delivery, DeliveryState, Endpoint, EndpointInput, MAX_DESCRIPTION, MAX_URL, Replay,
};
use utoipa::ToSchema;

use super::{ApiError, ErrorBody};
use crate::AppState;
use crate::auth::Caller;
use crate::body::{JsonObject, Problem};

/// A registered webhook endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointView {
    /// Always `webhook_endpoint`.
    pub object: &'static str,
    pub id: String,
    pub url: String,
    pub description: String,
    /// The event types delivered; empty means every type.
    pub event_types: Vec<&'static str>,
    pub enabled: bool,
    /// While a rotated-out secret still signs beside the new one: until when (Unix ms).
    pub previous_secret_until: Option<i64>,
    /// The signing secret (`whsec_…`). Present only in the answer that created it (create,
    /// rotate_secret): it is stored sealed and cannot be read back.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

fn view(e: &Endpoint, now: Timestamp) -> EndpointView {
    EndpointView {
        object: "webhook_endpoint",
        id: e.id.to_string(),
        url: e.url.clone(),
        description: e.description.clone(),
        event_types: e.event_types.iter().map(|t| t.as_str()).collect(),
        enabled: e.enabled,
        previous_secret_until: e
            .previous_until
            .filter(|t| *t > now)
            .map(Timestamp::as_millis),
        secret: None,
        created_at: e.created_at.as_millis(),
        updated_at: e.updated_at.as_millis(),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointList {
    /// Always `list`.
    pub object: &'static str,
    pub data: Vec<EndpointView>,
}

/// One event on its way to the endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    pub event_id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub occurred_at: i64,
    /// `pending`, `succeeded` or `failed` (every attempt of the schedule failed).
    pub state: &'static str,
    pub attempts: u32,
    /// When the next attempt is due (pending deliveries).
    pub next_attempt_at: Option<i64>,
    /// The receiver's last HTTP status.
    pub last_status: Option<u16>,
    pub updated_at: i64,
}

fn delivery_view(d: Delivery) -> DeliveryView {
    DeliveryView {
        event_id: d.event_id,
        kind: d.event_type.as_str(),
        occurred_at: d.occurred_at.as_millis(),
        state: d.state.as_str(),
        attempts: d.attempts,
        next_attempt_at: d.next_at.map(Timestamp::as_millis),
        last_status: d.last_status,
        updated_at: d.updated_at.as_millis(),
    }
}

/// One try at a delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    pub id: String,
    pub event_id: String,
    /// 1 for the first try.
    pub attempt: u32,
    pub at: i64,
    pub succeeded: bool,
    pub response_code: Option<u16>,
    pub latency_ms: u32,
    /// The start of the receiver's answer (at most 1 KiB).
    pub response_body: String,
    /// Why no answer came, when none did.
    pub error: Option<String>,
}

fn attempt_view(a: Attempt) -> AttemptView {
    AttemptView {
        id: a.id,
        event_id: a.event_id,
        attempt: a.number,
        at: a.at.as_millis(),
        succeeded: a.succeeded,
        response_code: a.response_code,
        latency_ms: a.latency_ms,
        response_body: a.response_excerpt,
        error: a.error,
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryList {
    pub object: &'static str,
    pub data: Vec<DeliveryView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptList {
    pub object: &'static str,
    pub data: Vec<AttemptView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Replayed {
    /// How many deliveries were queued again.
    pub queued: u64,
}

/// A body problem in sessiond's words.
pub(super) fn problem(p: Problem) -> Error {
    match p {
        Problem::NotUtf8 => Error::invalid("body", "is not UTF-8"),
        Problem::NotJson(m) => Error::invalid("body", format!("is not JSON: {m}")),
        Problem::NotAnObject => Error::invalid("body", "must be a JSON object"),
        Problem::Unknown(m) => Error::invalid(m, "is not a parameter of this operation"),
        Problem::Type { member, expected } => Error::invalid(member, format!("must be {expected}")),
        Problem::Missing(m) => Error::invalid(m, "is required"),
        Problem::TooLong { member, max } => Error::invalid(
            member,
            format!("must be at most {max} bytes without control characters"),
        ),
        Problem::TooManyItems { member, max_items } => Error::invalid(
            member,
            format!("must be a list of at most {max_items} items"),
        ),
        Problem::BadItem { member, max_item } => Error::invalid(
            member,
            format!("items must be non-empty strings of at most {max_item} bytes"),
        ),
    }
}

fn endpoint_input(body: &Bytes, create: bool) -> Result<EndpointInput, Error> {
    let b = JsonObject::parse(body).map_err(problem)?;
    b.only(&["url", "description", "event_types", "enabled"])
        .map_err(problem)?;
    let url = if create {
        Some(b.required_str("url").map_err(problem)?)
    } else {
        b.str("url").map_err(problem)?
    };
    if url.as_ref().is_some_and(|u| u.len() > MAX_URL) {
        return Err(Error::invalid(
            "url",
            format!("must be at most {MAX_URL} bytes"),
        ));
    }
    let description = b.str("description").map_err(problem)?;
    if description
        .as_ref()
        .is_some_and(|d| d.len() > MAX_DESCRIPTION)
    {
        return Err(Error::invalid(
            "description",
            format!("must be at most {MAX_DESCRIPTION} bytes"),
        ));
    }
    let event_types = if b.has("event_types") {
        Some(b.bounded_strings("event_types", 64, 64).map_err(problem)?)
    } else {
        None
    };
    Ok(EndpointInput {
        url,
        description,
        event_types,
        enabled: b.bool("enabled").map_err(problem)?,
    })
}

fn endpoint_id(id: &str) -> Result<EndpointId, Error> {
    EndpointId::parse(id).ok_or(Error::NotFound { kind: "endpoint" })
}

/// Query parameters `name=value`, each at most once, none unknown.
fn query_pairs(raw: Option<&str>, allowed: &[&str]) -> Result<Vec<(String, String)>, Error> {
    let raw = raw.unwrap_or("");
    if raw.len() > 512 {
        return Err(Error::invalid("query", "is longer than 512 bytes"));
    }
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in form_urlencoded::parse(raw.as_bytes()) {
        if !allowed.contains(&k.as_ref()) {
            return Err(Error::invalid(
                "query",
                format!(
                    "unknown parameter {:?}",
                    k.chars().take(64).collect::<String>()
                ),
            ));
        }
        if out.iter().any(|(seen, _)| *seen == k) {
            return Err(Error::invalid(k.into_owned(), "is given twice"));
        }
        out.push((k.into_owned(), v.into_owned()));
    }
    Ok(out)
}

fn limit_of(pairs: &[(String, String)]) -> Result<u32, Error> {
    match pairs.iter().find(|(k, _)| k == "limit") {
        None => Ok(50),
        Some((_, v)) => v
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=sessiond_core::webhooks::service::MAX_LISTING).contains(n))
            .ok_or_else(|| Error::invalid("limit", "must be 1 to 500")),
    }
}

/// Registers a webhook endpoint. The answer carries the signing secret, once.
#[utoipa::path(post, path = "/sessiond/v1/webhooks", tag = "sessiond", security(("secret_key" = [])),
    request_body(content = Object, description = "`{url, event_types?: [type…], description?, enabled?}`; `event_types` empty or absent: every type"),
    responses(
        (status = 201, description = "Registered; `secret` is shown only here", body = EndpointView),
        (status = 401, description = "Missing, malformed, unknown or revoked key", body = ErrorBody),
        (status = 422, description = "Bad URL, unknown event type or too many endpoints", body = ErrorBody),
    ))]
pub(super) async fn create_endpoint(
    State(st): State<AppState>,
    Caller(app): Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    let input = endpoint_input(&body, true)?;
    let now = st.clock.now();
    let (e, secret) = st.webhooks.create(&app, input, now).await?;
    let mut v = view(&e, now);
    v.secret = Some(secret.expose().to_string());
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

/// The application's webhook endpoints, oldest first.
#[utoipa::path(get, path = "/sessiond/v1/webhooks", tag = "sessiond", security(("secret_key" = [])),
    responses(
        (status = 200, description = "Every endpoint", body = EndpointList),
        (status = 401, description = "Missing, malformed, unknown or revoked key", body = ErrorBody),
    ))]
pub(super) async fn list_endpoints(
    State(st): State<AppState>,
    Caller(app): Caller,
) -> Result<Json<EndpointList>, ApiError> {
    let now = st.clock.now();
    let data = st.webhooks.list(&app).await?;
    Ok(Json(EndpointList {
        object: "list",
        data: data.iter().map(|e| view(e, now)).collect(),
    }))
}

/// One webhook endpoint.
#[utoipa::path(get, path = "/sessiond/v1/webhooks/{endpoint_id}", tag = "sessiond", security(("secret_key" = [])),
    params(("endpoint_id" = String, Path, description = "`ep_…`")),
    responses(
        (status = 200, description = "The endpoint", body = EndpointView),
        (status = 401, description = "Missing, malformed, unknown or revoked key", body = ErrorBody),
        (status = 404, description = "No such endpoint for this key", body = ErrorBody),
    ))]
pub(super) async fn get_endpoint(
    State(st): State<AppState>,
    Caller(app): Caller,
    Path(id): Path<String>,
) -> Result<Json<EndpointView>, ApiError> {
    let e = st.webhooks.get(&app, &endpoint_id(&id)?).await?;
    Ok(Json(view(&e, st.clock.now())))
}

/// Changes an endpoint's URL, event types, description or enabled flag (only those given).
#[utoipa::path(patch, path = "/sessiond/v1/webhooks/{endpoint_id}", tag = "sessiond", security(("secret_key" = [])),
    params(("endpoint_id" = String, Path, description = "`ep_…`")),
    request_body(content = Object, description = "`{url?, event_types?, description?, enabled?}`"),
    responses(
        (status = 200, description = "The changed endpoint", body = EndpointView),
        (status = 401, description = "Missing, malformed, unknown or revoked key", body = ErrorBody),
        (status = 404, description = "No such endpoint for this key", body = ErrorBody),
        (status = 422, description = "Bad URL or unknown event type", body = ErrorBody),
    ))]
pub(super) async fn update_endpoint(
    State(st): State<AppState>,
    Caller(app): Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<EndpointView>, ApiError> {
    let id = endpoint_id(&id)?;
    let input = endpoint_input(&body, false)?;
    let now = st.clock.now();
    let e = st.webhooks.update(&app, &id, input, now).await?;
    Ok(Json(view(&e, now)))
}

/// Deletes an endpoint with its deliveries and their history.
#[utoipa::path(delete, path = "/sessiond/v1/webhooks/{endpoint_id}", tag = "sessiond", security(("secret_key" = [])),
    params(("endpoint_id" = String, Path, description = "`ep_…`")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing, malformed, unknown or revoked key", body = ErrorBody),
        (status = 404, description = "No such endpoint for this key", body = ErrorBody),
    ))]
pub(super) async fn delete_endpoint(
    State(st): State<AppState>,
    Caller(app): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    st.webhooks.delete(&app, &endpoint_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replaces the signing secret. During `overlap_secs` (default one day, at most seven) every
/// delivery carries a signature by each secret, so receivers can switch without a gap.
#[utoipa::path(post, path = "/sessiond/v1/webhooks/{endpoint_id}/rotate_secret", tag = "sessiond", security(("secret_key" = [])),
    params(("endpoint_id" = String, Path, description = "`ep_…`")),
    request_body(content = Object, description = "`{overlap_secs?}`"),
    responses(
        (status = 200, description = "The endpoint with its new `secret`, shown only here", body = EndpointView),
        (status = 401, description = "Missing, malformed, unknown or revoked key", body = ErrorBody),
        (status = 404, description = "No such endpoint for this key", body = ErrorBody),
        (status = 422, description = "Overlap out of range", body = ErrorBody),
    ))]
pub(super) async fn rotate_secret(
    State(st): State<AppState>,
    Caller(app): Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<EndpointView>, ApiError> {
    let id = endpoint_id(&id)?;
    let b = JsonObject::parse(&body).map_err(problem)?;
    b.only(&["overlap_secs"]).map_err(problem)?;
    let overlap = b.u64("overlap_secs").map_err(problem)?.unwrap_or(86_400);
    let now = st.clock.now();
    let (e, secret) = st.webhooks.rotate_secret(&app, &id, overlap, now).await?;
    let mut v = view(&e, now);
    v.secret = Some(secret.expose().to_string());
    Ok(Json(v))
}

/// The endpoint's deliveries, newest event first.
#[utoipa::path(get, path = "/sessiond/v1/webhooks/{endpoint_id}/deliveries", tag = "sessiond", security(("secret_key" = [])),
    params(("endpoint_id" = String, Path, description = "`ep_…`"),
        ("state" = Option<String>, Query, description = "`pending`, `succeeded` or `failed`"),
        ("limit" = Option<u32>, Query, description = "1 to 500, default 50")),
    responses(
        (status = 200, description = "Deliveries", body = DeliveryList),
        (status = 401, description = "Missing, malformed, unknown or revoked key", body = ErrorBody),
        (status = 404, description = "No such endpoint for this key", body = ErrorBody),
        (status = 422, description = "Bad state or limit", body = ErrorBody),
    ))]
pub(super) async fn list_deliveries(
    State(st): State<AppState>,
    Caller(app): Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<DeliveryList>, ApiError> {
    let id = endpoint_id(&id)?;
    let q = query_pairs(raw.as_deref(), &["state", "limit"])?;
    let state = match q.iter().find(|(k, _)| k == "state") {
        None => None,
        Some((_, v)) => Some(
            DeliveryState::parse(v)
                .ok_or_else(|| Error::invalid("state", "must be pending, succeeded or failed"))?,
        ),
    };
    let list = st
        .webhooks
        .deliveries(&app, &id, state, limit_of(&q)?)
        .await?;
    Ok(Json(DeliveryList {
        object: "list",
        data: list.into_iter().map(delivery_view).collect(),
    }))
}

/// The endpoint's delivery attempts, newest first: status, latency, the start of the answer.
#[utoipa::path(get, path = "/sessiond/v1/webhooks/{endpoint_id}/attempts", tag = "sessiond", security(("secret_key" = [])),
    params(("endpoint_id" = String, Path, description = "`ep_…`"),
        ("event_id" = Option<String>, Query, description = "Only this event's attempts"),
        ("limit" = Option<u32>, Query, description = "1 to 500, default 50")),
    responses(
        (status = 200, description = "Attempts", body = AttemptList),
        (status = 401, description = "Missing, malformed, unknown or revoked key", body = ErrorBody),
        (status = 404, description = "No such endpoint for this key", body = ErrorBody),
        (status = 422, description = "Bad limit", body = ErrorBody),
    ))]
pub(super) async fn list_attempts(
    State(st): State<AppState>,
    Caller(app): Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<AttemptList>, ApiError> {
    let id = endpoint_id(&id)?;
    let q = query_pairs(raw.as_deref(), &["event_id", "limit"])?;
    let event = q
        .iter()
        .find(|(k, _)| k == "event_id")
        .map(|(_, v)| v.as_str());
    if event.is_some_and(|e| e.is_empty() || e.len() > 64) {
        return Err(Error::invalid("event_id", "is not an event id").into());
    }
    let list = st
        .webhooks
        .attempts(&app, &id, event, limit_of(&q)?)
        .await?;
    Ok(Json(AttemptList {
        object: "list",
        data: list.into_iter().map(attempt_view).collect(),
    }))
}

/// Sends events to the endpoint again: one (`event_id`) or every one that occurred in
/// `[since, until)` (Unix ms, at most 31 days apart) of the types it takes.
#[utoipa::path(post, path = "/sessiond/v1/webhooks/{endpoint_id}/replay", tag = "sessiond", security(("secret_key" = [])),
    params(("endpoint_id" = String, Path, description = "`ep_…`")),
    request_body(content = Object, description = "`{event_id}` or `{since, until}`"),
    responses(
        (status = 202, description = "Queued again", body = Replayed),
        (status = 401, description = "Missing, malformed, unknown or revoked key", body = ErrorBody),
        (status = 404, description = "No such endpoint, or no such event for it", body = ErrorBody),
        (status = 422, description = "Neither or both forms, or a bad range", body = ErrorBody),
    ))]
pub(super) async fn replay(
    State(st): State<AppState>,
    Caller(app): Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = endpoint_id(&id)?;
    let b = JsonObject::parse(&body).map_err(problem)?;
    b.only(&["event_id", "since", "until"]).map_err(problem)?;
    let event = b.short_str("event_id", 64).map_err(problem)?;
    let since = b.u64("since").map_err(problem)?;
    let until = b.u64("until").map_err(problem)?;
    let ms = |v: u64| Timestamp(i64::try_from(v).unwrap_or(i64::MAX));
    let which = match (event, since, until) {
        (Some(e), None, None) => Replay::Event(e),
        (None, Some(s), Some(u)) => Replay::Range {
            since: ms(s),
            until: ms(u),
        },
        _ => {
            return Err(
                Error::invalid("body", "give either event_id, or both since and until").into(),
            );
        }
    };
    let queued = st.webhooks.replay(&app, &id, which, st.clock.now()).await?;
    Ok((StatusCode::ACCEPTED, Json(Replayed { queued })).into_response())
}

//! The revocation feed: which sessions stopped being usable, for verifiers that check session
//! tokens offline and must not accept a token of a revoked session until its `exp`.

use std::time::Duration;

use axum::Json;
use axum::extract::{RawQuery, State};
use serde::Serialize;
use sessiond_core::Error;
use sessiond_core::events::{MAX_FEED_PAGE, Position, Revocation};
use utoipa::ToSchema;

use super::{ApiError, ErrorBody};
use crate::AppState;
use crate::auth::Caller;

/// Longest a reader may ask to wait for news.
pub const MAX_WAIT_SECS: u64 = 30;
/// How often a waiting reader looks again for events other nodes wrote (this node's own wake
/// it at once).
const POLL: Duration = Duration::from_millis(500);
/// Room left under the request timeout for the answer itself.
const ANSWER_MARGIN: Duration = Duration::from_secs(2);

/// One session that can no longer be used.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevocationView {
    pub session_id: String,
    /// Absent only for events written before the user was known.
    pub user_id: Option<String>,
    /// `session.revoked`, `session.ended`, `session.removed`, `session.replaced`,
    /// `session.expired`, or `user.sessions.removed` (one entry per session it removed).
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// When the session stopped being usable (Unix milliseconds).
    pub at: i64,
    /// The session's absolute expiry (Unix milliseconds): no token of the session outlives it,
    /// so a verifier may drop the entry afterwards.
    pub expire_at: Option<i64>,
}

/// A page of the feed.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevocationPage {
    /// Always `revocations`.
    pub object: &'static str,
    pub data: Vec<RevocationView>,
    /// Pass as `after` to read on. Equal to the `after` given when nothing is new.
    pub next: String,
    /// Whether more revocations are ready now (read again at once).
    pub has_more: bool,
}

struct FeedQuery {
    after: Position,
    wait: Duration,
    limit: u32,
}

fn parse(raw: Option<&str>) -> Result<FeedQuery, Error> {
    let mut q = FeedQuery {
        after: Position::START,
        wait: Duration::ZERO,
        limit: 100,
    };
    let raw = raw.unwrap_or("");
    if raw.len() > 512 {
        return Err(Error::invalid("query", "is longer than 512 bytes"));
    }
    for (k, v) in form_urlencoded::parse(raw.as_bytes()) {
        match k.as_ref() {
            "after" => {
                q.after = Position::decode(&v)
                    .ok_or_else(|| Error::invalid("after", "is not a cursor this feed returned"))?;
            }
            "wait" => {
                let secs = v
                    .parse::<u64>()
                    .ok()
                    .filter(|s| *s <= MAX_WAIT_SECS)
                    .ok_or_else(|| {
                        Error::invalid("wait", format!("must be 0 to {MAX_WAIT_SECS} seconds"))
                    })?;
                q.wait = Duration::from_secs(secs);
            }
            "limit" => {
                q.limit = v
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_FEED_PAGE).contains(n))
                    .ok_or_else(|| {
                        Error::invalid("limit", format!("must be 1 to {MAX_FEED_PAGE}"))
                    })?;
            }
            other => {
                return Err(Error::invalid(
                    "query",
                    format!(
                        "unknown parameter {:?}",
                        other.chars().take(64).collect::<String>()
                    ),
                ));
            }
        }
    }
    Ok(q)
}

fn view(r: Revocation) -> RevocationView {
    RevocationView {
        session_id: r.session_id,
        user_id: r.user_id,
        kind: r.kind.as_str(),
        at: r.at,
        expire_at: r.expire_at,
    }
}

/// Sessions revoked, ended, removed or replaced since a cursor.
///
/// Without `after`, the feed starts at the oldest revocation still retained (events are kept
/// for `event_retention_secs`, never less than the longest session token lifetime). With
/// `wait`, an empty answer is held until a revocation arrives or `wait` seconds pass
/// (long-poll), within the server's request timeout.
#[utoipa::path(
    get,
    path = "/sessiond/v1/revocations",
    tag = "sessiond",
    security(("secret_key" = [])),
    params(
        ("after" = Option<String>, Query, description = "Cursor from a previous page's `next`"),
        ("wait" = Option<u64>, Query, description = "Seconds to hold an empty answer (0 to 30)"),
        ("limit" = Option<u32>, Query, description = "Most entries per page (1 to 1000, default 100)"),
    ),
    responses(
        (status = 200, description = "Revocations after the cursor, oldest first", body = RevocationPage),
        (status = 401, description = "Missing, malformed, unknown or revoked key", body = ErrorBody),
        (status = 422, description = "Bad cursor, wait or limit", body = ErrorBody),
    )
)]
pub(super) async fn revocations(
    State(st): State<AppState>,
    Caller(app): Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<RevocationPage>, ApiError> {
    let q = parse(raw.as_deref())?;
    let budget = q
        .wait
        .min(st.options.request_timeout.saturating_sub(ANSWER_MARGIN));
    let deadline = tokio::time::Instant::now() + budget;
    // Subscribed before the first read, so an event written between the read and the wait
    // still wakes this reader.
    let mut wake = st.events.signal().subscribe();
    loop {
        let (page, next) = st.events.revocations(&app, q.after, q.limit).await?;
        let now = tokio::time::Instant::now();
        if !page.is_empty() || now >= deadline {
            let has_more = page.len() >= q.limit as usize;
            return Ok(Json(RevocationPage {
                object: "revocations",
                data: page.into_iter().map(view).collect(),
                next: next.encode(),
                has_more,
            }));
        }
        let nap = POLL.min(deadline - now);
        // Either this node wrote an event, or it is time to look for other nodes' events.
        let _ = tokio::time::timeout(nap, wake.changed()).await;
    }
}

//! Endpoints, deliveries and attempts, and the rules on endpoint input.

use crate::application::AppId;
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::events::{Event, EventType};
use crate::ids::EndpointId;

/// Longest endpoint URL.
pub const MAX_URL: usize = 2048;
/// Longest description.
pub const MAX_DESCRIPTION: usize = 1024;
/// Most endpoints one application may register.
pub const MAX_ENDPOINTS: usize = 50;
/// Longest overlap during which a rotated-out secret still signs.
pub const MAX_OVERLAP_SECS: u64 = 7 * 24 * 3600;
/// Bytes of a receiver's answer kept with an attempt.
pub const MAX_RESPONSE_EXCERPT: usize = 1024;

/// A registered receiver of an application's events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub id: EndpointId,
    pub application_id: AppId,
    pub url: String,
    pub description: String,
    /// The kinds delivered; empty means every kind.
    pub event_types: Vec<EventType>,
    pub enabled: bool,
    /// The signing secret's bytes, sealed (context [`Endpoint::secret_context`]).
    pub secret_sealed: Vec<u8>,
    /// The secret it replaced, still signing until `previous_until` (rotation overlap).
    pub previous_secret_sealed: Option<Vec<u8>>,
    pub previous_until: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub version: i64,
}

impl Endpoint {
    /// The event types it receives, for people: "every type" or a comma-separated list.
    pub fn types_label(&self) -> String {
        if self.event_types.is_empty() {
            "every type".to_owned()
        } else {
            self.event_types
                .iter()
                .map(|t| t.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        }
    }
}

impl Endpoint {
    pub fn secret_context(id: &EndpointId) -> String {
        format!("webhook_secret:{id}")
    }

    pub fn wants(&self, kind: EventType) -> bool {
        self.event_types.is_empty() || self.event_types.contains(&kind)
    }
}

/// What an operator may set on an endpoint (create: every field given or defaulted; update:
/// only the given ones change).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EndpointInput {
    pub url: Option<String>,
    pub description: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

/// An endpoint URL: absolute http(s), a host, no credentials, no fragment. Where it may point
/// (private networks…) is checked when sending, after name resolution.
pub fn check_url(url: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::invalid("url", why.to_owned()));
    if url.is_empty() || url.len() > MAX_URL {
        return bad(&format!("must be 1 to {MAX_URL} bytes"));
    }
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return bad("must not contain spaces or control characters");
    }
    let rest = if let Some(r) = url.strip_prefix("https://") {
        r
    } else if let Some(r) = url.strip_prefix("http://") {
        r
    } else {
        return bad("must start with https:// or http://");
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return bad("must not contain credentials");
    }
    if url.contains('#') {
        return bad("must not contain a fragment");
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    };
    if host.is_empty() {
        return bad("must name a host");
    }
    Ok(())
}

/// Parses event type names; unknown names are refused (a typo would silently deliver nothing).
pub fn parse_event_types(names: &[String]) -> Result<Vec<EventType>> {
    if names.len() > EventType::ALL.len() {
        return Err(Error::invalid("event_types", "lists too many types"));
    }
    let mut out = Vec::with_capacity(names.len());
    for n in names {
        let t = EventType::parse(n).ok_or_else(|| {
            Error::invalid(
                "event_types",
                format!(
                    "unknown type {:?}; known: {}",
                    n.chars().take(64).collect::<String>(),
                    EventType::ALL.map(EventType::as_str).join(", ")
                ),
            )
        })?;
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

pub fn check_description(d: &str) -> Result<()> {
    if d.len() > MAX_DESCRIPTION || d.chars().any(|c| c.is_control() && c != '\n') {
        return Err(Error::invalid(
            "description",
            format!("must be at most {MAX_DESCRIPTION} bytes without control characters"),
        ));
    }
    Ok(())
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeliveryState {
    /// Waiting for its next attempt (the first, or a retry).
    Pending,
    Succeeded,
    /// Every attempt of the schedule failed.
    Failed,
}

impl DeliveryState {
    pub const ALL: [DeliveryState; 3] = [
        DeliveryState::Pending,
        DeliveryState::Succeeded,
        DeliveryState::Failed,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Succeeded => "succeeded",
            DeliveryState::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// One event on its way to one endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub endpoint_id: EndpointId,
    pub event_id: String,
    pub event_type: EventType,
    pub occurred_at: Timestamp,
    pub state: DeliveryState,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due (pending deliveries).
    pub next_at: Option<Timestamp>,
    pub last_status: Option<u16>,
    pub updated_at: Timestamp,
}

/// A delivery claimed by one dispatcher until its lease ends.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    pub endpoint: Endpoint,
    pub event: Event,
    pub attempts: u32,
}

/// New events claimed for their first attempt, by endpoint (see `WebhookStore::claim_fresh`).
#[derive(Debug, Clone, PartialEq)]
pub struct Fresh {
    pub endpoint: Endpoint,
    /// The events the endpoint wants, oldest first.
    pub events: Vec<Event>,
    /// Where the endpoint's cursor goes once they are sent (past unwanted kinds too).
    pub through: crate::events::Position,
}

impl Fresh {
    /// The endpoint's batch from the events read after its cursor: the cursor moves past all of
    /// them, and only the kinds it wants are sent. `None` when nothing was read.
    pub fn of(endpoint: Endpoint, read: Vec<Event>) -> Option<Fresh> {
        let through = read.last()?.position;
        let events = read
            .into_iter()
            .filter(|e| endpoint.wants(e.event.kind))
            .collect();
        Some(Fresh {
            endpoint,
            events,
            through,
        })
    }
}

/// One try at sending a delivery, as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub id: String,
    pub endpoint_id: EndpointId,
    pub event_id: String,
    /// 1 for the first try.
    pub number: u32,
    pub at: Timestamp,
    pub succeeded: bool,
    pub response_code: Option<u16>,
    pub latency_ms: u32,
    /// The start of the receiver's answer (at most [`MAX_RESPONSE_EXCERPT`] bytes).
    pub response_excerpt: String,
    /// Why no answer came (timeout, refused address…).
    pub error: Option<String>,
}

/// What happens to a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    Succeeded,
    RetryAt(Timestamp),
    Failed,
}

impl NextStep {
    /// The delivery's state after this step, and when it is due again (only a retry is).
    pub fn state(self) -> (DeliveryState, Option<Timestamp>) {
        match self {
            NextStep::Succeeded => (DeliveryState::Succeeded, None),
            NextStep::RetryAt(t) => (DeliveryState::Pending, Some(t)),
            NextStep::Failed => (DeliveryState::Failed, None),
        }
    }
}

/// Which deliveries a replay sends again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replay {
    /// One event (it need not have been delivered before, if the endpoint wants its type).
    Event(String),
    /// Every event the endpoint wants that occurred in `[since, until)`.
    Range { since: Timestamp, until: Timestamp },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_plain_http_or_https_with_a_host() {
        for ok in [
            "https://example.com/hook",
            "http://127.0.0.1:8080/x?y=1",
            "https://[::1]:9000/",
            "https://h",
        ] {
            assert!(check_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "ftp://x",
            "https://",
            "https://user:pw@example.com/",
            "https://example.com/#frag",
            "https://exa mple.com",
            "https://example.com/\n",
            "javascript:alert(1)",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
        assert!(check_url(&format!("https://e.com/{}", "a".repeat(MAX_URL))).is_err());
    }

    #[test]
    fn event_types_are_known_names_deduplicated() {
        let names = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            parse_event_types(&names(&[
                "session.revoked",
                "user.created",
                "session.revoked"
            ]))
            .ok(),
            Some(vec![EventType::SessionRevoked, EventType::UserCreated])
        );
        assert!(parse_event_types(&names(&["session.revokd"])).is_err());
        assert_eq!(parse_event_types(&[]).ok(), Some(vec![]));
    }
}

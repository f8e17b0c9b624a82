//! Reading the outbox: the revocation feed.

use std::sync::Arc;

use super::{Event, EventSignal, EventType, Position, SessionSnapshot};
use crate::application::Application;
use crate::error::{Error, Result};
use crate::store::Store;

/// Most revocations one read returns.
pub const MAX_FEED_PAGE: u32 = 1000;

/// One session that can no longer be used, as the revocation feed lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Revocation {
    pub session_id: String,
    pub user_id: Option<String>,
    pub kind: EventType,
    /// When the session stopped being usable, in Unix milliseconds.
    pub at: i64,
    /// The session's last deadline: a token of this session cannot outlive it, so a verifier
    /// may forget the entry afterwards.
    pub expire_at: Option<i64>,
    pub position: Position,
}

impl Revocation {
    /// One entry per session the event stopped: a bulk deletion lists every session it took.
    fn of(e: Event) -> Vec<Self> {
        let at = e.event.occurred_at.as_millis();
        if e.event.kind == EventType::UserSessionsRemoved {
            let ids = e.event.data["session_ids"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            return ids
                .iter()
                .filter_map(|id| id.as_str())
                .map(|id| Revocation {
                    session_id: id.to_owned(),
                    user_id: Some(e.event.subject.clone()),
                    kind: e.event.kind,
                    at,
                    expire_at: None,
                    position: e.position,
                })
                .collect();
        }
        let snapshot: Option<SessionSnapshot> = serde_json::from_value(e.event.data).ok();
        vec![Revocation {
            session_id: e.event.subject,
            user_id: snapshot.as_ref().map(|s| s.user_id.clone()),
            kind: e.event.kind,
            at,
            expire_at: snapshot.map(|s| s.expire_at),
            position: e.position,
        }]
    }
}

pub struct EventService {
    store: Arc<dyn Store>,
    signal: Arc<EventSignal>,
}

impl EventService {
    pub fn new(store: Arc<dyn Store>, signal: Arc<EventSignal>) -> Self {
        EventService { store, signal }
    }

    /// Raised when this node writes an event.
    pub fn signal(&self) -> &Arc<EventSignal> {
        &self.signal
    }

    /// Sessions of `app` revoked, ended, removed or replaced after `after`, oldest first, and
    /// the cursor to read on from (the same cursor when there is nothing new).
    pub async fn revocations(
        &self,
        app: &Application,
        after: Position,
        limit: u32,
    ) -> Result<(Vec<Revocation>, Position)> {
        if limit == 0 || limit > MAX_FEED_PAGE {
            return Err(Error::invalid(
                "limit",
                format!("must be 1 to {MAX_FEED_PAGE}"),
            ));
        }
        let events = self
            .store
            .events_after(&app.id, after, &EventType::REVOCATIONS, limit)
            .await?;
        let next = events.last().map_or(after, |e| e.position);
        Ok((events.into_iter().flat_map(Revocation::of).collect(), next))
    }
}

//! Webhook payloads in Clerk's shape: the envelope `{data, object: "event", type, timestamp,
//! instance_id}` that Clerk's receivers (and `verifyWebhook` of `@clerk/backend`) read, with
//! Clerk's `Session` (plus its `user`) or `User` as `data`. sessiond's own event types use the
//! same envelope.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};
use sessiond_core::Error;
use sessiond_core::application::Application;
use sessiond_core::error::Result;
use sessiond_core::events::{Event, EventType, SessionSnapshot};
use sessiond_core::ids::UserId;
use sessiond_core::login::LoginService;
use sessiond_core::tenancy::Tenancy;
use sessiond_core::webhooks::PayloadRenderer;

use super::views;

pub struct ClerkPayloads {
    tenancy: Arc<Tenancy>,
    login: Arc<LoginService>,
}

impl ClerkPayloads {
    pub fn new(tenancy: Arc<Tenancy>, login: Arc<LoginService>) -> Self {
        ClerkPayloads { tenancy, login }
    }

    /// The user as Clerk shows it now, or a bare reference if it is gone: deliveries happen
    /// after the change, so a user deleted meanwhile can no longer be shown.
    async fn user_now(&self, app: &Application, id: &str) -> Result<Value> {
        let Some(uid) = UserId::parse(id) else {
            return Ok(json!({"object": "user", "id": id}));
        };
        match self.login.get_user(app, &uid).await {
            Ok(u) => Ok(views::user(&u)),
            Err(Error::NotFound { .. }) => Ok(json!({"object": "user", "id": id})),
            Err(e) => Err(e),
        }
    }
}

/// Clerk's `Session` from the snapshot taken when the event happened.
fn session(s: &SessionSnapshot, user: Value) -> Value {
    json!({
        "object": "session",
        "id": s.id,
        "user_id": s.user_id,
        "client_id": s.client_id,
        "actor": s.actor,
        "status": views::status_name(s.status),
        "last_active_organization_id": s.last_active_organization_id,
        "last_active_at": s.last_active_at,
        "latest_activity": null,
        "expire_at": s.expire_at,
        "abandon_at": s.abandon_at,
        "updated_at": s.updated_at,
        "created_at": s.created_at,
        "tasks": null,
        "user": user,
    })
}

/// Lookups shared by the events of one pass: their application and users.
#[derive(Default)]
struct Lookups {
    apps: HashMap<String, Application>,
    users: HashMap<String, Value>,
}

impl ClerkPayloads {
    async fn user_cached(&self, app: &Application, id: &str, l: &mut Lookups) -> Result<Value> {
        if let Some(u) = l.users.get(id) {
            return Ok(u.clone());
        }
        let u = self.user_now(app, id).await?;
        l.users.insert(id.to_owned(), u.clone());
        Ok(u)
    }

    async fn render_with(&self, event: &Event, l: &mut Lookups) -> Result<Vec<u8>> {
        let e = &event.event;
        let app = match l.apps.get(e.application_id.as_str()) {
            Some(a) => a.clone(),
            None => {
                let a = self.tenancy.get_application(&e.application_id).await?;
                l.apps.insert(e.application_id.to_string(), a.clone());
                a
            }
        };
        let data = match e.kind {
            EventType::UserCreated | EventType::UserUpdated => {
                self.user_cached(&app, &e.subject, l).await?
            }
            EventType::UserDeleted => views::deleted("user", &e.subject),
            // sessiond's own payloads: written whole when the event happened, no personal data.
            EventType::VerificationCompleted
            | EventType::VerificationFailed
            | EventType::VerificationRedacted => e.data.clone(),
            EventType::UserSessionsRemoved => {
                let mut d = e.data.clone();
                d["object"] = json!("user_sessions");
                d
            }
            _ => {
                let snapshot: SessionSnapshot = serde_json::from_value(e.data.clone())
                    .map_err(|err| Error::Internal(format!("event {}: {err}", e.id)))?;
                let user = self.user_cached(&app, &snapshot.user_id, l).await?;
                session(&snapshot, user)
            }
        };
        let body = json!({
            "data": data,
            "object": "event",
            "type": e.kind.as_str(),
            // Milliseconds, as every Clerk timestamp.
            "timestamp": e.occurred_at.as_millis(),
            "instance_id": e.application_id,
        });
        serde_json::to_vec(&body).map_err(|err| Error::Internal(err.to_string()))
    }
}

#[async_trait]
impl PayloadRenderer for ClerkPayloads {
    async fn render(&self, event: &Event) -> Result<Vec<u8>> {
        self.render_with(event, &mut Lookups::default()).await
    }

    /// One read per application and per user in the pass, however many events name them.
    async fn render_all(&self, events: &[&Event]) -> Vec<Result<Vec<u8>>> {
        let mut l = Lookups::default();
        let mut out = Vec::with_capacity(events.len());
        for e in events {
            out.push(self.render_with(e, &mut l).await);
        }
        out
    }

    /// Svix's names, which Clerk's receivers (and the `svix` library) read.
    fn header_aliases(&self) -> Option<[&'static str; 3]> {
        Some(["svix-id", "svix-timestamp", "svix-signature"])
    }
}

/// Whether `kind` is one of Clerk's own webhook event types (the others are sessiond's, in
/// Clerk's envelope): what `sessiond webhooks types` and the documentation say of each.
pub fn is_clerk_type(kind: EventType) -> bool {
    matches!(
        kind,
        EventType::SessionCreated
            | EventType::SessionPending
            | EventType::SessionEnded
            | EventType::SessionRemoved
            | EventType::SessionRevoked
            | EventType::UserCreated
            | EventType::UserUpdated
            | EventType::UserDeleted
    )
}

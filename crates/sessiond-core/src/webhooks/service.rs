//! The operations on endpoints that the native API and the CLI expose.

use std::sync::Arc;

use sessiond_crypto::webhook::WebhookSecret;

use super::model::*;
use crate::application::Application;
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::events::EventSignal;
use crate::ids::EndpointId;
use crate::retry::{Attempt as Try, retry_optimistic};
use crate::store::Store;
use crate::vault::Vault;

/// Most deliveries or attempts one listing returns.
pub const MAX_LISTING: u32 = 500;
/// The widest range one replay covers.
pub const MAX_REPLAY_SPAN_MS: i64 = 31 * 24 * 3600 * 1000;

pub struct WebhookService {
    store: Arc<dyn Store>,
    vault: Arc<Vault>,
    /// Raised after an endpoint is written, so this node's delivery loop looks at the endpoints
    /// again at once instead of within its recheck period.
    changes: Option<Arc<EventSignal>>,
}

fn not_found() -> Error {
    Error::NotFound { kind: "endpoint" }
}

fn check_limit(limit: u32) -> Result<()> {
    if limit == 0 || limit > MAX_LISTING {
        return Err(Error::invalid(
            "limit",
            format!("must be 1 to {MAX_LISTING}"),
        ));
    }
    Ok(())
}

impl WebhookService {
    pub fn new(store: Arc<dyn Store>, vault: Arc<Vault>) -> Self {
        WebhookService {
            store,
            vault,
            changes: None,
        }
    }

    /// Raises `signal` whenever an endpoint is created or changed.
    pub fn with_change_signal(mut self, signal: Arc<EventSignal>) -> Self {
        self.changes = Some(signal);
        self
    }

    fn changed(&self) {
        if let Some(s) = &self.changes {
            s.raise();
        }
    }

    fn seal(&self, id: &EndpointId, s: &WebhookSecret) -> Vec<u8> {
        self.vault.seal(&Endpoint::secret_context(id), s.bytes())
    }

    fn open(&self, id: &EndpointId, sealed: &[u8]) -> Result<WebhookSecret> {
        let raw = self
            .vault
            .unseal(&Endpoint::secret_context(id), sealed)
            .map_err(|e| Error::Internal(format!("endpoint {id} secret: {e}")))?;
        Ok(WebhookSecret::from_bytes(&raw))
    }

    /// The secrets that sign a delivery made at `now`: the current one, and the one it replaced
    /// while the rotation overlap lasts.
    pub fn signing_secrets(&self, e: &Endpoint, now: Timestamp) -> Result<Vec<WebhookSecret>> {
        let mut out = vec![self.open(&e.id, &e.secret_sealed)?];
        if let (Some(prev), Some(until)) = (&e.previous_secret_sealed, e.previous_until)
            && now < until
        {
            out.push(self.open(&e.id, prev)?);
        }
        Ok(out)
    }

    /// Registers an endpoint. The secret is returned once, here; only its sealed form is kept.
    pub async fn create(
        &self,
        app: &Application,
        input: EndpointInput,
        now: Timestamp,
    ) -> Result<(Endpoint, WebhookSecret)> {
        let url = input
            .url
            .ok_or_else(|| Error::invalid("url", "is required"))?;
        check_url(&url)?;
        let description = input.description.unwrap_or_default();
        check_description(&description)?;
        let event_types = parse_event_types(&input.event_types.unwrap_or_default())?;
        if self.store.list_endpoints(&app.id).await?.len() >= MAX_ENDPOINTS {
            return Err(Error::invalid(
                "url",
                format!("an application has at most {MAX_ENDPOINTS} endpoints"),
            ));
        }
        let id = EndpointId::new();
        let secret = WebhookSecret::generate();
        let e = Endpoint {
            secret_sealed: self.seal(&id, &secret),
            id,
            application_id: app.id.clone(),
            url,
            description,
            event_types,
            enabled: input.enabled.unwrap_or(true),
            previous_secret_sealed: None,
            previous_until: None,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        self.store.insert_endpoint(&e).await?;
        self.changed();
        Ok((e, secret))
    }

    pub async fn get(&self, app: &Application, id: &EndpointId) -> Result<Endpoint> {
        self.store
            .get_endpoint(&app.id, id)
            .await?
            .ok_or_else(not_found)
    }

    pub async fn list(&self, app: &Application) -> Result<Vec<Endpoint>> {
        Ok(self.store.list_endpoints(&app.id).await?)
    }

    async fn modify(
        &self,
        app: &Application,
        id: &EndpointId,
        now: Timestamp,
        change: impl Fn(&mut Endpoint) -> Result<()> + Send + Sync,
    ) -> Result<Endpoint> {
        let change = &change;
        let e = retry_optimistic(|| async move {
            let mut e = self.get(app, id).await?;
            change(&mut e)?;
            e.version += 1;
            e.updated_at = now.max(e.updated_at);
            match self.store.update_endpoint(&e).await {
                Err(crate::store::StoreError::NotFound) => Err(not_found()),
                written => Try::of_write(written, e),
            }
        })
        .await?;
        self.changed();
        Ok(e)
    }

    /// Changes the given fields.
    pub async fn update(
        &self,
        app: &Application,
        id: &EndpointId,
        input: EndpointInput,
        now: Timestamp,
    ) -> Result<Endpoint> {
        if let Some(u) = &input.url {
            check_url(u)?;
        }
        if let Some(d) = &input.description {
            check_description(d)?;
        }
        let types = input
            .event_types
            .as_deref()
            .map(parse_event_types)
            .transpose()?;
        self.modify(app, id, now, |e| {
            if let Some(u) = &input.url {
                e.url.clone_from(u);
            }
            if let Some(d) = &input.description {
                e.description.clone_from(d);
            }
            if let Some(t) = &types {
                e.event_types.clone_from(t);
            }
            if let Some(on) = input.enabled {
                e.enabled = on;
            }
            Ok(())
        })
        .await
    }

    pub async fn delete(&self, app: &Application, id: &EndpointId) -> Result<()> {
        if self.store.delete_endpoint(&app.id, id).await? {
            Ok(())
        } else {
            Err(not_found())
        }
    }

    /// Replaces the signing secret. For `overlap_secs` the old secret keeps signing beside the
    /// new one, so receivers can switch without rejecting a delivery.
    pub async fn rotate_secret(
        &self,
        app: &Application,
        id: &EndpointId,
        overlap_secs: u64,
        now: Timestamp,
    ) -> Result<(Endpoint, WebhookSecret)> {
        if overlap_secs > MAX_OVERLAP_SECS {
            return Err(Error::invalid(
                "overlap_secs",
                format!("must be 0 to {MAX_OVERLAP_SECS}"),
            ));
        }
        let secret = WebhookSecret::generate();
        let sealed = self.seal(id, &secret);
        let e = self
            .modify(app, id, now, |e| {
                e.previous_secret_sealed = (overlap_secs > 0).then(|| e.secret_sealed.clone());
                e.previous_until = (overlap_secs > 0).then(|| now.plus_secs(overlap_secs));
                e.secret_sealed.clone_from(&sealed);
                Ok(())
            })
            .await?;
        Ok((e, secret))
    }

    pub async fn deliveries(
        &self,
        app: &Application,
        id: &EndpointId,
        state: Option<DeliveryState>,
        limit: u32,
    ) -> Result<Vec<Delivery>> {
        check_limit(limit)?;
        self.get(app, id).await?;
        Ok(self
            .store
            .list_deliveries(&app.id, id, state, limit)
            .await?)
    }

    pub async fn attempts(
        &self,
        app: &Application,
        id: &EndpointId,
        event_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Attempt>> {
        check_limit(limit)?;
        self.get(app, id).await?;
        Ok(self
            .store
            .list_attempts(&app.id, id, event_id, limit)
            .await?)
    }

    /// Sends the chosen events to the endpoint again (at least once more each).
    pub async fn replay(
        &self,
        app: &Application,
        id: &EndpointId,
        which: Replay,
        now: Timestamp,
    ) -> Result<u64> {
        match &which {
            Replay::Event(ev) if ev.is_empty() || ev.len() > 64 => {
                return Err(Error::invalid("event_id", "is not an event id"));
            }
            Replay::Range { since, until }
                if until <= since || until.0 - since.0 > MAX_REPLAY_SPAN_MS =>
            {
                return Err(Error::invalid(
                    "until",
                    "must be after since, at most 31 days later",
                ));
            }
            _ => {}
        }
        self.get(app, id).await?;
        let n = self
            .store
            .replay_deliveries(&app.id, id, &which, now)
            .await?;
        if n == 0 && matches!(which, Replay::Event(_)) {
            return Err(Error::NotFound { kind: "event" });
        }
        Ok(n)
    }
}

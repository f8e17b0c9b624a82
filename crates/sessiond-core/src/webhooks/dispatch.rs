//! The delivery loop's logic, one pass at a time: take up each endpoint's new events by its
//! cursor (under a lease on the endpoint), and due retries and replays (each under its own
//! lease); send them signed; record every attempt; queue a retry for each failure.
//!
//! The first attempt writes no row per delivery: a pass moves the endpoint's cursor and records
//! the attempts, in one transaction, and only an attempt that failed leaves a delivery row to
//! retry. At least once: the cursor moves only after the receivers answered (or failed and were
//! queued); a node that dies mid-send leaves its lease to run out and another node (or itself,
//! restarted) sends again. The leases also make each send exclusive, so several nodes deliver
//! an event once per endpoint unless one stalls past its lease. No order is kept between events:
//! receivers order by the payload's `timestamp` or re-read the object.

use std::sync::Arc;

use async_trait::async_trait;
use sessiond_crypto::webhook::signature_header;

use super::model::*;
use super::service::WebhookService;
use crate::clock::Timestamp;
use crate::error::Result;
use crate::events::Event;
use crate::store::Store;

/// Endpoints whose new events one pass takes up.
const FRESH_ENDPOINTS: u32 = 16;
/// How long a look at whether any endpoint is enabled stands, in ms. It bounds how late a node
/// starts delivering to an endpoint enabled elsewhere (another node, the CLI).
const ENDPOINTS_RECHECK_MS: i64 = 1000;

/// A delivery's request headers.
pub type Headers = Vec<(&'static str, String)>;

/// Turns an event into the bytes a receiver gets (the dialect's JSON shape).
#[async_trait]
pub trait PayloadRenderer: Send + Sync {
    async fn render(&self, event: &Event) -> Result<Vec<u8>>;

    /// Every event of a pass; a renderer may share lookups across them (the default renders
    /// one by one).
    async fn render_all(&self, events: &[&Event]) -> Vec<Result<Vec<u8>>> {
        let mut out = Vec::with_capacity(events.len());
        for e in events {
            out.push(self.render(e).await);
        }
        out
    }

    /// Other names under which this dialect's receivers read the delivery's id, timestamp and
    /// signature headers, sent beside the Standard Webhooks ones (`webhook-id`,
    /// `webhook-timestamp`, `webhook-signature`). None by default.
    fn header_aliases(&self) -> Option<[&'static str; 3]> {
        None
    }
}

/// What came of one POST.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TransportOutcome {
    /// The receiver's HTTP status, if it answered.
    pub status: Option<u16>,
    pub latency_ms: u32,
    /// The start of the answer's body.
    pub excerpt: String,
    /// Why there was no answer (refused address, timeout, connection error).
    pub error: Option<String>,
}

/// Sends one delivery: the HTTP client, with its timeouts and address rules.
#[async_trait]
pub trait Transport: Send + Sync {
    async fn post(
        &self,
        url: &str,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    ) -> TransportOutcome;
}

/// How the loop behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DispatchSettings {
    /// Waits before each retry, in seconds: after the first failed attempt the first entry,
    /// and so on; when they are used up the delivery is failed.
    pub retry_schedule_secs: Vec<u64>,
    /// How long a claim lasts; longer than the transport's timeout.
    pub lease_secs: u64,
    /// Events per endpoint, and retries, taken up per pass.
    pub batch: u32,
}

impl Default for DispatchSettings {
    fn default() -> Self {
        DispatchSettings {
            // The Standard Webhooks schedule: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
            retry_schedule_secs: vec![5, 300, 1800, 7200, 18_000, 36_000, 36_000],
            lease_secs: 60,
            batch: 256,
        }
    }
}

impl DispatchSettings {
    /// What follows a failed attempt number `n` (1-based) made at `now`.
    pub fn after_failure(&self, n: u32, now: Timestamp) -> NextStep {
        match self.retry_schedule_secs.get(n.saturating_sub(1) as usize) {
            Some(wait) => NextStep::RetryAt(now.plus_secs(*wait)),
            None => NextStep::Failed,
        }
    }
}

/// What one pass did: for metrics and logs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DispatchReport {
    /// New events taken up for their first attempt.
    pub queued: u64,
    /// (succeeded, latency in ms) of each attempt made.
    pub attempts: Vec<(bool, u32)>,
    /// Deliveries that used up their schedule in this pass.
    pub failed: u64,
}

pub struct Dispatcher {
    store: Arc<dyn Store>,
    webhooks: Arc<WebhookService>,
    renderer: Arc<dyn PayloadRenderer>,
    transport: Arc<dyn Transport>,
    settings: DispatchSettings,
    /// This node's name on its leases.
    holder: String,
    /// Whether any endpoint was enabled at the last look, when that was, and how many endpoint
    /// writes this node had signalled by then. With none, a pass is skipped rather than run as
    /// claims that cannot find anything: on PostgreSQL those were two statements after every
    /// write burst.
    endpoints: std::sync::Mutex<Option<(Timestamp, bool, u64)>>,
    /// Raised by this node's endpoint writes (`WebhookService::with_change_signal`): a look
    /// taken before the latest one is stale at once.
    endpoint_changes: Option<Arc<crate::events::EventSignal>>,
}

impl Dispatcher {
    pub fn new(
        store: Arc<dyn Store>,
        webhooks: Arc<WebhookService>,
        renderer: Arc<dyn PayloadRenderer>,
        transport: Arc<dyn Transport>,
        settings: DispatchSettings,
        holder: String,
    ) -> Self {
        Dispatcher {
            store,
            webhooks,
            renderer,
            transport,
            settings,
            holder,
            endpoints: std::sync::Mutex::new(None),
            endpoint_changes: None,
        }
    }

    /// Takes `signal` as word that this node wrote an endpoint: the next pass looks again.
    pub fn with_endpoint_changes(mut self, signal: Arc<crate::events::EventSignal>) -> Self {
        self.endpoint_changes = Some(signal);
        self
    }

    /// Whether a pass at `now` can find work: false only while a look younger than
    /// [`ENDPOINTS_RECHECK_MS`], and than this node's last endpoint write, saw no enabled
    /// endpoint.
    async fn endpoints_enabled(&self, now: Timestamp) -> Result<bool> {
        // Counted before the look: a write signalled during it makes the look stale.
        let changes = self.endpoint_changes.as_ref().map_or(0, |s| s.raised());
        let known = self.endpoints.lock().ok().and_then(|k| *k);
        if let Some((at, enabled, seen)) = known
            && seen == changes
            && now.0 >= at.0
            && now.0 - at.0 < ENDPOINTS_RECHECK_MS
        {
            return Ok(enabled);
        }
        let enabled = self.store.any_enabled_endpoint().await?;
        if let Ok(mut k) = self.endpoints.lock() {
            *k = Some((now, enabled, changes));
        }
        Ok(enabled)
    }

    /// One pass at `now`: new events by endpoint cursor, then due retries and replays. Sends run
    /// concurrently; the pass returns when all have been recorded.
    pub async fn run_once(self: &Arc<Self>, now: Timestamp) -> Result<DispatchReport> {
        let mut report = DispatchReport::default();
        if !self.endpoints_enabled(now).await? {
            return Ok(report);
        }
        let lease = now.plus_secs(self.settings.lease_secs);
        let fresh = self
            .store
            .claim_fresh(
                &self.holder,
                now,
                lease,
                FRESH_ENDPOINTS,
                self.settings.batch,
            )
            .await?;
        let retries = self
            .store
            .claim_deliveries(&self.holder, now, lease, self.settings.batch)
            .await?;
        if fresh.is_empty() && retries.is_empty() {
            return Ok(report);
        }
        // Each send is tagged with its fresh batch (`Some(i)`) or as a retry (`None`).
        let mut work: Vec<(Option<usize>, Claimed)> = Vec::new();
        for (i, f) in fresh.iter().enumerate() {
            report.queued += f.events.len() as u64;
            for e in &f.events {
                work.push((
                    Some(i),
                    Claimed {
                        endpoint: f.endpoint.clone(),
                        event: e.clone(),
                        attempts: 0,
                    },
                ));
            }
        }
        work.extend(retries.into_iter().map(|c| (None, c)));
        let events: Vec<&Event> = work.iter().map(|(_, c)| &c.event).collect();
        let bodies = self.renderer.render_all(&events).await;
        let mut sends = tokio::task::JoinSet::new();
        for ((tag, c), body) in work.into_iter().zip(bodies) {
            let me = Arc::clone(self);
            sends.spawn(async move { (tag, me.deliver(c, body, now).await) });
        }
        let mut by_batch: Vec<Vec<(Attempt, NextStep)>> = vec![Vec::new(); fresh.len()];
        let mut retried = Vec::new();
        while let Some(sent) = sends.join_next().await {
            match sent {
                Ok((tag, d)) => {
                    report.attempts.push((d.0.succeeded, d.0.latency_ms));
                    report.failed += u64::from(d.1 == NextStep::Failed);
                    match tag.and_then(|i| by_batch.get_mut(i)) {
                        Some(batch) => batch.push(d),
                        None => retried.push(d),
                    }
                }
                Err(e) => tracing::error!(error = %e, "webhook delivery task failed"),
            }
        }
        // One write per endpoint's new events (it moves the cursor), one for the retries.
        for (f, done) in fresh.iter().zip(&by_batch) {
            self.store
                .finish_fresh(&self.holder, &f.endpoint.id, f.through, done)
                .await?;
        }
        if !retried.is_empty() {
            self.store.finish_deliveries(&self.holder, &retried).await?;
        }
        Ok(report)
    }

    /// Sends one claimed delivery; returns the attempt and what follows it.
    async fn deliver(
        &self,
        c: Claimed,
        body: Result<Vec<u8>>,
        now: Timestamp,
    ) -> (Attempt, NextStep) {
        let number = c.attempts + 1;
        let outcome = match body.and_then(|b| self.prepare(&c, b, now)) {
            Ok((headers, body)) => self.transport.post(&c.endpoint.url, headers, body).await,
            Err(e) => TransportOutcome {
                error: Some(format!("not sent: {e}")),
                ..TransportOutcome::default()
            },
        };
        let ok = outcome.status.is_some_and(|s| (200..300).contains(&s));
        let next = if ok {
            NextStep::Succeeded
        } else {
            self.settings.after_failure(number, now)
        };
        let mut excerpt = outcome.excerpt;
        truncate(&mut excerpt, MAX_RESPONSE_EXCERPT);
        let attempt = Attempt {
            id: sessiond_crypto::ids::new_id("att"),
            endpoint_id: c.endpoint.id.clone(),
            event_id: c.event.event.id.clone(),
            number,
            at: now,
            succeeded: ok,
            response_code: outcome.status,
            latency_ms: outcome.latency_ms,
            response_excerpt: excerpt,
            error: outcome.error,
        };
        if !ok {
            tracing::info!(
                endpoint = %c.endpoint.id, event = %attempt.event_id, attempt = number,
                status = ?attempt.response_code, error = ?attempt.error, "webhook attempt failed"
            );
        }
        (attempt, next)
    }

    fn prepare(&self, c: &Claimed, body: Vec<u8>, now: Timestamp) -> Result<(Headers, Vec<u8>)> {
        let secrets = self.webhooks.signing_secrets(&c.endpoint, now)?;
        let refs: Vec<_> = secrets.iter().collect();
        let id = c.event.event.id.clone();
        let ts = now.as_secs();
        let signature = signature_header(&refs, &id, ts, &body);
        let mut headers = vec![
            ("content-type", "application/json".to_owned()),
            ("webhook-id", id.clone()),
            ("webhook-timestamp", ts.to_string()),
            ("webhook-signature", signature.clone()),
        ];
        if let Some([id_name, ts_name, signature_name]) = self.renderer.header_aliases() {
            headers.extend([
                (id_name, id),
                (ts_name, ts.to_string()),
                (signature_name, signature),
            ]);
        }
        Ok((headers, body))
    }
}

fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_schedule_is_standard_webhooks_and_then_fails() {
        let s = DispatchSettings::default();
        let t = Timestamp(0);
        let waits: Vec<NextStep> = (1..=8).map(|n| s.after_failure(n, t)).collect();
        let secs = [5, 300, 1800, 7200, 18_000, 36_000, 36_000];
        for (n, wait) in secs.iter().enumerate() {
            assert_eq!(
                waits[n],
                NextStep::RetryAt(t.plus_secs(*wait)),
                "attempt {}",
                n + 1
            );
        }
        assert_eq!(waits[7], NextStep::Failed);
    }

    #[test]
    fn excerpts_are_cut_on_a_character_boundary() {
        let mut s = "é".repeat(600);
        truncate(&mut s, MAX_RESPONSE_EXCERPT);
        assert!(s.len() <= MAX_RESPONSE_EXCERPT && s.len() >= MAX_RESPONSE_EXCERPT - 1);
        assert!(s.chars().all(|c| c == 'é'));
    }
}

//! Webhook delivery on this node: the HTTP transport (timeouts, no redirects, a bounded read of
//! the answer, and the address rule against reaching into private networks) and the loop that
//! runs the dispatcher.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use sessiond_core::clock::Clock;
use sessiond_core::events::EventSignal;
use sessiond_core::store::Store;
use sessiond_core::webhooks::{Dispatcher, Transport, TransportOutcome};
use tokio_util::sync::CancellationToken;

use crate::config::WebhookConfig;

/// Bytes of an answer read (and kept) at most.
const MAX_READ: usize = 1024;
/// How often an idle node looks for due deliveries (events this node writes wake it at once).
const IDLE_POLL: Duration = Duration::from_secs(1);
/// After a wake-up, how long to let events gather so that one pass sends many: under load a
/// pass per event would spend more on the database than on sending.
const GATHER: Duration = Duration::from_millis(25);

/// Whether `ip` is an address on the public internet. Loopback, private, shared (CGNAT),
/// link-local (which holds cloud metadata services), multicast, documentation and unspecified
/// addresses are not.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_unspecified()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || s[0] == 0x2001 && s[1] == 0x0db8
                || s[0] == 0x0064 && s[1] == 0xff9b)
        }
    }
}

/// Resolves names for the webhook client and drops addresses the rule refuses, so the client
/// never connects to them, whatever the name resolved to (no check-then-connect gap).
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| is_public(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(format!("{host} resolves only to non-public addresses").into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

pub struct HttpTransport {
    client: reqwest::Client,
    allow_private: bool,
}

impl HttpTransport {
    pub fn new(cfg: &WebhookConfig) -> anyhow::Result<Self> {
        let mut b = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("sessiond-webhooks/", env!("CARGO_PKG_VERSION")))
            .pool_idle_timeout(Duration::from_secs(30));
        if !cfg.allow_private_networks {
            b = b.dns_resolver(Arc::new(PublicOnly));
        }
        Ok(HttpTransport {
            client: b.build()?,
            allow_private: cfg.allow_private_networks,
        })
    }

    /// An IP written in the URL is never resolved, so the rule is checked on it here.
    fn literal_refused(&self, url: &reqwest::Url) -> Option<String> {
        if self.allow_private {
            return None;
        }
        let ip = match url.host()? {
            url::Host::Ipv4(v4) => IpAddr::V4(v4),
            url::Host::Ipv6(v6) => IpAddr::V6(v6),
            url::Host::Domain(_) => return None,
        };
        (!is_public(ip)).then(|| {
            format!("{ip} is not a public address (webhook_allow_private_networks is off)")
        })
    }
}

#[async_trait]
impl Transport for HttpTransport {
    async fn post(
        &self,
        url: &str,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    ) -> TransportOutcome {
        let started = Instant::now();
        let elapsed = |s: Instant| u32::try_from(s.elapsed().as_millis()).unwrap_or(u32::MAX);
        let parsed = match reqwest::Url::parse(url) {
            Ok(u) => u,
            Err(e) => {
                return TransportOutcome {
                    error: Some(format!("bad URL: {e}")),
                    ..TransportOutcome::default()
                };
            }
        };
        if let Some(why) = self.literal_refused(&parsed) {
            return TransportOutcome {
                error: Some(why),
                ..TransportOutcome::default()
            };
        }
        let mut req = self.client.post(parsed).body(body);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let mut resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                return TransportOutcome {
                    latency_ms: elapsed(started),
                    error: Some(describe(&e)),
                    ..TransportOutcome::default()
                };
            }
        };
        let status = resp.status().as_u16();
        let mut got = Vec::new();
        // Read at most MAX_READ bytes of the answer; the rest is dropped with the connection.
        while got.len() < MAX_READ {
            match resp.chunk().await {
                Ok(Some(c)) => got.extend_from_slice(&c[..c.len().min(MAX_READ - got.len())]),
                Ok(None) | Err(_) => break,
            }
        }
        TransportOutcome {
            status: Some(status),
            latency_ms: elapsed(started),
            excerpt: String::from_utf8_lossy(&got).into_owned(),
            error: None,
        }
    }
}

/// The error's chain in one line (reqwest's top-level text alone says little).
fn describe(e: &reqwest::Error) -> String {
    let mut s = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "could not connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// The loop's CPU priority (`nice`) where it runs on a thread of its own.
const LOW_PRIORITY: i32 = 19;

/// What the loop runs with, built on its own thread: (dispatcher, the store it reads).
pub type Built = anyhow::Result<(Arc<Dispatcher>, Arc<dyn Store>)>;

/// Runs the dispatcher until `stop`: at once when this node writes an event, and every second
/// otherwise (for other nodes' events and for retries coming due). While no endpoint is enabled
/// anywhere a pass costs one look at the endpoints a second, whatever the write rate (see
/// `Dispatcher::with_endpoint_changes`).
///
/// The loop runs on a thread of its own at the lowest CPU priority: delivery is background work,
/// and on a saturated node it must not take CPU from requests (it catches up when they let up;
/// `webhook_outbox_pending` shows how far behind it is). `build` makes the dispatcher on that
/// thread, so that anything it opens belongs there: PostgreSQL connections are driven by the
/// runtime that opened them, and one the request path shared with a starved thread would stall.
pub fn spawn<B, F>(
    build: B,
    batch: usize,
    signal: Arc<EventSignal>,
    clock: Arc<dyn Clock>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()>
where
    B: FnOnce() -> F + Send + 'static,
    F: std::future::Future<Output = Built>,
{
    let thread = std::thread::Builder::new()
        .name("webhooks".into())
        .spawn(move || {
            // On Linux the nice value belongs to the calling thread (and threads it starts).
            if let Err(e) = rustix::process::setpriority_process(None, LOW_PRIORITY) {
                tracing::warn!(error = %e, "cannot lower the webhook thread's priority");
            }
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(async move {
                    match build().await {
                        Ok((dispatcher, store)) => {
                            run(dispatcher, batch, store, signal, clock, stop).await;
                        }
                        Err(e) => tracing::error!(error = %e, "webhook delivery cannot start"),
                    }
                }),
                Err(e) => tracing::error!(error = %e, "cannot start the webhook runtime"),
            }
        });
    tokio::task::spawn_blocking(move || match thread {
        Ok(t) => {
            let _ = t.join();
        }
        Err(e) => tracing::error!(error = %e, "cannot start the webhook thread"),
    })
}

async fn run(
    dispatcher: Arc<Dispatcher>,
    batch: usize,
    store: Arc<dyn Store>,
    signal: Arc<EventSignal>,
    clock: Arc<dyn Clock>,
    stop: CancellationToken,
) {
    let mut wake = signal.subscribe();
    let mut last_depth = Instant::now() - Duration::from_secs(60);
    loop {
        match dispatcher.run_once(clock.now()).await {
            Ok(report) => {
                for (ok, ms) in &report.attempts {
                    let outcome = if *ok { "succeeded" } else { "failed_attempt" };
                    metrics::counter!("webhook_attempts_total", "outcome" => outcome).increment(1);
                    metrics::histogram!("webhook_delivery_duration_seconds")
                        .record(f64::from(*ms) / 1000.0);
                }
                if report.failed > 0 {
                    metrics::counter!("webhook_deliveries_failed_total").increment(report.failed);
                }
                metrics::counter!("webhook_deliveries_queued_total").increment(report.queued);
                // A full batch: more are due now, so go round again without waiting.
                if report.attempts.len() >= batch {
                    continue;
                }
            }
            Err(e) => tracing::warn!(error = %e.report(), "webhook dispatch pass failed"),
        }
        metrics::counter!("events_emitted_total").absolute(signal.raised());
        if last_depth.elapsed() >= Duration::from_secs(10) {
            last_depth = Instant::now();
            if let Ok(n) = store.pending_deliveries().await {
                metrics::gauge!("webhook_outbox_pending").set(n as f64);
            }
        }
        tokio::select! {
            _ = wake.changed() => {
                tokio::select! {
                    () = tokio::time::sleep(GATHER) => {}
                    () = stop.cancelled() => break,
                }
            }
            () = tokio::time::sleep(IDLE_POLL) => {}
            () = stop.cancelled() => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_pass_the_rule() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "192.0.2.1",
            "2001:db8::1",
        ] {
            let parsed: IpAddr = ip.parse().unwrap_or_else(|e| panic!("{ip}: {e}"));
            assert!(!is_public(parsed), "{ip} must be refused");
        }
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            let parsed: IpAddr = ip.parse().unwrap_or_else(|e| panic!("{ip}: {e}"));
            assert!(is_public(parsed), "{ip} is public");
        }
    }
}

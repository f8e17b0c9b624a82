//! Webhooks end to end against a receiver in the test process: an event written before a
//! SIGKILL still arrives; two nodes on PostgreSQL deliver each event once; private addresses are
//! refused unless allowed; the CLI manages endpoints.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use reqwest::Method;
use serde_json::{Value, json};
use sessiond_crypto::webhook::WebhookSecret;

use crate::harness::Env;
use crate::harness::call;

#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    /// Requests to hold without answering (the first N).
    hold: Arc<Mutex<usize>>,
}

impl Receiver {
    async fn start() -> (Receiver, String) {
        let r = Receiver::default();
        let state = r.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let state = state.clone();
                async move {
                    let held = {
                        let mut h = state.hold.lock().unwrap_or_else(|e| e.into_inner());
                        let held = *h > 0;
                        *h = h.saturating_sub(1);
                        held
                    };
                    if let Ok(mut g) = state.got.lock() {
                        g.push((headers, body));
                    }
                    if held {
                        tokio::time::sleep(Duration::from_secs(600)).await;
                    }
                    StatusCode::NO_CONTENT
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let url = format!(
            "http://{}/hook",
            listener.local_addr().unwrap_or_else(|e| panic!("{e}"))
        );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (r, url)
    }

    fn ids(&self) -> Vec<String> {
        self.got
            .lock()
            .map(|g| {
                g.iter()
                    .map(|(h, _)| {
                        h.get("webhook-id")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned()
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    async fn wait_for(&self, n: usize, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        loop {
            let ids = self.ids();
            if ids.len() >= n || Instant::now() > deadline {
                return ids;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Checks every delivery's signature with `secret` the way Standard Webhooks receivers do,
    /// and that Svix's header names (which Clerk's receivers read) carry the same values.
    fn all_signed_by(&self, secret: &str) -> bool {
        let Some(s) = WebhookSecret::parse(secret) else {
            return false;
        };
        self.got
            .lock()
            .map(|g| {
                g.iter().all(|(h, body)| {
                    let v = |k: &str| h.get(k).and_then(|x| x.to_str().ok()).unwrap_or_default();
                    let ts: i64 = v("webhook-timestamp").parse().unwrap_or_default();
                    let aliased = ["id", "timestamp", "signature"]
                        .iter()
                        .all(|n| v(&format!("svix-{n}")) == v(&format!("webhook-{n}")));
                    aliased
                        && v("webhook-signature")
                            .split(' ')
                            .any(|sig| sig == s.sign(v("webhook-id"), ts, body))
                })
            })
            .unwrap_or(false)
    }
}

async fn add_endpoint(base: &str, key: &str, url: &str, types: &[&str]) -> (String, String) {
    let (status, ep) = call(
        base,
        key,
        Method::POST,
        "/sessiond/v1/webhooks",
        Some(json!({"url": url, "event_types": types})),
    )
    .await;
    assert_eq!(status, 201, "{ep}");
    (
        ep["id"].as_str().unwrap_or_default().to_owned(),
        ep["secret"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn new_user(base: &str, key: &str, name: &str) -> String {
    let (status, u) = call(
        base,
        key,
        Method::POST,
        "/v1/users",
        Some(json!({"first_name": name})),
    )
    .await;
    assert_eq!(status, 200, "{u}");
    u["id"].as_str().unwrap_or_default().to_owned()
}

/// The event is committed with its change; the server dies while delivering it; the restarted
/// server delivers it (same webhook-id) once the dead node's lease has run out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_in_flight_at_a_sigkill_is_delivered_after_restart() {
    let env = Env::sqlite();
    let (_, key, _) = env.create_app("crash");
    let (receiver, url) = Receiver::start().await;
    *receiver.hold.lock().unwrap_or_else(|e| e.into_inner()) = 1;
    let settings = [
        ("SESSIOND_WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true"),
        ("SESSIOND_WEBHOOK_TIMEOUT_SECS", "1"),
    ];
    let server = env.spawn_with(&settings);
    let (_, secret) = add_endpoint(&server.base, &key, &url, &["user.created"]).await;
    let uid = new_user(&server.base, &key, "Crash").await;
    let first = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(first.len(), 1, "the delivery started");
    server.kill9();

    let server = env.spawn_with(&settings);
    let ids = receiver.wait_for(2, Duration::from_secs(30)).await;
    assert_eq!(ids.len(), 2, "delivered again after the restart");
    assert_eq!(ids[0], ids[1], "the same event, the same webhook-id");
    assert!(receiver.all_signed_by(&secret));
    let body: Value = receiver
        .got
        .lock()
        .ok()
        .and_then(|g| serde_json::from_slice(&g[1].1).ok())
        .unwrap_or_default();
    assert_eq!(body["type"], json!("user.created"));
    assert_eq!(body["data"]["id"], json!(uid));
    drop(server);
}

/// Two nodes share one PostgreSQL database and one endpoint: every event arrives exactly once
/// (leases keep the nodes off each other's deliveries).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_postgres_deliver_each_event_once() {
    let Some(env) = Env::postgres().await else {
        return;
    };
    let (_, key, _) = env.create_app("nodes");
    let (receiver, url) = Receiver::start().await;
    let settings = [("SESSIOND_WEBHOOK_ALLOW_PRIVATE_NETWORKS", "true")];
    let (a, b) = (env.spawn_with(&settings), env.spawn_with(&settings));
    let (_, secret) = add_endpoint(&a.base, &key, &url, &["user.created"]).await;
    let mut users = Vec::new();
    for i in 0..40 {
        let base = if i % 2 == 0 { &a.base } else { &b.base };
        users.push(new_user(base, &key, &format!("U{i}")).await);
    }
    receiver.wait_for(40, Duration::from_secs(30)).await;
    // A little longer, for any duplicate to show up.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ids = receiver.ids();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for id in &ids {
        *counts.entry(id.as_str()).or_default() += 1;
    }
    assert_eq!(counts.len(), 40, "every event arrived");
    assert!(
        counts.values().all(|n| *n == 1),
        "no event arrived twice: {counts:?}"
    );
    assert!(receiver.all_signed_by(&secret));
    let delivered: Vec<String> = receiver
        .got
        .lock()
        .map(|g| {
            g.iter()
                .filter_map(|(_, b)| serde_json::from_slice::<Value>(b).ok())
                .map(|v| v["data"]["id"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default();
    for u in &users {
        assert!(delivered.contains(u), "{u} was delivered");
    }
}

/// By default an endpoint may not point into the server's own network: the attempt is refused
/// before any connection and recorded with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_addresses_are_refused_unless_allowed() {
    let env = Env::sqlite();
    let (_, key, _) = env.create_app("ssrf");
    let (receiver, url) = Receiver::start().await;
    let server = env.spawn_with(&[("SESSIOND_WEBHOOK_RETRY_SCHEDULE", "1h")]);
    let metadata = "http://169.254.169.254/latest/meta-data";
    let (ep, _) = add_endpoint(&server.base, &key, &url, &["user.created"]).await;
    let (ep_meta, _) = add_endpoint(&server.base, &key, metadata, &["user.created"]).await;
    let (ep_name, _) = add_endpoint(
        &server.base,
        &key,
        "http://localhost:9/hook",
        &["user.created"],
    )
    .await;
    new_user(&server.base, &key, "Ssrf").await;
    for endpoint in [&ep, &ep_meta, &ep_name] {
        let deadline = Instant::now() + Duration::from_secs(10);
        let attempts = loop {
            let (_, a) = call(
                &server.base,
                &key,
                Method::GET,
                &format!("/sessiond/v1/webhooks/{endpoint}/attempts"),
                None,
            )
            .await;
            if a["data"].as_array().is_some_and(|d| !d.is_empty()) || Instant::now() > deadline {
                break a;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let first = &attempts["data"][0];
        assert_eq!(first["succeeded"], json!(false), "{attempts}");
        assert_eq!(first["response_code"], Value::Null);
        let error = first["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("not a public address") || error.contains("non-public"),
            "{endpoint}: {error}"
        );
    }
    assert!(
        receiver.ids().is_empty(),
        "nothing reached the private receiver"
    );
    let (_, d) = call(
        &server.base,
        &key,
        Method::GET,
        &format!("/sessiond/v1/webhooks/{ep}/deliveries"),
        None,
    )
    .await;
    assert_eq!(
        d["data"][0]["state"],
        json!("pending"),
        "retried later: {d}"
    );
    assert_eq!(d["data"][0]["attempts"], json!(1));

    // The metrics count what happened (the dispatcher publishes them after each pass).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let metrics = server.metrics().await;
        let has = |name: &str| metrics.lines().any(|l| l.starts_with(name));
        let attempts = "webhook_attempts_total{outcome=\"failed_attempt\"} 3";
        if (has(attempts) && has("events_emitted_total 1")) || Instant::now() > deadline {
            assert!(has(attempts), "{metrics}");
            assert!(has("events_emitted_total 1"), "{metrics}");
            assert!(has("webhook_delivery_duration_seconds"), "{metrics}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_manages_endpoints() {
    let env = Env::sqlite();
    let (app, _, _) = env.create_app("cli");
    let created: Value = serde_json::from_str(&env.ok(&[
        "webhooks",
        "create",
        &app,
        "--url",
        "https://hooks.example.com/s",
        "--event",
        "session.revoked",
        "--event",
        "session.ended",
        "--description",
        "gateway",
        "--json",
    ]))
    .unwrap_or_else(|e| panic!("{e}"));
    let id = created["id"].as_str().unwrap_or_default().to_owned();
    assert!(
        created["secret"]
            .as_str()
            .is_some_and(|s| s.starts_with("whsec_"))
    );
    assert_eq!(
        created["event_types"],
        json!(["session.revoked", "session.ended"])
    );
    let listed: Value = serde_json::from_str(&env.ok(&["webhooks", "list", &app, "--json"]))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(listed[0]["id"], json!(id));
    assert_eq!(listed[0].get("secret"), None, "the secret is shown once");
    let updated = env.ok(&["webhooks", "update", &app, &id, "--all-events", "--disable"]);
    assert!(
        updated.contains("disabled") && updated.contains("every type"),
        "{updated}"
    );
    let rotated: Value = serde_json::from_str(&env.ok(&[
        "webhooks",
        "rotate-secret",
        &app,
        &id,
        "--overlap",
        "2h",
        "--json",
    ]))
    .unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(rotated["secret"], created["secret"]);
    let types = env.ok(&["webhooks", "types"]);
    assert!(types.contains("session.revoked") && types.contains("user.deleted"));
    let line = |t: &str| {
        types
            .lines()
            .find(|l| l.starts_with(&format!("{t} ")))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        line("session.revoked").ends_with("(Clerk's type)"),
        "{types}"
    );
    assert!(
        line("session.expired").ends_with("(sessiond's type)"),
        "{types}"
    );
    let bad = env.run(&["webhooks", "create", &app, "--url", "ftp://x"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("url"));
    env.ok(&["webhooks", "delete", &app, &id]);
    let after: Value = serde_json::from_str(&env.ok(&["webhooks", "list", &app, "--json"]))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(after, json!([]));
}

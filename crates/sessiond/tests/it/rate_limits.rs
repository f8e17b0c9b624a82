//! Rate limits through the real binary: per application, and per client address for failed
//! authentications, answered 429 with Retry-After in each dialect's shape.

use serde_json::Value;

use crate::harness::{Env, client};

async fn call(url: &str, key: &str) -> (u16, Option<String>, Value) {
    let r = client()
        .get(url)
        .bearer_auth(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (status, retry, r.json().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_over_its_rate_gets_429_in_every_dialect() {
    let env = Env::sqlite();
    let (_, key, _) = env.create_app("limited");
    let server = env.spawn_with(&[
        ("SESSIOND_RATE_LIMIT_PER_APP_PER_SEC", "3"),
        ("SESSIOND_RATE_LIMIT_BURST_SECS", "1"),
    ]);
    for _ in 0..3 {
        assert_eq!(call(&server.url("/v1/jwks"), &key).await.0, 200);
    }
    let (status, retry, body) = call(&server.url("/v1/jwks"), &key).await;
    assert_eq!((status, retry.as_deref()), (429, Some("1")), "{body}");
    assert_eq!(body["errors"][0]["code"], "too_many_requests");
    let (status, retry, body) = call(
        &server.url("/sessions/00000000-0000-0000-0000-000000000000"),
        &key,
    )
    .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (429, Some("TOO_MANY_REQUESTS"))
    );
    assert!(retry.is_some());
    let (status, retry, body) = call(&server.url("/api/v1/sessions/x"), &key).await;
    assert_eq!(
        (status, body["status"].as_u64()),
        (429, Some(429)),
        "{body}"
    );
    assert!(retry.is_some());
    let (status, _, body) = call(&server.url("/sessiond/v1/application"), &key).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("rate_limited"))
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(call(&server.url("/v1/jwks"), &key).await.0, 200, "refilled");
    let metrics = server.metrics().await;
    assert!(
        metrics.contains("http_rate_limited_total{limit=\"application\"}"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_keys_gets_a_client_refused_even_with_a_right_key() {
    let env = Env::sqlite();
    let (_, key, _) = env.create_app("guessed");
    let server = env.spawn_with(&[("SESSIOND_RATE_LIMIT_AUTH_FAILURES_PER_MIN", "5")]);
    for i in 0..5 {
        let wrong = format!("sk_test_{:0>40}", i);
        let (status, _, body) = call(&server.url("/v1/jwks"), &wrong).await;
        assert_eq!(status, 401, "{body}");
    }
    let (status, retry, body) = call(&server.url("/v1/jwks"), &key).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(retry.as_deref(), Some("12"), "one failure back every 12 s");
    let (status, _, _) = call(&server.url("/healthz"), &key).await;
    assert_eq!(status, 200, "unauthenticated operations stay open");
}

//! Operations endpoints, OpenAPI, docs and logs on both backends.

use sessiond_store_conformance::Kind;

use crate::harness::{Env, client, get};

async fn operations(kind: Kind) {
    let Some(env) = Env::of(kind).await else {
        return;
    };
    let server = env.spawn();
    let key = server.bootstrap_key().unwrap_or_default();
    let (s, body, _) = get(&server.url("/healthz"), None).await;
    assert_eq!((s, body["status"].as_str()), (200, Some("ok")));
    let (s, body, _) = get(&server.url("/readyz"), None).await;
    assert_eq!((s, body["status"].as_str()), (200, Some("ready")));
    let _ = get(&server.url("/sessiond/v1/application"), Some(&key)).await;
    let _ = get(&server.url("/sessiond/v1/application"), None).await;

    // Other jobs may be counted before the purge job's first run finishes: wait until every
    // series asserted below is there, not merely the first `job_runs_total` line.
    let needles = [
        r#"http_requests_total{route="/sessiond/v1/application",method="GET",status="200"}"#,
        r#"http_requests_total{route="/sessiond/v1/application",method="GET",status="401"}"#,
        "http_request_duration_seconds_bucket{",
        "db_pool_connections",
        "db_pool_idle_connections",
        r#"job_runs_total{job="purge""#,
    ]
    .into_iter()
    .chain(
        // The SQLite writer reports how many requests its transactions carried.
        (kind == Kind::Sqlite)
            .then_some([
                "db_write_transactions_total",
                "db_write_requests_total",
                "db_session_cache_entries",
                "db_session_cache_hits_total",
            ])
            .into_iter()
            .flatten(),
    )
    .collect::<Vec<_>>();
    let mut text = String::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        let metrics = client()
            .get(server.url("/metrics"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(metrics.status().as_u16(), 200);
        assert!(
            metrics.headers()["content-type"]
                .to_str()
                .unwrap_or_default()
                .starts_with("text/plain")
        );
        text = metrics.text().await.unwrap_or_default();
        if needles.iter().all(|n| text.contains(n)) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    for needle in &needles {
        assert!(text.contains(needle), "metrics contain {needle}:\n{text}");
    }

    let (s, spec, _) = get(&server.url("/openapi.json"), None).await;
    assert_eq!(s, 200);
    assert_eq!(spec["openapi"], "3.1.0");
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/sessiond/v1/application",
    ] {
        assert!(spec["paths"][path].is_object(), "{path} documented");
    }
    // No redirect following: `/docs` must answer the page, not a 303 to `/docs/`.
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    for path in ["/docs/", "/docs"] {
        let docs = no_redirects
            .get(server.url(path))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            docs.status().as_u16(),
            200,
            "{path} answers the page itself"
        );
        let html = docs.text().await.unwrap_or_default();
        assert!(html.contains("swagger-ui"));
        assert!(
            !html.contains("https://"),
            "the docs page loads nothing from the internet"
        );
        if path == "/docs" {
            assert!(
                html.contains(r#"<base href="/docs/">"#),
                "assets resolve under /docs/"
            );
        }
    }
    for asset in [
        "swagger-ui-bundle.js",
        "swagger-ui.css",
        "swagger-initializer.js",
    ] {
        let r = client()
            .get(server.url(&format!("/docs/{asset}")))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(r.status().as_u16(), 200, "{asset} is served by sessiond");
    }
    let init = client()
        .get(server.url("/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        init.text()
            .await
            .unwrap_or_default()
            .contains("/openapi.json")
    );

    let (s, body, _) = get(&server.url("/no/such/route"), None).await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );

    // Every log line is JSON; request lines carry the request id.
    let lines = server.stdout_lines();
    assert!(!lines.is_empty());
    let mut with_id = 0;
    for l in &lines {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("log line is JSON ({e}): {l}"));
        if v["message"] == "response" {
            assert!(v["span"]["request_id"].is_string(), "{l}");
            with_id += 1;
        }
    }
    assert!(with_id >= 4);
}
crate::both_backends!(operations_endpoints, super::operations);

#[tokio::test]
async fn request_id_is_echoed_and_oversized_bodies_refused() {
    let env = Env::sqlite();
    let server = env.spawn();
    let r = client()
        .get(server.url("/healthz"))
        .header("x-request-id", "trace-me-123")
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.headers()["x-request-id"], "trace-me-123");
    let r = client()
        .post(server.url("/sessiond/v1/application"))
        .body(vec![b'x'; 2 * 1024 * 1024])
        .send()
        .await;
    if let Ok(r) = r {
        assert!(
            r.status().is_client_error(),
            "oversized body is a 4xx, got {}",
            r.status()
        );
    }
}

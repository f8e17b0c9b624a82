//! The Equisoft dialect through the real binary: the trusted listener and the users CLI.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{Env, client, post_json};

fn trusted_addr(server: &crate::harness::Server) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = server.stdout_lines().iter().find_map(|l| {
            let v: Value = serde_json::from_str(l).ok()?;
            v["message"]
                .as_str()?
                .starts_with("listening (trusted")
                .then(|| v["addr"].as_str().map(str::to_owned))?
        });
        if let Some(a) = found {
            return a;
        }
        assert!(Instant::now() < deadline, "trusted listener did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One request as the Kotlin client sends it: a JSON body with its content type, and the bearer
/// key when one is given.
async fn send(
    method: Method,
    url: String,
    key: Option<&str>,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = client().request(method, &url);
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.unwrap_or_else(|e| panic!("{url}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_listener_needs_no_key_and_is_bound_to_one_application() {
    let env = Env::sqlite();
    let (app_a, key_a, _) = env.create_app("A");
    let (_, key_b, _) = env.create_app("B");
    let server = env.spawn_with(&[
        ("SESSIOND_EQUISOFT_TRUSTED_LISTEN", "127.0.0.1:0"),
        ("SESSIOND_EQUISOFT_APPLICATION", &app_a),
    ]);
    let trusted = format!("http://{}", trusted_addr(&server));
    let mk_user = |key: String| {
        let url = server.url("/v1/users");
        async move {
            let v: Value = post_json(&url, &key, json!({"first_name": "Eq"})).await;
            v["id"].as_str().unwrap_or_default().to_owned()
        }
    };
    let ua = mk_user(key_a.clone()).await;
    let ub = mk_user(key_b.clone()).await;

    // Kotlin-style request with no credentials on the trusted listener.
    let r = send(
        Method::POST,
        format!("{trusted}/sessions"),
        None,
        Some(json!({"userUuid": ua})),
    )
    .await;
    assert_eq!(r.status().as_u16(), 201);
    let s: Value = r.json().await.unwrap_or_default();
    let sid = s["sessionId"].as_str().unwrap_or_default().to_owned();
    let r = send(
        Method::GET,
        format!("{trusted}/sessions/{sid}?keepAlive=true"),
        None,
        None,
    )
    .await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    // It acts for application A only.
    let r = send(
        Method::POST,
        format!("{trusted}/sessions"),
        None,
        Some(json!({"userUuid": ub})),
    )
    .await;
    assert_eq!(
        r.status().as_u16(),
        404,
        "B's user is not visible through A's trusted listener"
    );
    // Only the Equisoft dialect is there.
    let r = send(
        Method::GET,
        format!("{trusted}/v1/sessions/{sid}"),
        None,
        None,
    )
    .await;
    assert_eq!(r.status().as_u16(), 404);
    // The main listener still requires the key for the same paths.
    let r = send(
        Method::GET,
        server.url(&format!("/sessions/{sid}")),
        None,
        None,
    )
    .await;
    assert_eq!(r.status().as_u16(), 401);
    let r = send(
        Method::GET,
        server.url(&format!("/sessions/{sid}")),
        Some(&key_a),
        None,
    )
    .await;
    assert_eq!(r.status().as_u16(), 200);
    let r = send(
        Method::GET,
        server.url(&format!("/sessions/{sid}")),
        Some(&key_b),
        None,
    )
    .await;
    assert_eq!(
        r.status().as_u16(),
        404,
        "another application's key sees nothing"
    );

    // Operator attributes through the CLI, then impersonation and its audit trail.
    let out = env.ok(&[
        "users",
        "update",
        &app_a,
        &ua,
        "--can-impersonate",
        "true",
        "--json",
    ]);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap_or_default()["can_impersonate"],
        true
    );
    let target = mk_user(key_a.clone()).await;
    let r = send(
        Method::POST,
        format!("{trusted}/sessions/{sid}/impersonate"),
        None,
        Some(json!({"userUuid": target})),
    )
    .await;
    assert_eq!(r.status().as_u16(), 200);
    let log: Value = serde_json::from_str(&env.ok(&["users", "impersonations", &app_a, "--json"]))
        .unwrap_or_default();
    assert_eq!(log[0]["kind"], "start");
    assert_eq!(log[0]["actor_user_id"], json!(ua));
    assert_eq!(log[0]["target_user_id"], json!(target));
}

#[test]
fn trusted_listener_configuration_is_validated() {
    let env = Env::sqlite();
    let out = env.run_with(
        &["config", "check"],
        &[("SESSIOND_EQUISOFT_TRUSTED_LISTEN", "127.0.0.1:7301")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("equisoft_application"));
    let out = env.run_with(
        &["config", "check"],
        &[
            ("SESSIOND_EQUISOFT_TRUSTED_LISTEN", "127.0.0.1:7300"),
            (
                "SESSIOND_EQUISOFT_APPLICATION",
                "app_0000000000000000000000",
            ),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "must differ from the main listener"
    );
}

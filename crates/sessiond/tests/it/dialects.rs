//! What every dialect's clients see at the edges: route and method misses in the error shape of
//! the API the path belongs to, and session tokens whose issuer passes the Clerk SDKs' default
//! checks.

use serde_json::{Value, json};

use crate::harness::{Env, client, get, post_json};

/// `jwt.Verify` of `github.com/clerk/clerk-sdk-go/v2` with default options accepts an issuer only
/// if it starts with `https://clerk.` or contains `.clerk.accounts`.
fn go_sdk_accepts_issuer(iss: &str) -> bool {
    iss.starts_with("https://clerk.") || iss.contains(".clerk.accounts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misses_answer_in_the_dialect_of_their_prefix() {
    let env = Env::sqlite();
    let (_, key, _) = env.create_app("Misses");
    let server = env.spawn();
    for path in ["/v1/organizations", "/v1/users/user_x/ban", "/v1"] {
        let (status, body, headers) = get(&server.url(path), Some(&key)).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(
            headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/json")
        );
        assert_eq!(
            body["errors"][0]["code"], "resource_not_found",
            "{path}: Clerk's envelope, {body}"
        );
    }
    for path in ["/api/v1/network/identities/+15550100", "/api/v1/nope"] {
        let (status, body, headers) = get(&server.url(path), Some(&key)).await;
        assert_eq!(status, 404, "{path}");
        assert!(
            headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/problem+json")),
            "{path}"
        );
        assert_eq!(body["status"], 404, "{path}: ProblemDetails, {body}");
    }
    for path in ["/sessions/x/y/z", "/users/x/other"] {
        let (status, body, _) = get(&server.url(path), Some(&key)).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(
            body["message"], "NOT_FOUND",
            "{path}: Equisoft's ErrorPayload, {body}"
        );
    }
    let (status, body, _) = get(&server.url("/nowhere"), Some(&key)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let r = client()
        .delete(server.url("/v1/jwks"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.status().as_u16(), 405);
    let v: Value = r.json().await.unwrap_or_default();
    assert_eq!(v["errors"][0]["code"], "method_not_allowed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_applications_issue_tokens_the_go_sdk_accepts() {
    let env = Env::sqlite();
    let (_, key, _) = env.create_app("Issuer");
    let server = env.spawn();
    let post = |path: &str, body: Value| {
        let url = server.url(path);
        let key = key.clone();
        async move { post_json(&url, &key, body).await }
    };
    let user = post("/v1/users", json!({"first_name": "Go"})).await;
    let session = post("/v1/sessions", json!({"user_id": user["id"]})).await;
    let sid = session["id"].as_str().unwrap_or_default();
    let token = post(&format!("/v1/sessions/{sid}/tokens"), json!({})).await;
    let jwt = token["jwt"].as_str().unwrap_or_default();
    let payload = jwt.split('.').nth(1).unwrap_or_default();
    let claims: Value = base64_url(payload)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let iss = claims["iss"].as_str().unwrap_or_default();
    assert!(go_sdk_accepts_issuer(iss), "issuer {iss}");
    assert!(!go_sdk_accepts_issuer("https://app-x.sessiond.localhost"));
    // The publishable key encodes the same host, as Clerk's do.
    let (_, app, _) = get(&server.url("/sessiond/v1/application"), Some(&key)).await;
    let pk = app["publishable_key"].as_str().unwrap_or_default();
    let host = pk
        .strip_prefix("pk_test_")
        .and_then(base64_std)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    assert_eq!(format!("https://{}", host.trim_end_matches('$')), iss);
}

fn base64_url(s: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .ok()
}

fn base64_std(s: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_must_be_declared_json_and_queries_strictly_encoded() {
    let env = Env::sqlite();
    let (_, key, _) = env.create_app("Strict");
    let server = env.spawn();
    let send = |method: reqwest::Method, path: &str, ct: Option<&str>, body: &str| {
        let mut r = client()
            .request(method, server.url(path))
            .bearer_auth(&key)
            .body(body.to_owned());
        if let Some(ct) = ct {
            r = r.header("content-type", ct);
        }
        async move {
            let resp = r.send().await.unwrap_or_else(|e| panic!("{e}"));
            let status = resp.status().as_u16();
            let v: Value = resp.json().await.unwrap_or_default();
            (status, v)
        }
    };
    let json_body = r#"{"user_id": "user_0000000000000000000000"}"#;
    for ct in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        Some("application/xml"),
        None,
    ] {
        let (status, v) = send(reqwest::Method::POST, "/v1/sessions", ct, json_body).await;
        assert_eq!(status, 415, "{ct:?}: {v}");
        assert_eq!(v["errors"][0]["code"], "request_body_invalid", "{v}");
    }
    let (status, _) = send(
        reqwest::Method::POST,
        "/v1/sessions",
        Some("application/json; charset=utf-8"),
        json_body,
    )
    .await;
    assert_eq!(status, 404, "JSON with parameters is JSON");
    let (status, v) = send(
        reqwest::Method::POST,
        "/api/v1/sessions",
        Some("text/plain"),
        "{}",
    )
    .await;
    assert_eq!((status, v["status"].as_u64()), (415, Some(415)), "{v}");
    let (status, v) = send(reqwest::Method::POST, "/sessions", Some("text/plain"), "{}").await;
    assert_eq!(
        (status, v["message"].as_str()),
        (415, Some("BAD_REQUEST")),
        "{v}"
    );
    let (status, v) = send(
        reqwest::Method::PUT,
        "/sessions/00000000-0000-0000-0000-000000000000/tokens/sso",
        Some("text/plain"),
        "abc",
    )
    .await;
    assert_eq!(
        (status, v["message"].as_str()),
        (404, Some("NOT_FOUND")),
        "Equisoft token values may be text/plain: {v}"
    );
    for q in ["query=%FF", "query=%G1", "query=%4"] {
        let (status, v) = send(reqwest::Method::GET, &format!("/v1/users?{q}"), None, "").await;
        assert_eq!(status, 400, "{q}: {v}");
        assert_eq!(v["errors"][0]["code"], "malformed_request_parameters");
    }
    let (status, _) = send(reqwest::Method::GET, "/v1/users?query=%C3%A9", None, "").await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_names_every_answer_and_the_list_shapes() {
    let env = Env::sqlite();
    env.create_app("Docs");
    let server = env.spawn();
    let (status, doc, _) = get(&server.url("/openapi.json"), None).await;
    assert_eq!(status, 200);
    let paths = doc["paths"].as_object().cloned().unwrap_or_default();
    let mut secured = 0;
    for (path, item) in &paths {
        for (method, op) in item.as_object().into_iter().flatten() {
            let is_secured = op
                .get("security")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty());
            if is_secured && !path.starts_with("/v1/apps/") {
                secured += 1;
                for code in ["401", "429", "503"] {
                    assert!(
                        op["responses"].get(code).is_some(),
                        "{method} {path} lacks {code}"
                    );
                }
                if path.starts_with("/v1/") {
                    assert!(op["responses"].get("422").is_some(), "{method} {path} 422");
                }
            }
            if path.contains('{') && op.get("responses").is_some() {
                assert!(op["responses"].get("404").is_some(), "{method} {path} 404");
            }
        }
    }
    assert!(secured > 40, "{secured} secured operations");
    let schema = |p: &str| {
        paths[p]["get"]["responses"]["200"]["content"]["application/json"]["schema"].clone()
    };
    assert_eq!(schema("/v1/users")["type"], "array");
    for paginated in ["/v1/sessions", "/v1/jwt_templates"] {
        assert_eq!(
            schema(paginated)["oneOf"].as_array().map(Vec::len),
            Some(2),
            "{paginated}: a bare array, or {{data, total_count}} with paginated=true"
        );
    }
}

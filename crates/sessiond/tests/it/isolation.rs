//! The tenant-isolation matrix across the three dialects: what application A creates through
//! any dialect, application B's key can neither read, change nor delete through any dialect; B
//! gets the same answer as for an object that does not exist, and A's objects are untouched.

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{Env, call};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_key_reaches_another_applications_objects_in_any_dialect() {
    let env = Env::sqlite();
    let (_, key_a, _) = env.create_app("A");
    let (_, key_b, _) = env.create_app("B");
    let server = env.spawn();
    let base = server.base.clone();
    let a = |m: Method, p: String, b: Option<Value>| {
        let (base, key) = (base.clone(), key_a.clone());
        async move { call(&base, &key, m, &p, b).await }
    };

    // A's objects, one per dialect and kind.
    let (_, user) = a(
        Method::POST,
        "/v1/users".into(),
        Some(json!({"first_name": "A", "external_id": "ext-a"})),
    )
    .await;
    let uid = user["id"].as_str().unwrap_or_default().to_owned();
    let (_, clerk_session) = a(
        Method::POST,
        "/v1/sessions".into(),
        Some(json!({"user_id": uid})),
    )
    .await;
    let csid = clerk_session["id"].as_str().unwrap_or_default().to_owned();
    let (_, template) = a(
        Method::POST,
        "/v1/jwt_templates".into(),
        Some(json!({"name": "iso", "claims": {}})),
    )
    .await;
    let tid = template["id"].as_str().unwrap_or_default().to_owned();
    let (st, eq_session) = a(
        Method::POST,
        "/sessions".into(),
        Some(json!({"userUuid": uid})),
    )
    .await;
    assert_eq!(st, 201, "{eq_session}");
    let esid = eq_session["sessionId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (st, _) = a(
        Method::PUT,
        format!("/sessions/{esid}/tokens/sso"),
        Some(json!("vault-secret")),
    )
    .await;
    assert!(st == 200 || st == 204, "{st}");
    let (st, verification) = a(
        Method::POST,
        "/api/v1/sessions/widget".into(),
        Some(json!({})),
    )
    .await;
    assert_eq!(st, 200, "{verification}");
    let vid = verification["sessionId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    // Every way B's key could reach them, through each dialect.
    let attempts: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, format!("/v1/users/{uid}"), None),
        (
            Method::PATCH,
            format!("/v1/users/{uid}"),
            Some(json!({"first_name": "B"})),
        ),
        (
            Method::PATCH,
            format!("/v1/users/{uid}/metadata"),
            Some(json!({"public_metadata": {"b": 1}})),
        ),
        (
            Method::POST,
            format!("/v1/users/{uid}/verify_password"),
            Some(json!({"password": "x"})),
        ),
        (Method::DELETE, format!("/v1/users/{uid}"), None),
        (Method::GET, format!("/v1/sessions/{csid}"), None),
        (Method::POST, format!("/v1/sessions/{csid}/revoke"), None),
        (Method::POST, format!("/v1/sessions/{csid}/tokens"), None),
        (
            Method::POST,
            "/v1/sessions".into(),
            Some(json!({"user_id": uid})),
        ),
        (Method::GET, format!("/v1/jwt_templates/{tid}"), None),
        (Method::DELETE, format!("/v1/jwt_templates/{tid}"), None),
        (Method::GET, format!("/sessions/{esid}"), None),
        (Method::GET, format!("/sessions/{esid}/tokens/sso"), None),
        (Method::DELETE, format!("/sessions/{esid}"), None),
        (Method::POST, format!("/sessions/{esid}/enable"), None),
        (
            Method::POST,
            "/sessions".into(),
            Some(json!({"userUuid": uid})),
        ),
        (
            Method::POST,
            "/sessions".into(),
            Some(json!({"userUuid": "ext-a"})),
        ),
        (Method::GET, format!("/api/v1/sessions/{vid}"), None),
        (Method::POST, format!("/api/v1/sessions/{vid}/cancel"), None),
        (Method::POST, format!("/api/v1/sessions/{vid}/redact"), None),
    ];
    for (method, path, body) in attempts {
        let (st, v) = call(&base, &key_b, method.clone(), &path, body).await;
        assert_eq!(st, 404, "B reached {method} {path}: {v}");
        assert!(!v.to_string().contains("vault-secret"), "{v}");
    }
    // Lists and deletions of B's own scope leave A's objects alone.
    let (_, listed) = call(
        &base,
        &key_b,
        Method::GET,
        &format!("/v1/sessions?user_id={uid}"),
        None,
    )
    .await;
    assert_eq!(listed, json!([]));
    let (_, users) = call(&base, &key_b, Method::GET, "/v1/users?query=ext-a", None).await;
    assert_eq!(users, json!([]));
    let (st, _) = call(&base, &key_b, Method::DELETE, "/sessions", None).await;
    assert_eq!(st, 204);
    let (st, _) = call(
        &base,
        &key_b,
        Method::DELETE,
        &format!("/users/{uid}/sessions"),
        None,
    )
    .await;
    assert!(st == 404 || st == 204, "{st}");

    assert_eq!(
        a(Method::GET, format!("/v1/sessions/{csid}"), None).await.1["status"],
        "active"
    );
    assert_eq!(
        a(Method::GET, format!("/v1/users/{uid}"), None).await.1["first_name"],
        "A"
    );
    assert_eq!(
        a(Method::GET, format!("/v1/jwt_templates/{tid}"), None)
            .await
            .0,
        200
    );
    assert_eq!(
        a(Method::GET, format!("/sessions/{esid}/tokens/sso"), None)
            .await
            .0,
        200
    );
    assert_eq!(
        a(Method::GET, format!("/api/v1/sessions/{vid}"), None)
            .await
            .0,
        200
    );
}

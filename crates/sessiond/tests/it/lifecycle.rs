//! Start, restart, bootstrap, shutdown and the master key.

use std::time::Duration;

use sessiond_store_conformance::Kind;

use crate::harness::{Env, get, post_json, read};

async fn restart_keeps_data(kind: Kind) {
    let Some(env) = Env::of(kind).await else {
        return;
    };
    let first = env.spawn();
    let key = first
        .bootstrap_key()
        .unwrap_or_else(|| panic!("first start prints a key"));
    assert!(first.stderr_text().contains("publishable key: pk_test_"));
    let (_, extra, _) = env.create_app("second");
    let (code, took) = first.terminate();
    assert_eq!(code, Some(0), "SIGTERM exits 0");
    assert!(
        took < Duration::from_secs(10),
        "shutdown within 10 s, took {took:?}"
    );

    let again = env.spawn();
    assert_eq!(
        again.bootstrap_key(),
        None,
        "no second default application on restart"
    );
    for k in [&key, &extra] {
        assert_eq!(
            get(&again.url("/sessiond/v1/application"), Some(k)).await.0,
            200
        );
    }
    let apps: serde_json::Value =
        serde_json::from_str(&env.ok(&["apps", "list", "--json"])).unwrap_or_default();
    assert_eq!(apps.as_array().map(Vec::len), Some(2));
}
crate::both_backends!(restart, super::restart_keeps_data);

#[tokio::test]
async fn data_dir_and_key_file_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::sqlite();
    let server = env.spawn();
    let mode = |p: &std::path::Path| {
        std::fs::metadata(p)
            .map(|m| m.permissions().mode() & 0o777)
            .unwrap_or(0)
    };
    assert_eq!(mode(&env.data_dir()), 0o700);
    assert_eq!(mode(&env.data_dir().join("master.key")), 0o600);
    assert!(env.data_dir().join("sessiond.db").exists());
    drop(server);
}

#[tokio::test]
async fn bootstrap_secret_key_is_seeded() {
    let env = Env::sqlite();
    let chosen = "sk_test_de0b0b642e8079757b7e5b4f06edd706aaadb2032559434e4d0e8fa9573a4e84";
    let server = env.spawn_with(&[("SESSIOND_BOOTSTRAP_SECRET_KEY", chosen)]);
    assert_eq!(server.bootstrap_key().as_deref(), Some(chosen));
    let (status, body, _) = get(&server.url("/sessiond/v1/application"), Some(chosen)).await;
    assert_eq!(status, 200);
    assert_eq!(body["name"], "Default application");
}

#[tokio::test]
async fn wrong_or_missing_master_key_refuses_start() {
    let env = Env::sqlite();
    let (_, key, _) = env.create_app("app");
    let other = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let out = env.run_with(
        &["serve", "--listen", "127.0.0.1:0"],
        &[("SESSIOND_MASTER_KEY", other)],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("refusing to start") && err.contains("master key"),
        "{err}"
    );

    let key_file = env.data_dir().join("master.key");
    let saved = read(&key_file);
    std::fs::remove_file(&key_file).unwrap_or_else(|e| panic!("{e}"));
    let out = env.run(&["serve", "--listen", "127.0.0.1:0"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("no master key"), "{err}");
    assert!(
        !key_file.exists(),
        "no new key file is invented for a sealed database"
    );

    std::fs::write(&key_file, saved).unwrap_or_else(|e| panic!("{e}"));
    let server = env.spawn();
    assert_eq!(
        get(&server.url("/sessiond/v1/application"), Some(&key))
            .await
            .0,
        200
    );
}

/// Checks a `rotate-master` report: "re-sealed N of N …", with at least `min` values (the pepper
/// and each application's signing key).
fn assert_all_resealed(out: &str, min: u64) {
    let nums: Vec<u64> = out
        .split_once("re-sealed ")
        .map(|(_, rest)| {
            rest.split_whitespace()
                .take(3)
                .filter_map(|w| w.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        nums.len() == 2 && nums[0] == nums[1] && nums[0] >= min,
        "every sealed value re-sealed: {out}"
    );
}

#[tokio::test]
async fn master_key_rotation_round_trip() {
    let env = Env::sqlite();
    let key_file = env.data_dir().join("master.key");
    let server = env.spawn();
    let key = server.bootstrap_key().unwrap_or_default();
    let original = read(&key_file);
    // One value of each kind sealed outside the profile: an SSO identifier, template claims.
    let sealed = sealed_kinds_written(&server, &key).await;

    let out = env.ok(&["keys", "rotate-master"]);
    assert_all_resealed(&out, 5);
    let rotated = read(&key_file);
    let body_lines = |t: &str| t.lines().filter(|l| !l.starts_with('#')).count();
    assert_eq!(body_lines(&rotated), 2, "new key first, old key kept");
    assert!(
        rotated.contains(
            original
                .lines()
                .find(|l| !l.starts_with('#'))
                .unwrap_or("?")
        )
    );
    // The running server keeps working, and so does a key created after the rotation.
    assert_eq!(
        get(&server.url("/sessiond/v1/application"), Some(&key))
            .await
            .0,
        200
    );
    let (_, later, _) = env.create_app("after rotation");
    assert_eq!(
        get(&server.url("/sessiond/v1/application"), Some(&later))
            .await
            .0,
        200
    );
    // A running identity verification holds launch links sealed into URLs: retiring the key
    // they use is refused, saying why, until it is over.
    let http = reqwest::Client::new();
    let started: serde_json::Value = post_json(
        &server.url("/api/v1/sessions/widget"),
        &key,
        serde_json::json!({}),
    )
    .await;
    let vid = started["sessionId"].as_str().unwrap_or_default().to_owned();
    assert!(!vid.is_empty(), "{started}");
    let refused = env.run(&["keys", "rotate-master", "--retire-old"]);
    assert!(!refused.status.success());
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(
        why.contains("1 identity verification(s) are still running"),
        "{why}"
    );
    assert_eq!(body_lines(&read(&key_file)), 2, "nothing retired");
    let cancelled = http
        .post(server.url(&format!("/api/v1/sessions/{vid}/cancel")))
        .bearer_auth(&key)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0);
    assert_eq!(cancelled, 200);

    let (code, _) = server.terminate();
    assert_eq!(code, Some(0));

    let out = env.ok(&["keys", "rotate-master", "--retire-old"]);
    assert!(out.contains("retired 1 old master key"), "{out}");
    let retired = read(&key_file);
    assert_eq!(body_lines(&retired), 1);
    assert_ne!(retired, original);

    let server = env.spawn();
    for k in [&key, &later] {
        assert_eq!(
            get(&server.url("/sessiond/v1/application"), Some(k))
                .await
                .0,
            200
        );
    }
    sealed_kinds_read_back(&server, &key, &sealed).await;
    drop(server);
    let old_key = original
        .lines()
        .find(|l| !l.starts_with('#'))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_default();
    let out = env.run_with(
        &["serve", "--listen", "127.0.0.1:0"],
        &[("SESSIOND_MASTER_KEY", old_key)],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "the retired key alone no longer opens the database"
    );
}

#[tokio::test]
async fn rotation_with_environment_key() {
    let env = Env::sqlite();
    let first = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let out = env.run_with(
        &["apps", "create", "x", "--json"],
        &[("SESSIOND_MASTER_KEY", first)],
    );
    assert!(out.status.success());
    assert!(
        !env.data_dir().join("master.key").exists(),
        "no key file when the key is given"
    );
    let key: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let out = env.run_with(
        &["keys", "rotate-master"],
        &[("SESSIOND_MASTER_KEY", first)],
    );
    let ring = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        ring.ends_with(first) && ring.contains(','),
        "prints new,old: {ring}"
    );
    let out = env.run_with(
        &["keys", "rotate-master"],
        &[("SESSIOND_MASTER_KEY", &ring)],
    );
    assert_all_resealed(&String::from_utf8_lossy(&out.stdout), 2);
    let new_only = ring.split(',').next().unwrap_or_default();
    let server = env.spawn_with(&[("SESSIOND_MASTER_KEY", new_only)]);
    let k = key["secret_key"].as_str().unwrap_or_default();
    assert_eq!(
        get(&server.url("/sessiond/v1/application"), Some(k))
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn migrate_and_healthcheck_commands() {
    let env = Env::sqlite();
    assert!(env.ok(&["migrate"]).contains("schema is current"));
    let server = env.spawn();
    let out = env.run(&["healthcheck", "--url", &server.base]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ready"));
    let out = env.run(&["healthcheck", "--url", &server.base, "--live"]);
    assert!(out.status.success());
    drop(server);
    let out = env.run(&[
        "healthcheck",
        "--url",
        "http://127.0.0.1:9",
        "--timeout",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(1));
}

/// (session id, template id) of values written by [`sealed_kinds_written`].
async fn sealed_kinds_written(server: &crate::harness::Server, key: &str) -> (String, String) {
    let http = reqwest::Client::new();
    let post = |path: &str, body: serde_json::Value| {
        http.post(server.url(path))
            .bearer_auth(key)
            .json(&body)
            .send()
    };
    let json = |r: reqwest::Result<reqwest::Response>| async move {
        r.unwrap_or_else(|e| panic!("{e}"))
            .json::<serde_json::Value>()
            .await
            .unwrap_or_default()
    };
    let user = json(post("/v1/users", serde_json::json!({"external_id": "rot-ext"})).await).await;
    assert!(user["id"].is_string(), "{user}");
    let session = json(
        post(
            "/sessions",
            serde_json::json!({"userUuid": "rot-ext",
                               "sso": {"provider": "okta", "identifier": "rot@example.org"}}),
        )
        .await,
    )
    .await;
    let template = json(
        post(
            "/v1/jwt_templates",
            serde_json::json!({"name": "rot", "claims": {"c": "rot-claim"}}),
        )
        .await,
    )
    .await;
    let id = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
    let ids = (id(&session, "sessionId"), id(&template, "id"));
    assert!(
        !ids.0.is_empty() && !ids.1.is_empty(),
        "{session} {template}"
    );
    ids
}

async fn sealed_kinds_read_back(
    server: &crate::harness::Server,
    key: &str,
    ids: &(String, String),
) {
    let (st, session, _) = get(&server.url(&format!("/sessions/{}", ids.0)), Some(key)).await;
    assert_eq!(
        (st, &session["sso"]["identifier"]),
        (200, &serde_json::json!("rot@example.org")),
        "{session}"
    );
    let (st, template, _) = get(
        &server.url(&format!("/v1/jwt_templates/{}", ids.1)),
        Some(key),
    )
    .await;
    assert_eq!(
        (st, &template["claims"]["c"]),
        (200, &serde_json::json!("rot-claim")),
        "{template}"
    );
    let (st, users, _) = get(&server.url("/v1/users?external_id=rot-ext"), Some(key)).await;
    assert_eq!(
        (st, &users[0]["external_id"]),
        (200, &serde_json::json!("rot-ext")),
        "{users}"
    );
}

//! What sessiond leaves on disk is for its own user only.

use std::os::unix::fs::PermissionsExt;

use crate::harness::{Env, get};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_wal_shm_and_key_files_are_private() {
    let env = Env::sqlite();
    let (_, key, _) = env.create_app("at rest");
    let server = env.spawn();
    // A write, so the WAL and shared-memory files exist.
    let _ = reqwest::Client::new()
        .post(server.url("/v1/users"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"first_name": "Disk"}))
        .send()
        .await;
    assert_eq!(get(&server.url("/readyz"), None).await.0, 200);
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(env.data_dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        let meta = entry.metadata().unwrap_or_else(|e| panic!("{e}"));
        let mode = meta.permissions().mode() & 0o777;
        let name = entry.file_name().to_string_lossy().into_owned();
        let expected = if meta.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode, expected, "{name} is {mode:o}");
        seen.push(name);
    }
    for f in [
        "sessiond.db",
        "sessiond.db-wal",
        "sessiond.db-shm",
        "master.key",
    ] {
        assert!(seen.iter().any(|s| s == f), "{f} in {seen:?}");
    }
    let dir_mode = std::fs::metadata(env.data_dir())
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0);
    assert_eq!(dir_mode, 0o700);
}

/// Every secret and every piece of personal data the dialects accept, written through the real
/// binary, then searched for byte for byte in every file of the data directory (database, WAL,
/// shared memory, key file), while serving and again after shutdown has checkpointed the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_or_personal_value_is_readable_in_the_data_directory() {
    use serde_json::{Value, json};

    let env = Env::sqlite();
    let (_, key, _) = env.create_app("at rest");
    let server = env.spawn();
    let http = crate::harness::client();
    let call = |method: reqwest::Method, path: &str, body: Value| {
        let req = http
            .request(method, server.url(path))
            .bearer_auth(&key)
            .json(&body);
        async move {
            let resp = req.send().await.unwrap_or_else(|e| panic!("{e}"));
            let status = resp.status().as_u16();
            (status, resp.json::<Value>().await.unwrap_or_default())
        }
    };
    let needles = [
        "Zyxwort",
        "Quillfeather",
        "zyx.private@example.org",
        "+15550100777",
        "zyxuser",
        "ext-PII-7781",
        "Hunter2-Secret!",
        "meta-secret-44",
        "sso.person@example.net",
        "vault-secret-value-91",
        "template-literal-secret-55",
        "hs256-template-key-material-0123456789",
    ];
    let (st, user) = call(
        reqwest::Method::POST,
        "/v1/users",
        json!({
            "first_name": "Zyxwort",
            "last_name": "Quillfeather",
            "email_address": ["zyx.private@example.org"],
            "phone_number": ["+15550100777"],
            "username": "zyxuser",
            "external_id": "ext-PII-7781",
            "password": "Hunter2-Secret!",
            "private_metadata": {"note": "meta-secret-44"},
        }),
    )
    .await;
    assert_eq!(st, 200, "{user}");
    let uid = user["id"].as_str().unwrap_or_default().to_owned();
    let (st, session) = call(
        reqwest::Method::POST,
        "/sessions",
        json!({"userUuid": "ext-PII-7781",
               "sso": {"provider": "okta", "identifier": "sso.person@example.net"}}),
    )
    .await;
    assert_eq!(st, 201, "{session}");
    assert_eq!(
        session["sso"]["identifier"], "sso.person@example.net",
        "the identifier comes back open"
    );
    let sid = session["sessionId"].as_str().unwrap_or_default().to_owned();
    let (st, _) = call(
        reqwest::Method::PUT,
        &format!("/sessions/{sid}/tokens/sso"),
        json!("vault-secret-value-91"),
    )
    .await;
    assert!(st == 200 || st == 204, "{st}");
    let (st, got) = call(
        reqwest::Method::GET,
        &format!("/sessions/{sid}?keepAlive=false"),
        Value::Null,
    )
    .await;
    assert_eq!(
        (st, &got["sso"]["identifier"]),
        (200, &json!("sso.person@example.net"))
    );
    let mut template_ids = Vec::new();
    for (name, body) in [
        (
            "literal",
            json!({"name": "literal", "claims": {"k": "template-literal-secret-55"}}),
        ),
        (
            "hmac",
            json!({"name": "hmac", "claims": {"r": "{{user.external_id}}"},
                   "custom_signing_key": true, "signing_algorithm": "HS256",
                   "signing_key": "hs256-template-key-material-0123456789"}),
        ),
    ] {
        let (st, t) = call(reqwest::Method::POST, "/v1/jwt_templates", body).await;
        assert_eq!(st, 200, "{name}: {t}");
        template_ids.push(t["id"].as_str().unwrap_or_default().to_owned());
    }
    let (st, found) = call(
        reqwest::Method::GET,
        "/v1/users?external_id=ext-PII-7781",
        Value::Null,
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(found[0]["id"].as_str(), Some(uid.as_str()), "{found}");
    let (st, t) = call(
        reqwest::Method::GET,
        &format!("/v1/jwt_templates/{}", template_ids[0]),
        Value::Null,
    )
    .await;
    assert_eq!(
        (st, &t["claims"]["k"]),
        (200, &json!("template-literal-secret-55")),
        "{t}"
    );

    let scan = |when: &str| {
        let mut files = 0;
        for entry in walk(&env.data_dir()) {
            let bytes = std::fs::read(&entry).unwrap_or_else(|e| panic!("{e}"));
            files += 1;
            for needle in needles.iter().copied().chain([key.as_str()]) {
                assert!(
                    !contains(&bytes, needle.as_bytes()),
                    "{when}: `{needle}` is readable in {}",
                    entry.display()
                );
            }
        }
        assert!(files >= 2, "{when}: the data directory holds {files} files");
    };
    scan("while serving");
    let (code, _) = server.terminate();
    assert_eq!(code, Some(0));
    scan("after shutdown");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

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

//! Transport security of the hosted pages.

use crate::harness::{Env, get};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_send_hsts_only_when_reached_over_https() {
    let env = Env::sqlite();
    env.create_app("pages");
    let https = env.spawn_with(&[("SESSIOND_PUBLIC_URL", "https://verify.example.com")]);
    let (status, _, headers) = get(&https.url("/verify/launch?t=forged"), None).await;
    assert!(status >= 400);
    assert_eq!(
        headers
            .get("strict-transport-security")
            .and_then(|v| v.to_str().ok()),
        Some("max-age=31536000")
    );
    let (_, _, api) = get(&https.url("/healthz"), None).await;
    assert!(api.get("strict-transport-security").is_none(), "pages only");
    drop(https);
    let plain = env.spawn();
    let (_, _, headers) = get(&plain.url("/verify/launch?t=forged"), None).await;
    assert!(headers.get("strict-transport-security").is_none());
}

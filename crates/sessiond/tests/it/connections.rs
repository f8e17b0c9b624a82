//! Connection exhaustion: idle clients cannot lock out a health probe, even when their number
//! exceeds the process's open-file limit.

use std::time::{Duration, Instant};

use crate::harness::{Env, get};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eleven_hundred_idle_connections_under_a_1024_file_limit_leave_healthz_answering() {
    let env = Env::sqlite();
    env.create_app("conns");
    let server = env.spawn_with_nofile(1024);
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut idle = Vec::with_capacity(1100);
    for _ in 0..1100 {
        // Connections the server has already closed to make room are simply kept; what matters
        // is that the clients never let go of theirs.
        if let Ok(c) = tokio::net::TcpStream::connect(&addr).await {
            idle.push(c);
        }
    }
    assert!(idle.len() >= 1000, "opened {}", idle.len());
    let started = Instant::now();
    let (status, body, _) = get(&server.url("/healthz"), None).await;
    let took = started.elapsed();
    assert_eq!(status, 200, "{body}");
    assert!(took < Duration::from_secs(2), "/healthz took {took:?}");
    let (_, _, _) = get(&server.url("/healthz"), None).await;
    let metrics = server.metrics().await;
    assert!(
        metrics.contains("http_connections_evicted_total"),
        "evictions are counted"
    );
    assert!(
        !server.stderr_text().contains("panicked"),
        "{}",
        server.stderr_text()
    );
    drop(idle);
}

//! Durability under a crash: SIGKILL in the middle of a burst of writes on SQLite, restart, and
//! every write the server acknowledged is there in the state it acknowledged.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Env, Server, client};

/// What clients were told. A revoke that got no answer (in flight at the kill) may or may not
/// have happened; one that got its 200 must have.
#[derive(Default)]
struct Acked {
    created: HashSet<String>,
    revoked: HashSet<String>,
    revoke_unanswered: HashSet<String>,
}

async fn post(server_url: &str, key: &str, path: &str, body: Value) -> Option<Value> {
    let r = client()
        .post(format!("{server_url}{path}"))
        .bearer_auth(key)
        .json(&body)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?;
    if r.status().as_u16() != 200 {
        return None;
    }
    r.json().await.ok()
}

/// Creates sessions and revokes every third one from `workers` concurrent clients until
/// `stop_at`; records what was acknowledged.
async fn burst(
    base: String,
    key: String,
    user: String,
    stop_at: Instant,
    acked: Arc<Mutex<Acked>>,
) {
    let mut mine: Vec<String> = Vec::new();
    while Instant::now() < stop_at {
        let Some(s) = post(&base, &key, "/v1/sessions", json!({"user_id": user})).await else {
            continue;
        };
        let Some(id) = s["id"].as_str().map(str::to_owned) else {
            continue;
        };
        if let Ok(mut a) = acked.lock() {
            a.created.insert(id.clone());
        }
        mine.push(id);
        if mine.len().is_multiple_of(3) {
            let victim = mine[mine.len() - 2].clone();
            if let Ok(mut a) = acked.lock() {
                a.revoke_unanswered.insert(victim.clone());
            }
            let done = post(
                &base,
                &key,
                &format!("/v1/sessions/{victim}/revoke"),
                json!({}),
            )
            .await;
            if done.is_some_and(|v| v["status"] == "revoked")
                && let Ok(mut a) = acked.lock()
            {
                a.revoke_unanswered.remove(&victim);
                a.revoked.insert(victim);
            }
        }
    }
}

async fn status_of(server: &Server, key: &str, id: &str) -> Option<String> {
    let r = client()
        .get(server.url(&format!("/v1/sessions/{id}")))
        .bearer_auth(key)
        .send()
        .await
        .ok()?;
    let v: Value = r.json().await.ok()?;
    v["status"].as_str().map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill_on_sqlite() {
    let env = Env::sqlite();
    let mut server = env.spawn();
    let key = server
        .bootstrap_key()
        .unwrap_or_else(|| panic!("bootstrap key printed"));
    let user: Value = post(
        &server.base,
        &key,
        "/v1/users",
        json!({"first_name": "Crash"}),
    )
    .await
    .unwrap_or_else(|| panic!("user created"));
    let user = user["id"].as_str().unwrap_or_default().to_owned();

    let mut expected: HashMap<String, &'static str> = HashMap::new();
    let mut maybe_revoked: HashSet<String> = HashSet::new();
    for trial in 0..3 {
        let acked = Arc::new(Mutex::new(Acked::default()));
        let stop_at = Instant::now() + Duration::from_secs(5);
        let workers: Vec<_> = (0..16)
            .map(|_| {
                tokio::spawn(burst(
                    server.base.clone(),
                    key.clone(),
                    user.clone(),
                    stop_at,
                    acked.clone(),
                ))
            })
            .collect();
        // Kill mid-burst, once writes are flowing.
        tokio::time::sleep(Duration::from_millis(700)).await;
        server.kill9();
        for w in workers {
            let _ = w.await;
        }
        let a = acked.lock().map(|a| {
            (
                a.created.clone(),
                a.revoked.clone(),
                a.revoke_unanswered.clone(),
            )
        });
        let Ok((created, revoked, unanswered)) = a else {
            panic!("bookkeeping lock poisoned");
        };
        assert!(
            created.len() > 20,
            "trial {trial}: the burst was under way ({} creates)",
            created.len()
        );
        for id in created {
            expected.entry(id).or_insert("active");
        }
        for id in revoked {
            expected.insert(id, "revoked");
        }
        maybe_revoked.extend(unanswered);

        server = env.spawn();
        for (id, want) in &expected {
            let got = status_of(&server, &key, id).await;
            let ok = match (got.as_deref(), *want) {
                (Some("revoked"), _) if maybe_revoked.contains(id) => true,
                (Some(g), w) => g == w,
                (None, _) => false,
            };
            assert!(
                ok,
                "trial {trial}: session {id} acknowledged as {want}, found {got:?}"
            );
        }
    }
}

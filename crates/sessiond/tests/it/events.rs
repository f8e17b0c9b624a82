//! Events end to end: the revocation feed (long-poll, cursors, every way a session stops, across
//! a crash and across nodes).

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use sessiond_store_conformance::Kind;

use crate::harness::{Env, call};

fn id(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .to_owned()
}

async fn session_for(base: &str, key: &str, user: &str) -> String {
    let (status, s) = call(
        base,
        key,
        Method::POST,
        "/v1/sessions",
        Some(json!({"user_id": user})),
    )
    .await;
    assert_eq!(status, 200, "{s}");
    id(&s)
}

async fn feed(base: &str, key: &str, query: &str) -> (u16, Value) {
    call(
        base,
        key,
        Method::GET,
        &format!("/sessiond/v1/revocations?{query}"),
        None,
    )
    .await
}

fn listed(page: &Value) -> Vec<(String, String)> {
    page["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data in {page}"))
        .iter()
        .map(|r| {
            (
                r["session_id"].as_str().unwrap_or_default().to_owned(),
                r["type"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

async fn feed_lists_every_way_a_session_stops(kind: Kind) {
    let Some(env) = Env::of(kind).await else {
        return;
    };
    let (_, key, _) = env.create_app("feed");
    let (_, other_key, _) = env.create_app("other");
    let server = env.spawn();
    let base = server.base.clone();
    let (_, user) = call(
        &base,
        &key,
        Method::POST,
        "/v1/users",
        Some(json!({"first_name": "F"})),
    )
    .await;
    let uid = id(&user);

    // Nothing yet: an empty page whose cursor is the start.
    let (status, empty) = feed(&base, &key, "").await;
    assert_eq!(status, 200, "{empty}");
    assert_eq!(listed(&empty), vec![]);
    let start = empty["next"].as_str().unwrap_or_default().to_owned();

    // A long-poll held open before the revoke answers once it happens, well before `wait`.
    let revoked = session_for(&base, &key, &uid).await;
    let waiter = {
        let (base, key, start) = (base.clone(), key.clone(), start.clone());
        tokio::spawn(async move {
            let t = Instant::now();
            let r = feed(&base, &key, &format!("after={start}&wait=20")).await;
            (r, t.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, _) = call(
        &base,
        &key,
        Method::POST,
        &format!("/v1/sessions/{revoked}/revoke"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let ((status, page), took) = waiter.await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        listed(&page),
        vec![(revoked.clone(), "session.revoked".to_owned())]
    );
    assert!(took < Duration::from_secs(5), "the long-poll took {took:?}");
    assert_eq!(page["data"][0]["user_id"], json!(uid));
    assert!(
        page["data"][0]["expire_at"].as_i64().unwrap_or(0)
            > page["data"][0]["at"].as_i64().unwrap_or(0)
    );
    let after_revoke = page["next"].as_str().unwrap_or_default().to_owned();

    // Equisoft's delete and Clerk's end both stop a session; a plain touch does not.
    let deleted = session_for(&base, &key, &uid).await;
    let (status, _) = call(
        &base,
        &key,
        Method::DELETE,
        &format!("/sessions/{deleted}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let untouched = session_for(&base, &key, &uid).await;
    let (status, _) = call(
        &base,
        &key,
        Method::POST,
        &format!("/v1/sessions/{untouched}/tokens"),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, page) = feed(&base, &key, &format!("after={after_revoke}&wait=5")).await;
    assert_eq!(status, 200);
    assert_eq!(
        listed(&page),
        vec![(deleted.clone(), "session.removed".to_owned())]
    );

    // From the start, in order; a limit pages; another application sees nothing.
    let (_, all) = feed(&base, &key, "limit=1&wait=5").await;
    assert_eq!(
        listed(&all),
        vec![(revoked.clone(), "session.revoked".to_owned())]
    );
    assert_eq!(all["has_more"], json!(true));
    let (_, rest) = feed(
        &base,
        &key,
        &format!("after={}&wait=5", all["next"].as_str().unwrap_or_default()),
    )
    .await;
    assert_eq!(
        listed(&rest),
        vec![(deleted.clone(), "session.removed".to_owned())]
    );
    let (_, theirs) = feed(&base, &other_key, "").await;
    assert_eq!(listed(&theirs), vec![]);

    // A long-poll with nothing new answers empty after `wait`, keeping the cursor.
    let end = rest["next"].as_str().unwrap_or_default().to_owned();
    let t = Instant::now();
    let (status, quiet) = feed(&base, &key, &format!("after={end}&wait=1")).await;
    assert_eq!(status, 200);
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(listed(&quiet), vec![]);
    assert_eq!(quiet["next"], json!(end));

    // Bad parameters are 422 in sessiond's error shape.
    for q in [
        "after=zz",
        "wait=31",
        "wait=-1",
        "limit=0",
        "limit=1001",
        "bogus=1",
        "after=1.2.3",
    ] {
        let (status, body) = feed(&base, &key, q).await;
        assert_eq!(status, 422, "{q}: {body}");
        assert_eq!(body["error"]["code"], json!("invalid_input"), "{q}");
    }

    // The events are durable: a SIGKILL and a restart keep the feed whole.
    server.kill9();
    let server = env.spawn();
    let (_, again) = feed(&server.base, &key, "").await;
    assert_eq!(
        listed(&again),
        vec![
            (revoked, "session.revoked".to_owned()),
            (deleted, "session.removed".to_owned())
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_on_sqlite() {
    feed_lists_every_way_a_session_stops(Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_on_postgres() {
    feed_lists_every_way_a_session_stops(Kind::Postgres).await;
}

/// Two nodes on one PostgreSQL database: a reader long-polling node B learns of a revoke made
/// through node A within B's poll period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_crosses_nodes_on_postgres() {
    let Some(env) = Env::postgres().await else {
        return;
    };
    let (_, key, _) = env.create_app("nodes");
    let (a, b) = (env.spawn(), env.spawn());
    let (_, user) = call(
        &a.base,
        &key,
        Method::POST,
        "/v1/users",
        Some(json!({"first_name": "N"})),
    )
    .await;
    let sid = session_for(&a.base, &key, &id(&user)).await;
    let waiter = {
        let (base, key) = (b.base.clone(), key.clone());
        tokio::spawn(async move {
            let t = Instant::now();
            (feed(&base, &key, "wait=20").await, t.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, _) = call(
        &a.base,
        &key,
        Method::POST,
        &format!("/v1/sessions/{sid}/revoke"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let ((status, page), took) = waiter.await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status, 200);
    assert_eq!(listed(&page), vec![(sid, "session.revoked".to_owned())]);
    assert!(took < Duration::from_secs(5), "{took:?}");
}

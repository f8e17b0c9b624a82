//! Peer for bench/run: the sessions service a Rust team writes in an afternoon — axum on one
//! multiplexed Redis connection (the `redis` crate), no auth, no tokens, no durability beyond
//! Redis's own. It serves the same routes as the Express baseline (bench/express/app.js) so the
//! same workloads drive it, each with as few Redis round trips as the data model allows:
//!
//! | route | Redis |
//! | --- | --- |
//! | `POST /sessions {userId}` | `SET sess:<id> <json> EX ttl` + `SADD user:<uid> <id>`, one pipeline |
//! | `GET /sessions/{id}` | `GETEX sess:<id> EX ttl` (read and keep-alive in one command) |
//! | `GET /users/{uid}/sessions?limit=N` | `SMEMBERS`, then one `MGET` |
//! | `DELETE /sessions/{id}` | `GETDEL`, then `SREM` |
//! | `DELETE /users/{uid}/sessions` | `SMEMBERS`, then `DEL` of the sessions and the set, one pipeline |
//!
//! Usage: axum-redis 127.0.0.1:PORT [redis://127.0.0.1:6379] [key prefix]

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;
use serde_json::{Value, json};

const TTL_SECONDS: u64 = 7 * 24 * 3600;

struct App {
    redis: MultiplexedConnection,
    prefix: String,
}

impl App {
    fn sess(&self, id: &str) -> String {
        format!("{}sess:{id}", self.prefix)
    }
    fn user(&self, uid: &str) -> String {
        format!("{}user:{uid}", self.prefix)
    }
}

type Shared = State<Arc<App>>;

fn fail(e: impl std::fmt::Display) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({ "error": e.to_string() })),
    )
        .into_response()
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({ "error": "not found" }))).into_response()
}

fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

async fn create(State(app): Shared, Json(body): Json<Value>) -> Response {
    let Some(uid) = body.get("userId").and_then(Value::as_str) else {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({ "error": "userId" })),
        )
            .into_response();
    };
    let id = sessiond_crypto::ids::new_uuid();
    let now = now_ms();
    let data = json!({ "userId": uid, "createdAt": now, "expiresAt": now + u128::from(TTL_SECONDS) * 1000 });
    let mut con = app.redis.clone();
    let res: redis::RedisResult<()> = redis::pipe()
        .set_ex(app.sess(&id), data.to_string(), TTL_SECONDS)
        .ignore()
        .sadd(app.user(uid), &id)
        .ignore()
        .query_async(&mut con)
        .await;
    match res {
        Ok(()) => Json(json!({ "id": id, "userId": uid })).into_response(),
        Err(e) => fail(e),
    }
}

async fn get_one(State(app): Shared, Path(id): Path<String>) -> Response {
    let mut con = app.redis.clone();
    let got: redis::RedisResult<Option<String>> = con
        .get_ex(app.sess(&id), redis::Expiry::EX(TTL_SECONDS))
        .await;
    match got {
        Ok(Some(s)) => {
            let mut v: Value = serde_json::from_str(&s).unwrap_or(Value::Null);
            if let Some(o) = v.as_object_mut() {
                o.insert("id".into(), Value::String(id));
                o.insert(
                    "expiresAt".into(),
                    json!(now_ms() + u128::from(TTL_SECONDS) * 1000),
                );
            }
            Json(v).into_response()
        }
        Ok(None) => not_found(),
        Err(e) => fail(e),
    }
}

async fn list(
    State(app): Shared,
    Path(uid): Path<String>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    let limit = q
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(20)
        .min(500);
    let mut con = app.redis.clone();
    let ids: Vec<String> = match con.smembers(app.user(&uid)).await {
        Ok(ids) => ids,
        Err(e) => return fail(e),
    };
    let ids: Vec<String> = ids.into_iter().take(limit).collect();
    if ids.is_empty() {
        return Json(json!([])).into_response();
    }
    let keys: Vec<String> = ids.iter().map(|i| app.sess(i)).collect();
    let rows: Vec<Option<String>> = match redis::cmd("MGET").arg(&keys).query_async(&mut con).await
    {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let out: Vec<Value> = ids
        .into_iter()
        .zip(rows)
        .filter_map(|(id, row)| {
            let mut v: Value = serde_json::from_str(&row?).ok()?;
            v.as_object_mut()?.insert("id".into(), Value::String(id));
            Some(v)
        })
        .collect();
    Json(Value::Array(out)).into_response()
}

async fn revoke(State(app): Shared, Path(id): Path<String>) -> Response {
    let mut con = app.redis.clone();
    let got: redis::RedisResult<Option<String>> = con.get_del(app.sess(&id)).await;
    match got {
        Ok(Some(s)) => {
            let uid = serde_json::from_str::<Value>(&s)
                .ok()
                .and_then(|v| v.get("userId").and_then(Value::as_str).map(str::to_owned));
            if let Some(uid) = uid {
                let r: redis::RedisResult<()> = con.srem(app.user(&uid), &id).await;
                if let Err(e) = r {
                    return fail(e);
                }
            }
            Json(json!({ "id": id, "deleted": true })).into_response()
        }
        Ok(None) => Json(json!({ "id": id, "deleted": false })).into_response(),
        Err(e) => fail(e),
    }
}

async fn revoke_all(State(app): Shared, Path(uid): Path<String>) -> Response {
    let mut con = app.redis.clone();
    let set = app.user(&uid);
    let ids: Vec<String> = match con.smembers(&set).await {
        Ok(ids) => ids,
        Err(e) => return fail(e),
    };
    let mut keys: Vec<String> = ids.iter().map(|i| app.sess(i)).collect();
    keys.push(set);
    let r: redis::RedisResult<()> = redis::cmd("DEL").arg(&keys).query_async(&mut con).await;
    match r {
        Ok(()) => Json(json!({ "deleted": ids.len() })).into_response(),
        Err(e) => fail(e),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:7391".to_owned());
    let url = args
        .next()
        .unwrap_or_else(|| "redis://127.0.0.1:6379".to_owned());
    let prefix = args.next().unwrap_or_else(|| "axum:".to_owned());
    let redis = redis::Client::open(url)?
        .get_multiplexed_async_connection()
        .await?;
    let app = Arc::new(App { redis, prefix });
    let router = Router::new()
        .route("/sessions", post(create))
        .route("/sessions/{id}", get(get_one).delete(revoke))
        .route("/users/{uid}/sessions", get(list).delete(revoke_all))
        .route(
            "/healthz",
            get(|| async { Json(json!({ "status": "ok" })) }),
        )
        .fallback(|| async { not_found() })
        .with_state(app);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    axum::serve(listener, router).await?;
    Ok(())
}

//! clerk-rs (crates.io), the Rust SDK Clerk lists, unchanged against the real binary: users with
//! passwords, metadata merge, search and order, sessions, tokens and refresh.

use std::collections::HashMap;

use clerk_rs::apis::configuration::Configuration;
use clerk_rs::apis::{Error, sessions_api, users_api};
use clerk_rs::models;
use serde_json::json;

use crate::harness::Env;

fn status<T>(e: &Error<T>) -> Option<u16> {
    match e {
        Error::ResponseError(r) => Some(r.status.as_u16()),
        _ => None,
    }
}

fn ok<T, E: std::fmt::Display>(r: Result<T, E>, what: &str) -> T {
    r.unwrap_or_else(|e| panic!("{what}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clerk_rs_users_sessions_and_refresh() {
    let env = Env::sqlite();
    let (_, key, _) = env.create_app("clerk-rs");
    let server = env.spawn();
    let cfg = Configuration::new(key).with_base_path(server.url("/v1"));

    let mut new = models::CreateUserRequest::new();
    new.email_address = Some(vec!["ferris@rust.example".into()]);
    new.first_name = Some(Some("Ferris".into()));
    new.password = Some(Some("crab rave 2026".into()));
    new.public_metadata = Some(HashMap::from([(
        "shell".to_owned(),
        json!({"colour": "orange", "legs": 10}),
    )]));
    let ferris = ok(users_api::create_user(&cfg, new).await, "create_user");
    assert!(ferris.password_enabled);
    let mut other = models::CreateUserRequest::new();
    other.email_address = Some(vec!["corro@rust.example".into()]);
    other.first_name = Some(Some("Corro".into()));
    let corro = ok(users_api::create_user(&cfg, other).await, "create_user");

    let mut merge = models::UpdateUserMetadataRequest::new();
    merge.public_metadata = Some(HashMap::from([(
        "shell".to_owned(),
        json!({"legs": null, "claws": 2}),
    )]));
    let merged = ok(
        users_api::update_user_metadata(&cfg, &ferris.id, Some(merge)).await,
        "update_user_metadata",
    );
    assert_eq!(
        merged.public_metadata.get("shell"),
        Some(&json!({"colour": "orange", "claws": 2}))
    );

    let list = |query: Option<&'static str>, order: &'static str| {
        let cfg = cfg.clone();
        async move {
            users_api::get_user_list(
                &cfg,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                query,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                Some(order),
            )
            .await
            .map(|users| users.into_iter().map(|u| u.id).collect::<Vec<_>>())
        }
    };
    assert_eq!(
        ok(list(Some("rust.example"), "+first_name").await, "list"),
        vec![corro.id.clone(), ferris.id.clone()]
    );
    assert_eq!(
        ok(list(Some("rust.example"), "-first_name").await, "list"),
        vec![ferris.id.clone(), corro.id.clone()]
    );
    assert_eq!(
        ok(list(None, "email_address").await, "list"),
        vec![corro.id.clone(), ferris.id.clone()]
    );

    let verified = ok(
        users_api::verify_password(
            &cfg,
            &ferris.id,
            Some(models::VerifyPasswordRequest::new("crab rave 2026".into())),
        )
        .await,
        "verify_password",
    );
    assert_eq!(verified.verified, Some(true));
    let wrong = users_api::verify_password(
        &cfg,
        &ferris.id,
        Some(models::VerifyPasswordRequest::new("crab rave 2025".into())),
    )
    .await;
    assert_eq!(wrong.as_ref().err().and_then(status), Some(422));

    let session = ok(
        sessions_api::create_session(
            &cfg,
            Some(models::CreateSessionRequest::new(ferris.id.clone())),
        )
        .await,
        "create_session",
    );
    let token = ok(
        sessions_api::create_session_token(&cfg, &session.id, None).await,
        "create_session_token",
    );
    let jwt = token.jwt.unwrap_or_default();
    let refreshed = ok(
        sessions_api::refresh_session(
            &cfg,
            &session.id,
            Some(models::RefreshSessionRequest::new(
                jwt.clone(),
                "unused".into(),
                "https://app.example".into(),
            )),
        )
        .await,
        "refresh_session",
    );
    match refreshed {
        models::SessionRefresh::Token(t) => assert!(!t.jwt.is_empty() && t.jwt != jwt),
        models::SessionRefresh::Cookies(c) => panic!("asked for a token, got {c:?}"),
    }
    ok(
        sessions_api::revoke_session(&cfg, &session.id).await,
        "revoke_session",
    );
    let refused = sessions_api::refresh_session(
        &cfg,
        &session.id,
        Some(models::RefreshSessionRequest::new(
            jwt,
            "unused".into(),
            "https://app.example".into(),
        )),
    )
    .await;
    assert_eq!(refused.as_ref().err().and_then(status), Some(401));
}

/// clerk-rs's axum `ClerkLayer`, the way a Rust service protects its routes with Clerk, accepts
/// sessiond's session tokens by header and by `__session` cookie with the JWKS it fetches from
/// sessiond, and refuses a missing, tampered or foreign token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clerk_rs_axum_layer_accepts_sessiond_session_tokens() {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use clerk_rs::clerk::Clerk;
    use clerk_rs::validators::authorizer::ClerkJwt;
    use clerk_rs::validators::axum::ClerkLayer;
    use clerk_rs::validators::jwks::MemoryCacheJwksProvider;
    use tower::ServiceExt;

    let env = Env::sqlite();
    let (_, key, _) = env.create_app("clerk-rs layer");
    let (_, other_key, _) = env.create_app("another app");
    let server = env.spawn();
    let cfg = Configuration::new(key).with_base_path(server.url("/v1"));
    let other = Configuration::new(other_key).with_base_path(server.url("/v1"));

    let token_of = |cfg: Configuration| async move {
        let mut new = models::CreateUserRequest::new();
        new.first_name = Some(Some("Layer".into()));
        let user = ok(users_api::create_user(&cfg, new).await, "create_user");
        let session = ok(
            sessions_api::create_session(
                &cfg,
                Some(models::CreateSessionRequest::new(user.id.clone())),
            )
            .await,
            "create_session",
        );
        let token = ok(
            sessions_api::create_session_token(&cfg, &session.id, None).await,
            "create_session_token",
        );
        (user.id, session.id, token.jwt.unwrap_or_default())
    };
    let (user_id, session_id, token) = token_of(cfg.clone()).await;
    let (_, _, foreign) = token_of(other).await;

    let app = axum::Router::new()
        .route(
            "/me",
            axum::routing::get(
                |axum::Extension(jwt): axum::Extension<ClerkJwt>| async move {
                    format!("{} {}", jwt.sub, jwt.sid.unwrap_or_default())
                },
            ),
        )
        .layer(ClerkLayer::new(
            MemoryCacheJwksProvider::new(Clerk::new(cfg)),
            None,
            true,
        ));
    let call = |header: Option<(&'static str, String)>| {
        let app = app.clone();
        async move {
            let mut req = Request::get("/me");
            if let Some((name, value)) = header {
                req = req.header(name, value);
            }
            let resp = app
                .oneshot(req.body(Body::empty()).unwrap_or_default())
                .await
                .unwrap_or_else(|e| match e {});
            let status = resp.status();
            let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
                .await
                .unwrap_or_default();
            (status, String::from_utf8_lossy(&body).into_owned())
        }
    };

    let want = format!("{user_id} {session_id}");
    assert_eq!(
        call(Some(("authorization", format!("Bearer {token}")))).await,
        (StatusCode::OK, want.clone()),
        "by header"
    );
    assert_eq!(
        call(Some(("cookie", format!("__session={token}")))).await,
        (StatusCode::OK, want),
        "by cookie"
    );
    assert_eq!(call(None).await.0, StatusCode::UNAUTHORIZED, "no token");
    let mut tampered = token.clone();
    tampered.pop();
    tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
    assert_eq!(
        call(Some(("authorization", format!("Bearer {tampered}"))))
            .await
            .0,
        StatusCode::UNAUTHORIZED,
        "tampered signature"
    );
    assert_ne!(
        call(Some(("authorization", format!("Bearer {foreign}"))))
            .await
            .0,
        StatusCode::OK,
        "another application's token: its key is not in this application's JWKS"
    );
}

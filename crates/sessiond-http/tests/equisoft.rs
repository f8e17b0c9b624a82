//! The Equisoft dialect in-process, through the real router, with a driven clock. Requests are
//! encoded the way each Equisoft client encodes them (Kotlin: JSON everywhere, JSON string
//! literals for tokens and `null` for "no body"; TypeScript and PHP: text/plain), and responses
//! are checked as strictly as the Kotlin client (Moshi) parses them.

mod support;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use sessiond_core::Timestamp;
use sessiond_core::application::{Application, KeyEnvironment};
use sessiond_core::clock::{Clock, ManualClock};
use sessiond_core::login::LoginService;
use sessiond_core::tenancy::Tenancy;
use sessiond_core::user::{NewUser, UserPatch};
use sessiond_store_conformance::TestDb;
use sessiond_store_conformance::services::Services;
use tower::ServiceExt;

const T0: Timestamp = Timestamp(1_767_225_600_000);

struct Env {
    db: Arc<TestDb>,
    clock: Arc<ManualClock>,
    login: Arc<LoginService>,
    tenancy: Arc<Tenancy>,
    app: Application,
    key: String,
    router: axum::Router,
}

async fn env() -> Env {
    let services = Services::sqlite().await;
    let (app, key) = services
        .app("equisoft", T0, |s| {
            s.inactivity_timeout_secs = Some(1800);
            s.session_max_lifetime_secs = 8 * 3600;
        })
        .await;
    let clock = Arc::new(ManualClock::new(T0));
    let state = support::state(&services, clock.clone());
    Env {
        router: sessiond_http::router(state),
        key,
        clock,
        login: services.login.clone(),
        tenancy: services.tenancy.clone(),
        app,
        db: Arc::new(services.db),
    }
}

impl Env {
    async fn call(
        &self,
        method: &str,
        path: &str,
        ct: Option<&str>,
        body: &str,
    ) -> (StatusCode, Option<String>, String) {
        let req = support::request(method, path, Some(&self.key), ct, body.to_owned());
        let r = support::send(&self.router, req).await;
        (r.status, Some(r.ct).filter(|c| !c.is_empty()), r.text)
    }

    /// `PUT /sessions/{sid}/tokens/{name}` as TypeScript and PHP send it (text/plain).
    async fn put_token(&self, sid: &str, name: &str, body: &str) -> StatusCode {
        let path = format!("/sessions/{sid}/tokens/{name}");
        self.call("PUT", &path, Some("text/plain"), body).await.0
    }

    /// The stored value of a session's token, `Null` when there is none.
    async fn token_value(&self, sid: &str, name: &str) -> Value {
        let path = format!("/sessions/{sid}/tokens/{name}");
        let (_, _, text) = self.call("GET", &path, None, "").await;
        serde_json::from_str::<Value>(&text).unwrap_or_default()["value"].clone()
    }

    /// Kotlin style: JSON content type on everything.
    async fn kt(&self, method: &str, path: &str, body: &str) -> (StatusCode, Value) {
        let (s, ct, text) = self
            .call(method, path, Some("application/json"), body)
            .await;
        if !text.is_empty() {
            assert!(
                ct.as_deref()
                    .is_some_and(|c| c.starts_with("application/json")),
                "{path}: non-empty bodies are JSON"
            );
        }
        (s, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn user(&self, email: &str) -> sessiond_core::user::User {
        let input = NewUser {
            email_addresses: vec![email.into()],
            first_name: Some("Ada".into()),
            ..NewUser::default()
        };
        self.login
            .create_user(&self.app, input, self.clock.now())
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Opens a session for `u` (`POST /sessions` with only its uuid): the answer and its id.
    async fn session_of(&self, u: &sessiond_core::user::User) -> (Value, String) {
        let (st, s) = self
            .kt("POST", "/sessions", &json!({"userUuid": u.id}).to_string())
            .await;
        assert_eq!(st, StatusCode::CREATED, "{s}");
        let sid = s["sessionId"].as_str().unwrap_or_default().to_owned();
        (s, sid)
    }

    /// Lets `u` impersonate other users.
    async fn may_impersonate(&self, u: &sessiond_core::user::User) {
        self.set(
            u,
            UserPatch {
                can_impersonate: Some(true),
                ..Default::default()
            },
        )
        .await;
    }

    async fn set(&self, u: &sessiond_core::user::User, patch: UserPatch) {
        self.login
            .update_user(&self.app, &u.id, patch, self.clock.now())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
}

fn parse_date(v: &Value, field: &str) -> time::OffsetDateTime {
    let s = v[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} is a string: {v}"));
    assert!(s.ends_with('Z'), "{field} carries an offset: {s}");
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{field}={s}: {e}"))
}

/// Every required field of the Kotlin client's User, present, non-null, with known enum values.
fn check_user(u: &Value) {
    for f in [
        "id",
        "uuid",
        "displayName",
        "email",
        "locale",
        "state",
        "locked",
        "legacyRoles",
        "deletable",
        "billable",
        "agreement",
        "services",
        "servicesUsers",
        "authType",
    ] {
        assert!(!u[f].is_null(), "User.{f} present and non-null: {u}");
    }
    assert!(u["id"].is_i64());
    assert!(["DELETED", "DISABLED", "ENABLED"].contains(&u["state"].as_str().unwrap_or_default()));
    assert!(
        ["ACCEPTED", "REQUESTED"].contains(&u["agreement"]["state"].as_str().unwrap_or_default())
    );
    for s in u["services"].as_array().cloned().unwrap_or_default() {
        assert!(
            [
                "EQUISOFT_CONNECT",
                "EQUISOFT_PLAN",
                "EQUISOFT_ANALYZE_FOR_ADVISORS",
                "CPANEL"
            ]
            .contains(&s["serviceName"].as_str().unwrap_or_default())
        );
    }
}

fn check_session(s: &Value) {
    for f in [
        "sessionId",
        "state",
        "created",
        "suspend",
        "expire",
        "user",
        "enabledForEquisoftConnect",
        "mobile",
    ] {
        assert!(!s[f].is_null(), "Session.{f} present and non-null: {s}");
    }
    assert!(
        ["NEW", "ENABLED", "SUSPENDED", "EXPIRED", "DELETED"]
            .contains(&s["state"].as_str().unwrap_or_default())
    );
    for f in ["created", "suspend", "expire"] {
        parse_date(s, f);
    }
    check_user(&s["user"]);
    if !s["actor"].is_null() {
        check_user(&s["actor"]);
    }
}

#[tokio::test]
async fn every_operation_in_kotlin_encoding() {
    let e = env().await;
    let u = e.user("kt@example.com").await;
    let (st, s) = e
        .kt("POST", "/sessions", &json!({"userUuid": u.id, "enable": false, "mobileDevice": true, "publicComputer": false,
            "cookieDomain": ".example.com", "sso": {"provider": "okta", "identifier": "ada@okta"}}).to_string())
        .await;
    assert_eq!(st, StatusCode::CREATED);
    check_session(&s);
    assert_eq!(
        (s["state"].as_str(), s["mobile"].as_bool()),
        (Some("NEW"), Some(true))
    );
    assert_eq!(
        s["sso"],
        json!({"provider": "okta", "identifier": "ada@okta"})
    );
    assert_eq!(s["cookieDomain"], ".example.com");
    let sid = s["sessionId"].as_str().unwrap_or_default().to_owned();

    let (st, body) = e
        .kt("POST", &format!("/sessions/{sid}/enable"), "null")
        .await;
    assert_eq!(
        (st, body),
        (StatusCode::NO_CONTENT, Value::Null),
        "204 with an empty body"
    );
    let (st, s) = e
        .kt("GET", &format!("/sessions/{sid}?keepAlive=false"), "")
        .await;
    assert_eq!((st, s["state"].as_str()), (StatusCode::OK, Some("ENABLED")));
    check_session(&s);

    let (st, _) = e
        .kt(
            "PUT",
            &format!("/sessions/{sid}/tokens/crm%2Fmain"),
            "\"tok \\\"quoted\\\" value\"",
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, t) = e
        .kt("GET", &format!("/sessions/{sid}/tokens/crm%2Fmain"), "")
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        t,
        json!({"id": "crm/main", "value": "tok \"quoted\" value"}),
        "the JSON string is unwrapped, the id decoded"
    );
    let (st, _) = e
        .kt(
            "DELETE",
            &format!("/sessions/{sid}/tokens/crm%2Fmain"),
            "null",
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, err) = e
        .kt("GET", &format!("/sessions/{sid}/tokens/crm%2Fmain"), "")
        .await;
    assert_eq!(
        (st, err["message"].as_str()),
        (StatusCode::NOT_FOUND, Some("NOT_FOUND"))
    );

    let (st, body) = e
        .kt(
            "POST",
            &format!("/sessions/{sid}/enable/EQUISOFT_CONNECT"),
            "null",
        )
        .await;
    assert_eq!(
        (st, body),
        (StatusCode::ACCEPTED, Value::Null),
        "202 with an empty body"
    );
    let (_, s) = e.kt("GET", &format!("/sessions/{sid}"), "").await;
    assert_eq!(s["enabledForEquisoftConnect"], true);

    let admin = e.user("admin@example.com").await;
    e.may_impersonate(&admin).await;
    let (_, asid) = e.session_of(&admin).await;
    let (st, imp) = e
        .kt(
            "POST",
            &format!("/sessions/{asid}/impersonate"),
            &json!({"userUuid": u.id}).to_string(),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    check_session(&imp);
    assert_eq!(imp["user"]["uuid"], json!(u.id));
    assert_eq!(imp["actor"]["uuid"], json!(admin.id));
    let (st, back) = e
        .kt("POST", &format!("/sessions/{asid}/revertIdentity"), "null")
        .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(back["user"]["uuid"], json!(admin.id));
    assert!(back.get("actor").is_none(), "no actor after revert");

    let (st, _) = e.kt("DELETE", &format!("/sessions/{sid}"), "null").await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, err) = e.kt("GET", &format!("/sessions/{sid}"), "").await;
    assert_eq!(
        (st, err["message"].as_str()),
        (StatusCode::NOT_FOUND, Some("NOT_FOUND"))
    );
    let (st, _) = e
        .kt("DELETE", &format!("/users/{}/sessions", admin.id), "null")
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = e.kt("GET", &format!("/sessions/{asid}"), "").await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    // A session created after the deletion is the user's as usual.
    let (st, again) = e
        .kt(
            "POST",
            "/sessions",
            &json!({"userUuid": admin.id}).to_string(),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let again = again["sessionId"].as_str().unwrap_or_default().to_owned();
    let (st, _) = e.kt("GET", &format!("/sessions/{again}"), "").await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = e
        .kt("DELETE", "/users/user_0000000000000000000000/sessions", "")
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "204 even without sessions");
    let (st, _) = e.kt("DELETE", "/sessions/expired", "").await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (_, s2) = e
        .kt("POST", "/sessions", &json!({"userUuid": u.id}).to_string())
        .await;
    let (st, _) = e.kt("DELETE", "/sessions", "null").await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = e
        .kt(
            "GET",
            &format!("/sessions/{}", s2["sessionId"].as_str().unwrap_or_default()),
            "",
        )
        .await;
    assert_eq!(
        st,
        StatusCode::NOT_FOUND,
        "delete all removes every session of the application"
    );
}

#[tokio::test]
async fn typescript_and_php_send_text_plain() {
    let e = env().await;
    let u = e.user("ts@example.com").await;
    let (_, s) = e
        .kt(
            "POST",
            "/sessions",
            &json!({"userUuid": u.id, "enable": false}).to_string(),
        )
        .await;
    let sid = s["sessionId"].as_str().unwrap_or_default().to_owned();
    let (st, _, body) = e
        .call(
            "POST",
            &format!("/sessions/{sid}/enable"),
            Some("text/plain"),
            "",
        )
        .await;
    assert_eq!((st, body.as_str()), (StatusCode::NO_CONTENT, ""));
    let (st, _, _) = e
        .call("POST", &format!("/sessions/{sid}/enable"), None, "")
        .await;
    assert_eq!(
        st,
        StatusCode::NO_CONTENT,
        "PHP may send no body and no content type; enabling twice is fine"
    );
    for (value, why) in [
        (
            "raw \"token\" {not json}",
            "stored exactly, no double encoding",
        ),
        ("replaced", "PUT replaces"),
    ] {
        assert_eq!(e.put_token(&sid, "saml", value).await, StatusCode::OK);
        assert_eq!(e.token_value(&sid, "saml").await, value, "{why}");
    }
    let (st, _, body) = e
        .call("GET", &format!("/sessions/{sid}?keepAlive=1"), None, "")
        .await;
    assert_eq!(st, StatusCode::OK, "legacy PHP keepAlive=1: {body}");
    let (st, _, _) = e
        .call("GET", &format!("/sessions/{sid}?keepAlive=0"), None, "")
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, _, _) = e
        .call(
            "POST",
            &format!("/sessions/{sid}/revertIdentity"),
            Some("text/plain"),
            "",
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
}

/// The TypeScript client (typescript-fetch runtime) JSON-encodes every body, text/plain
/// included, and sends unset query parameters as `null`.
#[tokio::test]
async fn typescript_fetch_json_encodes_text_bodies() {
    let e = env().await;
    let u = e.user("tsfetch@example.com").await;
    let (_, s) = e
        .kt(
            "POST",
            "/sessions",
            &json!({"userUuid": u.id, "cookieDomain": ".Example.COM"}).to_string(),
        )
        .await;
    assert_eq!(s["cookieDomain"], ".Example.COM", "stored as sent");
    let sid = s["sessionId"].as_str().unwrap_or_default().to_owned();
    let token = |value: &str| {
        let (e, sid) = (&e, sid.clone());
        let body = serde_json::to_string(value).unwrap_or_default();
        async move {
            let st = e.put_token(&sid, "t", &body).await;
            (st, e.token_value(&sid, "t").await)
        }
    };
    let (st, got) = token("abc").await;
    assert_eq!((st, got), (StatusCode::OK, json!("abc")), "no quotes kept");
    let (st, got) = token("a \"quoted\" \\ value").await;
    assert_eq!((st, got), (StatusCode::OK, json!("a \"quoted\" \\ value")));
    let longest = "x".repeat(16 * 1024);
    let (st, got) = token(&longest).await;
    assert_eq!(
        st,
        StatusCode::OK,
        "the limit counts the value, not its quotes"
    );
    assert_eq!(got, json!(longest));
    let (st, _) = token(&"x".repeat(16 * 1024 + 1)).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, got) = token("").await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "an empty value is no value");
    assert_eq!(got, json!(longest), "and leaves the stored one alone");
    let (st, _, body) = e
        .call("GET", &format!("/sessions/{sid}?keepAlive=null"), None, "")
        .await;
    assert_eq!(
        st,
        StatusCode::OK,
        "keepAlive=null is an unset parameter: {body}"
    );
}

#[tokio::test]
async fn keep_alive_slides_suspend_never_expire() {
    let e = env().await;
    let u = e.user("life@example.com").await;
    let (s, sid) = e.session_of(&u).await;
    let expire = parse_date(&s, "expire");
    let suspend0 = parse_date(&s, "suspend");
    assert_eq!(
        (suspend0 - parse_date(&s, "created")).whole_seconds(),
        1800,
        "suspend = created + inactivity timeout"
    );

    e.clock.advance_secs(1000);
    let (_, s) = e
        .kt("GET", &format!("/sessions/{sid}?keepAlive=true"), "")
        .await;
    let suspend1 = parse_date(&s, "suspend");
    assert_eq!(
        (suspend1 - suspend0).whole_seconds(),
        1000,
        "keep-alive slides suspend"
    );
    assert_eq!(
        parse_date(&s, "expire"),
        expire,
        "keep-alive never moves expire"
    );
    e.clock.advance_secs(30);
    let (_, s) = e
        .kt("GET", &format!("/sessions/{sid}?keepAlive=true"), "")
        .await;
    assert_eq!(
        parse_date(&s, "suspend"),
        suspend1,
        "touches within the coalescing window are not written"
    );
    let (_, s) = e.kt("GET", &format!("/sessions/{sid}"), "").await;
    assert_eq!(
        parse_date(&s, "suspend"),
        suspend1,
        "a plain GET records nothing"
    );

    e.clock.advance_secs(1800);
    let (st, s) = e
        .kt("GET", &format!("/sessions/{sid}?keepAlive=true"), "")
        .await;
    assert_eq!(
        (st, s["state"].as_str()),
        (StatusCode::OK, Some("SUSPENDED")),
        "a suspended session is not revived"
    );
    assert_eq!(parse_date(&s, "suspend"), suspend1);
    let (st, err) = e
        .kt(
            "POST",
            &format!("/sessions/{sid}/enable/EQUISOFT_CONNECT"),
            "",
        )
        .await;
    assert_eq!(
        (st, err["message"].as_str()),
        (StatusCode::BAD_REQUEST, Some("SESSION_NOT_ENABLED"))
    );

    // Keeping a session alive until past expire: it expires on time regardless.
    let (s2, sid2) = e.session_of(&u).await;
    let expire2 = parse_date(&s2, "expire");
    for _ in 0..20 {
        e.clock.advance_secs(1700);
        let _ = e
            .kt("GET", &format!("/sessions/{sid2}?keepAlive=true"), "")
            .await;
    }
    let (_, s2) = e.kt("GET", &format!("/sessions/{sid2}"), "").await;
    assert_eq!(s2["state"], "EXPIRED");
    assert_eq!(parse_date(&s2, "expire"), expire2);
    assert!(
        parse_date(&s2, "suspend") <= expire2,
        "suspend never exceeds expire"
    );
    let (st, _) = e.kt("DELETE", "/sessions/expired", "").await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = e.kt("GET", &format!("/sessions/{sid2}"), "").await;
    assert_eq!(st, StatusCode::NOT_FOUND, "expired sessions are deleted");
}

#[tokio::test]
async fn vault_is_sealed_bounded_and_destroyed_with_its_session() {
    let e = env().await;
    let u = e.user("vault@example.com").await;
    let (_, sid) = e.session_of(&u).await;
    let secret = "VAULT-SECRET-0f6b2e6c9a";
    let (st, _) = e
        .kt(
            "PUT",
            &format!("/sessions/{sid}/tokens/sso"),
            &json!(secret).to_string(),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    // Nothing in the database files contains the plaintext.
    let path = e.db.url.trim_start_matches("sqlite://").to_owned();
    let mut raw = Vec::new();
    for suffix in ["", "-wal"] {
        raw.extend(std::fs::read(format!("{path}{suffix}")).unwrap_or_default());
    }
    assert!(!raw.is_empty());
    assert!(
        !raw.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "the vault value is sealed at rest"
    );

    let big = "x".repeat(16 * 1024 + 1);
    let (st, err) = e
        .kt(
            "PUT",
            &format!("/sessions/{sid}/tokens/big"),
            &json!(big).to_string(),
        )
        .await;
    assert_eq!(
        (st, err["message"].as_str()),
        (StatusCode::BAD_REQUEST, Some("BAD_REQUEST")),
        "oversized token"
    );
    for i in 0..31 {
        let (st, _) = e
            .kt("PUT", &format!("/sessions/{sid}/tokens/t{i}"), "\"v\"")
            .await;
        assert_eq!(st, StatusCode::OK);
    }
    let (st, _) = e
        .kt(
            "PUT",
            &format!("/sessions/{sid}/tokens/one-too-many"),
            "\"v\"",
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "at most 32 tokens per session");
    let (st, _) = e
        .kt("PUT", &format!("/sessions/{sid}/tokens/t0"), "\"replaced\"")
        .await;
    assert_eq!(
        st,
        StatusCode::OK,
        "replacing an existing token is not a new one"
    );
    let (st, _) = e
        .kt("PUT", &format!("/sessions/{sid}/tokens/%01bad"), "\"v\"")
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "control characters in tokenId");
    let (st, _) = e
        .kt("PUT", &format!("/sessions/{sid}/tokens/x"), "42")
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "a JSON token must be a string");

    // Revoked through the Clerk dialect: the vault goes with it.
    let (st, _, _) = e
        .call(
            "POST",
            &format!("/v1/sessions/{sid}/revoke"),
            Some("application/json"),
            "",
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let sid_t = sessiond_core::ids::SessionId(sid.clone());
    assert_eq!(
        e.db.store
            .get_session_token(&e.app.id, &sid_t, "sso")
            .await
            .ok(),
        Some(None),
        "vault destroyed on revoke"
    );

    // Expiry destroys it as well (through the purge of unusable sessions' vaults).
    let (_, sid2) = e.session_of(&u).await;
    let _ = e
        .kt("PUT", &format!("/sessions/{sid2}/tokens/sso"), "\"v\"")
        .await;
    e.clock.advance_secs(9 * 3600);
    assert_eq!(
        e.db.store
            .purge_unusable_session_tokens(e.clock.now())
            .await
            .ok(),
        Some(1)
    );
    // The lapsed session is still shown; its token operations say it is not usable, as the
    // dialect table has it, rather than that it does not exist.
    let (_, shown) = e.kt("GET", &format!("/sessions/{sid2}"), "").await;
    assert!(
        matches!(shown["state"].as_str(), Some("SUSPENDED" | "EXPIRED")),
        "{shown}"
    );
    for (method, body) in [("GET", ""), ("PUT", "\"v\""), ("DELETE", "")] {
        let (st, err) = e
            .kt(method, &format!("/sessions/{sid2}/tokens/sso"), body)
            .await;
        assert_eq!(
            (st, err["message"].as_str()),
            (StatusCode::BAD_REQUEST, Some("SESSION_NOT_ENABLED")),
            "{method} on a lapsed session"
        );
    }
}

#[tokio::test]
async fn impersonation_rules_and_audit() {
    let e = env().await;
    let admin = e.user("boss@example.com").await;
    let plain = e.user("plain@example.com").await;
    let target = e.user("target@example.com").await;
    let (_, sid) = e.session_of(&plain).await;
    let (st, err) = e
        .kt(
            "POST",
            &format!("/sessions/{sid}/impersonate"),
            &json!({"userUuid": target.id}).to_string(),
        )
        .await;
    assert_eq!(
        (st, err["message"].as_str()),
        (StatusCode::FORBIDDEN, Some("ACCESS_DENIED"))
    );

    e.may_impersonate(&admin).await;
    let (_, asid) = e.session_of(&admin).await;
    let (st, err) = e
        .kt("POST", &format!("/sessions/{asid}/revertIdentity"), "null")
        .await;
    assert_eq!(
        (st, err["message"].as_str()),
        (StatusCode::BAD_REQUEST, Some("SESSION_NOT_IMPERSONATED"))
    );
    let (st, err) = e
        .kt(
            "POST",
            &format!("/sessions/{asid}/impersonate"),
            &json!({"userUuid": "user_0000000000000000000000"}).to_string(),
        )
        .await;
    assert_eq!(
        (st, err["message"].as_str()),
        (StatusCode::NOT_FOUND, Some("NOT_FOUND"))
    );
    let (st, _) = e
        .kt(
            "POST",
            &format!("/sessions/{asid}/impersonate"),
            &json!({"userUuid": target.id}).to_string(),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, err) = e
        .kt(
            "POST",
            &format!("/sessions/{asid}/impersonate"),
            &json!({"userUuid": plain.id}).to_string(),
        )
        .await;
    assert_eq!(
        (st, err["message"].as_str()),
        (
            StatusCode::BAD_REQUEST,
            Some("SESSION_ALREADY_IMPERSONATED")
        )
    );

    // Through the Clerk dialect the same session shows the actor, and its tokens carry `act`.
    let (_, _, clerk) = e
        .call("GET", &format!("/v1/sessions/{asid}"), None, "")
        .await;
    let clerk: Value = serde_json::from_str(&clerk).unwrap_or_default();
    assert_eq!(
        (clerk["user_id"].clone(), clerk["actor"]["sub"].clone()),
        (json!(target.id), json!(admin.id))
    );
    let (_, _, tok) = e
        .call(
            "POST",
            &format!("/v1/sessions/{asid}/tokens"),
            Some("application/json"),
            "",
        )
        .await;
    let jwt = serde_json::from_str::<Value>(&tok).unwrap_or_default()["jwt"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (_, claims) =
        sessiond_crypto::jwt::decode_unverified(&jwt).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (claims["sub"].clone(), claims["act"]["sub"].clone()),
        (json!(target.id), json!(admin.id))
    );

    e.clock.advance_secs(5);
    let (st, _) = e
        .kt("POST", &format!("/sessions/{asid}/revertIdentity"), "null")
        .await;
    assert_eq!(st, StatusCode::OK);
    let log = e
        .login
        .impersonation_log(&e.app, None, 10)
        .await
        .unwrap_or_default();
    let kinds: Vec<(&str, &str, &str)> = log
        .iter()
        .map(|x| {
            (
                x.kind.as_str(),
                x.actor_user_id.as_str(),
                x.target_user_id.as_str(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("end", admin.id.as_str(), target.id.as_str()),
            ("start", admin.id.as_str(), target.id.as_str())
        ]
    );
    assert_eq!(log[0].at, Timestamp(T0.0 + 5_000), "when");
    assert!(
        log.iter().all(|x| x.session_id.as_str() == asid),
        "which session"
    );
}

#[tokio::test]
async fn concurrent_access_limit() {
    let e = env().await;
    let u = e.user("cap@example.com").await;
    e.set(
        &u,
        UserPatch {
            max_concurrent_access: Some(Some(2)),
            ..Default::default()
        },
    )
    .await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        e.clock.advance_secs(1);
        let (_, s) = e
            .kt("POST", "/sessions", &json!({"userUuid": u.id}).to_string())
            .await;
        ids.push(s["sessionId"].as_str().unwrap_or_default().to_owned());
    }
    for id in &ids[..2] {
        let (st, _) = e
            .kt(
                "POST",
                &format!("/sessions/{id}/enable/EQUISOFT_CONNECT"),
                "",
            )
            .await;
        assert_eq!(st, StatusCode::ACCEPTED);
    }
    let (st, err) = e
        .kt(
            "POST",
            &format!("/sessions/{}/enable/EQUISOFT_CONNECT", ids[2]),
            "null",
        )
        .await;
    assert_eq!(
        (st, err["message"].as_str()),
        (StatusCode::BAD_REQUEST, Some("CONCURRENT_ACCESS"))
    );
    let (st, _) = e
        .kt(
            "POST",
            &format!("/sessions/{}/enable/EQUISOFT_CONNECT", ids[2]),
            &json!({"disableOldestSessions": true}).to_string(),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let mut flags = Vec::new();
    for id in &ids {
        let (_, s) = e.kt("GET", &format!("/sessions/{id}"), "").await;
        flags.push(s["enabledForEquisoftConnect"].as_bool().unwrap_or_default());
    }
    assert_eq!(
        flags,
        vec![false, true, true],
        "the oldest enabled session was disabled first"
    );
    let (st, _) = e
        .kt(
            "POST",
            &format!("/sessions/{}/enable/EQUISOFT_PLAN", ids[0]),
            "",
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "unknown service");
    e.set(
        &u,
        UserPatch {
            max_concurrent_access: Some(None),
            ..Default::default()
        },
    )
    .await;
    let (st, _) = e
        .kt(
            "POST",
            &format!("/sessions/{}/enable/EQUISOFT_CONNECT", ids[0]),
            "",
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "0/none is unlimited");
}

#[tokio::test]
async fn cross_dialect_and_users_by_external_id() {
    let e = env().await;
    let input = NewUser {
        external_id: Some("6f1c9a8e-7d41-4f1e-9c1b-2a0d6e5b4c3a".into()),
        first_name: Some("Eq".into()),
        ..NewUser::default()
    };
    let u = e
        .login
        .create_user(&e.app, input, e.clock.now())
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let (st, s) = e
        .kt(
            "POST",
            "/sessions",
            &json!({"userUuid": "6f1c9a8e-7d41-4f1e-9c1b-2a0d6e5b4c3a"}).to_string(),
        )
        .await;
    assert_eq!(
        st,
        StatusCode::CREATED,
        "userUuid may be the user's external id: {s}"
    );
    assert_eq!(s["user"]["uuid"], "6f1c9a8e-7d41-4f1e-9c1b-2a0d6e5b4c3a");
    let sid = s["sessionId"].as_str().unwrap_or_default().to_owned();
    // Listed and revoked through the Clerk dialect…
    let (_, _, list) = e
        .call("GET", &format!("/v1/sessions?user_id={}", u.id), None, "")
        .await;
    let list: Value = serde_json::from_str(&list).unwrap_or_default();
    assert_eq!(list[0]["id"], json!(sid));
    assert_eq!(list[0]["status"], "active");
    let (st, _, _) = e
        .call("POST", &format!("/v1/sessions/{sid}/revoke"), None, "")
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, _) = e.kt("GET", &format!("/sessions/{sid}"), "").await;
    assert_eq!(st, StatusCode::NOT_FOUND, "…and gone for Equisoft");
    // …and the other way round: created by Clerk, pending shows as NEW, deleted by Equisoft.
    let pending = e
        .login
        .create_session(&e.app, &u.id, true, e.clock.now())
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let (_, s) = e.kt("GET", &format!("/sessions/{}", pending.id), "").await;
    assert_eq!(s["state"], "NEW");
    let (_, _, c) = e
        .call("GET", &format!("/v1/sessions/{}", pending.id), None, "")
        .await;
    assert_eq!(
        serde_json::from_str::<Value>(&c).unwrap_or_default()["status"],
        "pending"
    );
    let (st, _) = e
        .kt("DELETE", &format!("/sessions/{}", pending.id), "")
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _, _) = e
        .call("GET", &format!("/v1/sessions/{}", pending.id), None, "")
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, err) = e
        .kt(
            "POST",
            "/sessions",
            &json!({"userUuid": "nobody"}).to_string(),
        )
        .await;
    assert_eq!(
        (st, err["message"].as_str()),
        (StatusCode::NOT_FOUND, Some("NOT_FOUND"))
    );
}

#[tokio::test]
async fn bad_input_is_400_bad_request_never_500() {
    let e = env().await;
    let u = e.user("bad@example.com").await;
    let (_, sid) = e.session_of(&u).await;
    for (method, path, body, message) in [
        ("POST", "/sessions".to_owned(), "{", "BAD_REQUEST"),
        ("POST", "/sessions".to_owned(), "[1]", "BAD_REQUEST"),
        ("POST", "/sessions".to_owned(), "null", "BAD_REQUEST"),
        (
            "POST",
            "/sessions".to_owned(),
            r#"{"enable": true}"#,
            "BAD_REQUEST",
        ),
        (
            "POST",
            "/sessions".to_owned(),
            r#"{"userUuid": 7}"#,
            "BAD_REQUEST",
        ),
        (
            "POST",
            "/sessions".to_owned(),
            r#"{"userUuid": "u", "enable": "yes"}"#,
            "BAD_REQUEST",
        ),
        (
            "POST",
            "/sessions".to_owned(),
            r#"{"userUuid": "u", "colour": "red"}"#,
            "BAD_REQUEST",
        ),
        (
            "POST",
            "/sessions".to_owned(),
            &json!({"userUuid": u.id, "cookieDomain": "bad domain!"}).to_string(),
            "INVALID_COOKIE_DOMAIN_NAME",
        ),
        (
            "POST",
            "/sessions".to_owned(),
            &json!({"userUuid": u.id, "sso": {"provider": "x"}}).to_string(),
            "BAD_REQUEST",
        ),
        (
            "GET",
            format!("/sessions/{sid}?keepAlive=maybe"),
            "",
            "BAD_REQUEST",
        ),
        (
            "POST",
            format!("/sessions/{sid}/impersonate"),
            r#"{"userUuid": null}"#,
            "BAD_REQUEST",
        ),
        (
            "POST",
            format!("/sessions/{sid}/enable/EQUISOFT_CONNECT"),
            r#"{"disableOldestSessions": "yes"}"#,
            "BAD_REQUEST",
        ),
        (
            "PUT",
            format!("/sessions/{sid}/tokens/t"),
            "",
            "BAD_REQUEST",
        ),
    ] {
        let (st, err) = e.kt(method, &path, body).await;
        assert_eq!(
            (st, err["message"].as_str()),
            (StatusCode::BAD_REQUEST, Some(message)),
            "{method} {path} {body}"
        );
    }
    // The framework's own rejections are ErrorPayloads too.
    let big = "x".repeat(1024 * 1024 + 1);
    for (method, path, body, status) in [
        (
            "POST",
            "/sessions".to_owned(),
            big.as_str(),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            "PATCH",
            format!("/sessions/{sid}"),
            "",
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            "GET",
            "/sessions/%FF%FE/tokens/a".to_owned(),
            "",
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let (st, err) = e.kt(method, &path, body).await;
        assert_eq!(
            (st, err["message"].as_str()),
            (status, Some("BAD_REQUEST")),
            "{method} {path}"
        );
    }
    let (st, err) = e.kt("GET", "/sessions/not-a-session", "").await;
    assert_eq!(
        (st, err["message"].as_str()),
        (StatusCode::NOT_FOUND, Some("NOT_FOUND"))
    );
    let (st, _, _) = e.call("GET", &format!("/sessions/{sid}"), None, "").await;
    assert_eq!(st, StatusCode::OK);
    let req = Request::builder()
        .uri(format!("/sessions/{sid}"))
        .body(Body::empty())
        .unwrap_or_else(|err| panic!("{err}"));
    let resp = e
        .router
        .clone()
        .oneshot(req)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(
        resp.status(),
        StatusCode::UNAUTHORIZED,
        "the main listener requires the secret key"
    );
    let body = resp
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap_or_default()["message"],
        "ACCESS_DENIED"
    );
}

#[tokio::test]
async fn tenant_isolation() {
    let e = env().await;
    let u = e.user("iso@example.com").await;
    let (_, sid) = e.session_of(&u).await;
    let _ = e
        .kt("PUT", &format!("/sessions/{sid}/tokens/sso"), "\"v\"")
        .await;
    let other = e
        .tenancy
        .create_application("other", KeyEnvironment::Test, None, T0)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let b = Env {
        key: other.secret_key.expose().to_owned(),
        ..env_clone(&e)
    };
    for (method, path) in [
        ("GET", format!("/sessions/{sid}")),
        ("GET", format!("/sessions/{sid}/tokens/sso")),
        ("DELETE", format!("/sessions/{sid}")),
        ("POST", format!("/sessions/{sid}/enable")),
    ] {
        let (st, _) = b.kt(method, &path, "").await;
        assert_eq!(
            st,
            StatusCode::NOT_FOUND,
            "{method} {path} with another application's key"
        );
    }
    let (st, _) = b
        .kt("POST", "/sessions", &json!({"userUuid": u.id}).to_string())
        .await;
    assert_eq!(
        st,
        StatusCode::NOT_FOUND,
        "another application's user is unknown"
    );
    let (st, _) = b.kt("DELETE", "/sessions", "").await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = e.kt("GET", &format!("/sessions/{sid}"), "").await;
    assert_eq!(
        st,
        StatusCode::OK,
        "B's delete-all leaves A's sessions alone"
    );
}

fn env_clone(e: &Env) -> Env {
    Env {
        db: e.db.clone(),
        clock: e.clock.clone(),
        login: e.login.clone(),
        tenancy: e.tenancy.clone(),
        app: e.app.clone(),
        key: e.key.clone(),
        router: e.router.clone(),
    }
}

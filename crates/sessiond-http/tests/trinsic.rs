//! The Trinsic dialects and the hosted pages in-process, through the real router, with a driven
//! clock: what the SDK suites cannot reach — bad input in every shape, link and deep-link expiry,
//! browser binding and forged forms, retention, and generation selection.

mod support;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use sessiond_core::Timestamp;
use sessiond_core::application::VerificationGeneration;
use sessiond_core::clock::{Clock, ManualClock};
use sessiond_core::jobs::{Purger, VerificationRetention};
use sessiond_core::store::Store;
use sessiond_http::dialect::trinsic::generation_name;
use sessiond_store_conformance::TestDb;
use sessiond_store_conformance::services::Services;

const T0: Timestamp = Timestamp(1_767_225_600_000);
const RP: &str = "https://rp.example";

struct Env {
    _db: TestDb,
    clock: Arc<ManualClock>,
    store: Arc<dyn Store>,
    connect_key: String,
    api_key: String,
    router: axum::Router,
}

use support::Resp;

async fn env() -> Env {
    let services = Services::sqlite().await;
    let mut keys = Vec::new();
    for g in [VerificationGeneration::A, VerificationGeneration::B] {
        let (_, key) = services
            .app(generation_name(g), T0, |s| {
                s.verification_generation = g;
                s.allowed_redirect_origins = vec![RP.into()];
                s.verification_session_lifetime_secs = 600;
                s.verification_retention_secs = 3600;
            })
            .await;
        keys.push(key);
    }
    let clock = Arc::new(ManualClock::new(T0));
    let state = support::state(&services, clock.clone());
    Env {
        router: sessiond_http::router(state),
        clock,
        store: services.store.clone(),
        connect_key: keys[0].clone(),
        api_key: keys[1].clone(),
        _db: services.db,
    }
}

impl Env {
    async fn send(&self, req: Request<Body>) -> Resp {
        support::send(&self.router, req).await
    }

    async fn api(&self, key: &str, method: &str, path: &str, body: &str) -> Resp {
        let req = support::request(
            method,
            path,
            Some(key),
            Some("application/json"),
            body.to_owned(),
        );
        self.send(req).await
    }

    /// Generation B (Trinsic API); a `Null` body is sent as no body.
    async fn b(&self, method: &str, path: &str, body: Value) -> Resp {
        self.api(&self.api_key, method, path, &body_text(&body))
            .await
    }

    /// Generation A (Trinsic Connect); a `Null` body is sent as no body.
    async fn a(&self, method: &str, path: &str, body: Value) -> Resp {
        self.api(&self.connect_key, method, path, &body_text(&body))
            .await
    }

    async fn page(&self, method: &str, uri: &str, cookie: Option<&str>, form: &str) -> Resp {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        if method == "POST" {
            req = req.header("content-type", "application/x-www-form-urlencoded");
        }
        self.send(
            req.body(Body::from(form.to_owned()))
                .unwrap_or_else(|e| panic!("{e}")),
        )
        .await
    }
}

fn body_text(body: &Value) -> String {
    if body.is_null() {
        String::new()
    } else {
        body.to_string()
    }
}

fn path_of(url: &str) -> String {
    url.strip_prefix("http://sessiond.test")
        .unwrap_or(url)
        .to_owned()
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    html[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_4xx_in_each_generations_shape() {
    let e = env().await;
    let sid = e
        .b("POST", "/api/v1/sessions/widget", Value::Null)
        .await
        .json()["sessionId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    // (generation, method, path, body) — all must be 4xx, never 5xx.
    let cases: Vec<(&str, &str, String, &str)> = vec![
        ("B", "POST", "/api/v1/sessions/widget".into(), "{not json"),
        ("B", "POST", "/api/v1/sessions/widget".into(), "[1,2]"),
        (
            "B",
            "POST",
            "/api/v1/sessions/widget".into(),
            r#"{"surprise":1}"#,
        ),
        (
            "B",
            "POST",
            "/api/v1/sessions/widget".into(),
            r#"{"providers":"x"}"#,
        ),
        (
            "B",
            "POST",
            "/api/v1/sessions/widget".into(),
            r#"{"providers":["nope"]}"#,
        ),
        (
            "B",
            "POST",
            "/api/v1/sessions/widget".into(),
            r#"{"redirectUrl":"javascript:alert(1)"}"#,
        ),
        (
            "B",
            "POST",
            "/api/v1/sessions/widget".into(),
            r#"{"redirectUrl":"https://rp.example@evil.example/"}"#,
        ),
        (
            "B",
            "POST",
            "/api/v1/sessions/provider/hosted".into(),
            r#"{"provider":"trinsic-test-database-lookup"}"#,
        ),
        (
            "B",
            "POST",
            "/api/v1/sessions/provider/hosted".into(),
            r#"{"provider":"","redirectUrl":"https://rp.example/"}"#,
        ),
        (
            "B",
            "POST",
            "/api/v1/sessions/provider/advanced".into(),
            r#"{"provider":"trinsic-test-database-lookup","capabilities":[]}"#,
        ),
        (
            "B",
            "POST",
            "/api/v1/sessions/provider/advanced".into(),
            r#"{"provider":"trinsic-test-database-lookup","capabilities":["Teleport"]}"#,
        ),
        (
            "B",
            "POST",
            "/api/v1/sessions/provider/advanced".into(),
            r#"{"provider":"trinsic-test-database-lookup","capabilities":["PollResult"],"providerInput":[]}"#,
        ),
        (
            "B",
            "POST",
            "/api/v1/sessions/provider/advanced".into(),
            r#"{"provider":"trinsic-test-database-lookup","capabilities":["PollResult"],"providerInput":{"mexicoCurp":{}}}"#,
        ),
        (
            "B",
            "POST",
            "/api/v1/sessions/provider/advanced".into(),
            r#"{"provider":"trinsic-test-database-lookup","capabilities":["PollResult"],"providerInput":{"trinsicTestDatabaseLookup":{"givenName":"A","familyName":"B","identityCode":"123456","selfieBase64":"!!!"}}}"#,
        ),
        (
            "B",
            "POST",
            "/api/v1/sessions/provider/advanced".into(),
            r#"{"provider":"trinsic-test-database-lookup","capabilities":["PollResult"],"providerInput":{"trinsicTestDatabaseLookup":{"givenName":5}}}"#,
        ),
        ("B", "GET", "/api/v1/sessions/list?PageSize=0".into(), ""),
        ("B", "GET", "/api/v1/sessions/list?PageSize=51".into(), ""),
        ("B", "GET", "/api/v1/sessions/list?Page=0".into(), ""),
        ("B", "GET", "/api/v1/sessions/list?OrderBy=Color".into(), ""),
        ("B", "GET", "/api/v1/sessions/list?Bogus=1".into(), ""),
        ("B", "GET", "/api/v1/sessions/not-a-uuid".into(), ""),
        ("B", "POST", format!("/api/v1/sessions/{sid}/results"), "{}"),
        (
            "B",
            "POST",
            format!("/api/v1/sessions/{sid}/results"),
            r#"{"resultsAccessKey":7}"#,
        ),
        (
            "B",
            "POST",
            format!("/api/v1/sessions/{sid}/step/refresh"),
            r#"{"resultsAccessKey":"x"}"#,
        ),
        (
            "B",
            "POST",
            "/api/v1/attachments/attachment".into(),
            r#"{"attachmentAccessKey":"att_x.y"}"#,
        ),
        (
            "B",
            "POST",
            "/api/v1/network/recommend".into(),
            r#"{"health":"sideways"}"#,
        ),
        ("B", "DELETE", "/api/v1/sessions/list".into(), ""),
        (
            "A",
            "POST",
            "/api/v1/sessions".into(),
            r#"{"disclosedFields":{"shoeSize":true}}"#,
        ),
        (
            "A",
            "POST",
            "/api/v1/sessions".into(),
            r#"{"launchProviderDirectly":true}"#,
        ),
        (
            "A",
            "POST",
            "/api/v1/sessions".into(),
            r#"{"launchProviderDirectly":"yes"}"#,
        ),
        (
            "A",
            "POST",
            "/api/v1/sessions".into(),
            r#"{"providers":["trinsic-test-database-lookup"],"launchProviderDirectly":true,"enableRememberMe":true}"#,
        ),
        ("A", "GET", "/api/v1/sessions?PageSize=abc".into(), ""),
        (
            "A",
            "POST",
            format!("/api/v1/sessions/{sid}/exchange"),
            r#"{"identityToken":"rak_x"}"#,
        ),
    ];
    for (g, method, path, body) in cases {
        let r = if g == "A" {
            e.api(&e.connect_key.clone(), method, &path, body).await
        } else {
            e.api(&e.api_key.clone(), method, &path, body).await
        };
        assert!(
            r.status.is_client_error(),
            "{method} {path} {body}: {} {}",
            r.status,
            r.text
        );
        let v = r.json();
        match (g, r.status.as_u16()) {
            ("A", 400) => {
                assert!(v.is_array(), "{path}: {}", r.text);
                assert!(v[0]["errorMessage"].is_string());
                assert!(v[0]["memberNames"].is_array());
            }
            ("A", _) => assert!(v["message"].is_string(), "{path}: {}", r.text),
            _ => {
                assert!(r.ct.starts_with("application/problem+json"), "{path}");
                assert_eq!(v["status"].as_u64(), Some(u64::from(r.status.as_u16())));
                assert!(v["traceId"].as_str().is_some_and(|t| t.starts_with("00-")));
            }
        }
    }
    // An oversized body is refused before anything is parsed.
    let big = format!(r#"{{"redirectUrl":"{}"}}"#, "a".repeat(2 * 1024 * 1024));
    let r = e.b("POST", "/api/v1/sessions/widget", Value::Null).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = e
        .api(&e.api_key.clone(), "POST", "/api/v1/sessions/widget", &big)
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    // Nothing half-written: only the two widget sessions created above exist.
    let list = e
        .b("GET", "/api/v1/sessions/list?PageSize=50", Value::Null)
        .await;
    assert_eq!(list.json()["total"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_paths_answer_in_the_applications_generation() {
    let e = env().await;
    let a = e.a("POST", "/api/v1/sessions", Value::Null).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.ct, "application/json; charset=utf-8");
    let aid = a.json()["session"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let b = e.b("POST", "/api/v1/sessions/widget", json!({})).await;
    let bid = b.json()["sessionId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let got_a = e
        .a("GET", &format!("/api/v1/sessions/{aid}"), Value::Null)
        .await
        .json();
    assert_eq!(got_a["session"]["state"], "IdvCreated");
    assert!(got_a["session"].get("done").is_none());
    let got_b = e
        .b("GET", &format!("/api/v1/sessions/{bid}"), Value::Null)
        .await
        .json();
    assert_eq!(got_b["session"]["done"], false);
    assert!(got_b["session"].get("state").is_none());
    // Upper-case ids are the same session.
    let upper = e
        .b(
            "GET",
            &format!("/api/v1/sessions/{}", bid.to_uppercase()),
            Value::Null,
        )
        .await;
    assert_eq!(upper.status, StatusCode::OK);
    // One application cannot see the other's sessions.
    assert_eq!(
        e.a("GET", &format!("/api/v1/sessions/{bid}"), Value::Null)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    // Providers in each generation's shape.
    let pa = e
        .a("GET", "/api/v1/network/providers", Value::Null)
        .await
        .json();
    assert!(pa["providers"][0].get("health").is_none());
    let pb = e
        .b("GET", "/api/v1/network/providers", Value::Null)
        .await
        .json();
    assert_eq!(pb["providers"][0]["health"], "online");
    // A 401 before the application is known follows the SDK generation in the User-Agent.
    let req = Request::builder()
        .uri("/api/v1/sessions/list")
        .header("user-agent", "OpenAPI-Generator/1.2.0/python")
        .body(Body::empty())
        .unwrap_or_else(|err| panic!("{err}"));
    let r = e.send(req).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(
        r.ct.starts_with("application/problem+json"),
        "a B-only path answers in B"
    );
    let req = Request::builder()
        .uri(format!("/api/v1/sessions/{aid}"))
        .header("user-agent", "OpenAPI-Generator/1.2.0/python")
        .body(Body::empty())
        .unwrap_or_else(|err| panic!("{err}"));
    let r = e.send(req).await;
    assert_eq!(
        r.json(),
        json!({"message": "no Authorization header was sent"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launch_links_bind_one_browser_refuse_forgery_and_expire() {
    let e = env().await;
    let c = e
        .b(
            "POST",
            "/api/v1/sessions/widget",
            json!({"redirectUrl": "https://rp.example/done"}),
        )
        .await
        .json();
    let launch = path_of(c["launchUrl"].as_str().unwrap_or_default());
    let first = e.page("GET", &launch, None, "").await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.ct, "text/html; charset=utf-8");
    assert_eq!(first.headers["cache-control"], "no-store");
    assert_eq!(first.headers["referrer-policy"], "no-referrer");
    let set = first.headers["set-cookie"]
        .to_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax") && set.contains("Path=/verify")
    );
    let cookie = set.split(';').next().unwrap_or_default().to_owned();
    let (t, csrf) = (hidden(&first.text, "t"), hidden(&first.text, "csrf"));

    // Another browser (no cookie) cannot use the link any more, nor post its forms.
    assert_eq!(
        e.page("GET", &launch, None, "").await.status,
        StatusCode::FORBIDDEN
    );
    let form = format!(
        "t={}&csrf={}&action=choose_provider&provider=trinsic-test-database-lookup",
        enc(&t),
        enc(&csrf)
    );
    assert_eq!(
        e.page("POST", "/verify/step", None, &form).await.status,
        StatusCode::FORBIDDEN
    );
    // A forged form (wrong anti-forgery token) from the right browser is refused too.
    let forged = format!(
        "t={}&csrf=forged&action=choose_provider&provider=trinsic-test-database-lookup",
        enc(&t)
    );
    assert_eq!(
        e.page("POST", "/verify/step", Some(&cookie), &forged)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    // A tampered token is not a link at all.
    let mut bad = t.clone();
    bad.replace_range(10..11, if &bad[10..11] == "A" { "B" } else { "A" });
    assert_eq!(
        e.page("GET", &format!("/verify/launch?t={bad}"), Some(&cookie), "")
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let ok = e.page("POST", "/verify/step", Some(&cookie), &form).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert!(ok.text.contains("Enter your details"));
    // HTML is escaped: the prefilled values and errors cannot inject markup.
    let xss = format!(
        "t={}&csrf={}&action=submit&givenName={}&familyName=B&identityCode=1",
        enc(&t),
        enc(&csrf),
        enc("<script>alert(1)</script>")
    );
    let page = e.page("POST", "/verify/step", Some(&cookie), &xss).await;
    assert!(!page.text.contains("<script>alert"));
    assert!(page.text.contains("&lt;script&gt;"));

    // The link expires with the session.
    e.clock.advance_secs(601);
    let expired = e.page("GET", &launch, Some(&cookie), "").await;
    assert_eq!(expired.status, StatusCode::FORBIDDEN);
    assert!(expired.text.contains("expired"));
    let sid = c["sessionId"].as_str().unwrap_or_default();
    let s = e
        .b("GET", &format!("/api/v1/sessions/{sid}"), Value::Null)
        .await
        .json();
    assert_eq!(s["session"]["done"], true);
    assert_eq!(s["session"]["errorCode"], "Expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launch_redirect_parameter_must_be_an_allowed_origin() {
    let e = env().await;
    let c = e.a("POST", "/api/v1/sessions", Value::Null).await.json();
    let launch = path_of(c["launchUrl"].as_str().unwrap_or_default());
    let r = e
        .page(
            "GET",
            &format!("{launch}&redirectUrl={}", enc("https://evil.example/x")),
            None,
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Nothing was bound: the legitimate launch still works.
    let r = e
        .page(
            "GET",
            &format!("{launch}&redirectUrl={}", enc("https://rp.example/x")),
            None,
            "",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wallet_links_expire_and_refresh() {
    let e = env().await;
    let c = e
        .b(
            "POST",
            "/api/v1/sessions/provider/advanced",
            json!({"provider": "sessiond-test-wallet",
                   "capabilities": ["DeeplinkToMobile", "PollResult", "RefreshStepContent"]}),
        )
        .await
        .json();
    let link = path_of(c["nextStep"]["content"].as_str().unwrap_or_default());
    assert_eq!(
        c["nextStep"]["refresh"]["expiresAt"],
        "2026-01-01T00:00:30Z"
    );
    assert_eq!(
        c["nextStep"]["refresh"]["refreshAfter"],
        "2026-01-01T00:00:20Z"
    );
    e.clock.advance_secs(31);
    let r = e.page("GET", &link, None, "").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.text.contains("expired"));
    let sid = c["sessionId"].as_str().unwrap_or_default();
    let key = c["resultCollection"]["resultsAccessKey"]
        .as_str()
        .unwrap_or_default();
    let fresh = e
        .b(
            "POST",
            &format!("/api/v1/sessions/{sid}/step/refresh"),
            json!({"resultsAccessKey": key}),
        )
        .await
        .json();
    let link = path_of(fresh["nextStep"]["content"].as_str().unwrap_or_default());
    let prompt = e.page("GET", &link, None, "").await;
    assert_eq!(prompt.status, StatusCode::OK);
    let code = hidden(&prompt.text, "code");
    let csrf = hidden(&prompt.text, "csrf");
    let path = link.split('?').next().unwrap_or_default().to_owned();
    // Without the page's anti-forgery token nothing happens.
    let r = e
        .page(
            "POST",
            &path,
            None,
            &format!("code={code}&csrf=x&decision=present"),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = e
        .page(
            "POST",
            &path,
            None,
            &format!("code={code}&csrf={}&decision=decline", enc(&csrf)),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let res = e
        .b(
            "POST",
            &format!("/api/v1/sessions/{sid}/results"),
            json!({"resultsAccessKey": key}),
        )
        .await
        .json();
    assert_eq!(res["session"]["errorCode"], "Canceled");
    assert_eq!(res["identityData"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_redacts_after_the_period_and_expiry_settles_abandoned_sessions() {
    let e = env().await;
    let input = json!({"trinsicTestDatabaseLookup":
        {"givenName": "Reta", "familyName": "Ined", "identityCode": "123456"}});
    let c = e
        .b(
            "POST",
            "/api/v1/sessions/provider/advanced",
            json!({"provider": "trinsic-test-database-lookup", "capabilities": ["PollResult"],
                   "providerInput": input}),
        )
        .await
        .json();
    let sid = c["sessionId"].as_str().unwrap_or_default().to_owned();
    let key = c["resultCollection"]["resultsAccessKey"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let abandoned = e
        .b("POST", "/api/v1/sessions/widget", json!({}))
        .await
        .json();
    async fn results(e: &Env, sid: &str, key: &str) -> Value {
        let path = format!("/api/v1/sessions/{sid}/results");
        e.b("POST", &path, json!({"resultsAccessKey": key}))
            .await
            .json()
    }
    let job = VerificationRetention(e.store.clone());
    let before = results(&e, &sid, &key).await;
    assert_eq!(before["identityData"]["person"]["givenName"], "Reta");
    let att = before["identityData"]["attachmentAccessKeys"]["selfie"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    // Just before the retention period: nothing redacted; the abandoned widget has expired.
    e.clock.advance_secs(3599);
    assert_eq!(job.purge(e.clock.now()).await.unwrap_or(99), 1);
    assert_eq!(
        results(&e, &sid, &key).await["identityData"]["person"]["givenName"],
        "Reta"
    );
    let aid = abandoned["sessionId"].as_str().unwrap_or_default();
    let s = e
        .b("GET", &format!("/api/v1/sessions/{aid}"), Value::Null)
        .await
        .json();
    assert_eq!(s["session"]["errorCode"], "Expired");

    e.clock.advance_secs(1);
    assert!(job.purge(e.clock.now()).await.unwrap_or(0) >= 1);
    let after = results(&e, &sid, &key).await;
    assert_eq!(after["identityData"], Value::Null);
    assert_eq!(after["session"]["success"], true, "the record stays");
    let r = e
        .b(
            "POST",
            "/api/v1/attachments/attachment",
            json!({"attachmentAccessKey": att}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosted_wallet_step_waits_refreshes_and_finishes() {
    let e = env().await;
    let c = e
        .b(
            "POST",
            "/api/v1/sessions/widget",
            json!({"redirectUrl": "https://rp.example/w"}),
        )
        .await
        .json();
    let launch = path_of(c["launchUrl"].as_str().unwrap_or_default());
    let first = e.page("GET", &launch, None, "").await;
    let cookie = first.headers["set-cookie"]
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .to_owned();
    let form = format!(
        "t={}&csrf={}&action=choose_provider&provider=sessiond-test-wallet",
        enc(&hidden(&first.text, "t")),
        enc(&hidden(&first.text, "csrf"))
    );
    let waiting = e.page("POST", "/verify/step", Some(&cookie), &form).await;
    assert!(waiting.text.contains("Continue in your wallet"));
    assert!(waiting.text.contains("http-equiv=\"refresh\""));
    let link_of = |html: &str| {
        let start = html.find("id=\"deeplink\" href=\"").unwrap_or(0) + 20;
        html[start..]
            .split('"')
            .next()
            .unwrap_or_default()
            .replace("&amp;", "&")
    };
    let link = link_of(&waiting.text);
    // A reload within the link's life shows the same link; near expiry a fresh one.
    e.clock.advance_secs(5);
    assert_eq!(
        link_of(&e.page("GET", &launch, Some(&cookie), "").await.text),
        link
    );
    e.clock.advance_secs(20);
    let fresh = link_of(&e.page("GET", &launch, Some(&cookie), "").await.text);
    assert_ne!(fresh, link);
    assert_eq!(
        e.page("GET", &path_of(&link), None, "").await.status,
        StatusCode::FORBIDDEN
    );
    // The wallet presents; the next reload of the waiting page redirects to the relying party.
    let prompt = e.page("GET", &path_of(&fresh), None, "").await;
    let body = format!(
        "code={}&csrf={}&decision=present",
        enc(&hidden(&prompt.text, "code")),
        enc(&hidden(&prompt.text, "csrf"))
    );
    let path = path_of(fresh.split('?').next().unwrap_or_default());
    assert_eq!(
        e.page("POST", &path, None, &body).await.status,
        StatusCode::OK
    );
    let done = e.page("GET", &launch, Some(&cookie), "").await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    let location = done.headers["location"].to_str().unwrap_or_default();
    assert!(location.starts_with("https://rp.example/w?sessionId="));
    assert!(location.contains("&resultsAccessKey=rak_") && location.ends_with("&success=true"));
}

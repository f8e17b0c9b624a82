//! The operator console against the real binary: operators managed from the CLI (also on a
//! fresh installation, before the first start), the audit log, and where the console is served.

use std::time::{Duration, Instant};

use serde_json::Value;
use sessiond_store_conformance::Kind;

use crate::harness::{Env, Server, client};

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

async fn status(url: &str) -> u16 {
    client()
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .status()
        .as_u16()
}

/// The console's own listener, from the server's log.
fn console_base(server: &Server) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = server.stdout_lines().iter().find_map(|l| {
            let v: Value = serde_json::from_str(l).ok()?;
            (v["message"] == "listening (operator console)")
                .then(|| v["addr"].as_str().map(|a| format!("http://{a}")))?
        });
        if let Some(b) = found {
            return b;
        }
        assert!(Instant::now() < deadline, "no console listener in the log");
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn operators_cli_manages_operators_and_the_audit_log(kind: Kind) {
    let Some(env) = Env::of(kind).await else {
        return;
    };
    // The first command on a new installation may be creating an operator.
    let created = json(&env.ok(&["operators", "create", "ops@example.com", "--json"]));
    assert_eq!(created["role"], "admin");
    let password = created["password"].as_str().unwrap_or_default();
    assert!(
        password.len() >= 20,
        "a strong password is generated: {created}"
    );
    let again = env.run(&["operators", "create", "ops@example.com"]);
    assert!(!again.status.success(), "emails are unique");

    let (app, _, _) = env.create_app("Shop");
    let updated = json(&env.ok(&[
        "operators",
        "update",
        "ops@example.com",
        "--role",
        "viewer",
        "--application",
        &app,
        "--totp",
        "--json",
    ]));
    assert_eq!(updated["role"], "viewer");
    assert_eq!(updated["applications"], serde_json::json!([app]));
    assert_eq!(updated["totp"], true);
    assert!(
        updated["totp_secret"]
            .as_str()
            .is_some_and(|s| s.len() >= 16)
    );
    let bad = env.run(&[
        "operators",
        "update",
        "ops@example.com",
        "--application",
        "app_nope",
    ]);
    assert!(!bad.status.success());

    let list = json(&env.ok(&["operators", "list", "--json"]));
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    assert!(list[0].get("password").is_none() && list[0].get("totp_secret").is_none());
    // The console's own application is not one of the installation's applications.
    let apps = json(&env.ok(&["apps", "list", "--json"]));
    assert!(
        apps.as_array().is_some_and(|a| a
            .iter()
            .all(|x| x["name"] != "sessiond console (operators)")),
        "{apps}"
    );

    let refused = env.run(&["operators", "delete", "ops@example.com"]);
    assert!(!refused.status.success(), "deletion needs --yes");
    env.ok(&["operators", "delete", "ops@example.com", "--yes"]);
    assert_eq!(
        json(&env.ok(&["operators", "list", "--json"])),
        serde_json::json!([])
    );

    let audit = json(&env.ok(&["operators", "audit", "--json"]));
    let actions: Vec<&str> = audit
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["action"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        actions,
        ["operator.delete", "operator.update", "operator.create"]
    );
    assert!(
        audit
            .as_array()
            .is_some_and(|a| a.iter().all(|e| e["operator_id"] == "cli"))
    );

    // Creating operators first does not stop the first start from creating the default
    // application.
    if kind == Kind::Sqlite {
        let server = env.spawn();
        assert!(server.bootstrap_key().is_some(), "{}", server.stderr_text());
    }
}
crate::both_backends!(
    operators_cli,
    super::operators_cli_manages_operators_and_the_audit_log
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_is_served_on_main_on_its_own_listener_or_not_at_all() {
    let env = Env::sqlite();
    let main = env.spawn();
    assert_eq!(status(&main.url("/console/sign-in")).await, 200);
    assert_eq!(status(&main.url("/console/assets/console.css")).await, 200);
    drop(main);

    let off = env.spawn_with(&[("SESSIOND_CONSOLE", "off")]);
    assert_eq!(status(&off.url("/console/sign-in")).await, 404);
    drop(off);

    let own = env.spawn_with(&[("SESSIOND_CONSOLE", "127.0.0.1:0")]);
    let base = console_base(&own);
    assert_eq!(status(&format!("{base}/console/sign-in")).await, 200);
    assert_eq!(
        status(&own.url("/console/sign-in")).await,
        404,
        "not on the main listener"
    );
    // The console listener serves nothing but the console.
    assert_eq!(status(&format!("{base}/v1/users")).await, 404);
    assert_eq!(status(&format!("{base}/healthz")).await, 404);
}

/// The sign-in form's pre-sign-in cookie (`name=value`) and anti-forgery token.
async fn sign_in_form(base: &str) -> (String, String) {
    let form = client()
        .get(format!("{base}/console/sign-in"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let pre = form
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap_or_default()
        .to_owned();
    let html = form.text().await.unwrap_or_default();
    let marker = "name=\"csrf\" value=\"";
    let csrf = html
        .find(marker)
        .map(|i| {
            let rest = &html[i + marker.len()..];
            rest[..rest.find('"').unwrap_or(0)].to_owned()
        })
        .unwrap_or_default();
    (pre, csrf)
}

/// Posts the sign-in form (no redirects followed).
async fn post_sign_in(base: &str, pre: &str, body: String) -> reqwest::Response {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
        .post(format!("{base}/console/sign-in"))
        .header("cookie", pre)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Signs in over real HTTP; returns the `Set-Cookie` of the console session.
async fn sign_in(base: &str, email: &str, password: &str) -> String {
    let (pre, csrf) = sign_in_form(base).await;
    let body = format!(
        "csrf={csrf}&email={}&password={}",
        email.replace('@', "%40"),
        password
    );
    let resp = post_sign_in(base, &pre, body).await;
    assert_eq!(resp.status().as_u16(), 303);
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("sessiond_console="))
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_public_url_makes_the_cookie_secure_and_the_console_app_is_guarded() {
    let env = Env::sqlite();
    let created = json(&env.ok(&["operators", "create", "ops@example.com", "--json"]));
    let password = created["password"].as_str().unwrap_or_default().to_owned();
    let server = env.spawn_with(&[("SESSIOND_PUBLIC_URL", "https://sessions.example.com")]);
    let cookie = sign_in(&server.base, "ops@example.com", &password).await;
    for attr in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/console"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    let metrics = server.metrics().await;
    assert!(
        metrics.contains("console_sign_ins_total{outcome=\"signed_in\"} 1"),
        "{metrics}"
    );
    assert!(
        !server.stdout_lines().iter().any(|l| l.contains(&password)),
        "nothing typed into the form is logged"
    );
    drop(server);
    // The console's own application cannot be changed or deleted as an application.
    let audit = json(&env.ok(&["operators", "audit", "--json"]));
    assert!(audit.to_string().contains("operator.sign_in"));
    let listing = env.ok(&["operators", "list"]);
    let console_app = listing
        .split_whitespace()
        .find(|w| w.starts_with("app_"))
        .map(|w| w.trim_end_matches([')', ':']).to_owned())
        .unwrap_or_else(|| panic!("the listing names the console's application: {listing}"));
    for args in [
        vec!["apps", "delete", console_app.as_str(), "--yes"],
        vec!["apps", "update", console_app.as_str(), "--name", "mine"],
    ] {
        let out = env.run(&args);
        assert!(!out.status.success(), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("sessiond operators"));
    }
    assert!(
        env.ok(&["operators", "list", "--json"])
            .contains("ops@example.com"),
        "operators are intact"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sign_ins_count_against_the_client_address() {
    let env = Env::sqlite();
    let server = env.spawn_with(&[("SESSIOND_RATE_LIMIT_AUTH_FAILURES_PER_MIN", "3")]);
    let (pre, csrf) = sign_in_form(&server.base).await;
    let mut statuses = Vec::new();
    for i in 0..5 {
        let r = post_sign_in(
            &server.base,
            &pre,
            format!("csrf={csrf}&email=nobody{i}%40example.com&password=x"),
        )
        .await;
        statuses.push(r.status().as_u16());
    }
    assert_eq!(
        statuses,
        [401, 401, 401, 429, 429],
        "unknown emails lock no account, the address is limited"
    );
}

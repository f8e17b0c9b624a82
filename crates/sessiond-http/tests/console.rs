//! The operator console in-process, through the real router, with a driven clock: sign-in and
//! its anti-forgery token, lockout, the second factor, roles and scopes, forged forms, idle
//! timeout, sign-out everywhere, and that every page renders.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use sessiond_core::Timestamp;
use sessiond_core::application::Application;
use sessiond_core::clock::ManualClock;
use sessiond_core::console::{NewOperator, Role};
use sessiond_core::session::SessionStatus;
use sessiond_core::store::ActionFilter;
use sessiond_core::user::NewUser;
use sessiond_crypto::totp::TotpSecret;
use sessiond_http::AppState;
use sessiond_store_conformance::services::Services;

const T0: Timestamp = Timestamp(1_767_225_600_000);
const PASSWORD: &str = "correct horse battery staple";

struct Env {
    services: Services,
    clock: Arc<ManualClock>,
    state: AppState,
    router: axum::Router,
    a: Application,
    b: Application,
}

async fn env() -> Env {
    let services = Services::sqlite().await;
    let (a, _) = services.app("Shop", T0, |_| {}).await;
    let (b, _) = services.app("Bank", T0, |_| {}).await;
    let clock = Arc::new(ManualClock::new(T0));
    let state = support::state(&services, clock.clone());
    Env {
        router: sessiond_http::router(state.clone()),
        services,
        clock,
        state,
        a,
        b,
    }
}

impl Env {
    async fn operator(
        &self,
        email: &str,
        role: Role,
        scope: Option<&Application>,
        totp: bool,
    ) -> Option<TotpSecret> {
        let (_, secret) = self
            .state
            .console
            .create_operator(
                NewOperator {
                    email: email.into(),
                    password: PASSWORD.into(),
                    role,
                    applications: scope.map(|a| vec![a.id.clone()]),
                    totp,
                },
                self.clock.now_ts(),
            )
            .await
            .unwrap_or_else(|e| panic!("create operator: {e}"));
        secret
    }

    fn browser(&self) -> Browser {
        Browser {
            router: self.router.clone(),
            cookies: BTreeMap::new(),
        }
    }

    /// A browser signed in as `email`.
    async fn signed_in(&self, email: &str) -> Browser {
        let mut b = self.browser();
        let r = b.sign_in(email, PASSWORD, "").await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
        b
    }
}

trait NowTs {
    fn now_ts(&self) -> Timestamp;
}

impl NowTs for ManualClock {
    fn now_ts(&self) -> Timestamp {
        sessiond_core::clock::Clock::now(self)
    }
}

use support::Resp as Page;

/// What the console tests read from a page beyond status and body.
trait PageExt {
    fn location(&self) -> &str;
    fn csrf(&self) -> String;
}

impl PageExt for Page {
    fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The value of the first hidden `csrf` field.
    fn csrf(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        self.text
            .find(marker)
            .map(|i| {
                let rest = &self.text[i + marker.len()..];
                rest[..rest.find('"').unwrap_or(0)].to_owned()
            })
            .unwrap_or_default()
    }
}

struct Browser {
    router: axum::Router,
    cookies: BTreeMap<String, String>,
}

impl Browser {
    async fn send(&mut self, method: &str, path: &str, form: Option<&[(&str, &str)]>) -> Page {
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut req = Request::builder().method(method).uri(path);
        if !cookie.is_empty() {
            req = req.header(header::COOKIE, cookie);
        }
        let body = match form {
            Some(f) => {
                req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(f)
                    .finish()
            }
            None => String::new(),
        };
        let page = support::send(
            &self.router,
            req.body(Body::from(body)).unwrap_or_else(|e| panic!("{e}")),
        )
        .await;
        for v in page.headers.get_all(header::SET_COOKIE) {
            let v = v.to_str().unwrap_or("");
            let Some((kv, attrs)) = v.split_once(';') else {
                continue;
            };
            let Some((k, val)) = kv.split_once('=') else {
                continue;
            };
            if val.is_empty() || attrs.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), val.to_owned());
            }
        }
        page
    }

    async fn get(&mut self, path: &str) -> Page {
        self.send("GET", path, None).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        self.send("POST", path, Some(form)).await
    }

    async fn sign_in(&mut self, email: &str, password: &str, code: &str) -> Page {
        let form = self.get("/console/sign-in").await;
        let csrf = form.csrf();
        self.post(
            "/console/sign-in",
            &[
                ("csrf", &csrf),
                ("email", email),
                ("password", password),
                ("code", code),
            ],
        )
        .await
    }
}

#[tokio::test]
async fn sign_in_needs_the_forms_token_and_sets_a_strict_cookie() {
    let env = env().await;
    env.operator("ops@example.com", Role::Admin, None, false)
        .await;
    let mut b = env.browser();
    let home = b.get("/console/apps").await;
    assert_eq!(home.status, StatusCode::SEE_OTHER);
    assert_eq!(home.location(), "/console/sign-in");

    let form = b.get("/console/sign-in").await;
    assert_eq!(form.status, StatusCode::OK);
    let csp = form
        .headers
        .get(header::CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    // Without the form's token (a login forged by another site) nothing happens.
    let forged = b
        .post(
            "/console/sign-in",
            &[("email", "ops@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(!b.cookies.contains_key("sessiond_console"));

    let ok = b.sign_in("ops@example.com", PASSWORD, "").await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.text);
    let set = ok
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("sessiond_console="))
        .unwrap_or_default()
        .to_owned();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(set.contains(attr), "{set}");
    }
    assert!(
        !set.contains("Secure"),
        "plain http (no https public_url): {set}"
    );
    let apps = b.get("/console/apps").await;
    assert_eq!(apps.status, StatusCode::OK);
    assert!(apps.text.contains("Shop") && apps.text.contains("Bank"));
    assert!(
        !apps.text.contains(sessiond_core::tenancy::CONSOLE_APP_NAME),
        "the console's own application is hidden"
    );

    // A cookie whose signature does not match is no session.
    let mut tampered = env.browser();
    let value = b.cookies["sessiond_console"].clone();
    let (id, _) = value.rsplit_once('.').unwrap_or_default();
    tampered
        .cookies
        .insert("sessiond_console".into(), format!("{id}.forged"));
    assert_eq!(
        tampered.get("/console/apps").await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn failed_sign_ins_lock_the_account_with_back_off() {
    let env = env().await;
    env.operator("ops@example.com", Role::Admin, None, false)
        .await;
    let mut b = env.browser();
    let unknown = b.sign_in("nobody@example.com", PASSWORD, "").await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    let mut wrong = String::new();
    for _ in 0..5 {
        let r = b.sign_in("ops@example.com", "wrong password!", "").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        wrong = r.text;
    }
    // The same words whether the email exists or not.
    assert!(
        unknown
            .text
            .contains("email, password or code is not correct")
    );
    assert!(wrong.contains("email, password or code is not correct"));
    let locked = b.sign_in("ops@example.com", PASSWORD, "").await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(locked.text.contains("locked"), "{}", locked.text);
    env.clock.advance_secs(31);
    let ok = b.sign_in("ops@example.com", PASSWORD, "").await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.text);
    let refused = env
        .state
        .console
        .audit(None, &ActionFilter::default(), 50)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .iter()
        .filter(|a| a.action == "operator.sign_in_refused")
        .count();
    assert_eq!(
        refused, 6,
        "five wrong passwords and one attempt while locked"
    );
}

#[tokio::test]
async fn an_enrolled_second_factor_is_required_and_each_code_works_once() {
    let env = env().await;
    let secret = env
        .operator("ops@example.com", Role::Admin, None, true)
        .await
        .unwrap_or_else(|| panic!("a TOTP secret"));
    let mut b = env.browser();
    let without = b.sign_in("ops@example.com", PASSWORD, "").await;
    assert_eq!(without.status, StatusCode::UNAUTHORIZED);
    let code = secret.code_at_step(T0.as_secs() / 30);
    let with = b.sign_in("ops@example.com", PASSWORD, &code).await;
    assert_eq!(with.status, StatusCode::SEE_OTHER, "{}", with.text);
    let mut other = env.browser();
    let replayed = other.sign_in("ops@example.com", PASSWORD, &code).await;
    assert_eq!(
        replayed.status,
        StatusCode::UNAUTHORIZED,
        "a code works once"
    );
}

async fn user_with_session(
    env: &Env,
) -> (sessiond_core::user::User, sessiond_core::session::Session) {
    let login = &env.services.login;
    let u = login
        .create_user(
            &env.a,
            NewUser {
                email_addresses: vec!["ada@example.com".into()],
                first_name: Some("Ada".into()),
                ..NewUser::default()
            },
            T0,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let s = login
        .create_session(&env.a, &u.id, false, T0)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (u, s)
}

#[tokio::test]
async fn viewers_see_but_cannot_revoke_and_forged_forms_change_nothing() {
    let env = env().await;
    env.operator("admin@example.com", Role::Admin, None, false)
        .await;
    env.operator("viewer@example.com", Role::Viewer, None, false)
        .await;
    let (u, s) = user_with_session(&env).await;
    let user_page = format!("/console/apps/{}/users/{}", env.a.id, u.id);
    let revoke = format!("/console/apps/{}/sessions/{}/revoke", env.a.id, s.id);

    let mut viewer = env.signed_in("viewer@example.com").await;
    let page = viewer.get(&user_page).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.text.contains("ada@example.com"));
    assert!(
        !page.text.contains("/revoke"),
        "no revoke button for a viewer"
    );
    let csrf = page.csrf();
    let refused = viewer.post(&revoke, &[("csrf", &csrf)]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    let mut admin = env.signed_in("admin@example.com").await;
    let page = admin.get(&user_page).await;
    assert!(page.text.contains(&revoke), "an admin gets the button");
    let forged = admin.post(&revoke, &[("csrf", "not-the-token")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let bare = admin.post(&revoke, &[]).await;
    assert_eq!(bare.status, StatusCode::FORBIDDEN);
    let still = env
        .services
        .login
        .get_session(&env.a, &s.id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        still.status,
        SessionStatus::Active,
        "refused forms changed nothing"
    );

    let done = admin.post(&revoke, &[("csrf", &page.csrf())]).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.text);
    let after = env
        .services
        .login
        .get_session(&env.a, &s.id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(after.status, SessionStatus::Revoked);
    let audit = admin.get("/console/audit").await;
    assert!(audit.text.contains("session.revoke") && audit.text.contains(s.id.as_str()));
    assert!(audit.text.contains("admin@example.com"));
}

#[tokio::test]
async fn idle_console_sessions_end_and_sign_out_everywhere_ends_them_all() {
    let env = env().await;
    env.operator("ops@example.com", Role::Admin, None, false)
        .await;
    let mut one = env.signed_in("ops@example.com").await;
    assert_eq!(one.get("/console/account").await.status, StatusCode::OK);
    env.clock.advance_secs(31 * 60);
    let idle = one.get("/console/account").await;
    assert_eq!(idle.status, StatusCode::SEE_OTHER, "idle past the timeout");
    assert_eq!(idle.location(), "/console/sign-in");

    let mut one = env.signed_in("ops@example.com").await;
    let mut two = env.signed_in("ops@example.com").await;
    // Activity keeps a session alive past the idle timeout.
    for _ in 0..3 {
        env.clock.advance_secs(20 * 60);
        assert_eq!(two.get("/console/account").await.status, StatusCode::OK);
        assert_eq!(one.get("/console/account").await.status, StatusCode::OK);
    }
    let account = one.get("/console/account").await;
    let out = one
        .post("/console/sign-out-everywhere", &[("csrf", &account.csrf())])
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(
        two.get("/console/account").await.status,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        one.get("/console/account").await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn scoped_operators_see_only_their_applications() {
    let env = env().await;
    env.operator("bank@example.com", Role::Admin, Some(&env.b), false)
        .await;
    env.operator("ops@example.com", Role::Admin, None, false)
        .await;
    let mut scoped = env.signed_in("bank@example.com").await;
    // One application: home goes straight to it.
    let home = scoped.get("/console").await;
    assert_eq!(home.location(), format!("/console/apps/{}", env.b.id));
    let list = scoped.get("/console/apps").await;
    assert!(list.text.contains("Bank") && !list.text.contains("Shop"));
    for path in [
        "",
        "/users",
        "/sessions",
        "/settings",
        "/webhooks",
        "/verifications",
    ] {
        let p = scoped
            .get(&format!("/console/apps/{}{path}", env.a.id))
            .await;
        assert_eq!(p.status, StatusCode::NOT_FOUND, "{path}");
    }
    let mut ops = env.signed_in("ops@example.com").await;
    let console_app = env
        .state
        .console
        .application(T0)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .id
        .clone();
    let hidden = ops.get(&format!("/console/apps/{console_app}/users")).await;
    assert_eq!(
        hidden.status,
        StatusCode::NOT_FOUND,
        "operators are not browsable users"
    );
}

#[tokio::test]
async fn every_page_renders_and_admin_changes_are_audited() {
    let env = env().await;
    env.operator("ops@example.com", Role::Admin, None, false)
        .await;
    let (u, s) = user_with_session(&env).await;
    let mut b = env.signed_in("ops@example.com").await;
    let app = env.a.id.clone();
    for path in [
        "/console/apps".to_owned(),
        format!("/console/apps/{app}"),
        format!("/console/apps/{app}/users"),
        format!("/console/apps/{app}/users?q=ada"),
        format!("/console/apps/{app}/users/{}", u.id),
        format!("/console/apps/{app}/sessions"),
        format!("/console/apps/{app}/sessions?status=active&from=2026-01-01&to=2026-01-01"),
        format!("/console/apps/{app}/sessions/{}", s.id),
        format!("/console/apps/{app}/verifications"),
        format!("/console/apps/{app}/webhooks"),
        format!("/console/apps/{app}/settings"),
        "/console/account".to_owned(),
        "/console/audit".to_owned(),
    ] {
        let p = b.get(&path).await;
        assert_eq!(p.status, StatusCode::OK, "{path}: {}", p.text);
        assert!(p.text.contains("<main id=\"main\""), "{path}");
    }
    let overview = b.get(&format!("/console/apps/{app}")).await;
    assert!(
        overview.text.contains("<svg"),
        "charts are drawn server-side"
    );
    assert!(
        overview
            .text
            .contains("<strong>1</strong> active sessions now")
    );
    let search = b.get(&format!("/console/apps/{app}/users?q=nobody")).await;
    assert!(search.text.contains("0 users match"));
    let timeline = b
        .get(&format!("/console/apps/{app}/sessions/{}", s.id))
        .await;
    assert!(
        timeline.text.contains("session.created"),
        "{}",
        timeline.text
    );

    // Bad input is a 400 page, not a failure.
    let bad = b
        .get(&format!("/console/apps/{app}/sessions?status=nonsense"))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let bad = b
        .get(&format!("/console/apps/{app}/sessions?from=yesterday"))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    // Settings: a change is saved and named in the audit log; invalid values are refused.
    let settings = b.get(&format!("/console/apps/{app}/settings")).await;
    let csrf = settings.csrf();
    let save = |idle: &'static str| {
        vec![
            ("name", "Shop"),
            ("session_max_lifetime_secs", "604800"),
            ("inactivity_timeout_secs", idle),
            ("abandon_period_secs", "2592000"),
            ("session_token_lifetime_secs", "60"),
            ("verification_retention_secs", "2592000"),
            ("verification_session_lifetime_secs", "3600"),
            ("trinsic_generation", "api"),
            ("allowed_redirect_origins", "https://rp.example\n"),
            ("rate_limit_per_sec", ""),
        ]
    };
    let mut form = save("1800");
    let frontend = env.a.settings.frontend_url.clone();
    form.push(("frontend_url", &frontend));
    form.push(("csrf", &csrf));
    let r = b
        .post(&format!("/console/apps/{app}/settings"), &form)
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.text);
    let now = env
        .services
        .tenancy
        .get_application(&app)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(now.settings.inactivity_timeout_secs, Some(1800));
    assert_eq!(
        now.settings.allowed_redirect_origins,
        ["https://rp.example"]
    );
    let mut bad = save("5");
    bad.push(("frontend_url", &frontend));
    bad.push(("csrf", &csrf));
    let r = b.post(&format!("/console/apps/{app}/settings"), &bad).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // A new key is shown once and works.
    let r = b
        .post(&format!("/console/apps/{app}/keys"), &[("csrf", &csrf)])
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let start = r
        .text
        .find("sk_test_")
        .unwrap_or_else(|| panic!("{}", r.text));
    let secret: String = r.text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    let caller = env
        .services
        .tenancy
        .authenticate(Some(format!("Bearer {secret}").as_bytes()))
        .await
        .unwrap_or_else(|e| panic!("the new key authenticates: {e}"));
    assert_eq!(caller.id, app);
    let again = b.get(&format!("/console/apps/{app}/settings")).await;
    assert!(!again.text.contains(&secret), "shown only once");

    let actions: Vec<String> = env
        .state
        .console
        .audit(None, &ActionFilter::default(), 50)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .into_iter()
        .map(|a| format!("{} {}", a.action, a.detail))
        .collect();
    assert!(
        actions
            .iter()
            .any(|a| a.starts_with("application.update") && a.contains("inactivity_timeout_secs")),
        "{actions:?}"
    );
    assert!(
        actions.iter().any(|a| a.starts_with("key.create")),
        "{actions:?}"
    );
}

#[tokio::test]
async fn applications_are_created_by_admins_of_every_application_only() {
    let env = env().await;
    env.operator("ops@example.com", Role::Admin, None, false)
        .await;
    env.operator("bank@example.com", Role::Admin, Some(&env.b), false)
        .await;
    let mut scoped = env.signed_in("bank@example.com").await;
    let list = scoped.get("/console/apps").await;
    assert!(!list.text.contains("Create an application"));
    let refused = scoped
        .post(
            "/console/apps",
            &[
                ("csrf", &list.csrf()),
                ("name", "Mine"),
                ("environment", "test"),
            ],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    let mut ops = env.signed_in("ops@example.com").await;
    let list = ops.get("/console/apps").await;
    assert!(list.text.contains("Create an application"));
    let bad = ops
        .post(
            "/console/apps",
            &[
                ("csrf", &list.csrf()),
                ("name", "X"),
                ("environment", "prod"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let made = ops
        .post(
            "/console/apps",
            &[
                ("csrf", &list.csrf()),
                ("name", "Insurer"),
                ("environment", "live"),
            ],
        )
        .await;
    assert_eq!(made.status, StatusCode::OK, "{}", made.text);
    let start = made
        .text
        .find("sk_live_")
        .unwrap_or_else(|| panic!("{}", made.text));
    let secret: String = made.text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    let app = env
        .services
        .tenancy
        .authenticate(Some(format!("Bearer {secret}").as_bytes()))
        .await
        .unwrap_or_else(|e| panic!("the first key works: {e}"));
    assert_eq!(app.name, "Insurer");
    // Its signing key exists at once, so its JWKS and tokens work.
    let keys = env
        .services
        .signer
        .keyset(&app.id, T0)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(keys.current_kid().is_some());
    let settings = ops.get(&format!("/console/apps/{}/settings", app.id)).await;
    assert_eq!(settings.status, StatusCode::OK);
}

#[tokio::test]
async fn session_listings_page_through_every_session() {
    let env = env().await;
    env.operator("ops@example.com", Role::Viewer, None, false)
        .await;
    let (u, _) = user_with_session(&env).await;
    for i in 0..59u64 {
        env.services
            .login
            .create_session(
                &env.a,
                &u.id,
                false,
                Timestamp(T0.0 + 1000 * (i + 1) as i64),
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let mut b = env.signed_in("ops@example.com").await;
    let first = b
        .get(&format!(
            "/console/apps/{}/sessions?user={}",
            env.a.id, u.id
        ))
        .await;
    assert_eq!(first.status, StatusCode::OK);
    assert!(first.text.contains("60 sessions match"), "{}", first.text);
    let marker = "Older sessions";
    assert!(first.text.contains(marker));
    let href_start = first.text[..first.text.find(marker).unwrap_or(0)]
        .rfind("href=\"")
        .unwrap_or(0)
        + 6;
    let href = &first.text[href_start..];
    let href = href[..href.find('"').unwrap_or(0)].replace("&amp;", "&");
    assert!(href.contains("offset=50"), "{href}");
    let second = b.get(&href).await;
    assert_eq!(second.status, StatusCode::OK);
    assert!(
        !second.text.contains(marker),
        "the last page has no link onwards"
    );
    let ids = |t: &str| -> std::collections::BTreeSet<String> {
        t.match_indices("/sessions/sess_")
            .map(|(i, _)| {
                t[i + 10..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect()
            })
            .collect()
    };
    let (a, c) = (ids(&first.text), ids(&second.text));
    assert_eq!(a.len(), 50);
    assert_eq!(c.len(), 10);
    assert!(a.is_disjoint(&c), "pages do not overlap");
}

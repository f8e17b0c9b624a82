//! The hosted verification pages under `/verify`: plain server-rendered HTML with its own
//! assets (no CDN, no inline script), usable by keyboard and on a phone.
//!
//! - `GET /verify/launch?t=…` — the launch URL (the browser SDKs append `&redirectUrl=`,
//!   `&launchMode=redirect|popup` or `&embed=iframe`). The first browser to open it is bound to
//!   the session by an HttpOnly cookie; the link then works in no other browser, and it expires
//!   with the session.
//! - `POST /verify/step` — every form (provider choice, provider input, sub-provider choice,
//!   cancel, back). Each carries the launch token and an anti-forgery token derived from the
//!   browser binding, so another site cannot post on the user's behalf.
//! - `GET|POST /verify/callback/{app}/{session}` — where deep links land: for the test wallet,
//!   the page that presents or declines its credential.
//! - `GET /verify/assets/{file}` — stylesheet, script and provider logos.
//!
//! Finished sessions deliver their result by a `303` to the redirect URL (with `sessionId`,
//! `resultsAccessKey` and `success`), or by `postMessage` to the opener (popup) or parent
//! (iframe), addressed only to the application's allowed redirect origins.

mod handoff;
pub(crate) mod html;

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sessiond_core::Error;
use sessiond_core::application::AppId;
use sessiond_core::verification::VerificationId;
use sessiond_core::verification::service::{LaunchParams, Page, View};

use handoff::{Delivery, delivery};

use crate::{AppState, cookie};

const MAX_FORM_BYTES: usize = 64 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/verify/launch", get(launch))
        .route("/verify/step", axum::routing::post(step))
        .route(
            "/verify/callback/{app}/{session}",
            get(wallet_prompt).post(wallet_decide),
        )
        .route("/verify/assets/{file}", get(asset))
}

/// HSTS on every page when browsers reach this server over https (`public_url`): the pages carry
/// launch tokens and the browser-binding cookie, which must never travel over plain http.
pub(crate) async fn hsts(State(st): State<AppState>, mut resp: Response) -> Response {
    if st.verification.public_url().starts_with("https://") {
        resp.headers_mut().insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    resp
}

fn query_map(raw: Option<&str>) -> BTreeMap<String, String> {
    form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn cookie_name(id: &VerificationId) -> String {
    format!("sv_{}", id.as_str().replace('-', ""))
}

/// Security headers of every page: no caching, no referrer (launch tokens are in URLs), a strict
/// content security policy. Forms may post to this server and to the allowed redirect origins
/// (browsers check a form's redirect target too); only those origins may frame the pages.
fn secure(mut resp: Response, origins: &[String]) -> Response {
    let list = origins.join(" ");
    let csp = format!(
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; \
         form-action 'self' {list}; frame-ancestors 'self' {list}; base-uri 'none'"
    );
    let h = resp.headers_mut();
    for (k, v) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ] {
        h.insert(k, HeaderValue::from_static(v));
    }
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    resp
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

fn error_response(e: &Error) -> Response {
    let (status, title, msg) = match e {
        Error::Forbidden(why) => (
            StatusCode::FORBIDDEN,
            "This link cannot be used",
            why.clone(),
        ),
        Error::NotFound { .. } => (
            StatusCode::NOT_FOUND,
            "Verification not found",
            "This verification does not exist or was removed.".to_owned(),
        ),
        Error::InvalidInput { reason, .. } => (
            StatusCode::BAD_REQUEST,
            "This request cannot be used",
            reason.clone(),
        ),
        Error::Conflict => (
            StatusCode::CONFLICT,
            "Please try again",
            "The verification changed in another window; reload this page.".to_owned(),
        ),
        other => {
            tracing::error!(error = %other, "hosted page failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Please try again later.".to_owned(),
            )
        }
    };
    secure(html(status, html::error_page(title, &msg)), &[])
}

fn page_response(st: &AppState, page: Page) -> Response {
    let handed_off = match &page.view {
        View::Finished { handoff, .. } => Some(delivery(handoff)),
        _ => None,
    };
    let location = match (&page.view, &handed_off) {
        (_, Some(Delivery::Redirect(url))) | (View::External(url), _) => Some(url.as_str()),
        _ => None,
    };
    let body = html::render(&page, handed_off.as_ref());
    let mut resp = match location {
        Some(url) => {
            let mut r = html(StatusCode::SEE_OTHER, body);
            if let Ok(v) = HeaderValue::from_str(url) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            r
        }
        None => html(StatusCode::OK, body),
    };
    if let Some(binding) = &page.set_binding {
        let secure_cookie = st.verification.public_url().starts_with("https://");
        // Cross-site iframes only receive SameSite=None cookies, which browsers accept only
        // with Secure; over plain http (local use) Lax is the strongest setting that works.
        let attrs = if secure_cookie {
            "; Secure; SameSite=None"
        } else {
            "; SameSite=Lax"
        };
        let max_age =
            (page.verification.expires_at.as_millis() - st.clock.now().as_millis()).max(0) / 1000;
        let c = format!(
            "{}={binding}; Path=/verify; HttpOnly; Max-Age={max_age}{attrs}",
            cookie_name(&page.verification.id)
        );
        if let Ok(v) = HeaderValue::from_str(&c) {
            resp.headers_mut().insert(header::SET_COOKIE, v);
        }
    }
    secure(resp, &page.allowed_origins)
}

async fn launch(State(st): State<AppState>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    if q.as_deref().is_some_and(|q| q.len() > 8192) {
        return error_response(&Error::invalid("query", "is too long"));
    }
    let q = query_map(q.as_deref());
    let Some(token) = q.get("t") else {
        return error_response(&Error::Forbidden(
            "this verification link is not valid".into(),
        ));
    };
    let binding = st
        .verification
        .token_session(token)
        .and_then(|id| cookie(&headers, &cookie_name(&id)));
    let params = LaunchParams {
        redirect_url: q.get("redirectUrl").cloned(),
        launch_mode: q.get("launchMode").cloned(),
        embed: q.get("embed").cloned(),
    };
    match st
        .verification
        .launch(token, binding.as_deref(), params, st.clock.now())
        .await
    {
        Ok(page) => page_response(&st, page),
        Err(e) => error_response(&e),
    }
}

fn parse_form(body: &Bytes) -> Result<BTreeMap<String, String>, Error> {
    if body.len() > MAX_FORM_BYTES {
        return Err(Error::invalid("form", "is too large"));
    }
    let mut out = BTreeMap::new();
    for (k, v) in form_urlencoded::parse(body) {
        if k.len() > 64 || v.len() > 4096 || out.len() >= 32 {
            return Err(Error::invalid("form", "has an oversized field"));
        }
        out.insert(k.into_owned(), v.into_owned());
    }
    Ok(out)
}

async fn step(State(st): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let form = match parse_form(&body) {
        Ok(f) => f,
        Err(e) => return error_response(&e),
    };
    let (Some(token), Some(csrf), Some(action)) =
        (form.get("t"), form.get("csrf"), form.get("action"))
    else {
        return error_response(&Error::Forbidden(
            "the form is incomplete; reload the page and try again".into(),
        ));
    };
    let binding = st
        .verification
        .token_session(token)
        .and_then(|id| cookie(&headers, &cookie_name(&id)));
    let fields: BTreeMap<String, String> = form
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "t" | "csrf" | "action"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    match st
        .verification
        .submit(
            token,
            binding.as_deref(),
            csrf,
            action,
            &fields,
            st.clock.now(),
        )
        .await
    {
        Ok(page) => page_response(&st, page),
        Err(e) => error_response(&e),
    }
}

fn wallet_ids(app: &str, session: &str) -> Result<(AppId, VerificationId), Error> {
    let missing = || Error::NotFound { kind: "session" };
    Ok((
        AppId::parse(app).ok_or_else(missing)?,
        VerificationId::parse(session).ok_or_else(missing)?,
    ))
}

async fn wallet_prompt(
    State(st): State<AppState>,
    Path((app, session)): Path<(String, String)>,
    RawQuery(q): RawQuery,
) -> Response {
    let q = query_map(q.as_deref());
    let code = q.get("code").cloned().unwrap_or_default();
    let result = async {
        let (app, id) = wallet_ids(&app, &session)?;
        st.verification
            .wallet_prompt(&app, &id, &code, st.clock.now())
            .await
    }
    .await;
    match result {
        Ok(p) => {
            let body = format!(
                "<h1>Share your credential?</h1>\
                 <p><strong>{}</strong> asks to verify your identity with your test wallet \
                 credential (test mode: no real data is shared).</p>\
                 <form method=\"post\"><input type=\"hidden\" name=\"code\" value=\"{}\">\
                 <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
                 <button type=\"submit\" name=\"decision\" value=\"present\" autofocus>Share credential</button>\
                 <button type=\"submit\" name=\"decision\" value=\"decline\" class=\"secondary\">Decline</button></form>",
                html::esc(&p.application_name),
                html::esc(&code),
                html::esc(&p.csrf)
            );
            secure(
                html(
                    StatusCode::OK,
                    html::document("Test wallet", None, "", &body),
                ),
                &[],
            )
        }
        Err(e) => error_response(&e),
    }
}

async fn wallet_decide(
    State(st): State<AppState>,
    Path((app, session)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let result = async {
        let form = parse_form(&body)?;
        let (app, id) = wallet_ids(&app, &session)?;
        let get = |k: &str| form.get(k).map_or("", String::as_str);
        st.verification
            .wallet_complete(
                &app,
                &id,
                get("code"),
                get("csrf"),
                get("decision"),
                st.clock.now(),
            )
            .await
    }
    .await;
    match result {
        Ok(v) => {
            let done = if v.state == sessiond_core::verification::State::Success {
                "Your credential was shared. You can return to the site you were verifying with."
            } else {
                "You declined. Nothing was shared."
            };
            secure(
                html(
                    StatusCode::OK,
                    html::document(
                        "Test wallet",
                        None,
                        "",
                        &format!("<h1>Done</h1><p role=\"status\">{}</p>", html::esc(done)),
                    ),
                ),
                &[],
            )
        }
        Err(e) => error_response(&e),
    }
}

const ASSETS: &[crate::assets::Asset] = &[
    (
        "verify.css",
        "text/css; charset=utf-8",
        include_str!("assets/verify.css"),
    ),
    (
        "verify.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/verify.js"),
    ),
    (
        "provider-database.svg",
        "image/svg+xml",
        include_str!("assets/provider-database.svg"),
    ),
    (
        "provider-subproviders.svg",
        "image/svg+xml",
        include_str!("assets/provider-subproviders.svg"),
    ),
    (
        "provider-wallet.svg",
        "image/svg+xml",
        include_str!("assets/provider-wallet.svg"),
    ),
];

async fn asset(Path(file): Path<String>) -> Response {
    crate::assets::serve(ASSETS, &file).unwrap_or_else(|| {
        html(
            StatusCode::NOT_FOUND,
            html::error_page("Not found", "No such file."),
        )
    })
}

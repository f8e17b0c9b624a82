//! The operator console under `/console`: server-rendered pages with their own stylesheet and
//! script (no CDN, no inline script, a strict content security policy), usable by keyboard and
//! on a phone, light and dark.
//!
//! Every page but sign-in needs a console session: an HttpOnly, SameSite=Strict cookie (Secure
//! when `public_url` is https) holding the session id and its keyed signature. Every form
//! carries an anti-forgery token derived from the session; a POST without the right one is
//! refused before anything is read. Viewers see; admins also change. Every change is written to
//! the audit log.
//!
//! # Layout
//! - `html`: the frame, building blocks and SVG charts.
//! - `account`: sign-in, sign-out (here and everywhere), the account page, the audit log.
//! - `apps`: applications, their overview, settings, secret keys and signing keys.
//! - `people`: users and sessions.
//! - `verifications`, `webhooks`: those pages.

// Handlers answer with a whole page whether they succeed or not, so their errors are responses;
// the size of one on the error path does not matter next to rendering it.
#![allow(clippy::result_large_err)]

mod account;
mod apps;
pub(crate) mod html;
mod people;
mod verifications;
mod webhooks;

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use sessiond_core::Error;
use sessiond_core::application::{AppId, Application};
use sessiond_core::console::ConsoleSession;

use crate::{AppState, cookie};
use html::Frame;

const COOKIE: &str = "sessiond_console";
/// The pre-sign-in cookie the sign-in form's token is bound to.
const PRE_COOKIE: &str = "sessiond_console_pre";
const MAX_FORM_BYTES: usize = 16 * 1024;
const MAX_FIELDS: usize = 64;

/// What a handler answers: a page, or the page that says why not.
type Answer = Result<Response, Response>;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(account::home))
        .route("/console/", get(account::home))
        .route(
            "/console/sign-in",
            get(account::sign_in_form).post(account::sign_in),
        )
        .route("/console/sign-out", post(account::sign_out))
        .route(
            "/console/sign-out-everywhere",
            post(account::sign_out_everywhere),
        )
        .route("/console/account", get(account::account))
        .route("/console/audit", get(account::audit))
        .route("/console/apps", get(apps::list).post(apps::create))
        .route("/console/apps/{app}", get(apps::overview))
        .route(
            "/console/apps/{app}/settings",
            get(apps::settings).post(apps::save_settings),
        )
        .route("/console/apps/{app}/keys", post(apps::create_key))
        .route(
            "/console/apps/{app}/keys/{key}/revoke",
            post(apps::revoke_key),
        )
        .route(
            "/console/apps/{app}/signing-keys/rotate",
            post(apps::rotate_signing_key),
        )
        .route("/console/apps/{app}/users", get(people::users))
        .route("/console/apps/{app}/users/{user}", get(people::user))
        .route(
            "/console/apps/{app}/users/{user}/revoke-sessions",
            post(people::revoke_user_sessions),
        )
        .route(
            "/console/apps/{app}/users/{user}/impersonation",
            post(people::set_impersonation),
        )
        .route("/console/apps/{app}/sessions", get(people::sessions))
        .route(
            "/console/apps/{app}/sessions/{session}",
            get(people::session),
        )
        .route(
            "/console/apps/{app}/sessions/{session}/revoke",
            post(people::revoke_session),
        )
        .route(
            "/console/apps/{app}/verifications",
            get(verifications::list),
        )
        .route(
            "/console/apps/{app}/verifications/{id}",
            get(verifications::detail),
        )
        .route(
            "/console/apps/{app}/verifications/{id}/results",
            post(verifications::results),
        )
        .route(
            "/console/apps/{app}/verifications/{id}/redact",
            post(verifications::redact),
        )
        .route(
            "/console/apps/{app}/webhooks",
            get(webhooks::list).post(webhooks::create),
        )
        .route(
            "/console/apps/{app}/webhooks/{endpoint}",
            get(webhooks::detail),
        )
        .route(
            "/console/apps/{app}/webhooks/{endpoint}/update",
            post(webhooks::update),
        )
        .route(
            "/console/apps/{app}/webhooks/{endpoint}/replay",
            post(webhooks::replay),
        )
        .route(
            "/console/apps/{app}/webhooks/{endpoint}/delete",
            post(webhooks::delete),
        )
        .route("/console/assets/{file}", get(asset))
        .route("/console/{*rest}", get(not_found_page).post(not_found_page))
}

/// A request from a signed-in operator.
pub(crate) struct Ctx {
    pub cs: ConsoleSession,
    pub csrf: String,
    pub st: AppState,
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Response> {
        let now = st.clock.now();
        let Some(id) =
            cookie(&parts.headers, COOKIE).and_then(|v| st.console.session_of_cookie(&v))
        else {
            return Err(to_sign_in(parts));
        };
        match st.console.authenticate(&id, now).await {
            Ok(Some(cs)) => Ok(Ctx {
                csrf: st.console.csrf_token(&cs.session.id),
                cs,
                st: st.clone(),
            }),
            Ok(None) => Err(to_sign_in(parts)),
            Err(e) => Err(error_page(None, &e)),
        }
    }
}

/// Unsigned: a page goes to sign-in (and clears a stale cookie); a form post is refused.
fn to_sign_in(parts: &Parts) -> Response {
    if parts.method == axum::http::Method::POST {
        return secure(html_response(
            StatusCode::FORBIDDEN,
            html::document(
                "Signed out",
                &no_frame(),
                &format!(
                    "<h1>You are signed out</h1><p>Nothing was changed. {}</p>",
                    html::link("/console/sign-in", "Sign in again")
                ),
            ),
        ));
    }
    let mut r = Redirect::to("/console/sign-in").into_response();
    clear_cookie(&mut r);
    secure(r)
}

impl Ctx {
    pub fn now(&self) -> sessiond_core::Timestamp {
        self.st.clock.now()
    }

    pub fn frame<'a>(&'a self, app: Option<&'a Application>, current: &'a str) -> Frame<'a> {
        Frame {
            operator: Some(&self.cs.operator),
            csrf: &self.csrf,
            app: app.map(|a| (a.id.as_str(), a.name.as_str())),
            current,
        }
    }

    /// A page in the frame.
    pub fn page(
        &self,
        title: &str,
        app: Option<&Application>,
        current: &str,
        body: &str,
    ) -> Response {
        secure(html_response(
            StatusCode::OK,
            html::document(title, &self.frame(app, current), body),
        ))
    }

    pub fn fail(&self, e: &Error) -> Response {
        error_page(Some(self), e)
    }

    /// An id from the path, or the page that says no such `kind` exists.
    pub fn id<T>(
        &self,
        raw: &str,
        kind: &'static str,
        parse: fn(&str) -> Option<T>,
    ) -> Result<T, Response> {
        parse(raw).ok_or_else(|| self.fail(&Error::NotFound { kind }))
    }

    /// The application `id` if this operator may see it (the console's own is never one).
    pub async fn app(&self, id: &str) -> Result<Application, Response> {
        let missing = Error::NotFound {
            kind: "application",
        };
        let id = AppId::parse(id).ok_or_else(|| self.fail(&missing))?;
        self.cs
            .operator
            .check_sees(&id)
            .map_err(|e| self.fail(&e))?;
        if self
            .st
            .console
            .is_console_application(&id, self.now())
            .await
            .map_err(|e| self.fail(&e))?
        {
            return Err(self.fail(&missing));
        }
        self.st
            .tenancy
            .get_application(&id)
            .await
            .map_err(|e| self.fail(&e))
    }

    /// The application `id` if this operator may change things in it.
    pub async fn admin_app(&self, id: &str) -> Result<Application, Response> {
        let app = self.app(id).await?;
        self.cs
            .operator
            .check_admin(Some(&app.id))
            .map_err(|e| self.fail(&e))?;
        Ok(app)
    }

    /// What every change starts with: the posted form (token checked) and the application the
    /// operator may change.
    pub async fn change(&self, body: &Bytes, app: &str) -> Result<(Form, Application), Response> {
        let form = self.form(body)?;
        Ok((form, self.admin_app(app).await?))
    }

    /// The posted form, once its anti-forgery token is checked.
    pub fn form(&self, body: &Bytes) -> Result<Form, Response> {
        let form = parse_form(body).map_err(|e| self.fail(&e))?;
        let ok = form
            .get("csrf")
            .is_some_and(|t| self.st.console.check_csrf(&self.cs.session.id, t));
        if !ok {
            return Err(forged());
        }
        Ok(form)
    }

    /// Writes an audit entry; a failure to record fails the request (an unrecorded change
    /// must not look like a recorded one), but the change itself has already happened.
    pub async fn audit(
        &self,
        action: sessiond_core::console::Action,
        app: Option<&AppId>,
        target: &str,
        detail: &str,
    ) -> Result<(), Response> {
        self.st
            .console
            .record_action(
                self.cs.operator.id.as_str(),
                action,
                app,
                target,
                detail,
                self.now(),
            )
            .await
            .map_err(|e| self.fail(&e))
    }

    pub fn is_admin_of(&self, app: &AppId) -> bool {
        self.cs.operator.check_admin(Some(app)).is_ok()
    }
}

/// A form's fields (a repeated name keeps its values in order).
pub(crate) struct Form(BTreeMap<String, Vec<String>>);

impl Form {
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).and_then(|v| v.first()).map(String::as_str)
    }
    pub fn text(&self, k: &str) -> &str {
        self.get(k).unwrap_or("").trim()
    }
    pub fn all(&self, k: &str) -> &[String] {
        self.0.get(k).map_or(&[], Vec::as_slice)
    }
    /// A `true`/`false` field.
    pub fn flag(&self, k: &str) -> Result<bool, Error> {
        match self.text(k) {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(Error::invalid(k, "must be true or false")),
        }
    }
    /// A `YYYY-MM-DD` field as the start of that UTC day; `None` when empty.
    pub fn day(&self, k: &str) -> Result<Option<sessiond_core::Timestamp>, Error> {
        let v = self.text(k);
        if v.is_empty() {
            return Ok(None);
        }
        let fmt = time::macros::format_description!("[year]-[month]-[day]");
        time::Date::parse(v, &fmt)
            .map(|d| {
                Some(sessiond_core::Timestamp(
                    d.midnight().assume_utc().unix_timestamp() * 1000,
                ))
            })
            .map_err(|_| Error::invalid(k, "must be a date, YYYY-MM-DD"))
    }
}

fn parse_form(body: &Bytes) -> Result<Form, Error> {
    if body.len() > MAX_FORM_BYTES {
        return Err(Error::invalid("form", "is too large"));
    }
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut n = 0;
    for (k, v) in form_urlencoded::parse(body) {
        n += 1;
        if k.len() > 64 || v.len() > 4096 || n > MAX_FIELDS {
            return Err(Error::invalid("form", "has an oversized field"));
        }
        out.entry(k.into_owned()).or_default().push(v.into_owned());
    }
    Ok(Form(out))
}

/// Query parameters, bounded like forms.
pub(crate) fn query(raw: Option<&str>) -> Result<Form, Error> {
    let raw = raw.unwrap_or("");
    if raw.len() > 4096 {
        return Err(Error::invalid("query", "is too long"));
    }
    parse_form(&Bytes::copy_from_slice(raw.as_bytes()))
}

fn forged() -> Response {
    secure(html_response(
        StatusCode::FORBIDDEN,
        html::document(
            "Form refused",
            &no_frame(),
            "<h1>This form was refused</h1><p>It did not carry this page's anti-forgery token, \
             so it may not come from the console. Nothing was changed. Reload the page and try \
             again.</p>",
        ),
    ))
}

pub(crate) fn no_frame() -> Frame<'static> {
    Frame {
        operator: None,
        csrf: "",
        app: None,
        current: "",
    }
}

fn cookie_attrs(st: &AppState) -> &'static str {
    if st.verification.public_url().starts_with("https://") {
        "; Path=/console; HttpOnly; SameSite=Strict; Secure"
    } else {
        "; Path=/console; HttpOnly; SameSite=Strict"
    }
}

pub(crate) fn set_cookie(st: &AppState, r: &mut Response, name: &str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(&format!("{name}={value}{}", cookie_attrs(st))) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

pub(crate) fn clear_cookie(r: &mut Response) {
    r.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "sessiond_console=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0",
        ),
    );
}

/// The console's headers: no caching, no referrer, a strict content security policy, no
/// framing.
pub(crate) fn secure(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    for (k, v) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    ] {
        h.insert(k, HeaderValue::from_static(v));
    }
    resp
}

pub(crate) fn html_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

/// 303 to `to` after a change (so a reload does not post again).
pub(crate) fn see_other(to: &str) -> Response {
    secure(Redirect::to(to).into_response())
}

fn error_page(ctx: Option<&Ctx>, e: &Error) -> Response {
    let (status, title, msg) = match e {
        Error::NotFound { kind } => (
            StatusCode::NOT_FOUND,
            "Not found",
            format!("This {kind} does not exist, or you cannot see it."),
        ),
        Error::Forbidden(why) => (StatusCode::FORBIDDEN, "Not allowed", why.clone()),
        Error::InvalidInput { .. } | Error::AlreadyExists { .. } | Error::LimitExceeded { .. } => {
            (StatusCode::BAD_REQUEST, "Not accepted", e.to_string())
        }
        Error::SessionNotUsable { .. } | Error::Conflict => {
            (StatusCode::CONFLICT, "Not possible now", e.to_string())
        }
        Error::RateLimited { retry_after_secs } => (
            StatusCode::TOO_MANY_REQUESTS,
            "Too many attempts",
            format!("Try again in {retry_after_secs} seconds."),
        ),
        other => {
            tracing::error!(error = %other, "console request failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "The request failed; nothing is known to have changed. Try again later.".into(),
            )
        }
    };
    let body = format!(
        "<h1>{}</h1>{}<p>{}</p>",
        html::esc(title),
        html::error_box(&msg),
        html::link("/console", "Back to the console")
    );
    let frame = match ctx {
        Some(c) => c.frame(None, ""),
        None => no_frame(),
    };
    secure(html_response(status, html::document(title, &frame, &body)))
}

pub(crate) async fn not_found_page() -> Response {
    error_page(None, &Error::NotFound { kind: "page" })
}

const ASSETS: &[crate::assets::Asset] = &[
    (
        "console.css",
        "text/css; charset=utf-8",
        include_str!("assets/console.css"),
    ),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/console.js"),
    ),
];

async fn asset(Path(file): Path<String>) -> Response {
    match crate::assets::serve(ASSETS, &file) {
        Some(r) => r,
        None => not_found_page().await,
    }
}

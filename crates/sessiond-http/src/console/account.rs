//! Sign-in, sign-out (here and everywhere), the operator's own account page and the audit log.

use axum::body::Bytes;
use std::net::SocketAddr;

use axum::Extension;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use sessiond_core::Error;
use sessiond_core::application::AppId;
use sessiond_core::store::ActionFilter;

use super::html::{self, esc};
use super::{
    Answer, COOKIE, Ctx, PRE_COOKIE, clear_cookie, cookie, html_response, no_frame, parse_form,
    query, secure, see_other, set_cookie,
};
use crate::AppState;

/// `/console`: the applications, or sign-in.
pub(super) async fn home(ctx: Ctx) -> Response {
    let apps = match ctx.st.console.applications_for(&ctx.cs.operator).await {
        Ok(a) => a,
        Err(e) => return ctx.fail(&e),
    };
    match apps.as_slice() {
        [only] => see_other(&format!("/console/apps/{}", only.id)),
        _ => see_other("/console/apps"),
    }
}

fn sign_in_page(st: &AppState, nonce: &str, email: &str, problem: Option<&str>) -> String {
    let token = st.console.sign_in_token(nonce);
    let problem = problem.map_or(String::new(), html::error_box);
    let body = format!(
        "<div class=\"narrow\"><h1>Sign in</h1>{problem}\
         <form method=\"post\" action=\"/console/sign-in\">{}\
         <label for=\"email\">Email</label>\
         <input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"username\" required value=\"{}\" autofocus>\
         <label for=\"password\">Password</label>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
         <label for=\"code\">Authenticator code <span class=\"hint\">Only if your account has one</span></label>\
         <input id=\"code\" name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" pattern=\"[0-9 ]*\" maxlength=\"8\">\
         <button type=\"submit\">Sign in</button></form>\
         <p class=\"hint\">Operators are created with <code>sessiond operators create</code>.</p></div>",
        html::csrf_field(&token),
        esc(email)
    );
    html::document("Sign in", &no_frame(), &body)
}

pub(super) async fn sign_in_form(State(st): State<AppState>, headers: HeaderMap) -> Response {
    let (nonce, fresh) = match cookie(&headers, PRE_COOKIE).filter(|n| n.len() >= 16) {
        Some(n) => (n, false),
        None => (
            sessiond_crypto::ids::base62_bytes(&sessiond_crypto::random_bytes::<16>()),
            true,
        ),
    };
    let mut r = secure(html_response(
        StatusCode::OK,
        sign_in_page(&st, &nonce, "", None),
    ));
    if fresh {
        set_cookie(&st, &mut r, PRE_COOKIE, &nonce);
    }
    r
}

pub(super) async fn sign_in(
    State(st): State<AppState>,
    headers: HeaderMap,
    // Present when served by the listener (absent in in-process tests).
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    body: Bytes,
) -> Response {
    let now = st.clock.now();
    let nonce = cookie(&headers, PRE_COOKIE).unwrap_or_default();
    let refuse = |status: StatusCode, email: &str, why: &str| {
        secure(html_response(
            status,
            sign_in_page(&st, &nonce, email, Some(why)),
        ))
    };
    let form = match parse_form(&body) {
        Ok(f) => f,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, "", &e.to_string()),
    };
    if !form
        .get("csrf")
        .is_some_and(|t| st.console.check_sign_in_token(&nonce, t))
    {
        return super::forged();
    }
    let email = form.text("email");
    let ip = peer.map(|Extension(c)| c.0.ip());
    if let Some(ip) = ip
        && let Err(secs) = st.limiter.check_client(ip, now)
    {
        return refuse(
            StatusCode::TOO_MANY_REQUESTS,
            email,
            &format!("Too many failed attempts from here. Try again in {secs} seconds."),
        );
    }
    match st
        .console
        .sign_in(
            email,
            form.get("password").unwrap_or(""),
            form.text("code"),
            now,
        )
        .await
    {
        Ok(cs) => {
            metrics::counter!("console_sign_ins_total", "outcome" => "signed_in").increment(1);
            tracing::info!(operator = %cs.operator.id, "operator signed in to the console");
            let mut r = see_other("/console");
            set_cookie(
                &st,
                &mut r,
                COOKIE,
                &st.console.cookie_value(&cs.session.id),
            );
            r
        }
        Err(Error::RateLimited { retry_after_secs }) => {
            metrics::counter!("console_sign_ins_total", "outcome" => "locked").increment(1);
            refuse(
                StatusCode::TOO_MANY_REQUESTS,
                email,
                &format!(
                    "Too many failed sign-ins: this account is locked for {retry_after_secs} more seconds."
                ),
            )
        }
        Err(e @ (Error::Forbidden(_) | Error::InvalidInput { .. })) => {
            metrics::counter!("console_sign_ins_total", "outcome" => "refused").increment(1);
            tracing::info!("console sign-in refused");
            if let Some(ip) = ip {
                st.limiter.failed_auth(ip, now);
            }
            refuse(StatusCode::UNAUTHORIZED, email, &e.to_string())
        }
        Err(e) => super::error_page(None, &e),
    }
}

pub(super) async fn sign_out(ctx: Ctx, body: Bytes) -> Answer {
    ctx.form(&body)?;
    ctx.st
        .console
        .sign_out(&ctx.cs, ctx.now())
        .await
        .map_err(|e| ctx.fail(&e))?;
    let mut r = see_other("/console/sign-in");
    clear_cookie(&mut r);
    Ok(r)
}

pub(super) async fn sign_out_everywhere(ctx: Ctx, body: Bytes) -> Answer {
    ctx.form(&body)?;
    ctx.st
        .console
        .sign_out_everywhere(&ctx.cs, ctx.now())
        .await
        .map_err(|e| ctx.fail(&e))?;
    let mut r = see_other("/console/sign-in");
    clear_cookie(&mut r);
    Ok(r)
}

pub(super) async fn account(ctx: Ctx) -> Answer {
    let op = &ctx.cs.operator;
    let sessions = ctx
        .st
        .console
        .operator_sessions(op, ctx.now())
        .await
        .map_err(|e| ctx.fail(&e))?;
    let rows: Vec<Vec<String>> = sessions
        .iter()
        .map(|s| {
            let this = if s.id == ctx.cs.session.id {
                html::badge("this one", "ok")
            } else {
                String::new()
            };
            vec![
                format!("{} {this}", html::code(s.id.as_str())),
                html::time(s.created_at),
                html::time(s.last_active_at),
            ]
        })
        .collect();
    let scope = op.applications.as_ref().map_or_else(
        || "every application".to_owned(),
        |list| {
            list.iter()
                .map(|a| html::code(a.as_str()))
                .collect::<Vec<_>>()
                .join(", ")
        },
    );
    let body = format!(
        "<h1>Your account</h1>{}\
         <h2>Console sessions</h2>{}\
         <form method=\"post\" action=\"/console/sign-out-everywhere\" data-confirm=\"End every console session of yours, on every device?\">{}\
         <button type=\"submit\" class=\"danger\">Sign out everywhere</button></form>",
        html::facts(&[
            ("Email", esc(&op.email)),
            ("Role", esc(op.role.as_str())),
            ("Applications", scope),
            (
                "Second factor",
                if op.totp_enrolled {
                    "authenticator app".into()
                } else {
                    "none (enrol with sessiond operators update --totp)".into()
                }
            ),
        ]),
        html::table(
            "Your console sessions",
            &["Session", "Signed in", "Last active"],
            &rows
        ),
        html::csrf_field(&ctx.csrf)
    );
    Ok(ctx.page("Account", None, "account", &body))
}

/// Entries per page of the audit log.
const AUDIT_PAGE: u32 = 100;

pub(super) async fn audit(ctx: Ctx, RawQuery(q): RawQuery) -> Answer {
    let q = query(q.as_deref()).map_err(|e| ctx.fail(&e))?;
    let app = match q.text("app") {
        "" => None,
        a => Some(AppId::parse(a).ok_or_else(|| {
            ctx.fail(&Error::NotFound {
                kind: "application",
            })
        })?),
    };
    if let Some(a) = &app {
        ctx.cs.operator.check_sees(a).map_err(|e| ctx.fail(&e))?;
    }
    let before = match (q.text("before_at").parse::<i64>(), q.text("before_id")) {
        (Ok(at), id) if !id.is_empty() && id.len() <= 64 => {
            Some((sessiond_core::Timestamp(at), id.to_owned()))
        }
        _ => None,
    };
    let filter = ActionFilter {
        application_id: app.clone(),
        operator_id: None,
        before,
    };
    let now = ctx.now();
    let rows = ctx
        .st
        .console
        .audit(Some(&ctx.cs.operator), &filter, AUDIT_PAGE)
        .await
        .map_err(|e| ctx.fail(&e))?;
    let mut names = std::collections::HashMap::new();
    let mut table_rows = Vec::new();
    for r in &rows {
        if !names.contains_key(&r.operator_id) {
            let who = ctx
                .st
                .console
                .operator_by_id(&r.operator_id, now)
                .await
                .map_err(|e| ctx.fail(&e))?
                .map_or_else(|| r.operator_id.clone(), |o| o.email);
            names.insert(r.operator_id.clone(), who);
        }
        table_rows.push(vec![
            html::time(r.at),
            esc(names.get(&r.operator_id).map_or("", String::as_str)),
            html::code(&r.action),
            r.application_id.as_ref().map_or_else(String::new, |a| {
                html::link(&format!("/console/audit?app={a}"), a.as_str())
            }),
            html::code(&r.target),
            esc(&r.detail),
        ]);
    }
    let more = match rows.last() {
        Some(last) if rows.len() as u32 == AUDIT_PAGE => format!(
            "<p>{}</p>",
            html::link(
                &format!(
                    "/console/audit?{}before_at={}&before_id={}",
                    app.as_ref().map_or(String::new(), |a| format!("app={a}&")),
                    last.at.0,
                    last.id
                ),
                "Older entries"
            )
        ),
        _ => String::new(),
    };
    let body = format!(
        "<h1>Audit log</h1><p>Every operator action, newest first{}. The CLI shows the same with \
         <code>sessiond operators audit</code>.</p>{}{more}",
        app.as_ref().map_or(String::new(), |a| format!(
            " for {}",
            html::code(a.as_str())
        )),
        html::table(
            "Operator actions",
            &[
                "When (UTC)",
                "Operator",
                "Action",
                "Application",
                "Target",
                "Detail"
            ],
            &table_rows
        )
    );
    Ok(ctx.page("Audit log", None, "audit", &body))
}

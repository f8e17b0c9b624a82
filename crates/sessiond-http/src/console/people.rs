//! Users (search, their sessions, impersonation capability and audit) and sessions (filters,
//! the lifecycle timeline, revocation).

use axum::body::Bytes;
use axum::extract::{Path, RawQuery};
use sessiond_core::Error;
use sessiond_core::Timestamp;
use sessiond_core::application::Application;
use sessiond_core::console::Action;
use sessiond_core::ids::{SessionId, UserId};
use sessiond_core::session::{Session, SessionStatus};
use sessiond_core::store::SessionFilter;
use sessiond_core::user::{User, UserPatch, UserQuery, UserSearch};

use super::html::{self, esc};
use super::{Answer, Ctx, query, see_other};

const PAGE: u32 = 50;
/// Most sessions read to fill one page of a date-filtered listing.
const DATE_SCAN: usize = 5000;

fn user_label(u: &User) -> String {
    let p = &u.profile;
    let email = p.email_addresses.first().map(|c| c.value.as_str());
    let name = [p.first_name.as_deref(), p.last_name.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    match (email, name.is_empty()) {
        (Some(e), true) => e.to_owned(),
        (Some(e), false) => format!("{name} <{e}>"),
        (None, false) => name,
        (None, true) => p
            .username
            .clone()
            .or_else(|| p.external_id.clone())
            .unwrap_or_else(|| u.id.as_str().to_owned()),
    }
}

pub(super) async fn users(ctx: Ctx, Path(app): Path<String>, RawQuery(q): RawQuery) -> Answer {
    let app = ctx.app(&app).await?;
    let q = query(q.as_deref()).map_err(|e| ctx.fail(&e))?;
    let text = q.text("q");
    if text.len() > 200 {
        return Err(ctx.fail(&Error::invalid("q", "is too long")));
    }
    let offset = q.text("offset").parse::<u64>().unwrap_or(0).min(1_000_000);
    let search = UserSearch {
        query: UserQuery {
            any: (!text.is_empty()).then(|| text.to_owned()),
            ..UserQuery::default()
        },
        limit: PAGE,
        offset,
        ..UserSearch::default()
    };
    let (users, total) = ctx
        .st
        .login
        .list_users(&app, &search)
        .await
        .map_err(|e| ctx.fail(&e))?;
    let rows: Vec<Vec<String>> = users
        .iter()
        .map(|u| {
            vec![
                html::link(
                    &format!("/console/apps/{}/users/{}", app.id, u.id),
                    &user_label(u),
                ),
                html::code(u.id.as_str()),
                esc(u.profile.external_id.as_deref().unwrap_or("—")),
                html::time(u.created_at),
            ]
        })
        .collect();
    let next = if offset + u64::from(PAGE) < total {
        format!(
            "<p>{}</p>",
            html::link(
                &format!(
                    "/console/apps/{}/users?q={}&offset={}",
                    app.id,
                    form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>(),
                    offset + u64::from(PAGE)
                ),
                "Next page"
            )
        )
    } else {
        String::new()
    };
    let body = format!(
        "<h1>Users</h1>\
         <form method=\"get\" class=\"search\" role=\"search\"><label for=\"q\">Find a user \
         <span class=\"hint\">email, name, username, external id or user id (partial matches)</span></label>\
         <div class=\"row\"><input id=\"q\" name=\"q\" type=\"search\" value=\"{}\">\
         <button type=\"submit\">Search</button></div></form>\
         <p>{total} users match.</p>{}{next}",
        esc(text),
        html::table(
            "Users",
            &["User", "Id", "External id", "Created (UTC)"],
            &rows
        )
    );
    Ok(ctx.page("Users", Some(&app), "users", &body))
}

fn session_rows(
    ctx: &Ctx,
    app: &Application,
    sessions: &[Session],
    now: Timestamp,
) -> Vec<Vec<String>> {
    let admin = ctx.is_admin_of(&app.id);
    sessions
        .iter()
        .map(|s| {
            let status = s.effective_status(now);
            let revoke = if admin && !status.is_terminal() {
                html::action_button(
                    &format!("/console/apps/{}/sessions/{}/revoke", app.id, s.id),
                    &ctx.csrf,
                    "Revoke",
                    "danger small",
                    Some("Revoke this session? It stops working at once."),
                )
            } else {
                String::new()
            };
            let actor = s
                .actor
                .as_ref()
                .and_then(|a| a.get("sub"))
                .and_then(|v| v.as_str())
                .map_or_else(
                    || "—".to_owned(),
                    |sub| format!("impersonated by {}", html::code(sub)),
                );
            vec![
                html::link(
                    &format!("/console/apps/{}/sessions/{}", app.id, s.id),
                    s.id.as_str(),
                ),
                html::status_badge(status),
                html::link(
                    &format!("/console/apps/{}/users/{}", app.id, s.user_id),
                    s.user_id.as_str(),
                ),
                html::code(s.client_id.as_str()),
                html::time(s.created_at),
                html::time(s.last_active_at),
                actor,
                revoke,
            ]
        })
        .collect()
}

const SESSION_HEADERS: [&str; 8] = [
    "Session",
    "Status",
    "User",
    "Client",
    "Created (UTC)",
    "Last active (UTC)",
    "Actor",
    "",
];

pub(super) async fn user(ctx: Ctx, Path((app, user)): Path<(String, String)>) -> Answer {
    let app = ctx.app(&app).await?;
    let now = ctx.now();
    let id = ctx.id(&user, "user", UserId::parse)?;
    let u = ctx
        .st
        .login
        .get_user(&app, &id)
        .await
        .map_err(|e| ctx.fail(&e))?;
    let filter = SessionFilter {
        user_id: Some(id.clone()),
        ..SessionFilter::default()
    };
    let (sessions, total) = ctx
        .st
        .login
        .list_sessions(&app, &filter, PAGE, 0, now)
        .await
        .map_err(|e| ctx.fail(&e))?;
    let log = ctx
        .st
        .login
        .impersonation_log(&app, Some(&id), 50)
        .await
        .map_err(|e| ctx.fail(&e))?;
    let log_rows: Vec<Vec<String>> = log
        .iter()
        .map(|e| {
            vec![
                html::time(e.at),
                esc(&e.kind),
                html::code(e.actor_user_id.as_str()),
                html::code(e.target_user_id.as_str()),
                html::code(e.session_id.as_str()),
            ]
        })
        .collect();
    let admin = ctx.is_admin_of(&app.id);
    let usable = sessions
        .iter()
        .any(|s| !s.effective_status(now).is_terminal());
    let actions = if admin {
        let imp = if u.profile.can_impersonate {
            ("false", "Withdraw impersonation", "secondary")
        } else {
            ("true", "Allow impersonation", "secondary")
        };
        let revoke_all = if usable {
            html::action_button(
                &format!("/console/apps/{}/users/{}/revoke-sessions", app.id, id),
                &ctx.csrf,
                "Revoke all sessions",
                "danger",
                Some("Revoke every session of this user? They are signed out everywhere."),
            )
        } else {
            String::new()
        };
        format!(
            "<div class=\"actions\">{revoke_all}\
             <form method=\"post\" action=\"/console/apps/{}/users/{}/impersonation\" class=\"inline\">{}\
             <input type=\"hidden\" name=\"allow\" value=\"{}\"><button type=\"submit\" class=\"{}\">{}</button></form></div>",
            app.id,
            id,
            html::csrf_field(&ctx.csrf),
            imp.0,
            imp.2,
            imp.1
        )
    } else {
        String::new()
    };
    let p = &u.profile;
    let body = format!(
        "<h1>{}</h1>{}{actions}\
         <h2>Sessions</h2><p>{total} in all; the newest {} shown. {}</p>{}\
         <h2>Impersonation audit</h2>{}",
        esc(&user_label(&u)),
        html::facts(&[
            ("User id", html::code(u.id.as_str())),
            ("External id", esc(p.external_id.as_deref().unwrap_or("—"))),
            (
                "Emails",
                esc(&p
                    .email_addresses
                    .iter()
                    .map(|c| c.value.as_str())
                    .collect::<Vec<_>>()
                    .join(", "))
            ),
            ("Created (UTC)", html::time(u.created_at)),
            ("Last active (UTC)", html::opt_time(p.last_active_at)),
            (
                "May impersonate",
                if p.can_impersonate { "yes" } else { "no" }.into()
            ),
        ]),
        sessions.len(),
        html::link(
            &format!("/console/apps/{}/sessions?user={}", app.id, id),
            "All of this user's sessions"
        ),
        html::table(
            "Sessions of this user",
            &SESSION_HEADERS,
            &session_rows(&ctx, &app, &sessions, now)
        ),
        html::table(
            "Impersonations by or of this user",
            &["When (UTC)", "Kind", "Actor", "Target", "Session"],
            &log_rows
        )
    );
    Ok(ctx.page("User", Some(&app), "users", &body))
}

pub(super) async fn revoke_user_sessions(
    ctx: Ctx,
    Path((app, user)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let (_, app) = ctx.change(&body, &app).await?;
    let id = ctx.id(&user, "user", UserId::parse)?;
    ctx.st
        .login
        .get_user(&app, &id)
        .await
        .map_err(|e| ctx.fail(&e))?;
    let n = ctx
        .st
        .login
        .revoke_user_sessions(&app, &id, ctx.now())
        .await
        .map_err(|e| ctx.fail(&e))?;
    ctx.audit(
        Action::UserSessionsRevoke,
        Some(&app.id),
        id.as_str(),
        &format!("{n} sessions"),
    )
    .await?;
    Ok(see_other(&format!("/console/apps/{}/users/{}", app.id, id)))
}

pub(super) async fn set_impersonation(
    ctx: Ctx,
    Path((app, user)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let (form, app) = ctx.change(&body, &app).await?;
    let id = ctx.id(&user, "user", UserId::parse)?;
    let allow = form.flag("allow").map_err(|e| ctx.fail(&e))?;
    ctx.st
        .login
        .update_user(
            &app,
            &id,
            UserPatch {
                can_impersonate: Some(allow),
                ..UserPatch::default()
            },
            ctx.now(),
        )
        .await
        .map_err(|e| ctx.fail(&e))?;
    ctx.audit(
        Action::UserUpdate,
        Some(&app.id),
        id.as_str(),
        if allow {
            "impersonation allowed"
        } else {
            "impersonation withdrawn"
        },
    )
    .await?;
    Ok(see_other(&format!("/console/apps/{}/users/{}", app.id, id)))
}

pub(super) async fn sessions(ctx: Ctx, Path(app): Path<String>, RawQuery(q): RawQuery) -> Answer {
    let app = ctx.app(&app).await?;
    let now = ctx.now();
    let q = query(q.as_deref()).map_err(|e| ctx.fail(&e))?;
    let status = match q.text("status") {
        "" => None,
        s => Some(
            SessionStatus::parse(s)
                .ok_or_else(|| ctx.fail(&Error::invalid("status", "is not a session status")))?,
        ),
    };
    let user = match q.text("user") {
        "" => None,
        u => Some(
            UserId::parse(u)
                .ok_or_else(|| ctx.fail(&Error::invalid("user", "is not a user id")))?,
        ),
    };
    let from = q.day("from").map_err(|e| ctx.fail(&e))?;
    let to = q
        .day("to")
        .map_err(|e| ctx.fail(&e))?
        .map(|t| Timestamp(t.0 + 86_400_000));
    let filter = SessionFilter {
        user_id: user.clone(),
        statuses: status.into_iter().collect(),
        ..SessionFilter::default()
    };
    // Listings come newest first; a date range is applied by reading on until the page is full
    // or the sessions are older than its start.
    let start = q.text("offset").parse::<u64>().unwrap_or(0).min(10_000_000);
    let mut shown = Vec::new();
    let mut offset = start;
    let mut scanned = 0usize;
    let mut total;
    // Where the next page starts in the listing: just past the last session shown.
    let mut next = None;
    'scan: loop {
        let (page, t) = ctx
            .st
            .login
            .list_sessions(&app, &filter, 200, offset, now)
            .await
            .map_err(|e| ctx.fail(&e))?;
        total = t;
        let n = page.len();
        scanned += n;
        for (i, s) in page.into_iter().enumerate() {
            let at = offset + i as u64;
            if from.is_some_and(|f| s.created_at < f) {
                break 'scan;
            }
            if to.is_none_or(|t| s.created_at < t) {
                if shown.len() == PAGE as usize {
                    next = Some(at);
                    break 'scan;
                }
                shown.push(s);
            }
        }
        offset += n as u64;
        if n < 200 || scanned >= DATE_SCAN {
            if n == 200 {
                next = Some(offset);
            }
            break;
        }
    }
    let options: String = std::iter::once(("", "any"))
        .chain(SessionStatus::ALL.iter().map(|s| (s.as_str(), s.as_str())))
        .map(|(v, l)| {
            let sel = if q.text("status") == v {
                " selected"
            } else {
                ""
            };
            format!("<option value=\"{v}\"{sel}>{l}</option>")
        })
        .collect();
    let body = format!(
        "<h1>Sessions</h1>\
         <form method=\"get\" class=\"filters\">\
         <div><label for=\"status\">Status</label><select id=\"status\" name=\"status\">{options}</select></div>\
         <div><label for=\"user\">User id</label><input id=\"user\" name=\"user\" value=\"{}\"></div>\
         <div><label for=\"from\">Created from</label><input id=\"from\" name=\"from\" type=\"date\" value=\"{}\"></div>\
         <div><label for=\"to\">Created to</label><input id=\"to\" name=\"to\" type=\"date\" value=\"{}\"></div>\
         <div><button type=\"submit\">Filter</button></div></form>\
         <p>{total} sessions match the status and user; {} in the date range are shown, newest first.</p>{}{}",
        esc(q.text("user")),
        esc(q.text("from")),
        esc(q.text("to")),
        shown.len(),
        html::table(
            "Sessions",
            &SESSION_HEADERS,
            &session_rows(&ctx, &app, &shown, now)
        ),
        next.map_or_else(String::new, |n| {
            let mut link = form_urlencoded::Serializer::new(String::new());
            for k in ["status", "user", "from", "to"] {
                if !q.text(k).is_empty() {
                    link.append_pair(k, q.text(k));
                }
            }
            link.append_pair("offset", &n.to_string());
            format!(
                "<p>{}</p>",
                html::link(
                    &format!("/console/apps/{}/sessions?{}", app.id, link.finish()),
                    "Older sessions"
                )
            )
        })
    );
    Ok(ctx.page("Sessions", Some(&app), "sessions", &body))
}

pub(super) async fn session(ctx: Ctx, Path((app, session)): Path<(String, String)>) -> Answer {
    let app = ctx.app(&app).await?;
    let now = ctx.now();
    let id = ctx.id(&session, "session", SessionId::parse)?;
    let s = ctx
        .st
        .login
        .get_session(&app, &id)
        .await
        .map_err(|e| ctx.fail(&e))?;
    let events = ctx
        .st
        .console
        .timeline(&app, id.as_str())
        .await
        .map_err(|e| ctx.fail(&e))?;
    let mut timeline: Vec<(Timestamp, String)> = events
        .iter()
        .map(|e| (e.event.occurred_at, e.event.kind.as_str().to_owned()))
        .collect();
    if !timeline.iter().any(|(_, k)| k == "session.created") {
        timeline.push((s.created_at, "created".into()));
    }
    timeline.sort_by_key(|(t, _)| *t);
    let items: String = timeline
        .iter()
        .map(|(t, k)| format!("<li>{} <strong>{}</strong></li>", html::time(*t), esc(k)))
        .collect();
    let status = s.effective_status(now);
    let revoke = if ctx.is_admin_of(&app.id) && !status.is_terminal() {
        html::action_button(
            &format!("/console/apps/{}/sessions/{}/revoke", app.id, s.id),
            &ctx.csrf,
            "Revoke this session",
            "danger",
            Some("Revoke this session? It stops working at once."),
        )
    } else {
        String::new()
    };
    let body = format!(
        "<h1>Session {}</h1>{}{revoke}<h2>Lifecycle</h2><ol class=\"timeline\">{items}</ol>\
         <p class=\"hint\">From the event log, which keeps 30 days.</p>",
        html::code(s.id.as_str()),
        html::facts(&[
            ("Status", html::status_badge(status)),
            (
                "User",
                html::link(
                    &format!("/console/apps/{}/users/{}", app.id, s.user_id),
                    s.user_id.as_str()
                )
            ),
            ("Client", html::code(s.client_id.as_str())),
            ("Created (UTC)", html::time(s.created_at)),
            ("Last active (UTC)", html::time(s.last_active_at)),
            ("Expires (UTC)", html::time(s.expire_at)),
            ("Idle deadline (UTC)", html::opt_time(s.idle_deadline)),
            ("Abandoned at (UTC)", html::time(s.abandon_at)),
            (
                "Actor",
                s.actor
                    .as_ref()
                    .map_or_else(|| "—".to_owned(), |a| html::code(&a.to_string()))
            ),
        ])
    );
    Ok(ctx.page("Session", Some(&app), "sessions", &body))
}

pub(super) async fn revoke_session(
    ctx: Ctx,
    Path((app, session)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let (_, app) = ctx.change(&body, &app).await?;
    let id = ctx.id(&session, "session", SessionId::parse)?;
    ctx.st
        .login
        .revoke_session(&app, &id, ctx.now())
        .await
        .map_err(|e| ctx.fail(&e))?;
    ctx.audit(Action::SessionRevoke, Some(&app.id), id.as_str(), "")
        .await?;
    Ok(see_other(&format!(
        "/console/apps/{}/sessions/{}",
        app.id, id
    )))
}

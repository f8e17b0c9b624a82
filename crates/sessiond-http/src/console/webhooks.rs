//! Webhook endpoints: the list, registration (secret shown once), each endpoint's attempts and
//! deliveries, enabling and disabling, replay, deletion.

use axum::body::Bytes;
use axum::extract::Path;
use sessiond_core::Error;
use sessiond_core::application::Application;
use sessiond_core::console::Action;
use sessiond_core::events::EventType;
use sessiond_core::ids::EndpointId;
use sessiond_core::webhooks::model::{DeliveryState, Endpoint, EndpointInput, Replay};

use super::html::{self, esc};
use super::{Answer, Ctx, see_other};

async fn list_page(ctx: &Ctx, app: &Application, notice: Option<String>) -> Answer {
    let endpoints = ctx.st.webhooks.list(app).await.map_err(|e| ctx.fail(&e))?;
    let rows: Vec<Vec<String>> = endpoints
        .iter()
        .map(|e| {
            vec![
                html::link(
                    &format!("/console/apps/{}/webhooks/{}", app.id, e.id),
                    &e.url,
                ),
                if e.enabled {
                    html::badge("enabled", "ok")
                } else {
                    html::badge("disabled", "off")
                },
                esc(&e.types_label()),
                esc(&e.description),
                html::time(e.created_at),
            ]
        })
        .collect();
    let create = if ctx.is_admin_of(&app.id) {
        let options: String = EventType::ALL
            .iter()
            .map(|t| format!("<option value=\"{0}\">{0}</option>", t.as_str()))
            .collect();
        format!(
            "<h2>Register an endpoint</h2>\
             <form method=\"post\" action=\"/console/apps/{}/webhooks\">{}\
             <label for=\"url\">URL</label><input id=\"url\" name=\"url\" type=\"url\" required placeholder=\"https://\">\
             <label for=\"description\">Description <span class=\"hint\">optional</span></label>\
             <input id=\"description\" name=\"description\">\
             <label for=\"event_types\">Event types <span class=\"hint\">none selected: every type</span></label>\
             <select id=\"event_types\" name=\"event_types\" multiple size=\"6\">{options}</select>\
             <button type=\"submit\">Register</button></form>",
            app.id,
            html::csrf_field(&ctx.csrf)
        )
    } else {
        String::new()
    };
    let body = format!(
        "<h1>Webhooks</h1>{}{}{create}",
        notice.unwrap_or_default(),
        html::table(
            "Endpoints",
            &[
                "URL",
                "State",
                "Event types",
                "Description",
                "Created (UTC)"
            ],
            &rows
        )
    );
    Ok(ctx.page("Webhooks", Some(app), "webhooks", &body))
}

pub(super) async fn list(ctx: Ctx, Path(app): Path<String>) -> Answer {
    let app = ctx.app(&app).await?;
    list_page(&ctx, &app, None).await
}

pub(super) async fn create(ctx: Ctx, Path(app): Path<String>, body: Bytes) -> Answer {
    let (form, app) = ctx.change(&body, &app).await?;
    let input = EndpointInput {
        url: Some(form.text("url").to_owned()),
        description: Some(form.text("description").to_owned()),
        event_types: Some(form.all("event_types").to_vec()),
        enabled: Some(true),
    };
    let (e, secret) = ctx
        .st
        .webhooks
        .create(&app, input, ctx.now())
        .await
        .map_err(|e| ctx.fail(&e))?;
    ctx.audit(Action::WebhookCreate, Some(&app.id), e.id.as_str(), &e.url)
        .await?;
    let shown = format!(
        "<div class=\"secret\" role=\"status\"><h2>Endpoint registered</h2>\
         <p>Its signing secret is shown only this once: configure your receiver with it now.</p>\
         <p><code class=\"copy\">{}</code></p></div>",
        esc(secret.expose().as_str())
    );
    list_page(&ctx, &app, Some(shown)).await
}

async fn endpoint(
    ctx: &Ctx,
    app: &Application,
    id: &str,
) -> Result<Endpoint, axum::response::Response> {
    let id =
        EndpointId::parse(id).ok_or_else(|| ctx.fail(&Error::NotFound { kind: "endpoint" }))?;
    ctx.st
        .webhooks
        .get(app, &id)
        .await
        .map_err(|e| ctx.fail(&e))
}

pub(super) async fn detail(ctx: Ctx, Path((app, id)): Path<(String, String)>) -> Answer {
    let app = ctx.app(&app).await?;
    let e = endpoint(&ctx, &app, &id).await?;
    let attempts = ctx
        .st
        .webhooks
        .attempts(&app, &e.id, None, 50)
        .await
        .map_err(|err| ctx.fail(&err))?;
    let deliveries = ctx
        .st
        .webhooks
        .deliveries(&app, &e.id, None, 50)
        .await
        .map_err(|err| ctx.fail(&err))?;
    let attempt_rows: Vec<Vec<String>> = attempts
        .iter()
        .map(|a| {
            vec![
                html::time(a.at),
                html::code(&a.event_id),
                a.number.to_string(),
                if a.succeeded {
                    html::badge("succeeded", "ok")
                } else {
                    html::badge("failed", "bad")
                },
                a.response_code
                    .map_or_else(|| "—".into(), |c| c.to_string()),
                format!("{} ms", a.latency_ms),
                esc(a.error.as_deref().unwrap_or(&a.response_excerpt)),
            ]
        })
        .collect();
    let delivery_rows: Vec<Vec<String>> = deliveries
        .iter()
        .map(|d| {
            let kind = match d.state {
                DeliveryState::Succeeded => "ok",
                DeliveryState::Failed => "bad",
                DeliveryState::Pending => "warn",
            };
            vec![
                html::code(&d.event_id),
                esc(d.event_type.as_str()),
                html::badge(d.state.as_str(), kind),
                d.attempts.to_string(),
                html::opt_time(d.next_at),
                d.last_status.map_or_else(|| "—".into(), |c| c.to_string()),
            ]
        })
        .collect();
    let admin = if ctx.is_admin_of(&app.id) {
        let toggle = if e.enabled {
            ("false", "Disable")
        } else {
            ("true", "Enable")
        };
        let base = format!("/console/apps/{}/webhooks/{}", app.id, e.id);
        format!(
            "<div class=\"actions\">\
             <form method=\"post\" action=\"{base}/update\" class=\"inline\">{csrf}\
             <input type=\"hidden\" name=\"enabled\" value=\"{}\"><button type=\"submit\" class=\"secondary\">{}</button></form>\
             {}</div>\
             <h2>Replay</h2>\
             <form method=\"post\" action=\"{base}/replay\" class=\"filters\">{csrf}\
             <div><label for=\"event_id\">One event id</label><input id=\"event_id\" name=\"event_id\"></div>\
             <div><label for=\"since\">or every event from</label><input id=\"since\" name=\"since\" type=\"date\"></div>\
             <div><label for=\"until\">until (exclusive)</label><input id=\"until\" name=\"until\" type=\"date\"></div>\
             <div><button type=\"submit\">Replay</button></div></form>",
            toggle.0,
            toggle.1,
            html::action_button(
                &format!("{base}/delete"),
                &ctx.csrf,
                "Delete endpoint",
                "danger",
                Some("Delete this endpoint with its deliveries and their history?")
            ),
            csrf = html::csrf_field(&ctx.csrf),
        )
    } else {
        String::new()
    };
    let body = format!(
        "<h1>Endpoint</h1>{}{admin}<h2>Attempts</h2>{}<h2>Retries and replays</h2>{}",
        html::facts(&[
            ("URL", esc(&e.url)),
            ("Id", html::code(e.id.as_str())),
            (
                "State",
                if e.enabled {
                    html::badge("enabled", "ok")
                } else {
                    html::badge("disabled", "off")
                }
            ),
            ("Event types", esc(&e.types_label())),
            ("Description", esc(&e.description)),
        ]),
        html::table(
            "Delivery attempts, newest first",
            &[
                "When (UTC)",
                "Event",
                "Attempt",
                "Outcome",
                "Status",
                "Latency",
                "Answer"
            ],
            &attempt_rows
        ),
        html::table(
            "Deliveries being retried or replayed",
            &[
                "Event",
                "Type",
                "State",
                "Attempts",
                "Next attempt (UTC)",
                "Last status"
            ],
            &delivery_rows
        )
    );
    Ok(ctx.page("Webhook endpoint", Some(&app), "webhooks", &body))
}

pub(super) async fn update(
    ctx: Ctx,
    Path((app, id)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let (form, app) = ctx.change(&body, &app).await?;
    let e = endpoint(&ctx, &app, &id).await?;
    let enabled = form.flag("enabled").map_err(|e| ctx.fail(&e))?;
    ctx.st
        .webhooks
        .update(
            &app,
            &e.id,
            EndpointInput {
                enabled: Some(enabled),
                ..EndpointInput::default()
            },
            ctx.now(),
        )
        .await
        .map_err(|err| ctx.fail(&err))?;
    ctx.audit(
        Action::WebhookUpdate,
        Some(&app.id),
        e.id.as_str(),
        if enabled { "enabled" } else { "disabled" },
    )
    .await?;
    Ok(see_other(&format!(
        "/console/apps/{}/webhooks/{}",
        app.id, e.id
    )))
}

pub(super) async fn replay(
    ctx: Ctx,
    Path((app, id)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let (form, app) = ctx.change(&body, &app).await?;
    let e = endpoint(&ctx, &app, &id).await?;
    let day = |k: &str| {
        form.day(k)
            .and_then(|d| d.ok_or_else(|| Error::invalid(k, "is required")))
            .map_err(|err| ctx.fail(&err))
    };
    let which = match (
        form.text("event_id"),
        form.text("since"),
        form.text("until"),
    ) {
        (ev, "", "") if !ev.is_empty() => Replay::Event(ev.to_owned()),
        ("", since, until) if !since.is_empty() && !until.is_empty() => Replay::Range {
            since: day("since")?,
            until: day("until")?,
        },
        _ => {
            return Err(ctx.fail(&Error::invalid(
                "replay",
                "give either one event id, or both dates of a range",
            )));
        }
    };
    let detail = match &which {
        Replay::Event(ev) => ev.clone(),
        Replay::Range { since, until } => format!("{} to {}", html::iso(*since), html::iso(*until)),
    };
    let n = ctx
        .st
        .webhooks
        .replay(&app, &e.id, which, ctx.now())
        .await
        .map_err(|err| ctx.fail(&err))?;
    ctx.audit(
        Action::WebhookReplay,
        Some(&app.id),
        e.id.as_str(),
        &format!("{detail}: {n} events"),
    )
    .await?;
    Ok(see_other(&format!(
        "/console/apps/{}/webhooks/{}",
        app.id, e.id
    )))
}

pub(super) async fn delete(
    ctx: Ctx,
    Path((app, id)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let (_, app) = ctx.change(&body, &app).await?;
    let e = endpoint(&ctx, &app, &id).await?;
    ctx.st
        .webhooks
        .delete(&app, &e.id)
        .await
        .map_err(|err| ctx.fail(&err))?;
    ctx.audit(Action::WebhookDelete, Some(&app.id), e.id.as_str(), &e.url)
        .await?;
    Ok(see_other(&format!("/console/apps/{}/webhooks", app.id)))
}

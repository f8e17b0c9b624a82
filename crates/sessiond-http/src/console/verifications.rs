//! Identity verifications: the list, one verification's state and timings, its identity data
//! (only with the results key the relying party holds; the server cannot open it otherwise),
//! and redaction.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery};
use serde_json::Value;
use sessiond_core::Error;
use sessiond_core::console::Action;
use sessiond_core::store::VerificationOrder;
use sessiond_core::verification::{State, Verification, VerificationId};

use super::html::{self, esc};
use super::{Answer, Ctx, query, see_other};

const PAGE: u32 = 50;

fn state_badge(s: State) -> String {
    let kind = match s {
        State::Success => "ok",
        State::Failed(_) => "bad",
        State::Cancelled | State::Expired => "off",
        _ => "warn",
    };
    let text = match s.fail_reason() {
        Some(r) => format!("failed: {}", r.as_str()),
        None => s.as_str().to_owned(),
    };
    html::badge(&text, kind)
}

fn duration(v: &Verification) -> String {
    v.finished_at.map_or_else(
        || "—".to_owned(),
        |f| {
            let secs = (f.as_millis() - v.created_at.as_millis()).max(0) / 1000;
            if secs < 120 {
                format!("{secs} s")
            } else {
                format!("{} min", secs / 60)
            }
        },
    )
}

pub(super) async fn list(ctx: Ctx, Path(app): Path<String>, RawQuery(q): RawQuery) -> Answer {
    let app = ctx.app(&app).await?;
    let q = query(q.as_deref()).map_err(|e| ctx.fail(&e))?;
    let offset = q.text("offset").parse::<u64>().unwrap_or(0).min(1_000_000);
    let now = ctx.now();
    let (list, total) = ctx
        .st
        .verification
        .list(&app, VerificationOrder::Created, true, PAGE, offset, now)
        .await
        .map_err(|e| ctx.fail(&e))?;
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|v| {
            vec![
                html::link(
                    &format!("/console/apps/{}/verifications/{}", app.id, v.id.as_str()),
                    v.id.as_str(),
                ),
                state_badge(v.effective_state(now)),
                esc(v.provider.as_deref().unwrap_or("—")),
                html::time(v.created_at),
                duration(v),
                if v.redacted_at.is_some() {
                    html::badge("redacted", "off")
                } else {
                    String::new()
                },
            ]
        })
        .collect();
    let next = if offset + u64::from(PAGE) < total {
        format!(
            "<p>{}</p>",
            html::link(
                &format!(
                    "/console/apps/{}/verifications?offset={}",
                    app.id,
                    offset + u64::from(PAGE)
                ),
                "Older verifications"
            )
        )
    } else {
        String::new()
    };
    let body = format!(
        "<h1>Identity verifications</h1><p>{total} in all, newest first. Identity data is sealed \
         to each verification's results key, which only the relying party holds.</p>{}{next}",
        html::table(
            "Verifications",
            &[
                "Verification",
                "State",
                "Provider",
                "Created (UTC)",
                "Took",
                ""
            ],
            &rows
        )
    );
    Ok(ctx.page("Verifications", Some(&app), "verifications", &body))
}

async fn detail_page(ctx: &Ctx, app_id: &str, id: &str, identity: Option<String>) -> Answer {
    let app = ctx.app(app_id).await?;
    let now = ctx.now();
    let id = VerificationId::parse(id).ok_or_else(|| {
        ctx.fail(&Error::NotFound {
            kind: "verification",
        })
    })?;
    let v = ctx
        .st
        .verification
        .get(&app, &id, now)
        .await
        .map_err(|e| ctx.fail(&e))?;
    let redact = if ctx.is_admin_of(&app.id) && v.redacted_at.is_none() && v.state.is_terminal() {
        html::action_button(
            &format!(
                "/console/apps/{}/verifications/{}/redact",
                app.id,
                id.as_str()
            ),
            &ctx.csrf,
            "Redact now",
            "danger",
            Some("Delete this verification's identity data and attachments for good?"),
        )
    } else {
        String::new()
    };
    let results_form = if v.redacted_at.is_none() && v.results_sealed.is_some() {
        format!(
            "<form method=\"post\" action=\"/console/apps/{}/verifications/{}/results\">{}\
             <label for=\"results_key\">Results key <span class=\"hint\">the relying party's \
             key for this verification; viewing is recorded in the audit log</span></label>\
             <input id=\"results_key\" name=\"results_key\" type=\"password\" autocomplete=\"off\" required>\
             <button type=\"submit\" class=\"secondary\">Show identity data</button></form>",
            app.id,
            id.as_str(),
            html::csrf_field(&ctx.csrf)
        )
    } else {
        String::new()
    };
    let body = format!(
        "<h1>Verification {}</h1>{}{redact}<h2>Identity data</h2>{}{results_form}",
        html::code(id.as_str()),
        html::facts(&[
            ("State", state_badge(v.state)),
            ("Provider", esc(v.provider.as_deref().unwrap_or("—"))),
            (
                "Sub-provider",
                esc(v.sub_provider.as_deref().unwrap_or("—"))
            ),
            ("Flow", esc(v.flow.as_str())),
            ("Created (UTC)", html::time(v.created_at)),
            ("Updated (UTC)", html::time(v.updated_at)),
            ("Finished (UTC)", html::opt_time(v.finished_at)),
            ("Took", duration(&v)),
            ("Link expires (UTC)", html::time(v.expires_at)),
            ("Redacted (UTC)", html::opt_time(v.redacted_at)),
        ]),
        identity.unwrap_or_else(|| {
            if v.redacted_at.is_some() {
                "<p>Redacted: nothing is kept.</p>".into()
            } else if v.results_sealed.is_some() {
                "<p>Sealed. Give the results key to see it.</p>".into()
            } else {
                "<p>None yet.</p>".into()
            }
        })
    );
    Ok(ctx.page("Verification", Some(&app), "verifications", &body))
}

pub(super) async fn detail(ctx: Ctx, Path((app, id)): Path<(String, String)>) -> Answer {
    detail_page(&ctx, &app, &id, None).await
}

/// Flattens identity data into label/value rows (nested objects as dotted names).
fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let name = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&name, v, out);
            }
        }
        Value::Null => {}
        Value::String(s) => out.push((prefix.to_owned(), s.clone())),
        other => out.push((prefix.to_owned(), other.to_string())),
    }
}

pub(super) async fn results(
    ctx: Ctx,
    Path((app_id, id)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let form = ctx.form(&body)?;
    let app = ctx.app(&app_id).await?;
    let vid = ctx.id(&id, "verification", VerificationId::parse)?;
    let (_, data) = ctx
        .st
        .verification
        .results(&app, &vid, form.text("results_key"), ctx.now())
        .await
        .map_err(|e| ctx.fail(&e))?;
    ctx.audit(
        Action::VerificationResultsView,
        Some(&app.id),
        vid.as_str(),
        "",
    )
    .await?;
    let shown = match data {
        None => "<p>No identity data.</p>".to_owned(),
        Some(d) => {
            let mut rows = Vec::new();
            let v = serde_json::to_value(&d).unwrap_or(Value::Null);
            flatten("", &v, &mut rows);
            rows.retain(|(k, _)| !k.starts_with("attachments"));
            let pairs: Vec<(&str, String)> =
                rows.iter().map(|(k, v)| (k.as_str(), esc(v))).collect();
            html::facts(&pairs)
        }
    };
    detail_page(&ctx, &app_id, &id, Some(shown)).await
}

pub(super) async fn redact(
    ctx: Ctx,
    Path((app, id)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let (_, app) = ctx.change(&body, &app).await?;
    let vid = ctx.id(&id, "verification", VerificationId::parse)?;
    ctx.st
        .verification
        .redact(&app, &vid, ctx.now())
        .await
        .map_err(|e| ctx.fail(&e))?;
    ctx.audit(Action::VerificationRedact, Some(&app.id), vid.as_str(), "")
        .await?;
    Ok(see_other(&format!(
        "/console/apps/{}/verifications/{}",
        app.id,
        vid.as_str()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flatten_names_nested_fields_and_skips_nulls() {
        let mut out = Vec::new();
        flatten(
            "",
            &serde_json::json!({"person": {"given_name": "Ada", "age": 36, "x": null}}),
            &mut out,
        );
        assert_eq!(
            out,
            [
                ("person.age".to_owned(), "36".to_owned()),
                ("person.given_name".to_owned(), "Ada".to_owned())
            ]
        );
    }
}

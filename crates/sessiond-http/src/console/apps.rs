//! Applications: the list, each one's overview with its charts, settings, secret keys and
//! signing keys.

use crate::dialect::trinsic::{generation_name, parse_generation};
use axum::body::Bytes;
use axum::extract::Path;
use sessiond_core::Error;
use sessiond_core::apikey::ApiKeyId;
use sessiond_core::application::{
    AppSettings, Application, KeyEnvironment, VerificationGeneration,
};
use sessiond_core::console::Action;
use sessiond_core::console::overview::Bucket;

use super::html::{self, esc};
use super::{Answer, Ctx, Form, see_other};

pub(super) async fn list(ctx: Ctx) -> Answer {
    list_page(&ctx, None).await
}

async fn list_page(ctx: &Ctx, shown: Option<String>) -> Answer {
    let apps = ctx
        .st
        .console
        .applications_for(&ctx.cs.operator)
        .await
        .map_err(|e| ctx.fail(&e))?;
    let rows: Vec<Vec<String>> = apps
        .iter()
        .map(|a| {
            vec![
                html::link(&format!("/console/apps/{}", a.id), &a.name),
                html::code(a.id.as_str()),
                esc(a.environment.as_str()),
                html::time(a.created_at),
            ]
        })
        .collect();
    // Applications themselves are server-wide: only admins of every application create them.
    let create = if ctx.cs.operator.is_global_admin() {
        format!(
            "<h2>Create an application</h2>\
             <form method=\"post\" action=\"/console/apps\">{}\
             <label for=\"name\">Name</label><input id=\"name\" name=\"name\" required maxlength=\"256\">\
             <label for=\"environment\">Keys</label><select id=\"environment\" name=\"environment\">\
             <option value=\"test\">test (sk_test_…)</option><option value=\"live\">live (sk_live_…)</option></select>\
             <button type=\"submit\">Create</button></form>",
            html::csrf_field(&ctx.csrf)
        )
    } else {
        String::new()
    };
    let body = format!(
        "<h1>Applications</h1>{}{}{create}",
        shown.unwrap_or_default(),
        html::table(
            "Applications",
            &["Name", "Id", "Keys", "Created (UTC)"],
            &rows
        )
    );
    Ok(ctx.page("Applications", None, "apps", &body))
}

pub(super) async fn create(ctx: Ctx, body: Bytes) -> Answer {
    let form = ctx.form(&body)?;
    if !ctx.cs.operator.is_global_admin() {
        return Err(ctx.fail(&Error::Forbidden(
            "only admins of every application create applications".into(),
        )));
    }
    let env = match form.text("environment") {
        "test" => KeyEnvironment::Test,
        "live" => KeyEnvironment::Live,
        _ => return Err(ctx.fail(&Error::invalid("environment", "must be test or live"))),
    };
    let now = ctx.now();
    let created = ctx
        .st
        .tenancy
        .create_application(form.text("name"), env, None, now)
        .await
        .map_err(|e| ctx.fail(&e))?;
    let app = &created.application;
    ctx.st
        .login
        .signer()
        .ensure_key(&app.id, now)
        .await
        .map_err(|e| ctx.fail(&e))?;
    ctx.audit(
        Action::ApplicationCreate,
        Some(&app.id),
        app.id.as_str(),
        &app.name,
    )
    .await?;
    let shown = format!(
        "<div class=\"secret\" role=\"status\"><h2>{} created</h2>\
         <p>Its first secret key is shown only this once: copy it now.</p>\
         <p><code class=\"copy\">{}</code></p><p>Publishable key: {}</p><p>{}</p></div>",
        esc(&app.name),
        esc(created.secret_key.expose()),
        html::code(&app.publishable_key()),
        html::link(&format!("/console/apps/{}", app.id), "Open it")
    );
    list_page(&ctx, Some(shown)).await
}

pub(super) async fn overview(ctx: Ctx, Path(app): Path<String>) -> Answer {
    let app = ctx.app(&app).await?;
    let o = ctx
        .st
        .console
        .overview(&app, ctx.now())
        .await
        .map_err(|e| ctx.fail(&e))?;
    let outcomes: Vec<Vec<String>> = o
        .outcomes
        .iter()
        .map(|x| {
            vec![
                esc(&x.provider),
                x.succeeded.to_string(),
                x.failed.to_string(),
                x.abandoned.to_string(),
                x.unfinished.to_string(),
            ]
        })
        .collect();
    let created: fn(&Bucket) -> u64 = |b| b.created;
    let revoked: fn(&Bucket) -> u64 = |b| b.revoked;
    let active: fn(&Bucket) -> u64 = |b| b.active;
    let body = format!(
        "<h1>{} <span class=\"sub-title\">overview</span></h1>\
         <p class=\"big\"><strong>{}</strong> active sessions now</p>\
         <div class=\"charts\">{}{}{}</div>\
         <h2>Verification outcomes by provider</h2>\
         <p class=\"hint\">The newest {} verifications.</p>{}{}",
        esc(&app.name),
        o.active_now,
        html::bar_chart(
            "Active sessions, last 24 hours",
            &o.hourly,
            &[("Active", "s1", active)]
        ),
        html::bar_chart(
            "Sessions created and revoked per hour, last 24 hours",
            &o.hourly,
            &[("Created", "s1", created), ("Revoked", "s2", revoked)]
        ),
        html::bar_chart(
            "Active sessions, last 30 days",
            &o.daily,
            &[("Active", "s1", active)]
        ),
        o.verifications_read,
        html::stacked_bars(
            "Verification outcomes by provider",
            &[
                ("Succeeded", "s-ok"),
                ("Failed", "s-bad"),
                ("Cancelled or expired", "s-off"),
                ("Unfinished", "s-warn"),
            ],
            &o.outcomes
                .iter()
                .map(|x| {
                    (
                        x.provider.clone(),
                        vec![x.succeeded, x.failed, x.abandoned, x.unfinished],
                    )
                })
                .collect::<Vec<_>>()
        ),
        html::table(
            "Verification outcomes",
            &[
                "Provider",
                "Succeeded",
                "Failed",
                "Cancelled or expired",
                "Unfinished"
            ],
            &outcomes
        )
    );
    Ok(ctx.page(&app.name, Some(&app), "overview", &body))
}

fn secs(v: Option<u64>) -> String {
    v.map_or_else(String::new, |v| v.to_string())
}

fn settings_form(ctx: &Ctx, app: &Application, editable: bool) -> String {
    let s = &app.settings;
    let ro = if editable { "" } else { " disabled" };
    let field = |id: &str, label: &str, hint: &str, value: String| {
        format!(
            "<label for=\"{id}\">{label} <span class=\"hint\">{hint}</span></label>\
             <input id=\"{id}\" name=\"{id}\" value=\"{}\"{ro}>",
            esc(&value)
        )
    };
    let generation = |g: VerificationGeneration, label: &str| {
        let sel = if s.verification_generation == g {
            " selected"
        } else {
            ""
        };
        format!(
            "<option value=\"{}\"{sel}>{label}</option>",
            generation_name(g)
        )
    };
    let save = if editable {
        "<button type=\"submit\">Save settings</button>"
    } else {
        "<p class=\"hint\">Viewers cannot change settings.</p>"
    };
    format!(
        "<form method=\"post\" action=\"/console/apps/{}/settings\" class=\"settings\">{}\
         {}{}{}{}{}{}{}\
         <label for=\"trinsic_generation\">Trinsic generation <span class=\"hint\">on the paths both generations share</span></label>\
         <select id=\"trinsic_generation\" name=\"trinsic_generation\"{ro}>{}{}</select>\
         {}\
         <label for=\"allowed_redirect_origins\">Allowed redirect origins <span class=\"hint\">one per line</span></label>\
         <textarea id=\"allowed_redirect_origins\" name=\"allowed_redirect_origins\" rows=\"3\"{ro}>{}</textarea>\
         {}{save}</form>",
        app.id,
        html::csrf_field(&ctx.csrf),
        field("name", "Name", "", app.name.clone()),
        field(
            "session_max_lifetime_secs",
            "Session lifetime",
            "seconds",
            s.session_max_lifetime_secs.to_string()
        ),
        field(
            "inactivity_timeout_secs",
            "Idle timeout",
            "seconds; empty is off",
            secs(s.inactivity_timeout_secs)
        ),
        field(
            "abandon_period_secs",
            "Abandon period",
            "seconds",
            s.abandon_period_secs.to_string()
        ),
        field(
            "session_token_lifetime_secs",
            "Session token lifetime",
            "seconds, at least 30",
            s.session_token_lifetime_secs.to_string()
        ),
        field(
            "verification_retention_secs",
            "Verification results kept",
            "seconds",
            s.verification_retention_secs.to_string()
        ),
        field(
            "verification_session_lifetime_secs",
            "Verification link lifetime",
            "seconds",
            s.verification_session_lifetime_secs.to_string()
        ),
        generation(VerificationGeneration::B, "Trinsic API (2.x)"),
        generation(VerificationGeneration::A, "Trinsic Connect (1.x)"),
        field("frontend_url", "Frontend URL", "", s.frontend_url.clone()),
        esc(&s.allowed_redirect_origins.join("\n")),
        field(
            "rate_limit_per_sec",
            "Rate limit",
            "requests per second per node; empty is the server default, 0 unlimited",
            s.rate_limit_per_sec
                .map(|v| v.to_string())
                .unwrap_or_default()
        ),
    )
}

pub(super) async fn settings(ctx: Ctx, Path(app): Path<String>) -> Answer {
    let app = ctx.app(&app).await?;
    settings_page(&ctx, &app, None).await
}

async fn settings_page(ctx: &Ctx, app: &Application, notice: Option<String>) -> Answer {
    let admin = ctx.is_admin_of(&app.id);
    let keys = ctx
        .st
        .tenancy
        .list_keys(&app.id)
        .await
        .map_err(|e| ctx.fail(&e))?;
    let rows: Vec<Vec<String>> = keys
        .iter()
        .map(|k| {
            let state = match k.revoked_at {
                Some(t) => format!("{} {}", html::badge("revoked", "off"), html::time(t)),
                None => html::badge("active", "ok"),
            };
            let act = if admin && k.revoked_at.is_none() {
                html::action_button(
                    &format!("/console/apps/{}/keys/{}/revoke", app.id, k.id.as_str()),
                    &ctx.csrf,
                    "Revoke",
                    "danger small",
                    Some("Revoke this key? Requests using it fail at once, on every node."),
                )
            } else {
                String::new()
            };
            vec![
                html::code(&k.hint),
                html::code(k.id.as_str()),
                html::time(k.created_at),
                state,
                act,
            ]
        })
        .collect();
    let keyset = ctx
        .st
        .login
        .signer()
        .keyset(&app.id, ctx.now())
        .await
        .map_err(|e| ctx.fail(&e))?;
    let kid = keyset
        .current_kid()
        .map_or_else(|| "none yet".to_owned(), |k| html::code(k.as_str()));
    let admin_key_actions = if admin {
        format!(
            "{}{}{}",
            html::action_button(
                &format!("/console/apps/{}/keys", app.id),
                &ctx.csrf,
                "Create a secret key",
                "",
                None
            ),
            html::action_button(
                &format!("/console/apps/{}/signing-keys/rotate", app.id),
                &ctx.csrf,
                "Rotate the signing key",
                "secondary",
                Some(
                    "Start a signing-key rotation? The new key is published now and signs after the lead time."
                )
            ),
            ""
        )
    } else {
        String::new()
    };
    let body = format!(
        "<h1>Settings and keys</h1>{}\
         <section><h2>Settings</h2>{}</section>\
         <section><h2>Secret keys</h2>{}{}</section>\
         <section><h2>Token signing</h2>{}</section>",
        notice.unwrap_or_default(),
        settings_form(ctx, app, admin),
        html::table(
            "Secret keys",
            &["Key", "Id", "Created (UTC)", "State", ""],
            &rows
        ),
        admin_key_actions,
        html::facts(&[
            ("Current signing key", kid),
            ("Published keys", keyset.jwks.len().to_string()),
            ("Publishable key", html::code(&app.publishable_key())),
        ]),
    );
    Ok(ctx.page("Settings and keys", Some(app), "settings", &body))
}

fn parse_secs(form: &Form, k: &str) -> Result<Option<u64>, Error> {
    match form.text(k) {
        "" => Ok(None),
        v => v
            .parse::<u64>()
            .map(Some)
            .map_err(|_| Error::invalid(k, "must be a whole number of seconds")),
    }
}

/// The settings the form describes, on top of the current ones.
fn apply_form(form: &Form, base: &AppSettings) -> Result<AppSettings, Error> {
    let req = |k: &str| parse_secs(form, k)?.ok_or_else(|| Error::invalid(k, "is required"));
    let mut s = base.clone();
    s.session_max_lifetime_secs = req("session_max_lifetime_secs")?;
    s.inactivity_timeout_secs = parse_secs(form, "inactivity_timeout_secs")?;
    s.abandon_period_secs = req("abandon_period_secs")?;
    s.session_token_lifetime_secs = req("session_token_lifetime_secs")?;
    s.verification_retention_secs = req("verification_retention_secs")?;
    s.verification_session_lifetime_secs = req("verification_session_lifetime_secs")?;
    s.verification_generation = parse_generation(form.text("trinsic_generation"))
        .ok_or_else(|| Error::invalid("trinsic_generation", "must be api or connect"))?;
    s.frontend_url = form.text("frontend_url").to_owned();
    s.allowed_redirect_origins = form
        .text("allowed_redirect_origins")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    s.rate_limit_per_sec = match form.text("rate_limit_per_sec") {
        "" => None,
        v => Some(
            v.parse::<u32>()
                .map_err(|_| Error::invalid("rate_limit", "must be a number"))?,
        ),
    };
    s.validate()?;
    Ok(s)
}

/// Names the settings that differ, for the audit log.
fn changed(a: &AppSettings, b: &AppSettings) -> String {
    use crate::native::SettingsView;
    let (Ok(a), Ok(b)) = (
        serde_json::to_value(SettingsView::from(a)),
        serde_json::to_value(SettingsView::from(b)),
    ) else {
        return String::new();
    };
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return String::new();
    };
    b.iter()
        .filter(|(k, v)| a.get(*k) != Some(v))
        .map(|(k, _)| k.as_str())
        .chain(a.keys().filter(|k| !b.contains_key(*k)).map(String::as_str))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) async fn save_settings(ctx: Ctx, Path(app): Path<String>, body: Bytes) -> Answer {
    let (form, app) = ctx.change(&body, &app).await?;
    let name = form.text("name").to_owned();
    let settings = apply_form(&form, &app.settings).map_err(|e| ctx.fail(&e))?;
    let updated = ctx
        .st
        .tenancy
        .update_application(&app.id, ctx.now(), |a| {
            a.name.clone_from(&name);
            a.settings = settings.clone();
            Ok(())
        })
        .await
        .map_err(|e| ctx.fail(&e))?;
    let mut detail = changed(&app.settings, &updated.settings);
    if app.name != updated.name {
        detail = if detail.is_empty() {
            "name".into()
        } else {
            format!("name, {detail}")
        };
    }
    ctx.audit(
        Action::ApplicationUpdate,
        Some(&app.id),
        app.id.as_str(),
        &detail,
    )
    .await?;
    Ok(see_other(&format!("/console/apps/{}/settings", app.id)))
}

pub(super) async fn create_key(ctx: Ctx, Path(app): Path<String>, body: Bytes) -> Answer {
    let (_, app) = ctx.change(&body, &app).await?;
    let (key, secret) = ctx
        .st
        .tenancy
        .create_key(&app.id, ctx.now())
        .await
        .map_err(|e| ctx.fail(&e))?;
    ctx.audit(Action::KeyCreate, Some(&app.id), key.id.as_str(), &key.hint)
        .await?;
    let shown = format!(
        "<div class=\"secret\" role=\"status\"><h2>New secret key</h2>\
         <p>Copy it now: it is shown only this once and cannot be recovered.</p>\
         <p><code class=\"copy\">{}</code></p></div>",
        esc(secret.expose())
    );
    settings_page(&ctx, &app, Some(shown)).await
}

pub(super) async fn revoke_key(
    ctx: Ctx,
    Path((app, key)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    let (_, app) = ctx.change(&body, &app).await?;
    let id = ctx.id(&key, "key", ApiKeyId::parse)?;
    ctx.st
        .tenancy
        .revoke_key(&app.id, &id, ctx.now())
        .await
        .map_err(|e| ctx.fail(&e))?;
    ctx.audit(Action::KeyRevoke, Some(&app.id), id.as_str(), "")
        .await?;
    Ok(see_other(&format!("/console/apps/{}/settings", app.id)))
}

pub(super) async fn rotate_signing_key(ctx: Ctx, Path(app): Path<String>, body: Bytes) -> Answer {
    let (_, app) = ctx.change(&body, &app).await?;
    let kid = ctx
        .st
        .login
        .signer()
        .rotate(&app.id, false, ctx.now())
        .await
        .map_err(|e| ctx.fail(&e))?;
    ctx.audit(Action::SigningKeyRotate, Some(&app.id), kid.as_str(), "")
        .await?;
    Ok(see_other(&format!("/console/apps/{}/settings", app.id)))
}

//! `sessiond apps`: create, list, show, update, delete applications.

use crate::cli::{AppsCommand, UpdateArgs};
use crate::config::Config;
use crate::runtime::{self, SystemClock};
use anyhow::{Context, bail};
use serde_json::json;
use sessiond_core::application::{Application, KeyEnvironment};
use sessiond_core::clock::Clock;

use super::*;

pub async fn apps(cfg: &Config, cmd: AppsCommand) -> anyhow::Result<()> {
    let create = if matches!(cmd, AppsCommand::Create { .. }) {
        runtime::Create::Allowed
    } else {
        runtime::Create::Refused
    };
    let rt = runtime::open(cfg, create).await?;
    let now = SystemClock.now();
    let t = &rt.tenancy;
    match cmd {
        AppsCommand::Create { name, live, json } => {
            let env = if live {
                KeyEnvironment::Live
            } else {
                KeyEnvironment::Test
            };
            let c = t.create_application(&name, env, None, now).await?;
            rt.signer.ensure_key(&c.application.id, now).await?;
            if json {
                print_json(&json!({
                    "id": c.application.id,
                    "secret_key": c.secret_key.expose(),
                    "publishable_key": c.application.publishable_key(),
                }))?;
            } else {
                println!("created {}  {}", c.application.id, c.application.name);
                println!("  secret key:      {}", c.secret_key.expose());
                println!("  publishable key: {}", c.application.publishable_key());
                println!("The secret key is shown only now; store it safely.");
            }
        }
        AppsCommand::List { json } => {
            let apps = t.list_applications().await?;
            if json {
                print_json(&serde_json::Value::Array(
                    apps.iter().map(app_json).collect(),
                ))?;
            } else if apps.is_empty() {
                println!("no applications");
            } else {
                for a in &apps {
                    println!("{}  {:<4}  {}", a.id, a.environment.as_str(), a.name);
                }
            }
        }
        AppsCommand::Show { app_id, json } => {
            let a = t.get_application(&parse_app(&app_id)?).await?;
            if json {
                print_json(&app_json(&a))?;
            } else {
                print_app(&a);
            }
        }
        AppsCommand::Update(args) => {
            let json = args.json;
            let a = update(t, *args, now).await?;
            if json {
                print_json(&app_json(&a))?;
            } else {
                print_app(&a);
            }
        }
        AppsCommand::Delete { app_id, yes } => {
            let id = parse_app(&app_id)?;
            refuse_console_app(t, &id).await?;
            if !yes {
                bail!("deleting {id} removes all its keys and data; repeat with --yes to confirm");
            }
            t.delete_application(&id).await?;
            println!("deleted {id}");
        }
    }
    rt.db.close().await;
    Ok(())
}

/// The console's own application holds the operators; it is managed with `sessiond operators`.
async fn refuse_console_app(
    t: &sessiond_core::tenancy::Tenancy,
    id: &sessiond_core::application::AppId,
) -> anyhow::Result<()> {
    if t.console_application_id().await?.as_ref() == Some(id) {
        bail!(
            "{id} is the console's own application (its users are the operators); manage it with `sessiond operators`"
        );
    }
    Ok(())
}

pub(super) async fn update(
    t: &sessiond_core::tenancy::Tenancy,
    args: UpdateArgs,
    now: sessiond_core::Timestamp,
) -> anyhow::Result<Application> {
    let id = parse_app(&args.app_id)?;
    refuse_console_app(t, &id).await?;
    let opt = |v: &Option<String>| v.as_deref().map(parse_duration).transpose();
    let max = opt(&args.session_max_lifetime).context("--session-max-lifetime")?;
    let abandon = opt(&args.abandon_period).context("--abandon-period")?;
    let token = opt(&args.session_token_lifetime).context("--session-token-lifetime")?;
    let retention = opt(&args.verification_retention).context("--verification-retention")?;
    let vlifetime =
        opt(&args.verification_session_lifetime).context("--verification-session-lifetime")?;
    let generation = args
        .trinsic_generation
        .as_deref()
        .map(|g| {
            sessiond_http::dialect::trinsic::parse_generation(g)
                .ok_or_else(|| anyhow::anyhow!("--trinsic-generation must be `api` or `connect`"))
        })
        .transpose()?;
    let idle = match args.inactivity_timeout.as_deref() {
        None => None,
        Some("off" | "0") => Some(None),
        Some(v) => Some(Some(parse_duration(v).context("--inactivity-timeout")?)),
    };
    let rate = match args.rate_limit.as_deref() {
        None => None,
        Some("default") => Some(None),
        Some(n) => Some(Some(n.parse::<u32>().with_context(|| {
            format!("--rate-limit: `{n}` is not a number of requests per second or `default`")
        })?)),
    };
    let app = t
        .update_application(&id, now, |a| {
            if let Some(n) = &args.name {
                a.name = n.clone();
            }
            let s = &mut a.settings;
            if let Some(v) = max {
                s.session_max_lifetime_secs = v;
            }
            if let Some(v) = abandon {
                s.abandon_period_secs = v;
            }
            if let Some(v) = token {
                s.session_token_lifetime_secs = v;
            }
            if let Some(v) = retention {
                s.verification_retention_secs = v;
            }
            if let Some(v) = vlifetime {
                s.verification_session_lifetime_secs = v;
            }
            if let Some(g) = generation {
                s.verification_generation = g;
            }
            if let Some(v) = idle {
                s.inactivity_timeout_secs = v;
            }
            if let Some(u) = &args.frontend_url {
                s.frontend_url = u.trim_end_matches('/').to_owned();
            }
            if let Some(r) = rate {
                s.rate_limit_per_sec = r;
            }
            if args.clear_redirect_origins {
                s.allowed_redirect_origins.clear();
            }
            for o in &args.allowed_redirect_origin {
                let o = o.trim_end_matches('/').to_owned();
                if !s.allowed_redirect_origins.contains(&o) {
                    s.allowed_redirect_origins.push(o);
                }
            }
            Ok(())
        })
        .await?;
    Ok(app)
}

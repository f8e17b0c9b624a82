//! `sessiond users`: operator-only user attributes and the impersonation audit trail.

use crate::cli::UsersCommand;
use crate::config::Config;
use crate::runtime::{self, SystemClock};
use serde_json::json;
use sessiond_core::clock::Clock;

use super::*;

pub async fn users(cfg: &Config, cmd: UsersCommand) -> anyhow::Result<()> {
    let rt = runtime::open(cfg, runtime::Create::Refused).await?;
    let now = SystemClock.now();
    match cmd {
        UsersCommand::Update {
            app_id,
            user,
            can_impersonate,
            max_concurrent_access,
            locale,
            json,
        } => {
            let app = rt.tenancy.get_application(&parse_app(&app_id)?).await?;
            let u = rt.login.resolve_user(&app, &user).await?;
            let patch = sessiond_core::user::UserPatch {
                can_impersonate,
                max_concurrent_access: max_concurrent_access.map(|n| (n > 0).then_some(n)),
                locale: locale.map(Some),
                ..Default::default()
            };
            let u = rt.login.update_user(&app, &u.id, patch, now).await?;
            let p = &u.profile;
            if json {
                print_json(&json!({
                    "id": u.id,
                    "external_id": u.profile.external_id,
                    "can_impersonate": p.can_impersonate,
                    "max_concurrent_access": p.max_concurrent_access.unwrap_or(0),
                    "locale": p.locale,
                }))?;
            } else {
                println!(
                    "{}: can impersonate {}, max concurrent access {}, locale {}",
                    u.id,
                    p.can_impersonate,
                    p.max_concurrent_access
                        .map_or("unlimited".to_owned(), |n| n.to_string()),
                    p.locale.as_deref().unwrap_or("(default)")
                );
            }
        }
        UsersCommand::Impersonations {
            app_id,
            limit,
            json,
        } => {
            let app = rt.tenancy.get_application(&parse_app(&app_id)?).await?;
            let events = rt
                .login
                .impersonation_log(&app, None, limit.clamp(1, 10_000))
                .await?;
            if json {
                print_json(&serde_json::Value::Array(
                    events
                        .iter()
                        .map(|e| json!({
                            "kind": e.kind, "at": e.at.as_millis(), "session_id": e.session_id,
                            "actor_user_id": e.actor_user_id, "target_user_id": e.target_user_id,
                        }))
                        .collect(),
                ))?;
            } else {
                for e in &events {
                    println!(
                        "{} {:<5} {} as {} in {}",
                        e.at.as_millis(),
                        e.kind,
                        e.actor_user_id,
                        e.target_user_id,
                        e.session_id
                    );
                }
            }
        }
    }
    rt.db.close().await;
    Ok(())
}

//! `sessiond operators`: the console's operators and the audit log of their actions.

use std::io::BufRead;

use anyhow::Context;
use serde_json::json;
use sessiond_core::application::AppId;
use sessiond_core::clock::Clock;
use sessiond_core::console::{Action, ConsoleService, NewOperator, Operator, OperatorPatch, Role};
use sessiond_core::store::ActionFilter;
use sessiond_crypto::totp::TotpSecret;

use super::{parse_app, print_json};
use crate::cli::OperatorsCommand;
use crate::config::Config;
use crate::runtime::{self, SystemClock};

fn operator_json(o: &Operator) -> serde_json::Value {
    json!({
        "id": o.id,
        "email": o.email,
        "role": o.role.as_str(),
        "applications": o.applications,
        "totp": o.totp_enrolled,
        "disabled": o.disabled,
        "locked_until": o.locked_until.map(|t| t.as_millis()),
        "created_at": o.created_at.as_millis(),
    })
}

fn print_operator(o: &Operator) {
    let scope = o.applications.as_ref().map_or_else(
        || "every application".to_owned(),
        |l| l.iter().map(AppId::as_str).collect::<Vec<_>>().join(", "),
    );
    println!(
        "{}  {}  {}  {}{}{}",
        o.email,
        o.role.as_str(),
        scope,
        if o.totp_enrolled {
            "totp"
        } else {
            "no second factor"
        },
        if o.disabled { "  DISABLED" } else { "" },
        if o.locked_until.is_some() {
            "  (failed sign-ins recorded)"
        } else {
            ""
        }
    );
}

fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let pw = line.trim_end_matches(['\r', '\n']).to_owned();
    anyhow::ensure!(!pw.is_empty(), "the password on standard input is empty");
    Ok(pw)
}

fn print_totp(email: &str, t: &TotpSecret) {
    println!("  authenticator secret: {}", t.base32().as_str());
    println!(
        "  otpauth URI:          {}",
        t.uri("sessiond", email).as_str()
    );
    println!("  Add it to an authenticator app now; it is not shown again.");
}

fn scope(apps: &[String]) -> anyhow::Result<Option<Vec<AppId>>> {
    if apps.is_empty() {
        return Ok(None);
    }
    apps.iter()
        .map(|a| parse_app(a))
        .collect::<anyhow::Result<Vec<_>>>()
        .map(Some)
}

pub async fn operators(cfg: &Config, cmd: OperatorsCommand) -> anyhow::Result<()> {
    // Creating the first operator may be the first thing done on a new installation (the README's
    // quick start): it may create the database, like `serve`.
    let create = if matches!(cmd, OperatorsCommand::Create { .. }) {
        runtime::Create::Allowed
    } else {
        runtime::Create::Refused
    };
    let rt = runtime::open(cfg, create).await?;
    let console = ConsoleService::new(
        rt.store.clone(),
        rt.tenancy.clone(),
        rt.login.clone(),
        cfg.console_sessions,
    );
    let now = SystemClock.now();
    let cli = ConsoleService::CLI_OPERATOR;
    match cmd {
        OperatorsCommand::Create {
            email,
            role,
            applications,
            totp,
            password_stdin,
            json,
        } => {
            let (password, generated) = if password_stdin {
                (read_password()?, false)
            } else {
                (
                    sessiond_crypto::ids::base62_bytes(&sessiond_crypto::random_bytes::<18>()),
                    true,
                )
            };
            let (op, secret) = console
                .create_operator(
                    NewOperator {
                        email,
                        password: password.clone(),
                        role: Role::parse(&role).context("--role must be admin or viewer")?,
                        applications: scope(&applications)?,
                        totp,
                    },
                    now,
                )
                .await?;
            console
                .record_action(
                    cli,
                    Action::OperatorCreate,
                    None,
                    op.id.as_str(),
                    op.role.as_str(),
                    now,
                )
                .await?;
            if json {
                let mut v = operator_json(&op);
                if generated {
                    v["password"] = json!(password);
                }
                if let Some(t) = &secret {
                    v["totp_secret"] = json!(t.base32().as_str());
                    v["totp_uri"] = json!(t.uri("sessiond", &op.email).as_str());
                }
                print_json(&v)?;
            } else {
                println!("created operator {} ({})", op.email, op.role.as_str());
                if generated {
                    println!("  password: {password}");
                    println!("  Store it now; it is not shown again.");
                }
                if let Some(t) = &secret {
                    print_totp(&op.email, t);
                }
                println!(
                    "  Sign in at <public_url>/console (default http://127.0.0.1:7300/console)."
                );
            }
        }
        OperatorsCommand::List { json } => {
            let ops = console.list_operators(now).await?;
            if json {
                print_json(&json!(ops.iter().map(operator_json).collect::<Vec<_>>()))?;
            } else if ops.is_empty() {
                println!("no operators; create one with `sessiond operators create EMAIL`");
            } else {
                let app = console.application(now).await?;
                println!(
                    "operators (users of the console's own application {}):",
                    app.id
                );
                ops.iter().for_each(print_operator);
            }
        }
        OperatorsCommand::Update {
            email,
            role,
            applications,
            all_applications,
            disable,
            enable,
            totp,
            no_totp,
            unlock,
            password_stdin,
            json,
        } => {
            let patch = OperatorPatch {
                role: role
                    .as_deref()
                    .map(|r| Role::parse(r).context("--role must be admin or viewer"))
                    .transpose()?,
                applications: if all_applications {
                    Some(None)
                } else if applications.is_empty() {
                    None
                } else {
                    Some(scope(&applications)?)
                },
                disabled: (disable || enable).then_some(disable),
                password: password_stdin.then(read_password).transpose()?,
                totp: (totp || no_totp).then_some(totp),
                unlock,
            };
            let (op, secret) = console.update_operator(&email, patch, now).await?;
            console
                .record_action(cli, Action::OperatorUpdate, None, op.id.as_str(), "", now)
                .await?;
            if json {
                let mut v = operator_json(&op);
                if let Some(t) = &secret {
                    v["totp_secret"] = json!(t.base32().as_str());
                }
                print_json(&v)?;
            } else {
                print_operator(&op);
                if let Some(t) = &secret {
                    print_totp(&op.email, t);
                }
            }
        }
        OperatorsCommand::Delete { email, yes } => {
            anyhow::ensure!(yes, "deleting an operator needs --yes");
            let op = console.delete_operator(&email, now).await?;
            console
                .record_action(cli, Action::OperatorDelete, None, op.id.as_str(), "", now)
                .await?;
            println!("deleted operator {}", op.email);
        }
        OperatorsCommand::Audit {
            application,
            limit,
            json,
        } => {
            let filter = ActionFilter {
                application_id: application.as_deref().map(parse_app).transpose()?,
                ..ActionFilter::default()
            };
            let rows = console.audit(None, &filter, limit.clamp(1, 1000)).await?;
            let mut names = std::collections::HashMap::new();
            for r in &rows {
                if !names.contains_key(&r.operator_id) {
                    let who = console
                        .operator_by_id(&r.operator_id, now)
                        .await?
                        .map_or_else(|| r.operator_id.clone(), |o| o.email);
                    names.insert(r.operator_id.clone(), who);
                }
            }
            if json {
                print_json(&json!(
                    rows.iter()
                        .map(|r| json!({
                            "id": r.id,
                            "at": r.at.as_millis(),
                            "operator_id": r.operator_id,
                            "operator": names.get(&r.operator_id),
                            "action": r.action,
                            "application_id": r.application_id,
                            "target": r.target,
                            "detail": r.detail,
                        }))
                        .collect::<Vec<_>>()
                ))?;
            } else {
                for r in &rows {
                    println!(
                        "{}  {}  {}  {}  {}  {}",
                        r.at.as_millis(),
                        names.get(&r.operator_id).map_or("", String::as_str),
                        r.action,
                        r.application_id.as_ref().map_or("-", AppId::as_str),
                        if r.target.is_empty() { "-" } else { &r.target },
                        r.detail
                    );
                }
            }
        }
    }
    Ok(())
}

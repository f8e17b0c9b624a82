//! `sessiond webhooks`: endpoints, their secrets, deliveries, attempts and replays.

use anyhow::{Context, bail};
use serde_json::json;
use sessiond_core::clock::{Clock, Timestamp};
use sessiond_core::events::EventType;
use sessiond_core::ids::EndpointId;
use sessiond_core::webhooks::{DeliveryState, Endpoint, EndpointInput, Replay, WebhookService};

use super::*;
use crate::cli::WebhooksCommand;
use crate::runtime::SystemClock;

fn endpoint_json(e: &Endpoint, secret: Option<&str>) -> serde_json::Value {
    let mut v = json!({
        "id": e.id,
        "application_id": e.application_id,
        "url": e.url,
        "description": e.description,
        "event_types": e.event_types.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
        "enabled": e.enabled,
        "created_at": e.created_at.as_millis(),
        "updated_at": e.updated_at.as_millis(),
    });
    if let Some(s) = secret {
        v["secret"] = json!(s);
    }
    v
}

fn print_endpoint(e: &Endpoint) {
    let types = e.types_label();
    let state = if e.enabled { "enabled" } else { "disabled" };
    println!("{}  {state}  {}\n  events: {types}", e.id, e.url);
    if !e.description.is_empty() {
        println!("  {}", e.description);
    }
}

fn parse_endpoint(s: &str) -> anyhow::Result<EndpointId> {
    EndpointId::parse(s).with_context(|| format!("`{s}` is not an endpoint id (ep_…)"))
}

/// RFC 3339 or Unix milliseconds.
fn parse_time(s: &str) -> anyhow::Result<Timestamp> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(Timestamp(ms));
    }
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .with_context(|| {
            format!("`{s}` is neither RFC 3339 (2026-12-01T00:00:00Z) nor Unix milliseconds")
        })?;
    Ok(Timestamp(
        i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX),
    ))
}

pub async fn webhooks(cfg: &Config, cmd: WebhooksCommand) -> anyhow::Result<()> {
    if let WebhooksCommand::Types = cmd {
        for t in EventType::ALL {
            let origin = if sessiond_http::dialect::clerk::webhooks::is_clerk_type(t) {
                "Clerk's type"
            } else {
                "sessiond's type"
            };
            println!("{:<32} {} ({origin})", t.as_str(), t.description());
        }
        return Ok(());
    }
    let rt = runtime::open(cfg, runtime::Create::Refused).await?;
    let now = SystemClock.now();
    let svc = WebhookService::new(rt.store.clone(), rt.vault.clone());
    let app_of = |id: &str| {
        let t = rt.tenancy.clone();
        let id = id.to_owned();
        async move { anyhow::Ok(t.get_application(&parse_app(&id)?).await?) }
    };
    match cmd {
        WebhooksCommand::Create {
            app_id,
            url,
            events,
            description,
            disabled,
            json,
        } => {
            let app = app_of(&app_id).await?;
            let input = EndpointInput {
                url: Some(url),
                description,
                event_types: Some(events),
                enabled: Some(!disabled),
            };
            let (e, secret) = svc.create(&app, input, now).await?;
            let secret = secret.expose();
            if json {
                print_json(&endpoint_json(&e, Some(&secret)))?;
            } else {
                print_endpoint(&e);
                println!("  signing secret: {}", &*secret);
                println!(
                    "The secret is shown only now; give it to the receiver (e.g. CLERK_WEBHOOK_SIGNING_SECRET)."
                );
            }
        }
        WebhooksCommand::List { app_id, json } => {
            let app = app_of(&app_id).await?;
            let list = svc.list(&app).await?;
            if json {
                print_json(&serde_json::Value::Array(
                    list.iter().map(|e| endpoint_json(e, None)).collect(),
                ))?;
            } else if list.is_empty() {
                println!("no endpoints (add one with `sessiond webhooks create {app_id} --url …`)");
            } else {
                list.iter().for_each(print_endpoint);
            }
        }
        WebhooksCommand::Update {
            app_id,
            endpoint_id,
            url,
            events,
            all_events,
            description,
            enable,
            disable,
        } => {
            let app = app_of(&app_id).await?;
            let input = EndpointInput {
                url,
                description,
                event_types: if all_events {
                    Some(Vec::new())
                } else if events.is_empty() {
                    None
                } else {
                    Some(events)
                },
                enabled: if enable {
                    Some(true)
                } else if disable {
                    Some(false)
                } else {
                    None
                },
            };
            let e = svc
                .update(&app, &parse_endpoint(&endpoint_id)?, input, now)
                .await?;
            print_endpoint(&e);
        }
        WebhooksCommand::Delete {
            app_id,
            endpoint_id,
        } => {
            let app = app_of(&app_id).await?;
            svc.delete(&app, &parse_endpoint(&endpoint_id)?).await?;
            println!("deleted {endpoint_id}");
        }
        WebhooksCommand::RotateSecret {
            app_id,
            endpoint_id,
            overlap,
            json,
        } => {
            let app = app_of(&app_id).await?;
            let overlap = parse_duration(&overlap)?;
            let (e, secret) = svc
                .rotate_secret(&app, &parse_endpoint(&endpoint_id)?, overlap, now)
                .await?;
            let secret = secret.expose();
            if json {
                print_json(&endpoint_json(&e, Some(&secret)))?;
            } else {
                println!("new signing secret for {}: {}", e.id, &*secret);
                println!(
                    "Deliveries carry signatures by both secrets for {overlap} s; update the receiver within that time."
                );
            }
        }
        WebhooksCommand::Deliveries {
            app_id,
            endpoint_id,
            state,
            limit,
            json,
        } => {
            let app = app_of(&app_id).await?;
            let state = state
                .map(|s| {
                    DeliveryState::parse(&s)
                        .with_context(|| format!("`{s}` is not pending, succeeded or failed"))
                })
                .transpose()?;
            let list = svc
                .deliveries(&app, &parse_endpoint(&endpoint_id)?, state, limit)
                .await?;
            if json {
                print_json(&serde_json::Value::Array(
                    list.iter()
                        .map(|d| {
                            json!({
                                "event_id": d.event_id, "type": d.event_type.as_str(),
                                "occurred_at": d.occurred_at.as_millis(), "state": d.state.as_str(),
                                "attempts": d.attempts, "next_attempt_at": d.next_at.map(Timestamp::as_millis),
                                "last_status": d.last_status,
                            })
                        })
                        .collect(),
                ))?;
            } else {
                for d in &list {
                    println!(
                        "{}  {:<30} {:<9} attempts {}  last status {}",
                        d.event_id,
                        d.event_type.as_str(),
                        d.state.as_str(),
                        d.attempts,
                        d.last_status.map_or("-".to_owned(), |s| s.to_string())
                    );
                }
            }
        }
        WebhooksCommand::Attempts {
            app_id,
            endpoint_id,
            event,
            limit,
            json,
        } => {
            let app = app_of(&app_id).await?;
            let list = svc
                .attempts(
                    &app,
                    &parse_endpoint(&endpoint_id)?,
                    event.as_deref(),
                    limit,
                )
                .await?;
            if json {
                print_json(&serde_json::Value::Array(
                    list.iter()
                        .map(|a| {
                            json!({
                                "id": a.id, "event_id": a.event_id, "attempt": a.number,
                                "at": a.at.as_millis(), "succeeded": a.succeeded,
                                "response_code": a.response_code, "latency_ms": a.latency_ms,
                                "response_body": a.response_excerpt, "error": a.error,
                            })
                        })
                        .collect(),
                ))?;
            } else {
                for a in &list {
                    let outcome = match (a.response_code, &a.error) {
                        (Some(c), _) => c.to_string(),
                        (None, Some(e)) => e.clone(),
                        (None, None) => "-".into(),
                    };
                    println!(
                        "{}  #{}  {}  {} ms  {outcome}",
                        a.event_id,
                        a.number,
                        if a.succeeded { "ok    " } else { "failed" },
                        a.latency_ms
                    );
                }
            }
        }
        WebhooksCommand::Replay {
            app_id,
            endpoint_id,
            event,
            since,
            until,
        } => {
            let app = app_of(&app_id).await?;
            let which = match (event, since, until) {
                (Some(e), None, None) => Replay::Event(e),
                (None, Some(s), Some(u)) => Replay::Range {
                    since: parse_time(&s)?,
                    until: parse_time(&u)?,
                },
                _ => bail!("give --event, or both --since and --until"),
            };
            let n = svc
                .replay(&app, &parse_endpoint(&endpoint_id)?, which, now)
                .await?;
            println!("queued {n} deliveries again; running servers send them within seconds");
        }
        WebhooksCommand::Types => {}
    }
    Ok(())
}

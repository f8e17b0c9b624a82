//! Offline administration commands: they work on the configured database directly, so they run
//! with or without a server, on any node.

mod apps;
mod keys;
mod operators;
mod users;
mod webhooks;

pub use apps::apps;
pub use keys::keys;
pub use operators::operators;
pub use users::users;
pub use webhooks::webhooks;

use std::io::Write;

use anyhow::Context;
use serde_json::json;
use sessiond_core::apikey::ApiKey;
use sessiond_core::application::{AppId, Application};

use crate::config::Config;
use crate::runtime::{self};

fn parse_app(s: &str) -> anyhow::Result<AppId> {
    AppId::parse(s).with_context(|| format!("`{s}` is not an application id (app_…)"))
}

/// Parses `90`, `90s`, `15m`, `12h`, `7d` into seconds.
pub fn parse_duration(s: &str) -> anyhow::Result<u64> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, 's')) => (&s[..i], 1),
        Some((i, 'm')) => (&s[..i], 60),
        Some((i, 'h')) => (&s[..i], 3600),
        Some((i, 'd')) => (&s[..i], 86_400),
        _ => (s, 1),
    };
    let n: u64 = num
        .parse()
        .with_context(|| format!("`{s}` is not a duration such as 90s, 15m, 12h or 7d"))?;
    n.checked_mul(mult).context("duration is too large")
}

fn app_json(a: &Application) -> serde_json::Value {
    json!({
        "id": a.id,
        "name": a.name,
        "environment": a.environment.as_str(),
        "publishable_key": a.publishable_key(),
        "settings": sessiond_http::native::SettingsView::from(&a.settings),
        "created_at": a.created_at.as_millis(),
        "updated_at": a.updated_at.as_millis(),
        "version": a.version,
    })
}

fn key_json(k: &ApiKey) -> serde_json::Value {
    json!({
        "id": k.id,
        "application_id": k.application_id,
        "hint": k.hint,
        "created_at": k.created_at.as_millis(),
        "revoked_at": k.revoked_at.map(|t| t.as_millis()),
    })
}

fn print_json(v: &serde_json::Value) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)?;
    Ok(())
}

fn print_app(a: &Application) {
    let s = &a.settings;
    let secs = |v: u64| format!("{v}s");
    println!("{}  {}", a.id, a.name);
    println!("  environment:             {}", a.environment.as_str());
    println!("  publishable key:         {}", a.publishable_key());
    println!("  frontend url:            {}", s.frontend_url);
    println!(
        "  session max lifetime:    {}",
        secs(s.session_max_lifetime_secs)
    );
    println!(
        "  inactivity timeout:      {}",
        s.inactivity_timeout_secs.map_or("off".into(), secs)
    );
    println!("  abandon period:          {}", secs(s.abandon_period_secs));
    println!(
        "  session token lifetime:  {}",
        secs(s.session_token_lifetime_secs)
    );
    println!(
        "  verification retention:  {}",
        secs(s.verification_retention_secs)
    );
    println!(
        "  verification lifetime:   {}",
        secs(s.verification_session_lifetime_secs)
    );
    println!(
        "  trinsic generation:      {}",
        sessiond_http::dialect::trinsic::generation_name(s.verification_generation)
    );
    println!(
        "  rate limit:              {}",
        match s.rate_limit_per_sec {
            None => "server default".to_owned(),
            Some(0) => "unlimited".to_owned(),
            Some(n) => format!("{n} requests/s per node"),
        }
    );
    println!(
        "  allowed redirect origins: {}",
        if s.allowed_redirect_origins.is_empty() {
            "(none)".to_owned()
        } else {
            s.allowed_redirect_origins.join(", ")
        }
    );
}

pub async fn migrate(cfg: &Config) -> anyhow::Result<()> {
    let rt = runtime::open(cfg, runtime::Create::Allowed).await?;
    let current = rt.store.migrations_current().await?;
    println!(
        "{} database migrated{}",
        rt.db.backend_name(),
        if current { "; schema is current" } else { "" }
    );
    rt.db.close().await;
    Ok(())
}

pub async fn healthcheck(
    cfg: &Config,
    url: Option<String>,
    live: bool,
    timeout: u64,
) -> anyhow::Result<bool> {
    let base = url.unwrap_or_else(|| {
        let mut addr = cfg.listen;
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        format!("http://{addr}")
    });
    let path = if live { "/healthz" } else { "/readyz" };
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let limit = std::time::Duration::from_secs(timeout.max(1));
    match tokio::time::timeout(limit, http_get(&url)).await {
        Ok(Ok((status, body))) => {
            println!("{url}: {status} {}", body.trim());
            Ok((200..300).contains(&status))
        }
        Ok(Err(e)) => {
            println!("{url}: unreachable ({e})");
            Ok(false)
        }
        Err(_) => {
            println!("{url}: no answer within {}s", limit.as_secs());
            Ok(false)
        }
    }
}

/// A plain HTTP/1.1 GET for the health probe: `http://host[:port]/path` only. Probes run on the
/// node itself (container health checks, systemd), where TLS terminates in front of sessiond if at
/// all; a full HTTP client is not worth its build cost for this one request.
async fn http_get(url: &str) -> anyhow::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow::anyhow!("only http:// URLs can be probed"))?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let target = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    let mut stream = tokio::net::TcpStream::connect(&target).await?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nAccept: application/json\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    // Health answers are a few dozen bytes; the cap keeps a wrong port from filling memory.
    stream.take(64 * 1024).read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .lines()
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| anyhow::anyhow!("not an HTTP response"))?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Ok((status, body))
}

/// The payload of a chunked body (health answers arrive whole, so no streaming is needed).
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16) else {
            break;
        };
        let (Some(chunk), Some(after)) = (rest.get(..n), rest.get(n..)) else {
            break;
        };
        if n == 0 {
            break;
        }
        out.push_str(chunk);
        body = after.trim_start_matches("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn chunked_health_bodies_are_joined() {
        assert_eq!(
            super::dechunk("7\r\n{\"statu\r\n8\r\ns\":\"ok\"}\r\n0\r\n\r\n"),
            "{\"status\":\"ok\"}"
        );
        assert_eq!(super::dechunk("zz\r\nbody"), "", "not chunked: nothing");
        assert_eq!(
            super::dechunk("ff\r\nshort"),
            "",
            "a truncated chunk is dropped"
        );
    }
}

//! Offline administration commands: they work on the configured database directly, so they run
//! with or without a server, on any node.

use std::io::Write;

use anyhow::{Context, bail};
use serde_json::json;
use sessiond_core::apikey::{ApiKey, ApiKeyId};
use sessiond_core::application::{AppId, Application, KeyEnvironment};
use sessiond_core::clock::Clock;
use sessiond_core::rotation;
use sessiond_crypto::seal::{Keyring, MasterKey};

use crate::cli::{AppsCommand, KeysCommand, UpdateArgs, UsersCommand};
use crate::config::{Config, KeySource};
use crate::runtime::{self, SystemClock};

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
        "settings": a.settings,
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
        s.trinsic_generation.as_str()
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

async fn update(
    t: &sessiond_core::tenancy::Tenancy,
    args: UpdateArgs,
    now: sessiond_core::Timestamp,
) -> anyhow::Result<Application> {
    let id = parse_app(&args.app_id)?;
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
            sessiond_core::application::TrinsicGeneration::parse(g)
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
                s.trinsic_generation = g;
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

pub async fn keys(cfg: &Config, cmd: KeysCommand) -> anyhow::Result<()> {
    if let KeysCommand::RotateMaster { retire_old } = cmd {
        return rotate_master(cfg, retire_old).await;
    }
    let rt = runtime::open(cfg, runtime::Create::Refused).await?;
    let now = SystemClock.now();
    let t = &rt.tenancy;
    match cmd {
        KeysCommand::Create { app_id, json } => {
            let (key, secret) = t.create_key(&parse_app(&app_id)?, now).await?;
            if json {
                print_json(&json!({"id": key.id, "secret_key": secret.expose()}))?;
            } else {
                println!("created {}\n  secret key: {}", key.id, secret.expose());
                println!("The secret key is shown only now; store it safely.");
            }
        }
        KeysCommand::List { app_id, json } => {
            let keys = t.list_keys(&parse_app(&app_id)?).await?;
            if json {
                print_json(&serde_json::Value::Array(
                    keys.iter().map(key_json).collect(),
                ))?;
            } else {
                for k in &keys {
                    let state = if k.is_revoked() { "revoked" } else { "active" };
                    println!("{}  {:<7}  {}", k.id, state, k.hint);
                }
            }
        }
        KeysCommand::Revoke { app_id, key_id } => {
            let app = parse_app(&app_id)?;
            let key = ApiKeyId::parse(&key_id)
                .with_context(|| format!("`{key_id}` is not a key id (key_…)"))?;
            let k = t.revoke_key(&app, &key, now).await?;
            println!("revoked {} ({})", k.id, k.hint);
        }
        KeysCommand::RotateSigning { app_id, immediate } => {
            let app = t.get_application(&parse_app(&app_id)?).await?;
            let kid = rt.signer.rotate(&app.id, immediate, now).await?;
            if immediate {
                println!(
                    "{kid} signs from now on; the previous key stays published for its tokens"
                );
            } else {
                println!(
                    "{kid} is published now and signs from {} s on; the previous key stays published for its tokens",
                    sessiond_core::signing::NEXT_KEY_LEAD_SECS
                );
            }
        }
        KeysCommand::PublicKey { app_id } => {
            let app = t.get_application(&parse_app(&app_id)?).await?;
            let ks = rt.signer.keyset(&app.id, now).await?;
            print!("{}", ks.public_pem.clone().unwrap_or_default());
            eprintln!("JWKS: <server>/v1/apps/{}/.well-known/jwks.json", app.id);
        }
        KeysCommand::RotateMaster { .. } => {}
    }
    rt.db.close().await;
    Ok(())
}

async fn rotate_master(cfg: &Config, retire_old: bool) -> anyhow::Result<()> {
    let rt = runtime::open(cfg, runtime::Create::Refused).await?;
    let mut progress = |r: &rotation::ResealReport| {
        eprint!(
            "\rre-sealing: {} scanned, {} re-sealed",
            r.scanned, r.resealed
        );
    };
    match (&rt.key_source, retire_old) {
        (KeySource::File(path), false) => {
            let current = runtime::read_key_file(path)?;
            let fresh = MasterKey::generate();
            let new_id = fresh.id();
            let ring = current.with_new_active(fresh);
            runtime::write_key_file(path, &ring)?;
            eprintln!("new master key {new_id} written to {}", path.display());
            // Running nodes on this key file read it within one poll; give them two before any
            // value they may have to open is sealed under the new key.
            let wait = runtime::KEY_FILE_POLL * 2;
            eprintln!("waiting {} s for running nodes to load it…", wait.as_secs());
            tokio::time::sleep(wait).await;
            rt.vault.replace_keyring(ring);
            let report = rotation::reseal_all(rt.store.as_ref(), &rt.vault, &mut progress).await?;
            eprintln!();
            println!(
                "re-sealed {} of {} sealed values under {new_id}; {} left under old keys",
                report.resealed, report.scanned, report.remaining
            );
            println!(
                "Old keys stay in the key file so running nodes keep working. Once every node has\n\
                 picked up the new key (within 30 s), run `sessiond keys rotate-master --retire-old`."
            );
        }
        (KeySource::File(path), true) => {
            let ring = runtime::read_key_file(path)?;
            // Launch links and deep-link steps of running verifications are sealed into URLs
            // the database does not hold, so they cannot be re-sealed: retiring the key they use
            // would break them until they expire.
            let (running, last) = unfinished_verifications(&rt).await?;
            if running > 0 {
                bail!(
                    "{running} identity verification(s) are still running; their launch links and \
                     deep-link steps are sealed under the current keys and cannot be re-sealed. \
                     Nothing retired. Retry after {} (when the last of them expires).",
                    last.and_then(|t| {
                        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(t.0) * 1_000_000)
                            .ok()?
                            .format(&time::format_description::well_known::Rfc3339)
                            .ok()
                    })
                    .unwrap_or_else(|| "they finish".to_owned())
                );
            }
            let report = rotation::reseal_all(rt.store.as_ref(), &rt.vault, &mut progress).await?;
            eprintln!();
            if report.remaining > 0 {
                bail!(
                    "{} values still use old keys; nothing retired",
                    report.remaining
                );
            }
            let active = ring.active().id();
            let retired = ring.key_ids().len() - 1;
            runtime::write_key_file(path, &ring.retain_active_only())?;
            println!("retired {retired} old master key(s); {active} is the only key now");
        }
        (KeySource::Setting, _) => {
            let ring = rt.vault.keyring();
            if ring.key_ids().len() == 1 {
                let fresh = MasterKey::generate();
                let text = format!(
                    "{},{}",
                    fresh.to_base64().as_str(),
                    ring.active().to_base64().as_str()
                );
                let _ = Keyring::parse(&text)?;
                println!("{text}");
                eprintln!(
                    "The line above is the new SESSIOND_MASTER_KEY (new key {} first, old key kept for opening).\n\
                     Deploy it to every node, then run `sessiond keys rotate-master` again to re-seal.",
                    fresh.id()
                );
            } else {
                let report =
                    rotation::reseal_all(rt.store.as_ref(), &rt.vault, &mut progress).await?;
                eprintln!();
                println!(
                    "re-sealed {} of {} sealed values under {}; {} left under old keys",
                    report.resealed,
                    report.scanned,
                    ring.active().id(),
                    report.remaining
                );
                if report.remaining == 0 {
                    println!("Old keys may now be removed from SESSIOND_MASTER_KEY on every node.");
                }
            }
        }
    }
    rt.db.close().await;
    Ok(())
}

/// Unfinished verifications of every application, and the latest time one of them expires.
async fn unfinished_verifications(
    rt: &runtime::Runtime,
) -> anyhow::Result<(u64, Option<sessiond_core::Timestamp>)> {
    let now = SystemClock.now();
    let mut running = 0;
    let mut last: Option<sessiond_core::Timestamp> = None;
    for app in rt.store.list_applications().await? {
        let mut offset = 0;
        loop {
            let (page, _) = rt
                .store
                .list_verifications(
                    &app.id,
                    sessiond_core::store::VerificationOrder::Created,
                    false,
                    500,
                    offset,
                )
                .await?;
            for v in &page {
                if v.finished_at.is_none() && v.expires_at > now {
                    running += 1;
                    last = Some(last.map_or(v.expires_at, |l| l.max(v.expires_at)));
                }
            }
            if page.len() < 500 {
                break;
            }
            offset += 500;
        }
    }
    Ok((running, last))
}

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
                .impersonation_log(&app, limit.clamp(1, 10_000))
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

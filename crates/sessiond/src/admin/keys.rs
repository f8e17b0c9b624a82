//! `sessiond keys`: API keys, signing keys and the master key.

use crate::cli::KeysCommand;
use crate::config::{Config, KeySource};
use crate::runtime::{self, SystemClock};
use anyhow::{Context, bail};
use serde_json::json;
use sessiond_core::apikey::ApiKeyId;
use sessiond_core::clock::Clock;
use sessiond_core::rotation;
use sessiond_crypto::seal::{Keyring, MasterKey};

use super::*;

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

pub(super) async fn rotate_master(cfg: &Config, retire_old: bool) -> anyhow::Result<()> {
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
pub(super) async fn unfinished_verifications(
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

//! Opening what every command needs: the store (migrated), the master keyring and the vault.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use sessiond_core::Timestamp;
use sessiond_core::clock::Clock;
use sessiond_core::login::LoginService;
use sessiond_core::signing::Signer;
use sessiond_core::store::Store;
use sessiond_core::tenancy::Tenancy;
use sessiond_core::vault::{KeyringReloader, Vault, VaultError};
use sessiond_crypto::seal::{Keyring, MasterKey};
use sessiond_store_postgres::{PoolOptions, SqlStore};
use sessiond_store_sqlite::SqliteStore;

use crate::config::{Config, KeySource};

/// The wall clock. Only the binary reads it; core and store code receive `now` as an argument.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Timestamp(ms)
    }
}

/// The concrete backend behind [`Runtime::store`], for what only the binary does with it.
#[derive(Clone)]
pub enum Db {
    Sqlite(Arc<SqliteStore>),
    Postgres(Arc<SqlStore>),
}

impl Db {
    pub fn backend_name(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// Connection and writer figures for `/metrics`.
    pub fn stats(&self) -> sessiond_http::DbStats {
        match self {
            Db::Sqlite(s) => {
                let (open, idle) = s.pool_stats();
                sessiond_http::DbStats {
                    open,
                    idle,
                    group_commit: Some(s.write_stats()),
                    session_cache: s.session_cache_stats(),
                }
            }
            Db::Postgres(s) => {
                let (open, idle) = s.pool_stats();
                sessiond_http::DbStats {
                    open,
                    idle,
                    group_commit: None,
                    session_cache: None,
                }
            }
        }
    }

    pub async fn close(&self) {
        match self {
            Db::Sqlite(s) => s.close().await,
            Db::Postgres(s) => s.close().await,
        }
    }

    fn store(&self) -> Arc<dyn Store> {
        match self {
            Db::Sqlite(s) => s.clone(),
            Db::Postgres(s) => s.clone(),
        }
    }
}

pub struct Runtime {
    pub store: Arc<dyn Store>,
    pub db: Db,
    pub vault: Arc<Vault>,
    pub tenancy: Arc<Tenancy>,
    pub signer: Arc<Signer>,
    pub login: Arc<LoginService>,
    pub key_source: KeySource,
}

/// Creates the data directory with mode 0700 (or tightens an existing one we own).
pub fn ensure_data_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create data directory {}", dir.display()))?;
    set_mode(dir, 0o700)
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot set permissions of {}", path.display()))
}

#[cfg(not(unix))]
fn set_mode(_: &Path, _: u32) -> anyhow::Result<()> {
    Ok(())
}

/// Writes the key file atomically with mode 0600 (temporary file, fsync, rename).
pub fn write_key_file(path: &Path, ring: &Keyring) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".master.key.{}", std::process::id()));
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts
            .open(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        f.write_all(ring.to_text().as_bytes())?;
        f.sync_all()?;
    }
    set_mode(&tmp, 0o600)?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot replace key file {}", path.display()))?;
    Ok(())
}

pub fn read_key_file(path: &Path) -> anyhow::Result<Keyring> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(path = %path.display(), "master key file is readable by group or others; chmod 600 it");
        }
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read master key file {}", path.display()))?;
    Keyring::parse(&text).with_context(|| format!("master key file {} is invalid", path.display()))
}

/// How often the key-file watcher looks at the file's size and modification time.
pub const KEY_FILE_POLL: Duration = Duration::from_secs(1);

/// Least time between two reads of the key file asked for by values sealed under an unknown key
/// (a forged value can name any key id).
const FORCED_RELOAD_INTERVAL: Duration = Duration::from_secs(15);

/// What identifies a version of the key file without reading it.
fn file_stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Keeps a node's keyring in step with the key file that `sessiond keys rotate-master` rewrites,
/// without any file I/O on a request thread. A thread of its own looks at the file's stamp every
/// [`KEY_FILE_POLL`] and reads it when it changed; a value sealed under a key this node lacks
/// only nudges the thread (through the returned reloader, which never blocks), and such nudges
/// force a read at most once per [`FORCED_RELOAD_INTERVAL`]. `deliver` receives each ring read
/// and returns false once nobody needs them any more, which ends the thread.
fn key_file_watcher(
    path: &Path,
    poll: Duration,
    deliver: Box<dyn Fn(Keyring) -> bool + Send>,
) -> KeyringReloader {
    let (nudge, nudges) = std::sync::mpsc::sync_channel::<()>(1);
    let path = path.to_path_buf();
    let spawned = std::thread::Builder::new()
        .name("key-file-watcher".into())
        .spawn(move || {
            use std::sync::mpsc::RecvTimeoutError;
            let mut seen = file_stamp(&path);
            let mut last_forced: Option<std::time::Instant> = None;
            loop {
                let forced = match nudges.recv_timeout(poll) {
                    Ok(()) => true,
                    Err(RecvTimeoutError::Timeout) => false,
                    Err(RecvTimeoutError::Disconnected) => return,
                };
                let stamp = file_stamp(&path);
                let force =
                    forced && last_forced.is_none_or(|t| t.elapsed() >= FORCED_RELOAD_INTERVAL);
                if stamp == seen && !force {
                    continue;
                }
                if force {
                    last_forced = Some(std::time::Instant::now());
                }
                seen = stamp;
                match read_key_file(&path) {
                    Ok(ring) => {
                        if !deliver(ring) {
                            return;
                        }
                    }
                    Err(e) => tracing::warn!(error = %format!("{e:#}"), "key file not reloaded"),
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot watch the key file; a rotated master key needs a restart");
    }
    Box::new(move || {
        // Full means a read is already asked for.
        let _ = nudge.try_send(());
    })
}

/// Whether a command may bring a new sessiond installation into being.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    /// `serve`, `apps create` and `migrate`: a missing data directory, database file or master key
    /// is created.
    Allowed,
    /// Every other administrative command: run where nothing exists yet, it would otherwise make an
    /// empty installation next to the real one, which looks exactly like data loss.
    Refused,
}

fn refuse_new(cfg: &Config, what: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{what}; this command does not create a new installation. Run it with the data directory \
         `sessiond serve` uses (--data-dir or SESSIOND_DATA_DIR; looked in {}), or create one with \
         `sessiond serve` or `sessiond apps create`",
        cfg.data_dir.display()
    )
}

/// Connects, migrates, loads the keyring and opens the vault. Refuses to continue with a wrong or
/// missing master key.
pub async fn open(cfg: &Config, create: Create) -> anyhow::Result<Runtime> {
    if create == Create::Refused
        && let Some(db) = sessiond_store_sqlite::path_from_url(&cfg.database_url)
        && !db.exists()
    {
        return Err(refuse_new(
            cfg,
            &format!("no sessiond database at {}", db.display()),
        ));
    }
    if cfg.uses_sqlite() || cfg.master_key.is_none() {
        ensure_data_dir(&cfg.data_dir)?;
    }
    let opts = PoolOptions {
        max_connections: cfg.database_max_connections,
        acquire_timeout: Duration::from_millis(cfg.database_acquire_timeout_ms),
        watch_auth_epoch: true,
    };
    let db = if cfg.uses_sqlite() {
        let store = SqliteStore::open_url_with(&cfg.database_url, cfg.session_cache_entries)
            .with_context(|| format!("cannot open the {} database", backend_name(cfg)))?;
        store
            .migrate()
            .await
            .context("cannot migrate the database")?;
        Db::Sqlite(Arc::new(store))
    } else {
        let store = SqlStore::connect(&cfg.database_url, &opts)
            .await
            .with_context(|| format!("cannot open the {} database", backend_name(cfg)))?;
        store
            .migrate()
            .await
            .context("cannot migrate the database")?;
        Db::Postgres(Arc::new(store))
    };
    let store = db.store();
    if create == Create::Refused && !Vault::is_initialized(store.as_ref()).await? {
        db.close().await;
        return Err(refuse_new(
            cfg,
            &format!(
                "the {} database holds no sessiond installation yet",
                backend_name(cfg)
            ),
        ));
    }

    let key_file = cfg.key_file();
    let (ring, source) = match &cfg.master_key {
        Some(ring) => (Keyring::parse(&ring.to_text())?, KeySource::Setting),
        None if key_file.exists() => (read_key_file(&key_file)?, KeySource::File(key_file.clone())),
        None => {
            if Vault::is_initialized(store.as_ref()).await? {
                bail!(
                    "no master key: the database is sealed, but {} does not exist and SESSIOND_MASTER_KEY is not set; \
                     restore the key file or set SESSIOND_MASTER_KEY",
                    key_file.display()
                );
            }
            let ring = Keyring::new(vec![MasterKey::generate()])?;
            // Written before the database seals anything with it, so a crash cannot leave a
            // database sealed under a key that exists nowhere.
            write_key_file(&key_file, &ring)?;
            tracing::info!(path = %key_file.display(), "generated a new master key file");
            (ring, KeySource::File(key_file.clone()))
        }
    };
    // The watcher starts before the vault exists and learns of it through this slot.
    let slot: Arc<std::sync::OnceLock<std::sync::Weak<Vault>>> = Arc::default();
    let reloader = match &source {
        KeySource::File(p) => {
            let slot = slot.clone();
            Some(key_file_watcher(
                p,
                KEY_FILE_POLL,
                Box::new(move |ring| match slot.get().map(std::sync::Weak::upgrade) {
                    Some(Some(vault)) => {
                        vault.replace_keyring(ring);
                        true
                    }
                    Some(None) => false,
                    None => true,
                }),
            ))
        }
        KeySource::Setting => None,
    };
    let vault = Vault::open(store.as_ref(), ring, reloader)
        .await
        .map_err(|e| match e {
            VaultError::WrongMasterKey { .. } => anyhow::anyhow!("refusing to start: {e}"),
            other => anyhow::anyhow!(other),
        })?;
    let vault = Arc::new(vault);
    let _ = slot.set(Arc::downgrade(&vault));
    let tenancy = Arc::new(
        Tenancy::new(store.clone(), vault.clone())
            .with_frontend_url(sessiond_http::dialect::clerk::frontend_url),
    );
    let signer = Arc::new(Signer::new(store.clone(), vault.clone()));
    let login = Arc::new(
        LoginService::new(store.clone(), vault.clone(), signer.clone())
            .with_profile_cache(cfg.user_cache_entries)
            .with_token_categories(sessiond_http::dialect::clerk::TOKEN_CATEGORIES),
    );
    Ok(Runtime {
        store,
        db,
        vault,
        tenancy,
        signer,
        login,
        key_source: source,
    })
}

fn backend_name(cfg: &Config) -> &'static str {
    if cfg.uses_sqlite() {
        "SQLite"
    } else {
        "PostgreSQL"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(std::time::Instant::now() < deadline, "{what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn the_key_file_is_reread_off_the_callers_thread_and_a_flood_reads_it_once() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("master.key");
        let first = Keyring::new(vec![MasterKey::generate()]).unwrap_or_else(|e| panic!("{e}"));
        write_key_file(&path, &first).unwrap_or_else(|e| panic!("{e}"));
        let got: Arc<std::sync::Mutex<Vec<(Keyring, std::thread::ThreadId)>>> = Arc::default();
        let sink = got.clone();
        let nudge = key_file_watcher(
            &path,
            Duration::from_millis(20),
            Box::new(move |ring| {
                if let Ok(mut g) = sink.lock() {
                    g.push((ring, std::thread::current().id()));
                }
                true
            }),
        );
        let reads = || got.lock().map(|g| g.len()).unwrap_or(0);

        // A flood of values under unknown keys: one forced read, on the watcher's thread.
        for _ in 0..1000 {
            nudge();
        }
        wait_for("the nudge reads the file", || reads() == 1);
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(reads(), 1, "a flood reads the file once per interval");
        let on = got
            .lock()
            .map(|g| g[0].1)
            .unwrap_or(std::thread::current().id());
        assert_ne!(
            on,
            std::thread::current().id(),
            "never on the caller's thread"
        );

        // A rotation rewrites the file: picked up without any nudge.
        let rotated = first.with_new_active(MasterKey::generate());
        std::thread::sleep(Duration::from_millis(20)); // a distinct modification time
        write_key_file(&path, &rotated).unwrap_or_else(|e| panic!("{e}"));
        wait_for("the rewritten file is read", || reads() == 2);
        let last = got
            .lock()
            .ok()
            .and_then(|g| g.last().map(|(r, _)| r.key_ids()));
        assert_eq!(last, Some(rotated.key_ids()));
    }
}

//! Configuration: defaults < TOML file < `SESSIOND_*` environment < command-line flags.
//!
//! [`Settings`] is the file/environment shape; [`Settings::validate`] turns it into a [`Config`]
//! the rest of the binary uses. `sessiond config example` prints [`example_toml`], which is built
//! from [`FIELDS`] and the defaults, and a test keeps both in step with the struct.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use sessiond_crypto::apikey::SecretKey;
use sessiond_crypto::seal::Keyring;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub listen: String,
    pub data_dir: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    pub database_max_connections: u32,
    pub database_acquire_timeout_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bootstrap_secret_key: Option<String>,
    pub log_format: LogFormat,
    pub log_level: String,
    pub shutdown_timeout_secs: u64,
    pub purge_interval_secs: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub equisoft_trusted_listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub equisoft_application: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    pub http_max_connections: usize,
    /// Opened user profiles kept in memory (0: none).
    pub user_cache_entries: usize,
    /// Sessions the embedded SQLite store keeps in memory with their users (0: none).
    pub session_cache_entries: usize,
    pub http_header_read_timeout_secs: u64,
    pub http_idle_timeout_secs: u64,
    pub http_request_timeout_secs: u64,
    pub rate_limit_per_app_per_sec: u32,
    pub rate_limit_burst_secs: u32,
    pub rate_limit_auth_failures_per_min: u32,
    pub webhook_timeout_secs: u64,
    pub webhook_retry_schedule: String,
    pub webhook_allow_private_networks: bool,
    pub console: String,
    pub console_idle_timeout_secs: u64,
    pub console_session_lifetime_secs: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: "127.0.0.1:7300".into(),
            data_dir: PathBuf::from("./sessiond-data"),
            database_url: None,
            database_max_connections: 16,
            database_acquire_timeout_ms: 1000,
            master_key: None,
            bootstrap_secret_key: None,
            log_format: LogFormat::Json,
            log_level: "info".into(),
            shutdown_timeout_secs: 10,
            purge_interval_secs: 3600,
            equisoft_trusted_listen: None,
            equisoft_application: None,
            public_url: None,
            http_max_connections: 10_000,
            user_cache_entries: sessiond_core::login::DEFAULT_PROFILE_CACHE_ENTRIES,
            session_cache_entries: sessiond_store_sqlite::DEFAULT_SESSION_CACHE_ENTRIES,
            http_header_read_timeout_secs: 10,
            http_idle_timeout_secs: 60,
            http_request_timeout_secs: 30,
            rate_limit_per_app_per_sec: 10_000,
            rate_limit_burst_secs: 2,
            rate_limit_auth_failures_per_min: 30,
            webhook_timeout_secs: 15,
            webhook_retry_schedule: "5s,5m,30m,2h,5h,10h,10h".into(),
            webhook_allow_private_networks: false,
            console: "main".into(),
            console_idle_timeout_secs: 1800,
            console_session_lifetime_secs: 43_200,
        }
    }
}

mod fields;
pub use fields::FIELDS;

/// Environment variables that are read but are not settings.
const NON_SETTING_ENV: &[&str] = &["SESSIOND_CONFIG"];
const NON_SETTING_ENV_PREFIXES: &[&str] = &["SESSIOND_TEST_"];

/// Overrides from command-line flags (only those given).
#[derive(Debug, Default, Clone, Serialize)]
pub struct FlagOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub equisoft_trusted_listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub equisoft_application: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub console: Option<String>,
}

/// A configuration error: one line naming the setting. Exit code 2.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

fn env_key_to_setting(var: &str) -> Option<String> {
    var.strip_prefix("SESSIOND_").map(str::to_ascii_lowercase)
}

/// `SESSIOND_*` variables that name no setting, so typos are reported instead of ignored.
pub fn unknown_env_vars() -> Vec<String> {
    let known: Vec<&str> = FIELDS.iter().map(|f| f.0).collect();
    std::env::vars()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with("SESSIOND_"))
        .filter(|k| !NON_SETTING_ENV.contains(&k.as_str()))
        .filter(|k| !NON_SETTING_ENV_PREFIXES.iter().any(|p| k.starts_with(p)))
        .filter(|k| env_key_to_setting(k).is_none_or(|s| !known.contains(&s.as_str())))
        .collect()
}

/// Loads settings from all layers.
pub fn load(file: Option<&Path>, flags: &FlagOverrides) -> Result<Settings, ConfigError> {
    let mut fig = Figment::from(Serialized::defaults(Settings::default()));
    if let Some(path) = file {
        if !path.is_file() {
            return Err(ConfigError(format!(
                "config file {} does not exist",
                path.display()
            )));
        }
        fig = fig.merge(Toml::file_exact(path));
    }
    let known: Vec<&'static str> = FIELDS.iter().map(|f| f.0).collect();
    fig = fig
        .merge(
            Env::prefixed("SESSIOND_")
                .filter(move |k| known.iter().any(|f| k.as_str().eq_ignore_ascii_case(f))),
        )
        .merge(Serialized::defaults(flags));
    fig.extract::<Settings>().map_err(|e| {
        let first = e.into_iter().next();
        match first {
            Some(err) => {
                let key = err.path.join(".");
                let source = err
                    .metadata
                    .as_ref()
                    .map(|m| format!(" (from {})", m.name))
                    .unwrap_or_default();
                if key.is_empty() {
                    ConfigError(format!("invalid configuration{source}: {}", err.kind))
                } else {
                    ConfigError(format!("invalid setting `{key}`{source}: {}", err.kind))
                }
            }
            None => ConfigError("invalid configuration".into()),
        }
    })
}

/// Where the master keyring came from; decides how rotation can update it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `master_key` / `SESSIOND_MASTER_KEY`.
    Setting,
    /// The key file in the data directory.
    File(PathBuf),
}

/// Validated runtime configuration.
#[derive(Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub database_max_connections: u32,
    pub database_acquire_timeout_ms: u64,
    /// `Some` when given as a setting; otherwise the key file is used.
    pub master_key: Option<Keyring>,
    pub bootstrap_secret_key: Option<SecretKey>,
    pub log_format: LogFormat,
    pub log_level: String,
    pub shutdown_timeout_secs: u64,
    pub purge_interval_secs: u64,
    /// The trusted, unauthenticated Equisoft listener and the application it acts for.
    pub equisoft_trusted: Option<(SocketAddr, sessiond_core::application::AppId)>,
    /// Base URL for links handed to browsers; `None` derives it from the bound address.
    pub public_url: Option<String>,
    pub http_max_connections: usize,
    /// Opened user profiles kept in memory (0: none).
    pub user_cache_entries: usize,
    /// Sessions the embedded SQLite store keeps in memory with their users (0: none).
    pub session_cache_entries: usize,
    pub http_header_read_timeout_secs: u64,
    pub http_idle_timeout_secs: u64,
    pub http_request_timeout_secs: u64,
    pub rate_limits: sessiond_http::limit::RateLimits,
    pub webhooks: WebhookConfig,
    pub console: ConsoleMount,
    pub console_sessions: sessiond_core::console::ConsoleSettings,
}

/// Where the operator console is served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleMount {
    /// Under `/console` on the main listener.
    Main,
    /// On a listener of its own.
    Listen(SocketAddr),
    Off,
}

/// How this node delivers webhooks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    pub timeout: std::time::Duration,
    pub retry_schedule_secs: Vec<u64>,
    pub allow_private_networks: bool,
}

/// `5s,5m,30m,2h` → seconds.
pub fn parse_schedule(s: &str) -> Result<Vec<u64>, String> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim) {
        let (n, unit) = part.split_at(part.len().saturating_sub(1));
        let mult = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            _ => return Err(format!("`{part}` is not a number of s, m or h")),
        };
        let n: u64 = n
            .parse()
            .map_err(|_| format!("`{part}` is not a number of s, m or h"))?;
        let secs = n * mult;
        if !(1..=86_400).contains(&secs) {
            return Err(format!("`{part}` must be between 1s and 24h"));
        }
        out.push(secs);
    }
    if out.len() > 20 {
        return Err("at most 20 retries".into());
    }
    Ok(out)
}

impl Config {
    pub fn key_file(&self) -> PathBuf {
        self.data_dir.join("master.key")
    }

    pub fn uses_sqlite(&self) -> bool {
        self.database_url.starts_with("sqlite:")
    }
}

impl Settings {
    pub fn validate(self) -> Result<Config, ConfigError> {
        let bad = |key: &str, why: String| ConfigError(format!("invalid setting `{key}`: {why}"));
        let listen: SocketAddr = self.listen.parse().map_err(|_| {
            bad(
                "listen",
                format!(
                    "`{}` is not an address:port such as 127.0.0.1:7300",
                    self.listen
                ),
            )
        })?;
        if self.data_dir.as_os_str().is_empty() {
            return Err(bad("data_dir", "must not be empty".into()));
        }
        let database_url = match self.database_url {
            Some(u) if u.trim().is_empty() => {
                return Err(bad("database_url", "must not be empty".into()));
            }
            Some(u) => {
                if sessiond_store_postgres::Backend::from_url(&u).is_none() {
                    return Err(bad(
                        "database_url",
                        "must start with sqlite: or postgres://".into(),
                    ));
                }
                u
            }
            None => format!("sqlite://{}", self.data_dir.join("sessiond.db").display()),
        };
        // Every bounded number, checked in one place: (setting, value, least, most).
        #[rustfmt::skip]
        let bounded = [
            ("database_max_connections", u64::from(self.database_max_connections), 1, 1000),
            ("database_acquire_timeout_ms", self.database_acquire_timeout_ms, 50, 60_000),
            ("shutdown_timeout_secs", self.shutdown_timeout_secs, 1, 300),
            ("webhook_timeout_secs", self.webhook_timeout_secs, 1, 60),
            ("purge_interval_secs", self.purge_interval_secs, 10, 86_400),
            ("http_header_read_timeout_secs", self.http_header_read_timeout_secs, 1, 3600),
            ("http_idle_timeout_secs", self.http_idle_timeout_secs, 1, 3600),
            ("http_request_timeout_secs", self.http_request_timeout_secs, 1, 3600),
            ("http_max_connections", self.http_max_connections as u64, 1, 1_000_000),
            ("user_cache_entries", self.user_cache_entries as u64, 0, 1_000_000),
            ("session_cache_entries", self.session_cache_entries as u64, 0, 10_000_000),
            ("console_idle_timeout_secs", self.console_idle_timeout_secs, 60, 86_400),
            ("console_session_lifetime_secs", self.console_session_lifetime_secs, 300, 30 * 86_400),
            ("rate_limit_burst_secs", u64::from(self.rate_limit_burst_secs), 1, 60),
        ];
        for (key, v, lo, hi) in bounded {
            let (v, lo, hi): (u64, u64, u64) = (v, lo, hi);
            if !(lo..=hi).contains(&v) {
                return Err(bad(key, format!("must be between {lo} and {hi}")));
            }
        }
        let master_key = self
            .master_key
            .as_deref()
            .map(Keyring::parse)
            .transpose()
            .map_err(|e| bad("master_key", e.to_string()))?;
        let bootstrap_secret_key = self
            .bootstrap_secret_key
            .as_deref()
            .map(SecretKey::parse_chosen)
            .transpose()
            .map_err(|e| bad("bootstrap_secret_key", e))?;
        if crate::telemetry::parse_filter(&self.log_level).is_none() {
            return Err(bad(
                "log_level",
                format!(
                    "`{}` is not a log filter such as info or sessiond=debug",
                    self.log_level
                ),
            ));
        }
        let webhooks = WebhookConfig {
            timeout: std::time::Duration::from_secs(self.webhook_timeout_secs),
            retry_schedule_secs: parse_schedule(&self.webhook_retry_schedule)
                .map_err(|e| bad("webhook_retry_schedule", e))?,
            allow_private_networks: self.webhook_allow_private_networks,
        };
        let equisoft_trusted = match (self.equisoft_trusted_listen, self.equisoft_application) {
            (None, None) => None,
            (Some(addr), Some(app)) => {
                let addr: SocketAddr = addr.parse().map_err(|_| {
                    bad(
                        "equisoft_trusted_listen",
                        format!("`{addr}` is not an address:port"),
                    )
                })?;
                if addr == listen && addr.port() != 0 {
                    return Err(bad(
                        "equisoft_trusted_listen",
                        "must differ from `listen`: the main listener always requires a key".into(),
                    ));
                }
                let app = sessiond_core::application::AppId::parse(&app).ok_or_else(|| {
                    bad(
                        "equisoft_application",
                        format!("`{app}` is not an application id (app_…)"),
                    )
                })?;
                Some((addr, app))
            }
            (Some(_), None) => {
                return Err(bad(
                    "equisoft_application",
                    "is required with equisoft_trusted_listen".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(bad(
                    "equisoft_trusted_listen",
                    "is required with equisoft_application".into(),
                ));
            }
        };
        let public_url = match self.public_url {
            None => None,
            Some(u) => {
                let u = u.trim_end_matches('/').to_owned();
                let ok = (u.starts_with("http://") || u.starts_with("https://"))
                    && u.len() <= 2048
                    && !u.contains(['?', '#', ' ', '"', '<', '>', '\''])
                    && u.split_once("://")
                        .is_some_and(|(_, r)| !r.is_empty() && !r.starts_with('/'));
                if !ok {
                    return Err(bad(
                        "public_url",
                        format!("`{u}` must be an absolute http(s) URL without query or fragment"),
                    ));
                }
                Some(u)
            }
        };
        let console = match self.console.as_str() {
            "main" => ConsoleMount::Main,
            "off" => ConsoleMount::Off,
            addr => {
                let a: SocketAddr = addr.parse().map_err(|_| {
                    bad(
                        "console",
                        format!("`{addr}` is not `main`, `off` or an address:port"),
                    )
                })?;
                if a == listen && a.port() != 0 {
                    return Err(bad(
                        "console",
                        "must differ from `listen` (use `main` to serve it there)".into(),
                    ));
                }
                ConsoleMount::Listen(a)
            }
        };
        Ok(Config {
            rate_limits: sessiond_http::limit::RateLimits {
                app_per_sec: self.rate_limit_per_app_per_sec,
                app_burst_secs: self.rate_limit_burst_secs,
                auth_failures_per_min: self.rate_limit_auth_failures_per_min,
            },
            http_max_connections: self.http_max_connections,
            user_cache_entries: self.user_cache_entries,
            session_cache_entries: self.session_cache_entries,
            http_header_read_timeout_secs: self.http_header_read_timeout_secs,
            http_idle_timeout_secs: self.http_idle_timeout_secs,
            http_request_timeout_secs: self.http_request_timeout_secs,
            public_url,
            equisoft_trusted,
            listen,
            data_dir: self.data_dir,
            database_url,
            database_max_connections: self.database_max_connections,
            database_acquire_timeout_ms: self.database_acquire_timeout_ms,
            master_key,
            bootstrap_secret_key,
            log_format: self.log_format,
            log_level: self.log_level,
            shutdown_timeout_secs: self.shutdown_timeout_secs,
            purge_interval_secs: self.purge_interval_secs,
            webhooks,
            console,
            console_sessions: sessiond_core::console::ConsoleSettings {
                idle_timeout_secs: self.console_idle_timeout_secs,
                max_lifetime_secs: self.console_session_lifetime_secs,
            },
        })
    }
}

/// A fully commented TOML file with every setting and its default.
pub fn example_toml() -> String {
    let defaults = toml::Table::try_from(Settings::default()).unwrap_or_default();
    let mut out = String::from(
        "# sessiond configuration. Every setting is shown with its default.\n\
         # Layering: defaults < this file (--config / SESSIOND_CONFIG) < SESSIOND_<KEY> environment < flags.\n\n",
    );
    for (key, doc, example) in FIELDS {
        for line in doc.lines() {
            out.push_str("# ");
            out.push_str(line);
            out.push('\n');
        }
        match (defaults.get(*key), example) {
            (Some(v), _) => out.push_str(&format!("{key} = {v}\n\n")),
            (None, Some(ex)) => out.push_str(&format!("# {key} = {ex}\n\n")),
            (None, None) => out.push_str(&format!("# {key} =\n\n")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_is_documented_once() {
        let all = Settings {
            equisoft_trusted_listen: Some("x".into()),
            equisoft_application: Some("x".into()),
            public_url: Some("x".into()),
            database_url: Some("x".into()),
            master_key: Some("x".into()),
            bootstrap_secret_key: Some("x".into()),
            ..Settings::default()
        };
        let table = toml::Table::try_from(all).unwrap_or_default();
        let mut keys: Vec<&str> = table.keys().map(String::as_str).collect();
        keys.sort_unstable();
        let mut documented: Vec<&str> = FIELDS.iter().map(|f| f.0).collect();
        documented.sort_unstable();
        assert_eq!(keys, documented);
    }

    #[test]
    fn example_parses_back_to_the_defaults() {
        let text = example_toml();
        let parsed: Settings = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let again = toml::Table::try_from(parsed).unwrap_or_default();
        assert_eq!(
            again,
            toml::Table::try_from(Settings::default()).unwrap_or_default()
        );
        assert!(text.contains("# database_url = "));
    }

    #[test]
    fn validation_names_the_setting() {
        let s = Settings {
            listen: "nope".into(),
            ..Settings::default()
        };
        let e = s.validate().err().map(|e| e.0).unwrap_or_default();
        assert!(e.starts_with("invalid setting `listen`"), "{e}");
        let s = Settings {
            database_url: Some("mysql://x".into()),
            ..Settings::default()
        };
        let e = s.validate().err().map(|e| e.0).unwrap_or_default();
        assert!(e.contains("`database_url`"), "{e}");
    }

    #[test]
    fn default_database_is_sqlite_in_data_dir() {
        let c = Settings::default()
            .validate()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.database_url, "sqlite://./sessiond-data/sessiond.db");
        assert_eq!(c.listen.to_string(), "127.0.0.1:7300");
    }
}

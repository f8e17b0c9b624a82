//! Applications (tenants). An application owns its keys, sessions, users, signing keys and
//! settings; nothing crosses from one application to another.

use crate::clock::Timestamp;
use crate::error::{Error, Result};
pub use sessiond_crypto::apikey::KeyEnvironment;

/// Id of an application (`app_…`).
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct AppId(pub String);

impl AppId {
    pub fn new() -> Self {
        AppId(sessiond_crypto::ids::new_id("app"))
    }
    pub fn parse(s: &str) -> Option<Self> {
        sessiond_crypto::ids::is_id(s, "app").then(|| AppId(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for AppId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for AppId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Per-application settings. How they are stored (and read back from rows written by older
/// versions) is the storage backends' business.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSettings {
    /// Absolute lifetime of a login session, in seconds. Default 7 days.
    pub session_max_lifetime_secs: u64,
    /// Idle time after which a login session stops being usable, in seconds; `None` is off (the
    /// default).
    pub inactivity_timeout_secs: Option<u64>,
    /// Time after the last activity when an unused session is abandoned, in seconds. Default 30
    /// days.
    pub abandon_period_secs: u64,
    /// Lifetime of a minted session token, in seconds. Default 60.
    pub session_token_lifetime_secs: u64,
    /// How long identity-verification results are kept before automatic redaction, in seconds.
    /// Default 30 days.
    pub verification_retention_secs: u64,
    /// How long an unfinished verification session (and its launch link) lasts, in seconds.
    /// Default 1 hour.
    pub verification_session_lifetime_secs: u64,
    /// Which generation of the identity-verification API answers on the paths both generations
    /// share (a session's read, its results, cancel, the provider listing). Default B.
    pub verification_generation: VerificationGeneration,
    /// Frontend URL of the application. Its host is encoded in the publishable key and is the
    /// `iss` of session tokens. Default: see [`FrontendUrlFn`].
    pub frontend_url: String,
    /// Origins (`scheme://host[:port]`) that hosted pages may redirect to. Default none.
    pub allowed_redirect_origins: Vec<String>,
    /// Requests per second this application may make on each node; `None` is the server's
    /// default, 0 is unlimited.
    pub rate_limit_per_sec: Option<u32>,
}

/// The two generations of the identity-verification API. They differ in paths, shapes and
/// state names (each dialect spells them); the sessions under both are the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerificationGeneration {
    /// The older generation.
    A,
    /// The newer generation, the default.
    B,
}

pub const DAY_SECS: u64 = 86_400;
/// Upper bound for any lifetime setting: ten years, also the longest token lifetime accepted.
pub const MAX_LIFETIME_SECS: u64 = 315_360_000;
const MAX_ORIGINS: usize = 100;
/// Largest per-application rate limit that can be set.
pub const MAX_RATE_PER_SEC: u32 = 10_000_000;
const MAX_URL_LEN: usize = 2048;

impl Default for AppSettings {
    fn default() -> Self {
        AppSettings {
            session_max_lifetime_secs: 7 * DAY_SECS,
            inactivity_timeout_secs: None,
            abandon_period_secs: 30 * DAY_SECS,
            session_token_lifetime_secs: 60,
            verification_retention_secs: 30 * DAY_SECS,
            verification_session_lifetime_secs: 3600,
            verification_generation: VerificationGeneration::B,
            frontend_url: String::new(),
            allowed_redirect_origins: Vec::new(),
            rate_limit_per_sec: None,
        }
    }
}

impl AppSettings {
    /// Defaults for a new application, with its frontend URL derived from its id.
    pub fn defaults_for(id: &AppId) -> Self {
        AppSettings {
            frontend_url: default_frontend_url(id),
            ..Self::default()
        }
    }

    /// Checks every field; the error names the offending setting.
    pub fn validate(&self) -> Result<()> {
        let lifetime = |name: &str, v: u64, min: u64| -> Result<()> {
            if v < min || v > MAX_LIFETIME_SECS {
                return Err(Error::invalid(
                    name,
                    format!("must be between {min} and {MAX_LIFETIME_SECS} seconds"),
                ));
            }
            Ok(())
        };
        lifetime("session_max_lifetime", self.session_max_lifetime_secs, 60)?;
        if let Some(t) = self.inactivity_timeout_secs {
            lifetime("inactivity_timeout", t, 60)?;
        }
        lifetime("abandon_period", self.abandon_period_secs, 60)?;
        lifetime(
            "session_token_lifetime",
            self.session_token_lifetime_secs,
            30,
        )?;
        lifetime(
            "verification_retention",
            self.verification_retention_secs,
            60,
        )?;
        lifetime(
            "verification_session_lifetime",
            self.verification_session_lifetime_secs,
            60,
        )?;
        validate_origin_like("frontend_url", &self.frontend_url)?;
        if self
            .rate_limit_per_sec
            .is_some_and(|r| r > MAX_RATE_PER_SEC)
        {
            return Err(Error::invalid(
                "rate_limit",
                format!("must be at most {MAX_RATE_PER_SEC} requests per second (0 is unlimited)"),
            ));
        }
        if self.allowed_redirect_origins.len() > MAX_ORIGINS {
            return Err(Error::invalid(
                "allowed_redirect_origins",
                format!("at most {MAX_ORIGINS} origins"),
            ));
        }
        for o in &self.allowed_redirect_origins {
            validate_origin_like("allowed_redirect_origins", o)?;
        }
        Ok(())
    }

    /// The frontend host (`frontend_url` without scheme), as encoded in the publishable key.
    pub fn frontend_host(&self) -> &str {
        self.frontend_url
            .split_once("://")
            .map_or(self.frontend_url.as_str(), |(_, rest)| rest)
    }
}

/// How a new application's frontend URL is made from its id. The host is encoded in the
/// publishable key and is the issuer of the application's tokens, so the server picks the shape
/// that the token-verifying clients it serves accept (`Tenancy::with_frontend_url`).
pub type FrontendUrlFn = fn(&AppId) -> String;

/// `https://<app id>.sessiond.localhost`, the id lowercased with `_` as `-` (a valid host
/// label). Applications keep the URL they were created with.
pub fn default_frontend_url(id: &AppId) -> String {
    format!(
        "https://{}.sessiond.localhost",
        id.as_str().to_ascii_lowercase().replace('_', "-")
    )
}

/// An origin: `http`/`https`, a host of safe characters, an optional port, and nothing else.
fn validate_origin_like(field: &str, v: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::invalid(field, format!("`{v}` {why}")));
    if v.len() > MAX_URL_LEN {
        return bad("is too long");
    }
    let Some((scheme, rest)) = v.split_once("://") else {
        return bad("must start with https:// or http://");
    };
    if scheme != "https" && scheme != "http" {
        return bad("must start with https:// or http://");
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || p.is_empty() => (h, Some(p)),
        _ => (rest, None),
    };
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    {
        return bad("must be an origin (scheme://host[:port]) with no path");
    }
    if let Some(p) = port
        && p.parse::<u16>().is_err()
    {
        return bad("has an invalid port");
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Application {
    pub id: AppId,
    pub name: String,
    pub environment: KeyEnvironment,
    pub settings: AppSettings,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Optimistic-concurrency version; every successful update increments it.
    pub version: i64,
}

impl Application {
    /// `pk_<env>_` + base64(`<frontend host>$`), the format front-end SDKs decode to find the
    /// frontend host. Derived, never stored, so it always follows the settings.
    pub fn publishable_key(&self) -> String {
        use base64::Engine as _;
        let raw = format!("{}$", self.settings.frontend_host());
        format!(
            "pk_{}_{}",
            self.environment.as_str(),
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// Validates an application name: 1–100 characters, no control characters.
pub fn validate_name(name: &str) -> Result<()> {
    let n = name.chars().count();
    if n == 0 || n > 100 || name.chars().any(char::is_control) || name.trim() != name {
        return Err(Error::invalid(
            "name",
            "must be 1 to 100 characters, without control characters or surrounding spaces",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_documented_values() {
        let id = AppId::new();
        let s = AppSettings::defaults_for(&id);
        assert!(s.validate().is_ok(), "{:?}", s.validate());
        assert_eq!(s.session_max_lifetime_secs, 604_800);
        assert_eq!(s.inactivity_timeout_secs, None);
        assert_eq!(s.abandon_period_secs, 2_592_000);
        assert_eq!(s.session_token_lifetime_secs, 60);
        assert_eq!(s.verification_retention_secs, 2_592_000);
        assert!(s.frontend_url.starts_with("https://app-"));
        assert!(s.frontend_url.ends_with(".sessiond.localhost"));
    }

    #[test]
    fn publishable_key_encodes_frontend_host() {
        let app = Application {
            id: AppId::new(),
            name: "a".into(),
            environment: KeyEnvironment::Test,
            settings: AppSettings {
                frontend_url: "https://accounts.example.com".into(),
                ..AppSettings::default()
            },
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
            version: 1,
        };
        // base64("accounts.example.com$")
        assert_eq!(
            app.publishable_key(),
            "pk_test_YWNjb3VudHMuZXhhbXBsZS5jb20k"
        );
    }

    #[test]
    fn validation_names_the_setting() {
        let mut s = AppSettings::defaults_for(&AppId::new());
        s.session_token_lifetime_secs = 5;
        let e = s
            .validate()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("session_token_lifetime"), "{e}");
        let mut s = AppSettings::defaults_for(&AppId::new());
        s.allowed_redirect_origins = vec!["https://ok.example:8443".into(), "javascript:x".into()];
        let e = s
            .validate()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("allowed_redirect_origins"), "{e}");
        s.allowed_redirect_origins = vec!["https://ok.example/path".into()];
        assert!(s.validate().is_err());
        s.allowed_redirect_origins = vec!["http://localhost:3000".into()];
        assert!(s.validate().is_ok());
    }

    #[test]
    fn names_are_validated() {
        assert!(validate_name("Acme").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name(" x").is_err());
        assert!(validate_name("a\nb").is_err());
        assert!(validate_name(&"x".repeat(101)).is_err());
    }
}

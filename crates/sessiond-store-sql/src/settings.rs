//! An application's settings as both backends store them: one JSON document per application.
//!
//! The stored names are fixed by rows already written and are not core's: the verification
//! generation is stored under its historical key, `trinsic_generation`, with the values `connect`
//! (generation A) and `api` (generation B). Every field has a default, so a row written before a
//! setting existed reads cleanly; an unknown field is refused (it would be a setting this build
//! cannot honour).

use serde::{Deserialize, Serialize};
use sessiond_core::application::{AppSettings, VerificationGeneration};
use sessiond_core::store::{StoreError, StoreResult};

#[derive(Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Stored {
    session_max_lifetime_secs: u64,
    inactivity_timeout_secs: Option<u64>,
    abandon_period_secs: u64,
    session_token_lifetime_secs: u64,
    verification_retention_secs: u64,
    verification_session_lifetime_secs: u64,
    trinsic_generation: Generation,
    frontend_url: String,
    allowed_redirect_origins: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rate_limit_per_sec: Option<u32>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Generation {
    Connect,
    Api,
}

impl From<&AppSettings> for Stored {
    fn from(s: &AppSettings) -> Self {
        // Destructured so that a new setting fails to compile until it is stored.
        let AppSettings {
            session_max_lifetime_secs,
            inactivity_timeout_secs,
            abandon_period_secs,
            session_token_lifetime_secs,
            verification_retention_secs,
            verification_session_lifetime_secs,
            verification_generation,
            frontend_url,
            allowed_redirect_origins,
            rate_limit_per_sec,
        } = s.clone();
        Stored {
            session_max_lifetime_secs,
            inactivity_timeout_secs,
            abandon_period_secs,
            session_token_lifetime_secs,
            verification_retention_secs,
            verification_session_lifetime_secs,
            trinsic_generation: match verification_generation {
                VerificationGeneration::A => Generation::Connect,
                VerificationGeneration::B => Generation::Api,
            },
            frontend_url,
            allowed_redirect_origins,
            rate_limit_per_sec,
        }
    }
}

impl From<Stored> for AppSettings {
    fn from(s: Stored) -> Self {
        AppSettings {
            session_max_lifetime_secs: s.session_max_lifetime_secs,
            inactivity_timeout_secs: s.inactivity_timeout_secs,
            abandon_period_secs: s.abandon_period_secs,
            session_token_lifetime_secs: s.session_token_lifetime_secs,
            verification_retention_secs: s.verification_retention_secs,
            verification_session_lifetime_secs: s.verification_session_lifetime_secs,
            verification_generation: match s.trinsic_generation {
                Generation::Connect => VerificationGeneration::A,
                Generation::Api => VerificationGeneration::B,
            },
            frontend_url: s.frontend_url,
            allowed_redirect_origins: s.allowed_redirect_origins,
            rate_limit_per_sec: s.rate_limit_per_sec,
        }
    }
}

impl Default for Stored {
    fn default() -> Self {
        Stored::from(&AppSettings::default())
    }
}

/// The settings as stored.
pub fn to_json(s: &AppSettings) -> StoreResult<String> {
    serde_json::to_string(&Stored::from(s))
        .map_err(|e| StoreError::backend_caused("cannot encode application settings", e))
}

/// Stored settings back.
pub fn from_json(text: &str) -> StoreResult<AppSettings> {
    serde_json::from_str::<Stored>(text)
        .map(AppSettings::from)
        .map_err(|e| crate::rows::corrupt("application settings", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_under_their_stored_names() {
        let s = AppSettings {
            verification_generation: VerificationGeneration::A,
            rate_limit_per_sec: Some(7),
            allowed_redirect_origins: vec!["https://rp.example".into()],
            ..AppSettings::default()
        };
        let text = to_json(&s).unwrap_or_default();
        assert!(
            text.contains("\"trinsic_generation\":\"connect\""),
            "{text}"
        );
        assert_eq!(from_json(&text), Ok(s));
    }

    #[test]
    fn rows_of_older_versions_read_with_defaults_and_unknown_fields_are_refused() {
        // What an early build wrote: no generation, no origins, no rate limit.
        let old = r#"{"session_max_lifetime_secs":60,"inactivity_timeout_secs":null,
            "abandon_period_secs":120,"session_token_lifetime_secs":60,
            "verification_retention_secs":3600,"verification_session_lifetime_secs":600,
            "frontend_url":"https://x.example"}"#;
        let s = from_json(old).unwrap_or_default();
        assert_eq!(s.session_max_lifetime_secs, 60);
        assert_eq!(s.verification_generation, VerificationGeneration::B);
        assert_eq!(s.rate_limit_per_sec, None);
        assert!(from_json(r#"{"trinsic_generation":"api"}"#).is_ok());
        assert!(from_json(r#"{"trinsic_generation":"b"}"#).is_err());
        assert!(from_json(r#"{"no_such_setting":1}"#).is_err());
    }
}

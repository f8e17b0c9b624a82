//! Secret API keys: generation, parsing and the keyed hash under which they are stored.
//!
//! A secret key is `sk_test_` or `sk_live_` followed by 44 base62 characters (256 random bits).
//! The database only ever sees `HMAC-SHA256(pepper, key)`; the pepper itself is sealed under the
//! master key, so a stolen database alone yields neither keys nor a way to test guesses. Because the
//! keys are high-entropy, a fast keyed hash is the right tool (a password KDF would only burn CPU).

use aws_lc_rs::hmac;
use zeroize::Zeroizing;

/// Deployment environment of an application; it is visible in every key it issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyEnvironment {
    Test,
    Live,
}

impl KeyEnvironment {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyEnvironment::Test => "test",
            KeyEnvironment::Live => "live",
        }
    }
}

/// Length of the random part of a secret key.
const SECRET_BODY_LEN: usize = 44;
/// Longest bearer value we even try to hash; anything longer is rejected as malformed.
pub const MAX_SECRET_KEY_LEN: usize = 128;

/// A plaintext secret key. Its `Debug` never prints the key.
#[derive(Clone)]
pub struct SecretKey(Zeroizing<String>);

impl SecretKey {
    /// Generates a new random key for `env`.
    pub fn generate(env: KeyEnvironment) -> Self {
        let body = crate::ids::base62_bytes(&crate::random_bytes::<32>());
        SecretKey(Zeroizing::new(format!("sk_{}_{}", env.as_str(), body)))
    }

    /// Accepts an operator-chosen key (for automation, e.g. `SESSIOND_BOOTSTRAP_SECRET_KEY`).
    /// It must look like a secret key: `sk_test_`/`sk_live_` and at least 24 characters of
    /// `[A-Za-z0-9_-]` after the prefix, so that a weak or mistyped value is refused.
    pub fn parse(s: &str) -> Result<Self, KeyFormatError> {
        let (_, body) = split(s).ok_or(KeyFormatError)?;
        if body.len() < 24 {
            return Err(KeyFormatError);
        }
        Ok(SecretKey(Zeroizing::new(s.to_owned())))
    }

    /// For keys an operator chooses (a bootstrap key): also refuses values that are easy to
    /// guess, with the reason. Generated keys carry 190 bits; a chosen one must come close.
    pub fn parse_chosen(s: &str) -> Result<Self, String> {
        let key = Self::parse(s).map_err(|e| e.to_string())?;
        let (_, body) = split(s).ok_or_else(|| KeyFormatError.to_string())?;
        check_strength(body)?;
        Ok(key)
    }

    pub fn environment(&self) -> KeyEnvironment {
        // A SecretKey is only constructed from a validated string.
        split(&self.0).map_or(KeyEnvironment::Test, |(e, _)| e)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A short, non-secret hint for listings: the prefix and the last four characters.
    pub fn hint(&self) -> String {
        let s: &str = &self.0;
        let tail = &s[s.len().saturating_sub(4)..];
        format!("sk_{}_…{}", self.environment().as_str(), tail)
    }
}

/// Least estimated entropy of an operator-chosen key body, in bits.
pub const MIN_CHOSEN_KEY_BITS: f64 = 128.0;

/// Estimates the entropy of `body` from its own character frequencies (so repeated or few
/// characters score low) and refuses bodies dominated by runs and sequences (`aaaa`, `abcd`,
/// `1234`), which that estimate would overrate.
fn check_strength(body: &str) -> Result<(), String> {
    let chars: Vec<char> = body.chars().collect();
    let n = chars.len() as f64;
    let mut counts = std::collections::HashMap::new();
    for c in &chars {
        *counts.entry(*c).or_insert(0u32) += 1;
    }
    let per_char: f64 = counts
        .values()
        .map(|&k| {
            let p = f64::from(k) / n;
            -p * p.log2()
        })
        .sum();
    let bits = per_char * n;
    let steps = chars
        .windows(2)
        .filter(|w| (i64::from(u32::from(w[1])) - i64::from(u32::from(w[0]))).abs() <= 1)
        .count();
    if steps * 2 > chars.len() {
        return Err(
            "is mostly runs or sequences of characters; use a random value \
                    (e.g. `sk_test_` followed by `openssl rand -hex 32`)"
                .into(),
        );
    }
    if bits < MIN_CHOSEN_KEY_BITS {
        return Err(format!(
            "is guessable: about {bits:.0} bits of entropy, {MIN_CHOSEN_KEY_BITS:.0} needed; use \
             a random value (e.g. `sk_test_` followed by `openssl rand -hex 32`)"
        ));
    }
    Ok(())
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey({})", self.hint())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "a secret key is `sk_test_` or `sk_live_` followed by at least 24 characters of [A-Za-z0-9_-]"
)]
pub struct KeyFormatError;

/// Splits a bearer value into environment and body when it has the shape of a secret key.
pub fn split(s: &str) -> Option<(KeyEnvironment, &str)> {
    if s.len() > MAX_SECRET_KEY_LEN {
        return None;
    }
    let (env, body) = if let Some(b) = s.strip_prefix("sk_test_") {
        (KeyEnvironment::Test, b)
    } else if let Some(b) = s.strip_prefix("sk_live_") {
        (KeyEnvironment::Live, b)
    } else {
        return None;
    };
    let ok = !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    ok.then_some((env, body))
}

/// Default length check used by [`SecretKey::generate`]; exported for tests of the format.
pub const GENERATED_LEN: usize = 8 + SECRET_BODY_LEN;

/// Computes the stored form of a secret key. Holds the pepper; its `Debug` hides it.
pub struct KeyHasher {
    key: hmac::Key,
}

impl KeyHasher {
    pub fn new(pepper: &[u8]) -> Self {
        KeyHasher {
            key: hmac::Key::new(hmac::HMAC_SHA256, pepper),
        }
    }

    /// The 32-byte keyed hash of a bearer value. Lookups use it as an index key.
    pub fn hash(&self, presented: &str) -> [u8; 32] {
        let tag = hmac::sign(&self.key, presented.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Constant-time check that `presented` hashes to `stored`.
    pub fn verify(&self, presented: &str, stored: &[u8]) -> bool {
        hmac::verify(&self.key, presented.as_bytes(), stored).is_ok()
    }
}

impl std::fmt::Debug for KeyHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyHasher(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_the_documented_shape() {
        let k = SecretKey::generate(KeyEnvironment::Test);
        assert!(k.expose().starts_with("sk_test_"));
        assert_eq!(k.expose().len(), GENERATED_LEN);
        assert!(split(k.expose()).is_some());
        let live = SecretKey::generate(KeyEnvironment::Live);
        assert_eq!(live.environment(), KeyEnvironment::Live);
        assert!(!format!("{k:?}").contains(&k.expose()[10..]));
    }

    #[test]
    fn parse_refuses_weak_or_foreign_values() {
        assert!(SecretKey::parse("sk_test_short").is_err());
        assert!(SecretKey::parse("pk_test_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").is_err());
        assert!(SecretKey::parse("sk_test_aaaaaaaa aaaaaaaaaaaaaaaaaaaaaa").is_err());
        assert!(SecretKey::parse("sk_live_abcdefghijklmnopqrstuvwxyz012345").is_ok());
    }

    #[test]
    fn chosen_keys_must_be_hard_to_guess() {
        for weak in [
            "sk_test_aaaaaaaaaaaaaaaaaaaaaaaa",
            "sk_test_abcdefghijklmnopqrstuvwxyz012345",
            "sk_test_change-me-to-a-long-random-value",
            "sk_test_123456781234567812345678",
        ] {
            assert!(SecretKey::parse_chosen(weak).is_err(), "{weak}");
        }
        let generated = SecretKey::generate(KeyEnvironment::Test);
        assert!(SecretKey::parse_chosen(generated.expose()).is_ok());
        let hex = "sk_test_3f9a1c07e45b28d6a90f13c7b2e84d5f6a1907c3e2b8d45f0a6c19e73b2d8f4a";
        assert!(SecretKey::parse_chosen(hex).is_ok(), "64 random hex digits");
    }

    #[test]
    fn hash_is_keyed_and_verifies() {
        let a = KeyHasher::new(b"pepper-a");
        let b = KeyHasher::new(b"pepper-b");
        let h = a.hash("sk_test_x");
        assert_ne!(h, b.hash("sk_test_x"));
        assert!(a.verify("sk_test_x", &h));
        assert!(!a.verify("sk_test_y", &h));
        assert!(!b.verify("sk_test_x", &h));
    }
}

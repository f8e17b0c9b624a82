//! Pure cryptographic building blocks of sessiond. Nothing here performs I/O or reads the clock.
//!
//! # Layout
//! - [`ids`]: unguessable, prefixed identifiers (`app_…`, `sess_…`) and base62.
//! - [`apikey`]: secret-key generation and the keyed hash under which keys are stored.
//! - [`seal`]: the AEAD envelope used for every secret at rest, and the master [`seal::Keyring`].
//! - [`jwt`]: compact JWS signing and verification with keys parsed once, JWKs, SPKI PEM.
//! - [`ct`]: constant-time comparison.
//! - [`password`]: Argon2id password digests and checks of imported bcrypt/Argon2 digests.
//! - [`recipient`]: sealing to a key the server does not keep (verification results).
//! - [`webhook`]: Standard Webhooks secrets and signatures.
//! - [`totp`]: time-based one-time passwords (RFC 6238) for operators' second factor.

pub mod apikey;
pub mod ct;
pub mod ids;
pub mod jwt;
pub mod password;
pub mod recipient;
pub mod seal;
pub mod totp;
pub mod webhook;

/// Fills `buf` from the operating system's CSPRNG.
///
/// A failing OS RNG leaves no safe way to continue issuing ids or keys, so this aborts the
/// calling operation with a panic rather than returning predictable bytes.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    #[allow(clippy::expect_used)]
    aws_lc_rs::rand::fill(&mut buf).expect("operating-system random number generator failed");
    buf
}

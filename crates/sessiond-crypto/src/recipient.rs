//! Sealing to a key the server does not keep.
//!
//! Identity-verification results must be writable by the server when a provider finishes, yet
//! unreadable by anyone who later holds the database and the master key. So results are sealed
//! to an X25519 public key whose private half is derived from a bearer secret (the results access
//! key) that sessiond hands out and then forgets; only its public half and a keyed hash stay at
//! rest.
//!
//! The construction is the DHKEM(X25519, HKDF-SHA256) shape of HPKE base mode (RFC 9180) with
//! XChaCha20-Poly1305 as the AEAD:
//!
//! ```text
//! sk       = HKDF-SHA256(ikm = secret, info = "sessiond recipient x25519 v1")       (32 bytes)
//! pk       = X25519(sk, 9)
//! seal(m)  : e = fresh X25519 key; z = X25519(e, pk)
//!            okm = HKDF-SHA256(ikm = z, salt = epk || pk, info = "sessiond recipient aead v1")
//!            key = okm[0..32], nonce = okm[32..56]
//!            out = 0x02 || epk (32) || XChaCha20-Poly1305(key, nonce, m, aad = context)
//! ```
//!
//! The ephemeral key makes every (key, nonce) pair single-use, so the derived nonce is safe.
//! `context` binds a blob to its row (e.g. the session id) exactly as the master-key envelope does.

use aws_lc_rs::agreement::{self, PrivateKey, UnparsedPublicKey, X25519};
use aws_lc_rs::hkdf;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

const VERSION: u8 = 0x02;
const PK_LEN: usize = 32;
const TAG_LEN: usize = 16;
const KEY_INFO: &[u8] = b"sessiond recipient x25519 v1";
const AEAD_INFO: &[u8] = b"sessiond recipient aead v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecipientError {
    #[error("sealed value is malformed")]
    Malformed,
    #[error("sealed value does not open with this key")]
    WrongKey,
}

struct Len(usize);
impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

fn hkdf_expand(ikm: &[u8], salt: &[u8], info: &[u8], out: &mut [u8]) {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(ikm);
    // Lengths here are fixed and far below HKDF's 255·32-byte limit.
    #[allow(clippy::expect_used)]
    prk.expand(&[info], Len(out.len()))
        .and_then(|okm| okm.fill(out))
        .expect("HKDF output length is within bounds");
}

/// The private half, derived from a bearer secret each time it is needed and never stored.
pub struct RecipientKey {
    private: PrivateKey,
    public: [u8; PK_LEN],
}

impl RecipientKey {
    /// Derives the key pair of `secret` (the bytes of a results or attachment access key).
    pub fn derive(secret: &[u8]) -> Self {
        let mut sk = Zeroizing::new([0u8; 32]);
        hkdf_expand(secret, &[], KEY_INFO, sk.as_mut());
        // Any 32 bytes form a valid X25519 scalar (it is clamped), so neither call can fail.
        #[allow(clippy::expect_used)]
        let private = PrivateKey::from_private_key(&X25519, sk.as_ref())
            .expect("32 bytes are a valid X25519 private key");
        #[allow(clippy::expect_used)]
        let public_key = private
            .compute_public_key()
            .expect("X25519 public key derivation");
        let mut public = [0u8; PK_LEN];
        public.copy_from_slice(public_key.as_ref());
        RecipientKey { private, public }
    }

    /// The public half, which is what may be stored.
    pub fn public(&self) -> [u8; PK_LEN] {
        self.public
    }

    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, RecipientError> {
        if sealed.len() < 1 + PK_LEN + TAG_LEN || sealed[0] != VERSION {
            return Err(RecipientError::Malformed);
        }
        let epk = &sealed[1..1 + PK_LEN];
        let cipher = agreement::agree(
            &self.private,
            UnparsedPublicKey::new(&X25519, epk),
            RecipientError::WrongKey,
            |z| Ok(aead_for(z, epk, &self.public)),
        )?;
        let (aead, nonce) = cipher;
        aead.decrypt(
            &nonce,
            Payload {
                msg: &sealed[1 + PK_LEN..],
                aad: context.as_bytes(),
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| RecipientError::WrongKey)
    }
}

fn aead_for(z: &[u8], epk: &[u8], pk: &[u8]) -> (XChaCha20Poly1305, XNonce) {
    let mut salt = [0u8; 2 * PK_LEN];
    salt[..PK_LEN].copy_from_slice(epk);
    salt[PK_LEN..].copy_from_slice(pk);
    let mut okm = Zeroizing::new([0u8; 56]);
    hkdf_expand(z, &salt, AEAD_INFO, okm.as_mut());
    let key: [u8; 32] = okm[..32].try_into().unwrap_or([0u8; 32]);
    let nonce = XNonce::from(<[u8; 24]>::try_from(&okm[32..56]).unwrap_or([0u8; 24]));
    (XChaCha20Poly1305::new(&key.into()), nonce)
}

/// Seals `plaintext` so that only the holder of the secret behind `public` can open it.
/// Fails only if `public` is not a usable X25519 key.
pub fn seal_to(
    public: &[u8; PK_LEN],
    context: &str,
    plaintext: &[u8],
) -> Result<Vec<u8>, RecipientError> {
    let eph = PrivateKey::generate(&X25519).map_err(|_| RecipientError::Malformed)?;
    let epk_key = eph
        .compute_public_key()
        .map_err(|_| RecipientError::Malformed)?;
    let epk: [u8; PK_LEN] = epk_key
        .as_ref()
        .try_into()
        .map_err(|_| RecipientError::Malformed)?;
    let (aead, nonce) = agreement::agree(
        &eph,
        UnparsedPublicKey::new(&X25519, public),
        RecipientError::Malformed,
        |z| Ok(aead_for(z, &epk, public)),
    )?;
    let ct = aead
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad: context.as_bytes(),
            },
        )
        .map_err(|_| RecipientError::Malformed)?;
    let mut out = Vec::with_capacity(1 + PK_LEN + ct.len());
    out.push(VERSION);
    out.extend_from_slice(&epk);
    out.extend_from_slice(&ct);
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_binding() {
        let k = RecipientKey::derive(b"results access key");
        let sealed = seal_to(&k.public(), "ctx:1", b"identity").unwrap();
        assert_eq!(k.open("ctx:1", &sealed).unwrap().as_slice(), b"identity");
        // Another context (row) or another secret cannot open it.
        assert_eq!(k.open("ctx:2", &sealed), Err(RecipientError::WrongKey));
        let other = RecipientKey::derive(b"another key");
        assert_eq!(other.open("ctx:1", &sealed), Err(RecipientError::WrongKey));
        // Tampering fails.
        let mut bad = sealed.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(k.open("ctx:1", &bad), Err(RecipientError::WrongKey));
        assert_eq!(
            k.open("ctx:1", &sealed[..10]),
            Err(RecipientError::Malformed)
        );
    }

    #[test]
    fn derivation_is_deterministic_and_sealing_randomised() {
        let a = RecipientKey::derive(b"k");
        let b = RecipientKey::derive(b"k");
        assert_eq!(a.public(), b.public());
        let s1 = seal_to(&a.public(), "c", b"m").unwrap();
        let s2 = seal_to(&a.public(), "c", b"m").unwrap();
        assert_ne!(s1, s2);
        // The plaintext does not appear in the sealed bytes.
        let m = b"Jane Doe 1990-01-01";
        let s = seal_to(&a.public(), "c", m).unwrap();
        assert!(!s.windows(m.len()).any(|w| w == m));
    }
}

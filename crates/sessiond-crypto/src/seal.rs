//! Sealing: authenticated encryption of secrets at rest under a master key that never sits in the
//! database.
//!
//! A sealed value is laid out as
//!
//! ```text
//! 0x01 | key id (8 bytes) | nonce (24 bytes) | XChaCha20-Poly1305 ciphertext + tag
//! ```
//!
//! The header (version and key id) and a caller-chosen context string are authenticated as
//! associated data, so a sealed value cannot be moved to another row or column, and its key id
//! cannot be altered, without failing to open. Random 192-bit nonces make nonce reuse negligible at
//! any volume. The key id lets [`Keyring`] hold several master keys during a rotation and lets the
//! re-sealing pass find values that still use a retired key.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

const VERSION: u8 = 1;
const KEY_ID_LEN: usize = 8;
const NONCE_LEN: usize = 24;
const HEADER_LEN: usize = 1 + KEY_ID_LEN + NONCE_LEN;
const TAG_LEN: usize = 16;
/// Length of a master key in bytes (256 bits).
pub const MASTER_KEY_LEN: usize = 32;

/// The identifier of a master key: a truncated hash of the key, so it can be shown and stored
/// without revealing anything usable about the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(pub [u8; KEY_ID_LEN]);

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("mk_")?;
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// One master key. Zeroed on drop; `Debug` shows only its id.
pub struct MasterKey {
    id: KeyId,
    key: Zeroizing<[u8; MASTER_KEY_LEN]>,
}

impl MasterKey {
    pub fn from_bytes(bytes: [u8; MASTER_KEY_LEN]) -> Self {
        let mut h = Sha256::new();
        h.update(b"sessiond master key id v1\0");
        h.update(bytes);
        let digest = h.finalize();
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        MasterKey {
            id: KeyId(id),
            key: Zeroizing::new(bytes),
        }
    }

    pub fn generate() -> Self {
        Self::from_bytes(crate::random_bytes::<MASTER_KEY_LEN>())
    }

    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The key in the textual form used by key files and `SESSIOND_MASTER_KEY` (standard base64).
    pub fn to_base64(&self) -> Zeroizing<String> {
        use base64::Engine;
        Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(*self.key))
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        let key: &[u8; MASTER_KEY_LEN] = &self.key;
        XChaCha20Poly1305::new(key.into())
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey({})", self.id)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("sealed value was written with master key {0}, which is not in the keyring")]
    UnknownKey(KeyId),
    #[error("sealed value is malformed")]
    Malformed,
    #[error("sealed value failed authentication (wrong key, wrong context, or tampered)")]
    Forged,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyringError {
    #[error("no master key given")]
    Empty,
    #[error("master key #{0} is not valid base64 of exactly 32 bytes")]
    BadKey(usize),
}

/// An ordered set of master keys. The first seals; all of them open. Keeping retired keys here
/// while the re-sealing pass runs is what makes master-key rotation possible without downtime.
#[derive(Debug)]
pub struct Keyring {
    keys: Vec<MasterKey>,
}

impl Keyring {
    pub fn new(keys: Vec<MasterKey>) -> Result<Self, KeyringError> {
        if keys.is_empty() {
            return Err(KeyringError::Empty);
        }
        Ok(Keyring { keys })
    }

    /// Parses keys separated by commas, whitespace or newlines; `#` starts a comment to the end of
    /// the line. This one format serves both the key file and `SESSIOND_MASTER_KEY`.
    pub fn parse(text: &str) -> Result<Self, KeyringError> {
        use base64::Engine;
        let mut keys = Vec::new();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            for tok in line
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|t| !t.is_empty())
            {
                let n = keys.len() + 1;
                let raw = Zeroizing::new(
                    base64::engine::general_purpose::STANDARD
                        .decode(tok)
                        .map_err(|_| KeyringError::BadKey(n))?,
                );
                let bytes: [u8; MASTER_KEY_LEN] = raw
                    .as_slice()
                    .try_into()
                    .map_err(|_| KeyringError::BadKey(n))?;
                keys.push(MasterKey::from_bytes(bytes));
            }
        }
        Self::new(keys)
    }

    /// Renders the keyring in the format [`Keyring::parse`] reads.
    pub fn to_text(&self) -> Zeroizing<String> {
        let mut out = String::from(
            "# sessiond master keyring. The first key seals; every key listed can open.\n\
             # Keep this file secret (mode 0600) and out of the database backups.\n",
        );
        for k in &self.keys {
            out.push_str(&k.to_base64());
            out.push_str(&format!("  # {}\n", k.id()));
        }
        Zeroizing::new(out)
    }

    pub fn active(&self) -> &MasterKey {
        // Constructed non-empty and never emptied.
        &self.keys[0]
    }

    pub fn key_ids(&self) -> Vec<KeyId> {
        self.keys.iter().map(MasterKey::id).collect()
    }

    /// A new keyring with `key` in front (sealing with it) and the current keys kept for opening.
    pub fn with_new_active(self, key: MasterKey) -> Self {
        let mut keys = Vec::with_capacity(self.keys.len() + 1);
        keys.push(key);
        keys.extend(self.keys);
        Keyring { keys }
    }

    /// A keyring of the active key only: what remains once nothing is sealed under older keys.
    pub fn retain_active_only(mut self) -> Self {
        self.keys.truncate(1);
        self
    }

    fn find(&self, id: KeyId) -> Option<&MasterKey> {
        self.keys.iter().find(|k| k.id == id)
    }

    /// Seals `plaintext` under the active key, bound to `context` (e.g. `"meta:api_key_pepper"`).
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Vec<u8> {
        let key = self.active();
        let nonce = crate::random_bytes::<NONCE_LEN>();
        let mut header = [0u8; HEADER_LEN];
        header[0] = VERSION;
        header[1..1 + KEY_ID_LEN].copy_from_slice(&key.id.0);
        header[1 + KEY_ID_LEN..].copy_from_slice(&nonce);
        let aad = associated_data(&header, context);
        let xnonce = XNonce::from(nonce);
        // Encryption with a valid key and in-memory buffers cannot fail; an error here would mean a
        // broken AEAD implementation, which must not silently produce an unsealed record.
        #[allow(clippy::expect_used)]
        let ct = key
            .cipher()
            .encrypt(
                &xnonce,
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .expect("XChaCha20-Poly1305 encryption failed");
        let mut out = Vec::with_capacity(HEADER_LEN + ct.len());
        out.extend_from_slice(&header);
        out.extend_from_slice(&ct);
        out
    }

    /// Opens a value sealed by any key of this ring with the same `context`.
    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let id = key_id_of(sealed)?;
        let key = self.find(id).ok_or(SealError::UnknownKey(id))?;
        let (header, ct) = sealed.split_at(HEADER_LEN);
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&header[1 + KEY_ID_LEN..]);
        let aad = associated_data(header, context);
        key.cipher()
            .decrypt(&XNonce::from(nonce), Payload { msg: ct, aad: &aad })
            .map(Zeroizing::new)
            .map_err(|_| SealError::Forged)
    }

    /// Whether `sealed` was written under the active key (re-sealing skips those).
    pub fn is_current(&self, sealed: &[u8]) -> bool {
        key_id_of(sealed).is_ok_and(|id| id == self.active().id)
    }
}

/// The master-key id recorded in a sealed value's header.
pub fn key_id_of(sealed: &[u8]) -> Result<KeyId, SealError> {
    if sealed.len() < HEADER_LEN + TAG_LEN || sealed[0] != VERSION {
        return Err(SealError::Malformed);
    }
    let mut id = [0u8; KEY_ID_LEN];
    id.copy_from_slice(&sealed[1..1 + KEY_ID_LEN]);
    Ok(KeyId(id))
}

fn associated_data(header: &[u8], context: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(header.len() + context.len() + 16);
    aad.extend_from_slice(b"sessiond-seal-v1\0");
    aad.extend_from_slice(header);
    aad.extend_from_slice(context.as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_context_binding() {
        let ring = Keyring::new(vec![MasterKey::generate()]).unwrap_or_else(|e| panic!("{e}"));
        let s = ring.seal("ctx:a", b"secret");
        assert_eq!(
            ring.open("ctx:a", &s).as_deref().map(|v| v.as_slice()),
            Ok(&b"secret"[..])
        );
        assert_eq!(ring.open("ctx:b", &s), Err(SealError::Forged));
        assert!(!s.windows(6).any(|w| w == b"secret"));
    }

    #[test]
    fn tampering_is_detected() {
        let ring = Keyring::new(vec![MasterKey::generate()]).unwrap_or_else(|e| panic!("{e}"));
        let mut s = ring.seal("c", b"value");
        let last = s.len() - 1;
        s[last] ^= 1;
        assert_eq!(ring.open("c", &s), Err(SealError::Forged));
        assert_eq!(ring.open("c", &s[..10]), Err(SealError::Malformed));
    }

    #[test]
    fn rotation_keeps_old_values_readable_and_reseals_under_new_key() {
        let old = Keyring::new(vec![MasterKey::generate()]).unwrap_or_else(|e| panic!("{e}"));
        let sealed_old = old.seal("c", b"v");
        let text_old = old.to_text();
        let ring = Keyring::parse(&text_old)
            .unwrap_or_else(|e| panic!("{e}"))
            .with_new_active(MasterKey::generate());
        assert!(!ring.is_current(&sealed_old));
        let opened = ring
            .open("c", &sealed_old)
            .unwrap_or_else(|e| panic!("{e}"));
        let resealed = ring.seal("c", &opened);
        assert!(ring.is_current(&resealed));
        let only_new = ring.retain_active_only();
        assert!(only_new.open("c", &resealed).is_ok());
        assert!(matches!(
            only_new.open("c", &sealed_old),
            Err(SealError::UnknownKey(_))
        ));
    }

    #[test]
    fn keyring_text_round_trips_and_rejects_garbage() {
        let ring = Keyring::new(vec![MasterKey::generate(), MasterKey::generate()])
            .unwrap_or_else(|e| panic!("{e}"));
        let parsed = Keyring::parse(&ring.to_text()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parsed.key_ids(), ring.key_ids());
        assert_eq!(
            Keyring::parse("# nothing\n").err(),
            Some(KeyringError::Empty)
        );
        assert_eq!(
            Keyring::parse("bm90IDMyIGJ5dGVz").err(),
            Some(KeyringError::BadKey(1))
        );
        let joined = format!(
            "{},{}",
            ring.keys[0].to_base64().as_str(),
            ring.keys[1].to_base64().as_str()
        );
        assert_eq!(
            Keyring::parse(&joined).map(|r| r.key_ids()),
            Ok(ring.key_ids())
        );
    }
}

//! The master keyring in use, and the API-key pepper sealed under it.
//!
//! The pepper is a random 256-bit value created with the database and stored there only in sealed
//! form. Opening it at startup doubles as the master-key check: a wrong or missing key cannot open
//! it, and the server refuses to start instead of serving garbage.

use std::sync::{Arc, RwLock};

use sessiond_crypto::apikey::KeyHasher;
use sessiond_crypto::seal::{Keyring, SealError};
use zeroize::Zeroizing;

use crate::store::{ApplicationStore, MetaStore, StoreError};

const PEPPER_META: &str = "api_key_pepper";

/// Asks the keyring's source (the key file) for a fresh read when a value names a key this node
/// does not hold. It must return at once: the source reads elsewhere and hands the new ring to
/// [`Vault::replace_keyring`]. This is how nodes pick up a master key that
/// `sessiond keys rotate-master` added while they run.
pub type KeyringReloader = Box<dyn Fn() + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error(
        "the master key does not open this database: its sealed values use {found}, the keyring holds [{have}]. \
         Start with the master key this database was created with (SESSIOND_MASTER_KEY or the key file)"
    )]
    WrongMasterKey { found: String, have: String },
    #[error(
        "the database holds applications but no sealed pepper; it was not created by sessiond or is damaged"
    )]
    MissingPepper,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Vault {
    keyring: RwLock<Arc<Keyring>>,
    hasher: KeyHasher,
    reloader: Option<KeyringReloader>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault").finish_non_exhaustive()
    }
}

impl Vault {
    /// Opens the vault over `store`: reads the sealed pepper, or creates it in a database that has
    /// none yet. Fails if the keyring cannot open what the database holds.
    pub async fn open<S>(
        store: &S,
        keyring: Keyring,
        reloader: Option<KeyringReloader>,
    ) -> Result<Self, VaultError>
    where
        S: MetaStore + ApplicationStore + ?Sized,
    {
        let context = format!("meta:{PEPPER_META}");
        let sealed = match store.get_meta(PEPPER_META).await? {
            Some(v) => v,
            None => {
                if store.count_applications().await? > 0 {
                    return Err(VaultError::MissingPepper);
                }
                let pepper = Zeroizing::new(sessiond_crypto::random_bytes::<32>());
                let fresh = keyring.seal(&context, pepper.as_ref());
                // Another node may win this race; everyone then reads the winner's pepper.
                store
                    .insert_meta_if_absent(PEPPER_META, &fresh, true)
                    .await?;
                store
                    .get_meta(PEPPER_META)
                    .await?
                    .ok_or(StoreError::NotFound)?
            }
        };
        let pepper = keyring.open(&context, &sealed).map_err(|e| {
            let found = match (e, sessiond_crypto::seal::key_id_of(&sealed)) {
                (_, Ok(id)) => id.to_string(),
                (_, Err(_)) => "an unreadable header".to_owned(),
            };
            VaultError::WrongMasterKey {
                found,
                have: keyring
                    .key_ids()
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            }
        })?;
        Ok(Vault {
            hasher: KeyHasher::new(&pepper),
            keyring: RwLock::new(Arc::new(keyring)),
            reloader,
        })
    }

    pub fn hasher(&self) -> &KeyHasher {
        &self.hasher
    }

    pub fn keyring(&self) -> Arc<Keyring> {
        match self.keyring.read() {
            Ok(g) => Arc::clone(&g),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Vec<u8> {
        self.keyring().seal(context, plaintext)
    }

    /// Opens a sealed value. One that names a key this node does not hold fails, and asks the
    /// keyring's source for a fresh read (which never blocks this thread: a forged value must not
    /// cost file I/O on a request path).
    pub fn unseal(&self, context: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let out = self.keyring().open(context, sealed);
        if let (Err(SealError::UnknownKey(_)), Some(reload)) = (&out, &self.reloader) {
            reload();
        }
        out
    }

    /// Replaces the keyring (after a rotation performed by this process).
    pub fn replace_keyring(&self, ring: Keyring) {
        if let Ok(mut g) = self.keyring.write() {
            *g = Arc::new(ring);
        }
    }
}

impl Vault {
    /// Whether the database already holds sealed state (and so needs its original master key).
    pub async fn is_initialized<S>(store: &S) -> Result<bool, StoreError>
    where
        S: MetaStore + ?Sized,
    {
        Ok(store.get_meta(PEPPER_META).await?.is_some())
    }
}

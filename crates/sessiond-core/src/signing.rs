//! Signing keys of applications: generation, rotation with overlap, the JWKS, and a cache of
//! parsed keys so that minting never re-parses a key.
//!
//! Rotation: a new key is inserted as `Next` and published at once; it starts signing only
//! [`NEXT_KEY_LEAD_SECS`] later, when the scheduled maintenance promotes it, so verifiers that
//! cache the JWKS already know it. The old key becomes `Retired` and stays published until the
//! latest `exp` it may have signed (`publish_until`, raised before signing any token that would
//! outlive it), and never for less than the lead time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use serde_json::{Value, json};
use sessiond_crypto::jwt::{Algorithm, SigningKey};

use crate::application::{AppId, DAY_SECS};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::ids::SigningKeyId;
use crate::store::{KeyState, SigningKeyRecord, Store, StoreError};
use crate::vault::Vault;

/// How long a new key is published before it signs.
pub const NEXT_KEY_LEAD_SECS: u64 = 600;
/// Keys older than this are rotated by the maintenance job.
pub const MAX_KEY_AGE_SECS: u64 = 90 * DAY_SECS;
/// Parsed key sets are re-read from the store after this long, so a rotation made on another node
/// is picked up within it.
const CACHE_TTL_MS: i64 = 30_000;
/// `publish_until` is raised in steps of this much beyond the token being signed, so a key's row
/// is written about once an hour rather than on every mint.
const EXTEND_STEP_SECS: u64 = 3600;

struct LoadedKey {
    kid: SigningKeyId,
    key: Arc<SigningKey>,
    publish_until: AtomicI64,
}

/// The parsed, ready-to-use keys of one application.
pub struct KeySet {
    loaded_at: Timestamp,
    current: Option<Arc<LoadedKey>>,
    parsed: HashMap<SigningKeyId, Arc<SigningKey>>,
    /// Published JWKs (current, next, retired still in use), newest first.
    pub jwks: Vec<Value>,
    /// PEM of the current public key, for verifiers configured with one key.
    pub public_pem: Option<String>,
}

impl KeySet {
    pub fn current_kid(&self) -> Option<&SigningKeyId> {
        self.current.as_ref().map(|k| &k.kid)
    }
}

pub struct Signer {
    store: Arc<dyn Store>,
    vault: Arc<Vault>,
    cache: RwLock<HashMap<AppId, Arc<KeySet>>>,
}

fn context(kid: &SigningKeyId) -> String {
    format!("signing_keys:{kid}")
}

impl Signer {
    pub fn new(store: Arc<dyn Store>, vault: Arc<Vault>) -> Self {
        Signer {
            store,
            vault,
            cache: RwLock::new(HashMap::new()),
        }
    }

    fn cached(&self, app: &AppId) -> Option<Arc<KeySet>> {
        self.cache.read().ok()?.get(app).cloned()
    }

    pub fn invalidate(&self, app: &AppId) {
        if let Ok(mut c) = self.cache.write() {
            c.remove(app);
        }
    }

    /// Generates a new RS256 key record for `app` in `state`.
    fn generate(
        &self,
        app: &AppId,
        state: KeyState,
        activates_at: Timestamp,
        now: Timestamp,
    ) -> Result<SigningKeyRecord> {
        let (key, der) =
            SigningKey::generate_rs256().map_err(|e| Error::Internal(e.to_string()))?;
        let kid = SigningKeyId::new();
        let mut jwk = key
            .public_jwk()
            .ok_or_else(|| Error::Internal("RSA key without public JWK".into()))?;
        if let Value::Object(m) = &mut jwk {
            m.insert("kid".into(), Value::from(kid.as_str()));
            m.insert("alg".into(), Value::from("RS256"));
            m.insert("use".into(), Value::from("sig"));
        }
        Ok(SigningKeyRecord {
            private_sealed: self.vault.seal(&context(&kid), &der),
            kid,
            application_id: app.clone(),
            algorithm: "RS256".into(),
            public_jwk: jwk.to_string(),
            state,
            created_at: now,
            activates_at,
            retired_at: None,
            publish_until: now,
            version: 1,
        })
    }

    /// Makes sure the application has a current key (creating one if not). Idempotent across
    /// nodes: a second concurrent creation loses on the store's uniqueness rule.
    pub async fn ensure_key(&self, app: &AppId, now: Timestamp) -> Result<()> {
        let keys = self.store.list_signing_keys(app).await?;
        if keys.iter().any(|k| k.state == KeyState::Current) {
            return Ok(());
        }
        let rec = self.generate(app, KeyState::Current, now, now)?;
        match self.store.insert_signing_key(&rec).await {
            Ok(()) | Err(StoreError::Conflict) => {
                self.invalidate(app);
                Ok(())
            }
            Err(StoreError::NotFound) => Err(Error::NotFound {
                kind: "application",
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// The application's key set, from cache when fresh.
    pub async fn keyset(&self, app: &AppId, now: Timestamp) -> Result<Arc<KeySet>> {
        let previous = self.cached(app);
        if let Some(ks) = &previous
            && now.as_millis() - ks.loaded_at.as_millis() < CACHE_TTL_MS
            && ks.current.is_some()
        {
            return Ok(Arc::clone(ks));
        }
        let mut records = self.store.list_signing_keys(app).await?;
        if !records.iter().any(|k| k.state == KeyState::Current) {
            self.ensure_key(app, now).await?;
            records = self.store.list_signing_keys(app).await?;
        }
        let mut parsed = HashMap::new();
        let mut current = None;
        let mut jwks = Vec::new();
        let mut public_pem = None;
        for rec in records.iter().rev() {
            let published = match rec.state {
                KeyState::Next | KeyState::Current => true,
                KeyState::Retired => rec.publish_until >= now,
            };
            if published && let Ok(v) = serde_json::from_str::<Value>(&rec.public_jwk) {
                jwks.push(v);
            }
            if rec.state != KeyState::Current {
                continue;
            }
            // Reuse the parsed key from the previous set; parse only keys new to this node.
            let key = match previous.as_ref().and_then(|p| p.parsed.get(&rec.kid)) {
                Some(k) => Arc::clone(k),
                None => {
                    let der = self
                        .vault
                        .unseal(&context(&rec.kid), &rec.private_sealed)
                        .map_err(|e| Error::Internal(format!("signing key {}: {e}", rec.kid)))?;
                    Arc::new(
                        SigningKey::from_der(Algorithm::RS256, &der)
                            .map_err(|e| Error::Internal(e.to_string()))?,
                    )
                }
            };
            public_pem = key.public_key_pem();
            parsed.insert(rec.kid.clone(), Arc::clone(&key));
            current = Some(Arc::new(LoadedKey {
                kid: rec.kid.clone(),
                key,
                publish_until: AtomicI64::new(rec.publish_until.as_millis()),
            }));
        }
        let ks = Arc::new(KeySet {
            loaded_at: now,
            current,
            parsed,
            jwks,
            public_pem,
        });
        if let Ok(mut c) = self.cache.write() {
            c.insert(app.clone(), Arc::clone(&ks));
        }
        Ok(ks)
    }

    /// Signs `claims` with the application's current key. `exp` is the token's expiry; the key
    /// stays published at least until then.
    pub async fn sign(
        &self,
        app: &AppId,
        claims: &Value,
        extra_header: &[(&str, Value)],
        exp: Timestamp,
        now: Timestamp,
    ) -> Result<String> {
        let ks = self.keyset(app, now).await?;
        let current = ks
            .current
            .as_ref()
            .ok_or_else(|| Error::Internal("application has no signing key".into()))?;
        if exp.as_millis() > current.publish_until.load(Ordering::Relaxed) {
            let until = exp.plus_secs(EXTEND_STEP_SECS);
            self.store
                .extend_signing_key(app, &current.kid, until)
                .await?;
            current
                .publish_until
                .fetch_max(until.as_millis(), Ordering::Relaxed);
        }
        Ok(current
            .key
            .sign_jwt(Some(current.kid.as_str()), extra_header, claims))
    }

    /// Starts a rotation: a new key, published now and signing after the lead time (or at once
    /// with `immediate`, for emergencies; the old key stays published for its tokens).
    pub async fn rotate(
        &self,
        app: &AppId,
        immediate: bool,
        now: Timestamp,
    ) -> Result<SigningKeyId> {
        self.ensure_key(app, now).await?;
        let keys = self.store.list_signing_keys(app).await?;
        let pending = keys
            .iter()
            .find(|k| k.state == KeyState::Next)
            .map(|k| k.kid.clone());
        let kid = match pending {
            Some(kid) => kid,
            None => {
                let rec =
                    self.generate(app, KeyState::Next, now.plus_secs(NEXT_KEY_LEAD_SECS), now)?;
                self.store.insert_signing_key(&rec).await?;
                rec.kid
            }
        };
        if immediate {
            self.promote(app, &kid, now).await?;
        }
        self.invalidate(app);
        Ok(kid)
    }

    async fn promote(&self, app: &AppId, next: &SigningKeyId, now: Timestamp) -> Result<()> {
        let old = self
            .store
            .list_signing_keys(app)
            .await?
            .into_iter()
            .find(|k| k.state == KeyState::Current);
        if !self.store.promote_signing_key(app, next, now).await? {
            return Err(Error::Conflict);
        }
        if let Some(old) = old {
            // Other nodes may sign with the old key until their cache refreshes.
            self.store
                .extend_signing_key(app, &old.kid, now.plus_secs(NEXT_KEY_LEAD_SECS))
                .await?;
        }
        Ok(())
    }

    /// Scheduled upkeep: promote due keys, drop retired keys no token needs, rotate old keys.
    /// Returns how many keys changed.
    pub async fn maintain(&self, app: &AppId, now: Timestamp) -> Result<u64> {
        let mut changed = 0;
        let keys = self.store.list_signing_keys(app).await?;
        if let Some(next) = keys
            .iter()
            .find(|k| k.state == KeyState::Next && k.activates_at <= now)
        {
            self.promote(app, &next.kid, now).await?;
            changed += 1;
        }
        changed += self.store.delete_expired_signing_keys(app, now).await?;
        let keys = self.store.list_signing_keys(app).await?;
        let old_current = keys.iter().any(|k| {
            k.state == KeyState::Current && now >= k.created_at.plus_secs(MAX_KEY_AGE_SECS)
        });
        if old_current && !keys.iter().any(|k| k.state == KeyState::Next) {
            self.rotate(app, false, now).await?;
            changed += 1;
        }
        if changed > 0 {
            self.invalidate(app);
        }
        Ok(changed)
    }

    /// The published keys as a JWKS document (`{keys: [...]}`).
    pub async fn jwks(&self, app: &AppId, now: Timestamp) -> Result<Value> {
        let ks = self.keyset(app, now).await?;
        Ok(json!({ "keys": ks.jwks }))
    }
}

/// The scheduled signing-key upkeep of every application.
pub struct MaintainKeys {
    pub signer: Arc<Signer>,
    pub store: Arc<dyn Store>,
}

#[async_trait::async_trait]
impl crate::jobs::Job for MaintainKeys {
    fn name(&self) -> &'static str {
        "signing_keys"
    }
    fn interval_secs(&self) -> u64 {
        60
    }
    async fn run_once(&self, now: Timestamp) -> Result<crate::jobs::JobOutcome> {
        let mut changed = 0;
        for app in self.store.list_applications().await? {
            changed += self.signer.maintain(&app.id, now).await?;
        }
        Ok(crate::jobs::JobOutcome {
            items: changed,
            summary: format!("keys_changed={changed}"),
        })
    }
}

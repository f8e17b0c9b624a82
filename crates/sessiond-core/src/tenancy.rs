//! Applications, their secret keys, and authentication of API requests.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use sessiond_crypto::apikey::{self, SecretKey};

use crate::apikey::{ApiKey, ApiKeyId};
use crate::application::{self, AppId, AppSettings, Application, KeyEnvironment};
use crate::clock::Timestamp;
use crate::error::{AuthFailure, Error, Result};
use crate::retry::{Attempt, retry_optimistic};
use crate::store::{Store, StoreError};
use crate::vault::Vault;

/// Name of the application created on first start.
pub const DEFAULT_APP_NAME: &str = "Default application";
const BOOTSTRAP_META: &str = "bootstrapped";
/// Names the console's own application (its operators are its users).
const CONSOLE_META: &str = "console_application";
/// Name of the console's own application.
pub const CONSOLE_APP_NAME: &str = "sessiond console (operators)";
/// Longest `Authorization` header value considered at all.
const MAX_AUTH_HEADER: usize = 256;
/// Verified keys kept in memory. Past this the cache starts over (keys are few per application;
/// only a key that verified is ever cached, so guessing cannot fill it).
const MAX_CACHED_KEYS: usize = 10_000;

/// Keys that verified, with their application (settings parsed), valid while the store's
/// authentication epoch is `epoch`.
#[derive(Default)]
struct KeyCache {
    epoch: Option<i64>,
    keys: HashMap<[u8; 32], (Arc<ApiKey>, Arc<Application>)>,
}

pub struct Tenancy {
    store: Arc<dyn Store>,
    vault: Arc<Vault>,
    cache: RwLock<KeyCache>,
    /// A new application's frontend URL.
    frontend_url: application::FrontendUrlFn,
}

/// An application created together with its first secret key, shown once.
#[derive(Debug)]
pub struct CreatedApplication {
    pub application: Application,
    pub key: ApiKey,
    pub secret_key: SecretKey,
}

impl Tenancy {
    pub fn new(store: Arc<dyn Store>, vault: Arc<Vault>) -> Self {
        Tenancy {
            store,
            vault,
            cache: RwLock::new(KeyCache::default()),
            frontend_url: application::default_frontend_url,
        }
    }

    /// Gives new applications their frontend URL with `f` instead of the default.
    pub fn with_frontend_url(mut self, f: application::FrontendUrlFn) -> Self {
        self.frontend_url = f;
        self
    }

    pub fn vault(&self) -> &Arc<Vault> {
        &self.vault
    }

    fn new_key(&self, app: &AppId, secret: &SecretKey, now: Timestamp) -> ApiKey {
        ApiKey {
            id: ApiKeyId::new(),
            application_id: app.clone(),
            hash: self.vault.hasher().hash(secret.expose()),
            hint: secret.hint(),
            created_at: now,
            revoked_at: None,
        }
    }

    /// Creates an application and its first secret key. `secret` seeds a chosen key (automation);
    /// otherwise a random one is generated.
    pub async fn create_application(
        &self,
        name: &str,
        environment: KeyEnvironment,
        secret: Option<SecretKey>,
        now: Timestamp,
    ) -> Result<CreatedApplication> {
        application::validate_name(name)?;
        let secret = match secret {
            Some(s) if s.environment() != environment => {
                return Err(Error::invalid(
                    "secret_key",
                    format!("must start with sk_{}_", environment.as_str()),
                ));
            }
            Some(s) => s,
            None => SecretKey::generate(environment),
        };
        let id = AppId::new();
        let app = Application {
            settings: AppSettings {
                frontend_url: (self.frontend_url)(&id),
                ..AppSettings::default()
            },
            id,
            name: name.to_owned(),
            environment,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let key = self.new_key(&app.id, &secret, now);
        self.store
            .insert_application(&app, &key)
            .await
            .map_err(|e| match e {
                StoreError::Conflict => Error::invalid("secret_key", "is already in use"),
                other => other.into(),
            })?;
        Ok(CreatedApplication {
            application: app,
            key,
            secret_key: secret,
        })
    }

    /// On a database that has never been bootstrapped, creates the default application. Exactly
    /// one of several nodes starting together does it; the others get `None`.
    pub async fn bootstrap(
        &self,
        seed: Option<SecretKey>,
        now: Timestamp,
    ) -> Result<Option<CreatedApplication>> {
        if self.store.get_meta(BOOTSTRAP_META).await?.is_some() {
            return Ok(None);
        }
        if !self
            .store
            .insert_meta_if_absent(BOOTSTRAP_META, &now.as_millis().to_be_bytes(), false)
            .await?
        {
            return Ok(None);
        }
        let env = seed
            .as_ref()
            .map_or(KeyEnvironment::Test, SecretKey::environment);
        self.create_application(DEFAULT_APP_NAME, env, seed, now)
            .await
            .map(Some)
    }

    pub async fn get_application(&self, id: &AppId) -> Result<Application> {
        self.store
            .get_application(id)
            .await?
            .ok_or(Error::NotFound {
                kind: "application",
            })
    }

    /// The applications of the installation's users; the console's own application is not one
    /// of them.
    pub async fn list_applications(&self) -> Result<Vec<Application>> {
        let internal = self.console_application_id().await?;
        let mut apps = self.store.list_applications().await?;
        apps.retain(|a| Some(&a.id) != internal.as_ref());
        Ok(apps)
    }

    /// The id of the console's own application, once it exists.
    pub async fn console_application_id(&self) -> Result<Option<AppId>> {
        Ok(self
            .store
            .get_meta(CONSOLE_META)
            .await?
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|s| AppId::parse(&s)))
    }

    /// The console's own application, created on first use with `settings`: exactly one of
    /// several nodes or processes creating it together wins, the others read the winner's.
    /// It has no usable secret key, so no API request can reach its users.
    pub async fn console_application(
        &self,
        settings: impl Fn(&mut AppSettings) + Send + Sync,
        now: Timestamp,
    ) -> Result<Application> {
        if let Some(id) = self.console_application_id().await? {
            return self.get_application(&id).await;
        }
        let created = self
            .create_application(CONSOLE_APP_NAME, KeyEnvironment::Live, None, now)
            .await?;
        self.revoke_key(&created.application.id, &created.key.id, now)
            .await?;
        let id = created.application.id.clone();
        let app = self
            .update_application(&id, now, |a| {
                settings(&mut a.settings);
                Ok(())
            })
            .await?;
        if self
            .store
            .insert_meta_if_absent(CONSOLE_META, id.as_str().as_bytes(), false)
            .await?
        {
            return Ok(app);
        }
        // Another process created one first: ours goes, theirs is the one.
        self.delete_application(&id).await?;
        match self.console_application_id().await? {
            Some(winner) => self.get_application(&winner).await,
            None => Err(Error::Internal("the console application vanished".into())),
        }
    }

    /// Applies `change` to the application and saves it under optimistic concurrency, retrying on
    /// a concurrent update so that two operators' changes both land.
    pub async fn update_application<F>(
        &self,
        id: &AppId,
        now: Timestamp,
        change: F,
    ) -> Result<Application>
    where
        F: Fn(&mut Application) -> Result<()> + Send + Sync,
    {
        let change = &change;
        retry_optimistic(|| async move {
            let mut app = self.get_application(id).await?;
            change(&mut app)?;
            application::validate_name(&app.name)?;
            app.settings.validate()?;
            app.version += 1;
            app.updated_at = now;
            match self.store.update_application(&app).await {
                Err(StoreError::NotFound) => Err(Error::NotFound {
                    kind: "application",
                }),
                written => Attempt::of_write(written, app),
            }
        })
        .await
    }

    pub async fn delete_application(&self, id: &AppId) -> Result<()> {
        if self.store.delete_application(id).await? {
            Ok(())
        } else {
            Err(Error::NotFound {
                kind: "application",
            })
        }
    }

    pub async fn create_key(&self, app: &AppId, now: Timestamp) -> Result<(ApiKey, SecretKey)> {
        let application = self.get_application(app).await?;
        let secret = SecretKey::generate(application.environment);
        let key = self.new_key(app, &secret, now);
        self.store.insert_api_key(&key).await?;
        Ok((key, secret))
    }

    pub async fn list_keys(&self, app: &AppId) -> Result<Vec<ApiKey>> {
        self.get_application(app).await?;
        Ok(self.store.list_api_keys(app).await?)
    }

    pub async fn revoke_key(&self, app: &AppId, key: &ApiKeyId, now: Timestamp) -> Result<ApiKey> {
        self.store
            .revoke_api_key(app, key, now)
            .await?
            .ok_or(Error::NotFound { kind: "key" })
    }

    /// Resolves the application of a request from its `Authorization` header value.
    ///
    /// Verified keys are kept in memory together with their application, valid for as long as
    /// the store's authentication epoch stays the same. Every key or application change bumps
    /// the epoch in its own transaction, on any node or process, so a revocation takes effect on
    /// the next request everywhere while an unchanged key costs one epoch read instead of a key
    /// lookup and a settings parse.
    pub async fn authenticate(&self, authorization: Option<&[u8]>) -> Result<Arc<Application>> {
        let header = authorization.ok_or(Error::Unauthenticated(AuthFailure::Missing))?;
        let malformed = Error::Unauthenticated(AuthFailure::Malformed);
        if header.len() > MAX_AUTH_HEADER {
            return Err(malformed);
        }
        let header = std::str::from_utf8(header).map_err(|_| malformed)?;
        let (scheme, token) = header
            .split_once(' ')
            .ok_or(Error::Unauthenticated(AuthFailure::Malformed))?;
        let token = token.trim();
        if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
            return Err(Error::Unauthenticated(AuthFailure::Malformed));
        }
        if apikey::split(token).is_none() {
            return Err(Error::Unauthenticated(AuthFailure::UnknownKey));
        }
        let hash = self.vault.hasher().hash(token);
        // Read before the lookup: an entry stored under this epoch is never older than it.
        let epoch = self.store.auth_epoch().await?;
        let cached = {
            let cache = self
                .cache
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            (cache.epoch == Some(epoch))
                .then(|| cache.keys.get(&hash).cloned())
                .flatten()
        };
        let (key, app) = match cached {
            Some(hit) => hit,
            None => {
                let (key, app) = self
                    .store
                    .find_api_key_by_hash(&hash)
                    .await?
                    .ok_or(Error::Unauthenticated(AuthFailure::UnknownKey))?;
                let found = (Arc::new(key), Arc::new(app));
                let mut cache = self
                    .cache
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if cache.epoch != Some(epoch) || cache.keys.len() >= MAX_CACHED_KEYS {
                    cache.keys.clear();
                    cache.epoch = Some(epoch);
                }
                cache.keys.insert(hash, found.clone());
                found
            }
        };
        // The lookup matched on the hash already; the constant-time check guards against a backend
        // that matched loosely (collation, truncation) ever letting a different key through.
        if !sessiond_crypto::ct::eq(&key.hash, &hash) {
            return Err(Error::Unauthenticated(AuthFailure::UnknownKey));
        }
        if key.is_revoked() {
            return Err(Error::Unauthenticated(AuthFailure::RevokedKey));
        }
        Ok(app)
    }
}

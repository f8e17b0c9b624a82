//! The core services over a fresh database, wired as the server wires them: what service-level
//! and in-process HTTP tests start from.

use std::sync::Arc;

use sessiond_core::Timestamp;
use sessiond_core::application::{AppSettings, Application, KeyEnvironment};
use sessiond_core::login::LoginService;
use sessiond_core::signing::Signer;
use sessiond_core::store::Store;
use sessiond_core::tenancy::Tenancy;
use sessiond_core::vault::Vault;
use sessiond_core::verification::VerificationService;
use sessiond_crypto::seal::{Keyring, MasterKey};

use crate::{Kind, TestDb};

/// Where the hosted pages of test services say they are.
pub const TEST_PUBLIC_URL: &str = "http://sessiond.test";

/// Fields drop in order, the database last: its pool must outlive every service using it.
pub struct Services {
    pub store: Arc<dyn Store>,
    pub vault: Arc<Vault>,
    pub tenancy: Arc<Tenancy>,
    pub signer: Arc<Signer>,
    pub login: Arc<LoginService>,
    pub verification: Arc<VerificationService>,
    pub db: TestDb,
}

impl Services {
    /// Every service over a fresh SQLite database, under a fresh master key.
    pub async fn sqlite() -> Services {
        Services::new(Kind::Sqlite)
            .await
            .unwrap_or_else(|| panic!("a temporary SQLite database"))
    }

    /// Every service over a fresh database of `kind`; `None` where PostgreSQL is not configured
    /// (and `CI` is not set, see [`TestDb`]).
    pub async fn new(kind: Kind) -> Option<Services> {
        let db = TestDb::new(kind).await?;
        let store: Arc<dyn Store> = db.store.clone();
        let ring = Keyring::new(vec![MasterKey::generate()]).unwrap_or_else(|e| panic!("{e}"));
        let vault = Arc::new(
            Vault::open(&*db.store, ring, None)
                .await
                .unwrap_or_else(|e| panic!("{e}")),
        );
        let tenancy = Arc::new(Tenancy::new(store.clone(), vault.clone()));
        let signer = Arc::new(Signer::new(store.clone(), vault.clone()));
        let login = Arc::new(LoginService::new(
            store.clone(),
            vault.clone(),
            signer.clone(),
        ));
        let verification = Arc::new(VerificationService::new(
            store.clone(),
            vault.clone(),
            sessiond_providers::builtin(),
            TEST_PUBLIC_URL,
        ));
        Some(Services {
            store,
            vault,
            tenancy,
            signer,
            login,
            verification,
            db,
        })
    }

    /// A test application created at `now` with `settings` applied, and its secret key.
    pub async fn app(
        &self,
        name: &str,
        now: Timestamp,
        settings: impl Fn(&mut AppSettings) + Send + Sync,
    ) -> (Application, String) {
        let created = self
            .tenancy
            .create_application(name, KeyEnvironment::Test, None, now)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let app = self
            .tenancy
            .update_application(&created.application.id, now, |a| {
                settings(&mut a.settings);
                Ok(())
            })
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        (app, created.secret_key.expose().to_owned())
    }
}

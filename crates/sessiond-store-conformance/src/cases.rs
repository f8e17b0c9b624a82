//! One function per rule of the storage contract (see `sessiond_core::store`). Each takes a fresh
//! [`TestDb`] and panics with a message naming the broken rule.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use sessiond_core::Timestamp;
use sessiond_core::apikey::{ApiKey, ApiKeyId};
use sessiond_core::application::{AppId, AppSettings, Application, KeyEnvironment};
use sessiond_core::jobs::{self, Job, JobOutcome, Scheduled};
use sessiond_core::rotation;
use sessiond_core::store::{SealedRef, StoreError};
use sessiond_core::vault::{Vault, VaultError};
use sessiond_crypto::seal::{Keyring, MasterKey};

use crate::TestDb;

pub const T0: Timestamp = Timestamp(1_767_225_600_000); // 2026-01-01T00:00:00Z

fn app(name: &str, at: Timestamp) -> Application {
    let id = AppId::new();
    Application {
        settings: AppSettings::defaults_for(&id),
        id,
        name: name.into(),
        environment: KeyEnvironment::Test,
        created_at: at,
        updated_at: at,
        version: 1,
    }
}

fn key(app: &AppId, at: Timestamp) -> ApiKey {
    ApiKey {
        id: ApiKeyId::new(),
        application_id: app.clone(),
        hash: sessiond_crypto::random_bytes::<32>(),
        hint: "sk_test_…abcd".into(),
        created_at: at,
        revoked_at: None,
    }
}

pub async fn insert_app(db: &TestDb, name: &str, at: Timestamp) -> (Application, ApiKey) {
    let a = app(name, at);
    let k = key(&a.id, at);
    db.store
        .insert_application(&a, &k)
        .await
        .unwrap_or_else(|e| panic!("insert_application: {e}"));
    (a, k)
}

fn ring() -> Keyring {
    Keyring::new(vec![MasterKey::generate()]).unwrap_or_else(|e| panic!("{e}"))
}

pub async fn health_and_migrations(db: &TestDb) {
    db.store
        .ping()
        .await
        .unwrap_or_else(|e| panic!("ping: {e}"));
    assert_eq!(
        db.store.migrations_current().await.ok(),
        Some(true),
        "a freshly migrated database reports its migrations as current"
    );
    // Migrating again is a no-op.
    db.migrate()
        .await
        .unwrap_or_else(|e| panic!("re-migrate: {e}"));
}

pub async fn meta_first_writer_wins(db: &TestDb) {
    let s = &db.store;
    assert_eq!(s.get_meta("x").await.ok(), Some(None));
    assert_eq!(
        s.insert_meta_if_absent("x", b"one", false).await.ok(),
        Some(true)
    );
    assert_eq!(
        s.insert_meta_if_absent("x", b"two", false).await.ok(),
        Some(false)
    );
    assert_eq!(s.get_meta("x").await.ok(), Some(Some(b"one".to_vec())));
}

pub async fn application_round_trip(db: &TestDb) {
    let (a, k) = insert_app(db, "first", T0).await;
    let (b, _) = insert_app(db, "second", Timestamp(T0.0 + 1)).await;
    let got = db.store.get_application(&a.id).await.ok().flatten();
    assert_eq!(
        got.as_ref(),
        Some(&a),
        "an application reads back exactly as written"
    );
    let list = db.store.list_applications().await.unwrap_or_default();
    assert_eq!(
        list.iter().map(|x| &x.id).collect::<Vec<_>>(),
        vec![&a.id, &b.id],
        "applications list oldest first"
    );
    assert_eq!(db.store.count_applications().await.ok(), Some(2));
    let keys = db.store.list_api_keys(&a.id).await.unwrap_or_default();
    assert_eq!(
        keys,
        vec![k.clone()],
        "the first key is stored with its application"
    );

    assert_eq!(db.store.delete_application(&a.id).await.ok(), Some(true));
    assert_eq!(db.store.delete_application(&a.id).await.ok(), Some(false));
    assert_eq!(db.store.get_application(&a.id).await.ok(), Some(None));
    assert_eq!(
        db.store.find_api_key_by_hash(&k.hash).await.ok(),
        Some(None),
        "deleting an application deletes its keys"
    );
    assert!(
        db.store
            .get_application(&b.id)
            .await
            .ok()
            .flatten()
            .is_some()
    );
}

pub async fn application_insert_is_atomic(db: &TestDb) {
    let (_, existing) = insert_app(db, "first", T0).await;
    let a = app("second", T0);
    let mut dup = key(&a.id, T0);
    dup.hash = existing.hash;
    let err = db.store.insert_application(&a, &dup).await.err();
    assert_eq!(
        err,
        Some(StoreError::Conflict),
        "a duplicate key hash is a conflict"
    );
    assert_eq!(
        db.store.get_application(&a.id).await.ok(),
        Some(None),
        "a failed insert leaves no half-written application"
    );
}

pub async fn application_update_is_optimistic(db: &TestDb) {
    let (a, _) = insert_app(db, "app", T0).await;
    let mut first = a.clone();
    first.name = "renamed".into();
    first.version += 1;
    first.updated_at = Timestamp(T0.0 + 10);
    let mut second = a.clone();
    second.settings.session_token_lifetime_secs = 120;
    second.version += 1;
    assert_eq!(db.store.update_application(&first).await, Ok(()));
    assert_eq!(
        db.store.update_application(&second).await,
        Err(StoreError::Conflict),
        "an update based on a stale version is a conflict, not a lost update"
    );
    let got = db.store.get_application(&a.id).await.ok().flatten();
    assert_eq!(got, Some(first.clone()));
    let mut ghost = app("ghost", T0);
    ghost.version = 2;
    assert_eq!(
        db.store.update_application(&ghost).await,
        Err(StoreError::NotFound)
    );
}

pub async fn api_keys_lookup_and_revoke(db: &TestDb) {
    let (a, k1) = insert_app(db, "app", T0).await;
    let k2 = key(&a.id, Timestamp(T0.0 + 5));
    db.store
        .insert_api_key(&k2)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let found = db.store.find_api_key_by_hash(&k2.hash).await.ok().flatten();
    assert_eq!(
        found.map(|(k, app)| (k.id, app.id)),
        Some((k2.id.clone(), a.id.clone()))
    );
    assert_eq!(
        db.store.find_api_key_by_hash(&[7u8; 32]).await.ok(),
        Some(None)
    );

    let t1 = Timestamp(T0.0 + 100);
    let revoked = db
        .store
        .revoke_api_key(&a.id, &k1.id, t1)
        .await
        .ok()
        .flatten();
    assert_eq!(revoked.and_then(|k| k.revoked_at), Some(t1));
    let again = db
        .store
        .revoke_api_key(&a.id, &k1.id, Timestamp(T0.0 + 999))
        .await
        .ok()
        .flatten();
    assert_eq!(
        again.and_then(|k| k.revoked_at),
        Some(t1),
        "revoking twice keeps the first time"
    );
    let found = db.store.find_api_key_by_hash(&k1.hash).await.ok().flatten();
    assert_eq!(
        found.and_then(|(k, _)| k.revoked_at),
        Some(t1),
        "revoked keys are still found, marked"
    );
    let dup = ApiKey {
        id: ApiKeyId::new(),
        ..k2.clone()
    };
    assert_eq!(
        db.store.insert_api_key(&dup).await,
        Err(StoreError::Conflict)
    );
    let orphan = key(&AppId::new(), T0);
    assert_eq!(
        db.store.insert_api_key(&orphan).await,
        Err(StoreError::NotFound),
        "a key for a missing application is refused"
    );
}

pub async fn tenant_isolation(db: &TestDb) {
    let (a, ka) = insert_app(db, "a", T0).await;
    let (b, kb) = insert_app(db, "b", T0).await;
    assert_eq!(
        db.store.list_api_keys(&b.id).await.unwrap_or_default(),
        vec![kb.clone()]
    );
    assert_eq!(
        db.store.revoke_api_key(&b.id, &ka.id, T0).await.ok(),
        Some(None),
        "an application cannot revoke another application's key"
    );
    let still = db.store.find_api_key_by_hash(&ka.hash).await.ok().flatten();
    assert_eq!(still.and_then(|(k, _)| k.revoked_at), None);
    assert_eq!(
        db.store
            .list_api_keys(&AppId::new())
            .await
            .unwrap_or_default(),
        vec![]
    );
    let _ = a;
}

pub async fn revoked_keys_purge_at_cutoff(db: &TestDb) {
    let (a, k1) = insert_app(db, "app", T0).await;
    let k2 = key(&a.id, T0);
    db.store
        .insert_api_key(&k2)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let _ = db
        .store
        .revoke_api_key(&a.id, &k1.id, Timestamp(T0.0 + 10))
        .await;
    let _ = db
        .store
        .revoke_api_key(&a.id, &k2.id, Timestamp(T0.0 + 20))
        .await;
    assert_eq!(
        db.store
            .purge_revoked_api_keys(Timestamp(T0.0 + 10))
            .await
            .ok(),
        Some(0),
        "a key revoked exactly at the cutoff is kept"
    );
    assert_eq!(
        db.store
            .purge_revoked_api_keys(Timestamp(T0.0 + 11))
            .await
            .ok(),
        Some(1)
    );
    assert_eq!(
        db.store
            .list_api_keys(&a.id)
            .await
            .unwrap_or_default()
            .len(),
        1
    );
}

pub async fn sealed_values_enumerate_and_swap(db: &TestDb) {
    let s = &db.store;
    for n in ["a", "b", "c"] {
        let _ = s.insert_meta_if_absent(n, n.as_bytes(), true).await;
    }
    let _ = s.insert_meta_if_absent("plain", b"p", false).await;
    let first = s.sealed_page(None, 2).await.unwrap_or_default();
    let ids: Vec<_> = first.iter().map(|(r, _)| r.id.as_str()).collect();
    assert_eq!(ids, vec!["a", "b"], "sealed values page in id order");
    let rest = s
        .sealed_page(Some(&first[1].0), 10)
        .await
        .unwrap_or_default();
    let ids: Vec<_> = rest.iter().map(|(r, _)| r.id.as_str()).collect();
    assert_eq!(ids, vec!["c"], "unsealed values are not listed");
    let r = SealedRef {
        kind: "meta".into(),
        id: "a".into(),
    };
    assert_eq!(s.replace_sealed(&r, b"wrong", b"x").await.ok(), Some(false));
    assert_eq!(s.replace_sealed(&r, b"a", b"x").await.ok(), Some(true));
    assert_eq!(s.get_meta("a").await.ok(), Some(Some(b"x".to_vec())));
}

pub async fn vault_pepper_and_wrong_key(db: &TestDb) {
    let k = MasterKey::generate();
    let text = Keyring::new(vec![k])
        .unwrap_or_else(|e| panic!("{e}"))
        .to_text();
    let v1 = Vault::open(
        &*db.store,
        Keyring::parse(&text).unwrap_or_else(|e| panic!("{e}")),
        None,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let v2 = Vault::open(
        &*db.store,
        Keyring::parse(&text).unwrap_or_else(|e| panic!("{e}")),
        None,
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        v1.hasher().hash("sk_test_x"),
        v2.hasher().hash("sk_test_x"),
        "the pepper is created once and read back on restart"
    );
    match Vault::open(&*db.store, ring(), None).await {
        Err(VaultError::WrongMasterKey { .. }) => {}
        other => panic!("a wrong master key must be refused, got {other:?}"),
    }
}

pub async fn master_key_rotation_round_trip(db: &TestDb) {
    let old = Keyring::new(vec![MasterKey::generate()]).unwrap_or_else(|e| panic!("{e}"));
    let old_text = old.to_text();
    let vault = Vault::open(&*db.store, old, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let before = vault.hasher().hash("sk_test_probe");
    for i in 0..250 {
        let name = format!("secret-{i:03}");
        let sealed = vault.seal(&format!("meta:{name}"), name.as_bytes());
        let _ = db.store.insert_meta_if_absent(&name, &sealed, true).await;
    }
    let rotated = Keyring::parse(&old_text)
        .unwrap_or_else(|e| panic!("{e}"))
        .with_new_active(MasterKey::generate());
    let new_text = rotated.to_text();
    vault.replace_keyring(rotated);
    let mut pages = 0;
    let report = rotation::reseal_all(&*db.store, &vault, &mut |_| pages += 1)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        report.resealed, 251,
        "250 secrets and the pepper are re-sealed"
    );
    assert_eq!(report.remaining, 0);
    assert!(pages >= 2, "progress is reported per page");
    let again = rotation::reseal_all(&*db.store, &vault, &mut |_| {})
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(again.resealed, 0, "a second pass finds nothing to do");

    let only_new = Keyring::parse(&new_text)
        .unwrap_or_else(|e| panic!("{e}"))
        .retain_active_only();
    let v2 = Vault::open(&*db.store, only_new, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        v2.hasher().hash("sk_test_probe"),
        before,
        "the pepper survives rotation"
    );
    let blob = db
        .store
        .get_meta("secret-123")
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
    let opened = v2.unseal("meta:secret-123", &blob).map(|v| v.to_vec());
    assert_eq!(opened.ok(), Some(b"secret-123".to_vec()));
    let old_only = Keyring::parse(&old_text).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        Vault::open(&*db.store, old_only, None).await.is_err(),
        "after rotation the retired key alone no longer opens the database"
    );
}

struct Counting {
    runs: AtomicU64,
}

#[async_trait]
impl Job for Counting {
    fn name(&self) -> &'static str {
        "counting"
    }
    fn interval_secs(&self) -> u64 {
        60
    }
    async fn run_once(&self, _now: Timestamp) -> sessiond_core::error::Result<JobOutcome> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        tokio::task::yield_now().await;
        Ok(JobOutcome::default())
    }
}

/// Two schedulers on two connection pools tick the same job concurrently, several times per
/// slot; every slot runs exactly once.
pub async fn jobs_run_once_across_nodes(db: &TestDb) {
    let node_b = db.second_node().await;
    let job = Arc::new(Counting {
        runs: AtomicU64::new(0),
    });
    let slots = 12i64;
    let mut handles = Vec::new();
    for (holder, store) in [("node-a", Arc::clone(&db.store)), ("node-b", node_b)] {
        let job = Arc::clone(&job);
        handles.push(tokio::spawn(async move {
            let mut ran = 0u64;
            for slot in 0..slots {
                for tick in 0..3 {
                    let now = Timestamp(T0.0 + slot * 60_000 + tick * 7_000);
                    if let Ok(Scheduled::Ran(_)) =
                        jobs::run_claimed(job.as_ref(), store.as_ref(), holder, now).await
                    {
                        ran += 1;
                    }
                }
            }
            ran
        }));
    }
    let mut total = 0;
    for h in handles {
        total += h.await.unwrap_or(0);
    }
    assert_eq!(total, slots as u64, "each slot ran once in total");
    assert_eq!(job.runs.load(Ordering::SeqCst), slots as u64);
    let purged = db
        .store
        .purge_job_runs(Timestamp(T0.0 + 6 * 60_000))
        .await
        .ok();
    assert_eq!(
        purged,
        Some(6),
        "job-run records older than the cutoff are purged"
    );
}

/// How long another node may take to see an epoch change (PostgreSQL nodes learn it by
/// notification, with a periodic re-read as the fallback; see docs/design/storage-contract.md).
pub const EPOCH_PROPAGATION: std::time::Duration = std::time::Duration::from_secs(1);

/// Waits for `db`'s epoch to differ from `old`, at most [`EPOCH_PROPAGATION`] (plus slack for
/// a loaded machine); returns the new value.
async fn epoch_after(db: &TestDb, old: i64, what: &str) -> i64 {
    let deadline = std::time::Instant::now() + EPOCH_PROPAGATION * 3;
    loop {
        let now = db
            .store
            .auth_epoch()
            .await
            .unwrap_or_else(|e| panic!("auth_epoch: {e}"));
        if now != old {
            return now;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what} moves the epoch (still {old})"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// The authentication epoch moves with every key and application change, made by this node or
/// another, and stays put for other writes.
pub async fn auth_epoch_moves_with_keys_and_applications(db: &TestDb) {
    let other = db.second_node().await;
    let e0 = epoch_after(db, i64::MIN, "nothing").await;
    let (mut a, k) = insert_app(db, "app", T0).await;
    let e1 = epoch_after(db, e0, "a new key").await;
    db.store
        .insert_meta_if_absent("unrelated", b"x", false)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        db.store.auth_epoch().await.ok(),
        Some(e1),
        "other writes leave it alone"
    );
    other
        .revoke_api_key(&a.id, &k.id, Timestamp(T0.0 + 1))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let e2 = epoch_after(db, e1, "a revocation by another node").await;
    a.version += 1;
    a.settings.session_token_lifetime_secs = 90;
    db.store
        .update_application(&a)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let e3 = epoch_after(db, e2, "a settings change").await;
    db.store
        .delete_application(&a.id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    epoch_after(db, e3, "a deleted application").await;
}

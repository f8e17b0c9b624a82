//! Service-level behaviour over a real store, with time driven by a manual clock: signing-key
//! rotation with overlap, token lifetimes, coalesced activity and session deadlines.

use std::sync::Arc;

use serde_json::Value;
use sessiond_core::Error;
use sessiond_core::Timestamp;
use sessiond_core::application::{AppSettings, Application, KeyEnvironment};
use sessiond_core::clock::{Clock, ManualClock};
use sessiond_core::login::LoginService;
use sessiond_core::session::SessionStatus;
use sessiond_core::signing::{NEXT_KEY_LEAD_SECS, Signer};
use sessiond_core::tenancy::Tenancy;
use sessiond_core::user::NewUser;
use sessiond_core::vault::Vault;
use sessiond_crypto::jwt::{RsaPublicKey, decode_unverified, verify_rs256};
use sessiond_crypto::seal::{Keyring, MasterKey};
use sessiond_store_conformance::services::Services;
use sessiond_store_conformance::{Kind, TestDb};

const T0: Timestamp = Timestamp(1_767_225_600_000);

/// Tests `NAME::sqlite` and `NAME::postgres`, running `NAME(kind)`. Multi-threaded: dropping a
/// PostgreSQL test database closes its pool, which needs the runtime.
macro_rules! on_both_backends {
    ($name:ident) => {
        mod $name {
            use super::Kind;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(Kind::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(Kind::Postgres).await;
            }
        }
    };
}

struct Env {
    _services: Services,
    clock: ManualClock,
    login: Arc<LoginService>,
    signer: Arc<Signer>,
    app: Application,
}

async fn env(settings: fn(&mut AppSettings)) -> Env {
    let services = Services::sqlite().await;
    let (app, _) = services.app("svc", T0, settings).await;
    Env {
        clock: ManualClock::new(T0),
        login: services.login.clone(),
        signer: services.signer.clone(),
        app,
        _services: services,
    }
}

impl Env {
    /// The application's published keys now.
    async fn jwks(&self) -> Value {
        self.signer
            .jwks(&self.app.id, self.clock.now())
            .await
            .unwrap_or_default()
    }

    /// A session token for session `id`, minted now.
    async fn mint(
        &self,
        id: &sessiond_core::ids::SessionId,
        lifetime: Option<u64>,
    ) -> sessiond_core::error::Result<String> {
        self.login
            .create_session_token(&self.app, id, lifetime, self.clock.now())
            .await
    }

    /// [`Env::mint`] where minting must succeed.
    async fn minted(&self, id: &sessiond_core::ids::SessionId, lifetime: Option<u64>) -> String {
        self.mint(id, lifetime)
            .await
            .unwrap_or_else(|err| panic!("{err}"))
    }
}

/// Verifies `token` against the application's published JWKS at the env's current time.
async fn verifies(e: &Env, token: &str) -> bool {
    let Ok((header, _)) = decode_unverified(token) else {
        return false;
    };
    let kid = header["kid"].as_str().unwrap_or_default().to_owned();
    let jwks = e.jwks().await;
    let keys = jwks["keys"].as_array().cloned().unwrap_or_default();
    keys.iter()
        .filter(|k| k["kid"] == kid.as_str())
        .filter_map(RsaPublicKey::from_jwk)
        .any(|k| verify_rs256(token, &k).is_ok())
}

fn kid(token: &str) -> String {
    decode_unverified(token)
        .map(|(h, _)| h["kid"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_default()
}

fn published(jwks: &Value) -> usize {
    jwks["keys"].as_array().map_or(0, Vec::len)
}

async fn session(e: &Env) -> sessiond_core::session::Session {
    let u = e
        .login
        .create_user(&e.app, NewUser::default(), e.clock.now())
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    e.login
        .create_session(&e.app, &u.id, false, e.clock.now())
        .await
        .unwrap_or_else(|err| panic!("{err}"))
}

#[tokio::test]
async fn rotation_publishes_next_key_first_and_keeps_old_tokens_valid() {
    let e = env(|_| {}).await;
    let s = session(&e).await;
    let before = e.minted(&s.id, Some(3600)).await;
    let old_kid = kid(&before);
    assert!(verifies(&e, &before).await);

    let next = e
        .signer
        .rotate(&e.app.id, false, e.clock.now())
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let jwks = e.jwks().await;
    assert_eq!(
        published(&jwks),
        2,
        "the next key is published before it signs"
    );
    let still_old = e.minted(&s.id, None).await;
    assert_eq!(
        kid(&still_old),
        old_kid,
        "the next key does not sign during the lead time"
    );

    e.clock.advance_secs(NEXT_KEY_LEAD_SECS);
    assert_eq!(
        e.signer.maintain(&e.app.id, e.clock.now()).await.ok(),
        Some(1)
    );
    let after = e.minted(&s.id, None).await;
    assert_eq!(
        kid(&after),
        next.as_str(),
        "the new key signs after promotion"
    );
    assert!(verifies(&e, &after).await);
    assert!(
        verifies(&e, &before).await,
        "a token signed before rotation still verifies"
    );

    // The old key stays published until its last token (exp T0+3600, plus the extension step).
    e.clock.set(T0.plus_secs(3600));
    let _ = e.signer.maintain(&e.app.id, e.clock.now()).await;
    assert!(
        verifies(&e, &before).await,
        "published until the token expires"
    );
    e.clock.set(T0.plus_secs(3600 + 3600 + 1));
    let _ = e.signer.maintain(&e.app.id, e.clock.now()).await;
    let jwks = e.jwks().await;
    assert_eq!(
        published(&jwks),
        1,
        "the retired key is dropped once no token needs it"
    );
    assert!(!verifies(&e, &before).await);
}

#[tokio::test]
async fn immediate_rotation_keeps_the_old_key_published() {
    let e = env(|_| {}).await;
    let s = session(&e).await;
    let before = e.minted(&s.id, None).await;
    e.signer
        .rotate(&e.app.id, true, e.clock.now())
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let after = e.minted(&s.id, None).await;
    assert_ne!(kid(&before), kid(&after));
    assert!(verifies(&e, &before).await && verifies(&e, &after).await);
    // Even a 60 s token keeps its key published for the rotation lead time (other nodes' caches).
    e.clock.advance_secs(NEXT_KEY_LEAD_SECS - 1);
    let _ = e.signer.maintain(&e.app.id, e.clock.now()).await;
    assert!(verifies(&e, &before).await);
}

#[tokio::test]
async fn old_keys_are_rotated_by_maintenance() {
    let e = env(|_| {}).await;
    let s = session(&e).await;
    let first = kid(&e.minted(&s.id, None).await);
    e.clock
        .advance_secs(sessiond_core::signing::MAX_KEY_AGE_SECS);
    assert_eq!(
        e.signer.maintain(&e.app.id, e.clock.now()).await.ok(),
        Some(1),
        "an old key gets a successor"
    );
    e.clock.advance_secs(NEXT_KEY_LEAD_SECS);
    let _ = e.signer.maintain(&e.app.id, e.clock.now()).await;
    let s2 = session(&e).await;
    let second = kid(&e.minted(&s2.id, None).await);
    assert_ne!(first, second);
}

#[tokio::test]
async fn activity_is_coalesced_and_deadlines_apply_at_once() {
    let e = env(|s| {
        s.inactivity_timeout_secs = Some(600);
        s.session_max_lifetime_secs = 3600;
    })
    .await;
    let s = session(&e).await;
    let v0 = s.version;
    for _ in 0..5 {
        e.clock.advance_secs(10);
        e.minted(&s.id, None).await;
    }
    let read = e
        .login
        .get_session(&e.app, &s.id)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(
        read.version, v0,
        "reads within the window write nothing (window = min(60 s, idle/10) = 60 s)"
    );
    e.clock.advance_secs(20);
    let _ = e.mint(&s.id, None).await;
    let read = e
        .login
        .get_session(&e.app, &s.id)
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(read.version, v0 + 1, "a touch after the window is written");
    assert_eq!(
        read.idle_deadline,
        Some(e.clock.now().plus_secs(600)),
        "the idle deadline slides"
    );
    assert_eq!(read.expire_at, s.expire_at, "expire_at never moves");

    e.clock.advance_secs(600);
    assert_eq!(
        read.effective_status(e.clock.now()),
        SessionStatus::Suspended
    );
    let refused = e.mint(&s.id, None).await;
    assert!(matches!(
        refused,
        Err(Error::SessionNotUsable {
            status: SessionStatus::Suspended
        })
    ));
    let ended = e
        .login
        .revoke_session(&e.app, &s.id, e.clock.now())
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(
        ended.status,
        SessionStatus::Suspended,
        "a lapsed session stays lapsed when revoked"
    );
}

#[tokio::test]
async fn tokens_only_for_active_sessions_and_bounded_lifetimes() {
    let e = env(|_| {}).await;
    let u = e
        .login
        .create_user(&e.app, NewUser::default(), e.clock.now())
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let pending = e
        .login
        .create_session(&e.app, &u.id, true, e.clock.now())
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let r = e.mint(&pending.id, None).await;
    assert!(matches!(
        r,
        Err(Error::SessionNotUsable {
            status: SessionStatus::Pending
        })
    ));
    let s = session(&e).await;
    for bad in [29, 315_360_001] {
        let r = e.mint(&s.id, Some(bad)).await;
        assert!(matches!(r, Err(Error::InvalidInput { .. })), "{bad}");
    }
    let ok = e.mint(&s.id, Some(30)).await;
    assert!(ok.is_ok());
    let revoked = e
        .login
        .revoke_session(&e.app, &s.id, e.clock.now())
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(revoked.status, SessionStatus::Revoked);
    let again = e
        .login
        .revoke_session(&e.app, &s.id, e.clock.now())
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(
        again.version, revoked.version,
        "revoking twice writes nothing"
    );
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let body: Vec<String> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        body.join("\n")
    )
}

/// Custom template keys sign with their own algorithm, and the signature verifies with the
/// matching public key.
#[tokio::test]
async fn custom_template_keys_sign_with_es256_and_eddsa() {
    use aws_lc_rs::signature::{self, KeyPair};
    use sessiond_core::template::TemplateInput;
    let e = env(|_| {}).await;
    let s = session(&e).await;
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let ec =
        signature::EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .unwrap_or_else(|err| panic!("{err}"));
    let ec_pair = signature::EcdsaKeyPair::from_pkcs8(
        &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        ec.as_ref(),
    )
    .unwrap_or_else(|err| panic!("{err}"));
    let ed = signature::Ed25519KeyPair::generate().unwrap_or_else(|err| panic!("{err}"));
    let ed_der = ed.to_pkcs8().unwrap_or_else(|err| panic!("{err}"));
    let cases: Vec<(
        &str,
        String,
        Vec<u8>,
        &'static dyn signature::VerificationAlgorithm,
    )> = vec![
        (
            "ES256",
            pem("PRIVATE KEY", ec.as_ref()),
            ec_pair.public_key().as_ref().to_vec(),
            &signature::ECDSA_P256_SHA256_FIXED,
        ),
        (
            "EdDSA",
            pem("PRIVATE KEY", ed_der.as_ref()),
            ed.public_key().as_ref().to_vec(),
            &signature::ED25519,
        ),
    ];
    for (alg, key_pem, public, verify_alg) in cases {
        let name = format!("custom-{}", alg.to_lowercase());
        let input = TemplateInput {
            name: Some(name.clone()),
            claims: Some(serde_json::Map::from_iter([(
                "a".to_owned(),
                serde_json::json!("{{user.id}}"),
            )])),
            custom_signing_key: Some(true),
            signing_algorithm: Some(Some(alg.to_owned())),
            signing_key: Some(Some(key_pem)),
            ..TemplateInput::default()
        };
        e.login
            .create_template(&e.app, input, e.clock.now())
            .await
            .unwrap_or_else(|err| panic!("{alg}: {err}"));
        let token = e
            .login
            .create_template_token(&e.app, &s.id, &name, None, e.clock.now())
            .await
            .unwrap_or_else(|err| panic!("{alg}: {err}"));
        let (header, claims) = decode_unverified(&token).unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(header["alg"], alg);
        assert_eq!(claims["a"], serde_json::json!(s.user_id));
        let (input, sig) = token.rsplit_once('.').unwrap_or_default();
        use base64::Engine;
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(sig)
            .unwrap_or_default();
        signature::UnparsedPublicKey::new(verify_alg, &public)
            .verify(input.as_bytes(), &sig)
            .unwrap_or_else(|_| panic!("{alg} signature verifies"));
    }
}

/// A token minted from a JWT template carries the template category and is refused where a
/// session token is asked for, even when signed with the application's own key; a session token
/// of the same session is accepted. (The values are the core's defaults here; the server wires
/// the Clerk dialect's, which the SDK suites check.)
#[tokio::test]
async fn a_template_token_is_never_taken_for_a_session_token() {
    let e = env(|_| {}).await;
    let s = session(&e).await;
    let input = sessiond_core::template::TemplateInput {
        name: Some("plain".to_owned()),
        claims: Some(serde_json::Map::from_iter([(
            "u".to_owned(),
            serde_json::json!("{{user.id}}"),
        )])),
        ..Default::default()
    };
    e.login
        .create_template(&e.app, input, e.clock.now())
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let template = e
        .login
        .create_template_token(&e.app, &s.id, "plain", None, e.clock.now())
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    let session_token = e.minted(&s.id, None).await;
    let cat = |t: &str| decode_unverified(t).map(|(h, _)| h["cat"].clone()).ok();
    assert_eq!(cat(&template), Some(Value::from("template")));
    assert_eq!(cat(&session_token), Some(Value::from("session")));
    assert!(
        verifies(&e, &template).await,
        "signed with the application's key"
    );
    let verify = |t: String| {
        let e = &e;
        let id = s.id.clone();
        async move { e.login.verify_session(&e.app, &id, &t, e.clock.now()).await }
    };
    assert!(matches!(
        verify(template).await,
        Err(Error::InvalidToken("not a session token"))
    ));
    assert_eq!(
        verify(session_token).await.map(|v| v.id).ok(),
        Some(s.id.clone())
    );
}

/// The vault of `db` under a fresh master key, shared by every node of a test.
async fn fresh_vault(db: &TestDb) -> Arc<Vault> {
    let ring = Keyring::new(vec![MasterKey::generate()]).unwrap_or_else(|e| panic!("{e}"));
    Arc::new(
        Vault::open(&*db.store, ring, None)
            .await
            .unwrap_or_else(|e| panic!("{e}")),
    )
}

/// Verified keys are cached per node, yet a change made behind the node's back (another node, or
/// an administrative command on the same file) is seen on the very next request on SQLite, and
/// within the notification bound on PostgreSQL.
async fn key_cache_sees_changes_made_elsewhere(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let vault = fresh_vault(&db).await;
    let node = Tenancy::new(db.store.clone(), vault.clone());
    let elsewhere = Tenancy::new(db.second_node().await, vault);
    let created = node
        .create_application("cache", KeyEnvironment::Test, None, T0)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let header = format!("Bearer {}", created.secret_key.expose());
    let auth = || node.authenticate(Some(header.as_bytes()));
    // On PostgreSQL the notification of the key's own creation may land between two requests
    // and (correctly) refresh the cache once; after that, requests are served from memory.
    let settle = std::time::Instant::now();
    loop {
        let first = auth().await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(first.settings.session_token_lifetime_secs, 60);
        let again = auth().await.unwrap_or_else(|e| panic!("{e}"));
        if Arc::ptr_eq(&first, &again) {
            break;
        }
        assert!(
            settle.elapsed() < std::time::Duration::from_secs(3),
            "an unchanged key is served from memory"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }

    elsewhere
        .update_application(&created.application.id, T0, |a| {
            a.settings.session_token_lifetime_secs = 120;
            Ok(())
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // SQLite: the next request. PostgreSQL: within the propagation bound.
    // (PostgreSQL: the documented bound, with slack for a loaded test machine.)
    let bound = match kind {
        Kind::Sqlite => std::time::Duration::ZERO,
        Kind::Postgres => sessiond_store_conformance::cases::EPOCH_PROPAGATION * 3,
    };
    let started = std::time::Instant::now();
    loop {
        let updated = auth().await.unwrap_or_else(|e| panic!("{e}"));
        if updated.settings.session_token_lifetime_secs == 120 {
            break;
        }
        assert!(
            started.elapsed() <= bound,
            "a settings change made elsewhere is seen within {bound:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }

    elsewhere
        .revoke_key(&created.application.id, &created.key.id, T0)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let started = std::time::Instant::now();
    loop {
        let r = auth().await;
        if matches!(
            r,
            Err(Error::Unauthenticated(
                sessiond_core::error::AuthFailure::RevokedKey
            ))
        ) {
            break;
        }
        assert!(
            started.elapsed() <= bound,
            "a revocation made elsewhere is seen within {bound:?}: {r:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

on_both_backends!(key_cache_sees_changes_made_elsewhere);

/// Opened profiles are kept per node, yet a change made on another node (or by an
/// administrative command) is in the very next read of this one: an entry answers only for the
/// sealed bytes it was opened from.
async fn profile_cache_sees_changes_made_elsewhere(kind: Kind) {
    let Some(db) = TestDb::new(kind).await else {
        return;
    };
    let vault = fresh_vault(&db).await;
    let tenancy = Tenancy::new(db.store.clone(), vault.clone());
    let node = LoginService::new(
        db.store.clone(),
        vault.clone(),
        Arc::new(Signer::new(db.store.clone(), vault.clone())),
    )
    .with_profile_cache(16);
    let other = db.second_node().await;
    let elsewhere = LoginService::new(
        other.clone(),
        vault.clone(),
        Arc::new(Signer::new(other, vault.clone())),
    );
    let app = tenancy
        .create_application("profiles", KeyEnvironment::Test, None, T0)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .application;
    let named = |n: &str| NewUser {
        first_name: Some(n.to_owned()),
        ..NewUser::default()
    };
    let user = node
        .create_user(&app, named("Ada"), T0)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let s = node
        .create_session(&app, &user.id, false, T0)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let first_name = || async {
        node.get_session_with_user(&app, &s.id)
            .await
            .map(|(_, u)| u.profile.first_name)
    };
    for _ in 0..3 {
        assert_eq!(first_name().await.ok().flatten().as_deref(), Some("Ada"));
    }
    let rename = |n: &str| sessiond_core::user::UserPatch {
        first_name: Some(Some(n.to_owned())),
        ..Default::default()
    };
    elsewhere
        .update_user(&app, &user.id, rename("Grace"), T0)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        first_name().await.ok().flatten().as_deref(),
        Some("Grace"),
        "a profile changed on another node is read at once"
    );
    // Back to the first value: sealed again under a fresh nonce, so still a different entry.
    elsewhere
        .update_user(&app, &user.id, rename("Ada"), T0)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(first_name().await.ok().flatten().as_deref(), Some("Ada"));
    elsewhere
        .delete_user(&app, &user.id, T0)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        matches!(first_name().await, Err(Error::NotFound { .. })),
        "a user deleted elsewhere takes its sessions with it"
    );
}

on_both_backends!(profile_cache_sees_changes_made_elsewhere);

#[tokio::test]
async fn refresh_takes_an_expired_token_of_the_same_active_session() {
    let e = env(|_| {}).await;
    let s = session(&e).await;
    let old = e.minted(&s.id, Some(30)).await;
    e.clock.advance_secs(3600);
    let fresh = e
        .login
        .refresh_session_token(&e.app, &s.id, &old, e.clock.now())
        .await
        .unwrap_or_else(|err| panic!("an hour-old token of an active session refreshes: {err}"));
    assert_ne!(fresh, old);
    let other = session(&e).await;
    assert!(matches!(
        e.login
            .refresh_session_token(&e.app, &other.id, &old, e.clock.now())
            .await,
        Err(Error::InvalidToken(_))
    ));
    let mut forged = old.clone();
    forged.truncate(forged.len() - 2);
    forged.push_str("xx");
    assert!(matches!(
        e.login
            .refresh_session_token(&e.app, &s.id, &forged, e.clock.now())
            .await,
        Err(Error::InvalidToken(_))
    ));
    e.login
        .revoke_session(&e.app, &s.id, e.clock.now())
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert!(matches!(
        e.login
            .refresh_session_token(&e.app, &s.id, &old, e.clock.now())
            .await,
        Err(Error::SessionNotUsable { .. })
    ));
}

#[tokio::test]
async fn user_search_opens_sealed_profiles_and_orders_them() {
    use sessiond_core::user::{UserOrder, UserQuery, UserSearch, UserSortField};
    let e = env(|_| {}).await;
    let mut ids = Vec::new();
    // More users than one scan chunk, so the scan pages through the store.
    for i in 0..(sessiond_core::login::SCAN_CHUNK + 5) {
        let u = e
            .login
            .create_user(
                &e.app,
                NewUser {
                    first_name: Some(format!("n{:05}", (i * 7919) % 10007)),
                    email_addresses: vec![format!("u{i}@scan.example")],
                    ..NewUser::default()
                },
                e.clock.now(),
            )
            .await
            .unwrap_or_else(|err| panic!("{err}"));
        ids.push(u.id);
    }
    let search = |query: UserQuery, field, descending, limit, offset| UserSearch {
        query,
        order: UserOrder { field, descending },
        limit,
        offset,
        ..UserSearch::default()
    };
    let (page, total) = e
        .login
        .list_users(
            &e.app,
            &search(UserQuery::default(), UserSortField::FirstName, false, 3, 0),
        )
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(total, u64::from(sessiond_core::login::SCAN_CHUNK) + 5);
    let names: Vec<_> = page
        .iter()
        .filter_map(|u| u.profile.first_name.clone())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert_eq!(names.first().map(String::as_str), Some("n00000"));
    let (page, total) = e
        .login
        .list_users(
            &e.app,
            &search(
                UserQuery {
                    any: Some("U100".into()),
                    ..UserQuery::default()
                },
                UserSortField::CreatedAt,
                true,
                10,
                0,
            ),
        )
        .await
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(total, 6, "u100 and u1000..u1004 match the partial query");
    assert!(page.iter().all(|u| ids.contains(&u.id)));
}

/// Rows written the way versions before sealing wrote them (external id in its clear column and
/// not indexed, SSO in the session's attributes, template claims in clear) are sealed by
/// `seal_legacy_values`, and read the same afterwards.
async fn legacy_clear_values_are_sealed_at_start(kind: Kind) {
    use sessiond_core::ids::{ClientId, TemplateId};
    use sessiond_core::session::{Session, SessionAttributes, SsoDetails};
    use sessiond_core::template::JwtTemplate;
    use sessiond_core::user::UserSearch;

    let Some(services) = Services::new(kind).await else {
        return;
    };
    let (app, _) = services.app("legacy", T0, |_| {}).await;
    let login = &services.login;
    // A user whose external id sits in the clear column, not in the blind index.
    let fresh = login
        .create_user(&app, NewUser::default(), T0)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut row = services
        .store
        .get_user(&app.id, &fresh.id)
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("user stored"));
    row.external_id = Some("legacy-ext-1".into());
    row.version += 1;
    services
        .store
        .update_user(&row, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // A session whose SSO sits in its attributes.
    let mut session = Session::new(
        &app.id,
        &app.settings,
        fresh.id.clone(),
        ClientId::new(),
        false,
        T0,
    );
    session.attributes = SessionAttributes {
        sso: Some(SsoDetails {
            provider: "okta".into(),
            identifier: "legacy@example.org".into(),
        }),
        ..SessionAttributes::default()
    };
    services
        .store
        .insert_session(&session, None)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // A template whose claims are in clear.
    let template = JwtTemplate {
        id: TemplateId::new(),
        application_id: app.id.clone(),
        name: "legacy".into(),
        claims: serde_json::from_str(r#"{"secret": "legacy-claim"}"#).unwrap_or_default(),
        claims_sealed: None,
        lifetime_secs: 60,
        allowed_clock_skew_secs: 5,
        custom_signing_key: false,
        signing_algorithm: sessiond_crypto::jwt::Algorithm::RS256,
        signing_key_sealed: None,
        created_at: T0,
        updated_at: T0,
        version: 1,
    };
    services
        .store
        .insert_template(&template)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let sealed = login
        .seal_legacy_values()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (
            sealed.users,
            sealed.sessions,
            sealed.templates,
            sealed.users_left
        ),
        (1, 1, 1, 0)
    );
    assert_eq!(
        login.seal_legacy_values().await.ok(),
        Some(sessiond_core::login::Sealed::default()),
        "a second start finds nothing"
    );

    let row = services
        .store
        .get_user(&app.id, &fresh.id)
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("user stored"));
    assert_eq!(row.external_id, None, "no external id left in clear");
    let (found, _) = login
        .list_users(
            &app,
            &UserSearch {
                external_ids: vec!["legacy-ext-1".into()],
                ..UserSearch::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        found.iter().map(|u| u.id.clone()).collect::<Vec<_>>(),
        vec![fresh.id.clone()]
    );

    let s = login
        .get_session(&app, &session.id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(s.sso.is_some() && s.attributes.sso.is_none());
    assert_eq!(
        login.session_sso(&s).ok().flatten().map(|x| x.identifier),
        Some("legacy@example.org".into())
    );

    let raw = services
        .store
        .get_template(&app.id, &template.id)
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("template stored"));
    assert!(raw.claims.is_empty() && raw.claims_sealed.is_some());
    let opened = login
        .get_template(&app, &template.id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(opened.claims["secret"], "legacy-claim");
}

on_both_backends!(legacy_clear_values_are_sealed_at_start);

/// Revoking all of a user's sessions revokes every usable one, however many pages they fill, and
/// counts only those: ended sessions and other users' sessions stay as they are.
async fn revoking_all_of_a_users_sessions_crosses_pages(kind: Kind) {
    let Some(services) = Services::new(kind).await else {
        return;
    };
    let (app, _) = services.app("revoke-all", T0, |_| {}).await;
    let login = &services.login;
    let user = |name: &str| NewUser {
        first_name: Some(name.to_owned()),
        ..NewUser::default()
    };
    let ada = login
        .create_user(&app, user("Ada"), T0)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let bob = login
        .create_user(&app, user("Bob"), T0)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let usable = sessiond_core::login::REVOKE_PAGE as usize + 30;
    let mut ada_sessions = Vec::new();
    for i in 0..usable + 1 {
        let pending = i % 3 == 0;
        let s = login
            .create_session(&app, &ada.id, pending, T0)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        ada_sessions.push(s.id);
    }
    // One already ended: not revoked again, not counted.
    let ended = ada_sessions[0].clone();
    login
        .apply(&app, &ended, sessiond_core::session::Event::End, T0)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let bobs = login
        .create_session(&app, &bob.id, false, T0)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let later = Timestamp(T0.0 + 1_000);
    assert_eq!(
        login.revoke_user_sessions(&app, &ada.id, later).await.ok(),
        Some(usable as u64)
    );
    for id in &ada_sessions {
        let s = login
            .get_session(&app, id)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let want = if *id == ended {
            SessionStatus::Ended
        } else {
            SessionStatus::Revoked
        };
        assert_eq!(s.status, want, "{id}");
    }
    let bobs = login
        .get_session(&app, &bobs.id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(bobs.status, SessionStatus::Active, "another user's session");
    assert_eq!(
        login.revoke_user_sessions(&app, &ada.id, later).await.ok(),
        Some(0),
        "nothing left to revoke"
    );
}

on_both_backends!(revoking_all_of_a_users_sessions_crosses_pages);

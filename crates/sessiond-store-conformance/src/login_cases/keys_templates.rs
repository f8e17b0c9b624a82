//! Contract cases: signing keys and JWT templates.

use crate::TestDb;
use crate::cases::{T0, insert_app};
use serde_json::Map;
use sessiond_core::Timestamp;
use sessiond_core::application::AppId;
use sessiond_core::ids::{SigningKeyId, TemplateId};
use sessiond_core::store::{KeyState, SigningKeyRecord, StoreError};
use sessiond_core::template::JwtTemplate;
use sessiond_crypto::jwt::Algorithm;

pub(super) fn key(app: &AppId, state: KeyState, at: Timestamp) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: SigningKeyId::new(),
        application_id: app.clone(),
        algorithm: "RS256".into(),
        private_sealed: vec![7; 40],
        public_jwk: "{}".into(),
        state,
        created_at: at,
        activates_at: at,
        retired_at: None,
        publish_until: at,
        version: 1,
    }
}

pub async fn signing_keys_rotate_atomically(db: &TestDb) {
    let (a, _) = insert_app(db, "a", T0).await;
    let (b, _) = insert_app(db, "b", T0).await;
    let k1 = key(&a.id, KeyState::Current, T0);
    db.store
        .insert_signing_key(&k1)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        db.store
            .insert_signing_key(&key(&a.id, KeyState::Current, T0))
            .await,
        Err(StoreError::Conflict),
        "one current key per application"
    );
    db.store
        .insert_signing_key(&key(&b.id, KeyState::Current, T0))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let k2 = key(&a.id, KeyState::Next, Timestamp(T0.0 + 1));
    db.store
        .insert_signing_key(&k2)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        db.store.promote_signing_key(&b.id, &k2.kid, T0).await.ok(),
        Some(false),
        "B cannot promote A's key"
    );
    let t1 = Timestamp(T0.0 + 100);
    assert_eq!(
        db.store.promote_signing_key(&a.id, &k2.kid, t1).await.ok(),
        Some(true)
    );
    let keys = db.store.list_signing_keys(&a.id).await.unwrap_or_default();
    let states: Vec<(SigningKeyId, KeyState)> =
        keys.iter().map(|k| (k.kid.clone(), k.state)).collect();
    assert_eq!(
        states,
        vec![
            (k1.kid.clone(), KeyState::Retired),
            (k2.kid.clone(), KeyState::Current)
        ]
    );
    assert_eq!(keys[0].retired_at, Some(t1));
    assert_eq!(
        db.store.promote_signing_key(&a.id, &k2.kid, t1).await.ok(),
        Some(false),
        "promotion is not repeated"
    );

    db.store
        .extend_signing_key(&a.id, &k1.kid, Timestamp(T0.0 + 5000))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    db.store
        .extend_signing_key(&a.id, &k1.kid, Timestamp(T0.0 + 10))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        db.store
            .delete_expired_signing_keys(&a.id, Timestamp(T0.0 + 5000))
            .await
            .ok(),
        Some(0),
        "publish_until only grows; kept through it"
    );
    assert_eq!(
        db.store
            .delete_expired_signing_keys(&a.id, Timestamp(T0.0 + 5001))
            .await
            .ok(),
        Some(1)
    );
    assert_eq!(
        db.store
            .list_signing_keys(&a.id)
            .await
            .unwrap_or_default()
            .len(),
        1,
        "the current key is never deleted"
    );
}

pub(super) fn template(app: &AppId, name: &str, at: Timestamp) -> JwtTemplate {
    JwtTemplate {
        id: TemplateId::new(),
        application_id: app.clone(),
        name: name.into(),
        claims: Map::from_iter([(
            "role".to_owned(),
            serde_json::json!("{{user.public_metadata.role}}"),
        )]),
        lifetime_secs: 60,
        allowed_clock_skew_secs: 5,
        custom_signing_key: false,
        signing_algorithm: Algorithm::RS256,
        signing_key_sealed: None,
        claims_sealed: Some(vec![7, 7, 7]),
        created_at: at,
        updated_at: at,
        version: 1,
    }
}

pub async fn templates_round_trip_and_isolation(db: &TestDb) {
    let (a, _) = insert_app(db, "a", T0).await;
    let (b, _) = insert_app(db, "b", T0).await;
    let t1 = template(&a.id, "hasura", T0);
    let mut t2 = template(&a.id, "custom", Timestamp(T0.0 + 1));
    t2.custom_signing_key = true;
    t2.signing_algorithm = Algorithm::HS256;
    t2.signing_key_sealed = Some(vec![5; 48]);
    for t in [&t1, &t2] {
        db.store
            .insert_template(t)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(
        db.store
            .insert_template(&template(&a.id, "hasura", T0))
            .await,
        Err(StoreError::Conflict),
        "names are unique per application"
    );
    db.store
        .insert_template(&template(&b.id, "hasura", T0))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        db.store
            .get_template(&a.id, &t2.id)
            .await
            .ok()
            .flatten()
            .as_ref(),
        Some(&t2)
    );
    assert_eq!(
        db.store
            .get_template_by_name(&a.id, "hasura")
            .await
            .ok()
            .flatten()
            .map(|t| t.id),
        Some(t1.id.clone())
    );
    assert_eq!(db.store.get_template(&b.id, &t1.id).await.ok(), Some(None));
    let (list, total) = db
        .store
        .list_templates(&a.id, 10, 0)
        .await
        .unwrap_or_default();
    assert_eq!(
        (
            list.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            total
        ),
        (vec!["custom", "hasura"], 2)
    );
    let mut renamed = t2.clone();
    renamed.name = "hasura".into();
    renamed.version = 2;
    assert_eq!(
        db.store.update_template(&renamed).await,
        Err(StoreError::Conflict)
    );
    renamed.name = "other".into();
    assert_eq!(db.store.update_template(&renamed).await, Ok(()));
    assert_eq!(
        db.store.get_template(&a.id, &renamed.id).await,
        Ok(Some(renamed.clone())),
        "every field written by the update reads back"
    );
    assert_eq!(
        db.store.delete_template(&b.id, &t1.id).await.ok(),
        Some(false)
    );
    assert_eq!(
        db.store.delete_template(&a.id, &t1.id).await.ok(),
        Some(true)
    );
    assert_eq!(db.store.delete_application(&a.id).await.ok(), Some(true));
    assert_eq!(
        db.store.get_template(&a.id, &t2.id).await.ok(),
        Some(None),
        "templates go with their application"
    );
}

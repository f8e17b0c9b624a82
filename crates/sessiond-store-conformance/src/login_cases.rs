//! Storage contract of users, sessions, signing keys and JWT templates.

use serde_json::Map;
use sessiond_core::Timestamp;
use sessiond_core::application::AppId;
use sessiond_core::ids::{ClientId, SessionId, SigningKeyId, TemplateId, UserId};
use sessiond_core::session::{Session, SessionStatus};
use sessiond_core::store::{
    KeyState, SessionFilter, SigningKeyRecord, StoreError, StoredUser, VaultEntry,
};
use sessiond_core::template::JwtTemplate;
use sessiond_core::user::{StoredOrder, UserFilter};
use sessiond_crypto::jwt::Algorithm;

use crate::TestDb;
use crate::cases::{T0, insert_app};

fn user(app: &AppId, at: Timestamp, ids: &[(&str, u8)], ext: Option<&str>) -> StoredUser {
    StoredUser {
        id: UserId::new(),
        application_id: app.clone(),
        external_id: ext.map(str::to_owned),
        profile_sealed: vec![1, 2, 3],
        identifiers: ids
            .iter()
            .map(|(k, b)| ((*k).to_owned(), [*b; 32]))
            .collect(),
        created_at: at,
        updated_at: at,
        version: 1,
    }
}

fn session(app: &AppId, user: &UserId, at: Timestamp) -> Session {
    let settings = sessiond_core::application::AppSettings::defaults_for(app);
    Session::new(app, &settings, user.clone(), ClientId::new(), false, at)
}

async fn put_user(db: &TestDb, u: &StoredUser) {
    db.store
        .insert_user(u)
        .await
        .unwrap_or_else(|e| panic!("insert_user: {e}"));
}

pub async fn users_round_trip_filters_and_uniqueness(db: &TestDb) {
    let (a, _) = insert_app(db, "a", T0).await;
    let (b, _) = insert_app(db, "b", T0).await;
    let u1 = user(
        &a.id,
        T0,
        &[("email", 1), ("external_id", 9)],
        Some("ext-1"),
    );
    let u2 = user(
        &a.id,
        Timestamp(T0.0 + 1),
        &[("email", 2), ("username", 3)],
        None,
    );
    put_user(db, &u1).await;
    put_user(db, &u2).await;
    let got = db.store.get_user(&a.id, &u1.id).await.ok().flatten();
    assert_eq!(
        got.map(|u| (u.profile_sealed, u.external_id)),
        Some((vec![1, 2, 3], Some("ext-1".into())))
    );
    assert_eq!(
        db.store.get_user(&b.id, &u1.id).await.ok(),
        Some(None),
        "another application's user is not found"
    );

    let dup = user(&a.id, T0, &[("email", 1)], None);
    assert_eq!(
        db.store.insert_user(&dup).await,
        Err(StoreError::Conflict),
        "identifiers are unique per application"
    );
    assert_eq!(
        db.store.get_user(&a.id, &dup.id).await.ok(),
        Some(None),
        "no half-written user"
    );
    put_user(db, &user(&b.id, T0, &[("email", 1)], None)).await;

    let all = |f: UserFilter| {
        let app = a.id.clone();
        async move {
            db.store
                .list_users(&app, &f, 10, 0)
                .await
                .unwrap_or_default()
        }
    };
    let (list, total) = all(UserFilter::default()).await;
    assert_eq!(
        (list.iter().map(|u| u.id.clone()).collect::<Vec<_>>(), total),
        (vec![u2.id.clone(), u1.id.clone()], 2),
        "newest first"
    );
    let (list, total) = all(UserFilter {
        email_hashes: vec![[2; 32]],
        ..Default::default()
    })
    .await;
    assert_eq!(
        (list.len(), total, list.first().map(|u| u.id.clone())),
        (1, 1, Some(u2.id.clone()))
    );
    let (list, _) = all(UserFilter {
        external_id_hashes: vec![[9; 32]],
        ..Default::default()
    })
    .await;
    assert_eq!(
        list.iter().map(|u| u.id.clone()).collect::<Vec<_>>(),
        vec![u1.id.clone()],
        "external ids are found through their blind index"
    );
    let (list, _) = all(UserFilter {
        external_id_hashes: vec![[1; 32]],
        ..Default::default()
    })
    .await;
    assert!(
        list.is_empty(),
        "an email hash is not an external id hash: kinds do not mix"
    );
    let (list, _) = all(UserFilter {
        user_ids: vec![u1.id.clone(), u2.id.clone()],
        ..Default::default()
    })
    .await;
    assert_eq!(list.len(), 2);
    let (page, total) = db
        .store
        .list_users(&a.id, &UserFilter::default(), 1, 1)
        .await
        .unwrap_or_default();
    assert_eq!(
        (page.first().map(|u| u.id.clone()), total),
        (Some(u1.id.clone()), 2),
        "limit/offset; total ignores them"
    );

    let mut changed = u2.clone();
    changed.version = 2;
    changed.identifiers = vec![("email".into(), [1; 32])];
    assert_eq!(
        db.store.update_user(&changed).await,
        Err(StoreError::Conflict),
        "an update cannot take another user's email"
    );
    changed.identifiers = vec![("email".into(), [9; 32])];
    assert_eq!(db.store.update_user(&changed).await, Ok(()));
    assert_eq!(
        db.store.update_user(&changed).await,
        Err(StoreError::Conflict),
        "stale version"
    );
    let (found, _) = all(UserFilter {
        email_hashes: vec![[9; 32]],
        ..Default::default()
    })
    .await;
    assert_eq!(found.len(), 1, "identifiers are replaced on update");
    let (gone, _) = all(UserFilter {
        email_hashes: vec![[2; 32]],
        ..Default::default()
    })
    .await;
    assert!(gone.is_empty());

    // Orders the store applies itself: u1 (older) is now the most recently updated.
    let mut touched = u1.clone();
    touched.version = 2;
    touched.updated_at = Timestamp(T0.0 + 50);
    assert_eq!(db.store.update_user(&touched).await, Ok(()));
    let order = |o: StoredOrder| {
        let app = a.id.clone();
        async move {
            db.store
                .list_users(
                    &app,
                    &UserFilter {
                        order: o,
                        ..Default::default()
                    },
                    10,
                    0,
                )
                .await
                .unwrap_or_default()
                .0
                .into_iter()
                .map(|u| u.id)
                .collect::<Vec<_>>()
        }
    };
    let (old, new) = (u1.id.clone(), u2.id.clone());
    assert_eq!(
        order(StoredOrder::CreatedDesc).await,
        vec![new.clone(), old.clone()]
    );
    assert_eq!(
        order(StoredOrder::CreatedAsc).await,
        vec![old.clone(), new.clone()]
    );
    assert_eq!(
        order(StoredOrder::UpdatedDesc).await,
        vec![old.clone(), new.clone()]
    );
    assert_eq!(order(StoredOrder::UpdatedAsc).await, vec![new, old]);

    assert_eq!(
        db.store.delete_user(&b.id, &u1.id).await.ok(),
        Some(false),
        "B cannot delete A's user"
    );
    assert_eq!(db.store.delete_user(&a.id, &u1.id).await.ok(), Some(true));
    put_user(db, &user(&a.id, T0, &[("email", 1)], None)).await; // the identifier is free again
}

pub async fn sessions_lifecycle_listing_and_isolation(db: &TestDb) {
    let (a, _) = insert_app(db, "a", T0).await;
    let (b, _) = insert_app(db, "b", T0).await;
    let ua = user(&a.id, T0, &[], None);
    let ub = user(&b.id, T0, &[], None);
    put_user(db, &ua).await;
    put_user(db, &ub).await;

    let cross = session(&a.id, &ub.id, T0);
    assert_eq!(
        db.store.insert_session(&cross).await,
        Err(StoreError::NotFound),
        "a session needs a user of its own application"
    );
    let mut ghost = session(&a.id, &ua.id, T0);
    ghost.user_id = UserId::new();
    assert_eq!(
        db.store.insert_session(&ghost).await,
        Err(StoreError::NotFound),
        "a session needs an existing user"
    );

    let s1 = session(&a.id, &ua.id, T0);
    let mut s2 = session(&a.id, &ua.id, Timestamp(T0.0 + 1000));
    s2.idle_deadline = Some(Timestamp(T0.0 + 60_000));
    let mut s3 = session(&a.id, &ua.id, Timestamp(T0.0 + 2000));
    s3.status = SessionStatus::Revoked;
    for s in [&s1, &s2, &s3] {
        db.store
            .insert_session(s)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let got = db.store.get_session(&a.id, &s1.id).await.ok().flatten();
    assert_eq!(got.as_ref(), Some(&s1), "a session reads back exactly");
    assert_eq!(db.store.get_session(&b.id, &s1.id).await.ok(), Some(None));

    let list = |f: SessionFilter, now: Timestamp| {
        let app = a.id.clone();
        async move {
            let (v, n) = db
                .store
                .list_sessions(&app, &f, 10, 0, now)
                .await
                .unwrap_or_default();
            (v.into_iter().map(|s| s.id).collect::<Vec<SessionId>>(), n)
        }
    };
    let by_user = SessionFilter {
        user_id: Some(ua.id.clone()),
        ..Default::default()
    };
    assert_eq!(
        list(by_user.clone(), T0).await,
        (vec![s3.id.clone(), s2.id.clone(), s1.id.clone()], 3),
        "newest first"
    );
    let active = SessionFilter {
        statuses: vec![SessionStatus::Active],
        ..by_user.clone()
    };
    assert_eq!(list(active.clone(), T0).await.1, 2);
    let later = Timestamp(T0.0 + 60_000);
    assert_eq!(
        list(active, later).await,
        (vec![s1.id.clone()], 1),
        "a passed idle deadline is not active"
    );
    let suspended = SessionFilter {
        statuses: vec![SessionStatus::Suspended],
        ..by_user.clone()
    };
    assert_eq!(list(suspended, later).await.0, vec![s2.id.clone()]);
    let expired = SessionFilter {
        statuses: vec![SessionStatus::Expired],
        ..by_user.clone()
    };
    assert_eq!(
        list(expired, s2.expire_at).await.1,
        2,
        "both usable sessions read as expired past expire_at"
    );
    let page = db
        .store
        .list_sessions_page(&a.id, &by_user, 2, 1, T0)
        .await
        .unwrap_or_default();
    assert_eq!(
        page.iter().map(|s| s.id.clone()).collect::<Vec<_>>(),
        vec![s2.id.clone(), s1.id.clone()],
        "a page without a count is the same page"
    );
    let by_client = SessionFilter {
        client_id: Some(s1.client_id.clone()),
        ..Default::default()
    };
    assert_eq!(list(by_client, T0).await.0, vec![s1.id.clone()]);
    let (_, none) = db
        .store
        .list_sessions(&b.id, &by_user, 10, 0, T0)
        .await
        .unwrap_or_default();
    assert_eq!(none, 0, "B lists none of A's sessions");

    // A session's vault lives through updates that keep it usable and goes with the one that
    // ends it, in the same store operation.
    let entry = VaultEntry {
        row_id: "vt_conformance".into(),
        value_sealed: vec![1, 2, 3],
    };
    let put = db
        .store
        .put_session_token(&a.id, &s1.id, "tok", &entry, 10, T0)
        .await;
    assert_eq!(put, Ok(true));
    let mut touched = s1.clone();
    touched.last_active_at = Timestamp(T0.0 + 1);
    touched.version = 2;
    assert_eq!(db.store.update_session(&touched).await, Ok(()));
    assert_eq!(
        db.store.get_session_token(&a.id, &s1.id, "tok").await,
        Ok(Some(entry.clone())),
        "a usable session keeps its vault"
    );
    let mut upd = touched.clone();
    upd.status = SessionStatus::Revoked;
    upd.version = 3;
    let mut stale = touched.clone();
    stale.last_active_at = Timestamp(T0.0 + 5);
    stale.version = 3;
    assert_eq!(db.store.update_session(&upd).await, Ok(()));
    assert_eq!(
        db.store.get_session_token(&a.id, &s1.id, "tok").await,
        Ok(None),
        "ending a session empties its vault"
    );
    assert_eq!(
        db.store.update_session(&stale).await,
        Err(StoreError::Conflict),
        "lost update refused"
    );
    let mut foreign = upd.clone();
    foreign.application_id = b.id.clone();
    foreign.version = 4;
    assert_eq!(
        db.store.update_session(&foreign).await,
        Err(StoreError::NotFound),
        "B cannot update A's session"
    );

    assert_eq!(db.store.delete_user(&a.id, &ua.id).await.ok(), Some(true));
    assert_eq!(
        db.store.get_session(&a.id, &s2.id).await.ok(),
        Some(None),
        "deleting a user deletes their sessions"
    );
}

pub async fn sessions_purge_after_retention(db: &TestDb) {
    let (a, _) = insert_app(db, "a", T0).await;
    let u = user(&a.id, T0, &[], None);
    put_user(db, &u).await;
    let live = session(&a.id, &u.id, T0);
    let mut ended = session(&a.id, &u.id, T0);
    ended.status = SessionStatus::Ended;
    for s in [&live, &ended] {
        db.store
            .insert_session(s)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(
        db.store.purge_sessions(T0).await.ok(),
        Some(0),
        "nothing ended before the cutoff"
    );
    assert_eq!(
        db.store.purge_sessions(Timestamp(T0.0 + 1)).await.ok(),
        Some(1)
    );
    assert!(
        db.store
            .get_session(&a.id, &live.id)
            .await
            .ok()
            .flatten()
            .is_some()
    );
    assert_eq!(
        db.store
            .purge_sessions(Timestamp(live.expire_at.0 + 1))
            .await
            .ok(),
        Some(1)
    );
}

fn key(app: &AppId, state: KeyState, at: Timestamp) -> SigningKeyRecord {
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

fn template(app: &AppId, name: &str, at: Timestamp) -> JwtTemplate {
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

/// A session and its user come back together from one read, and only to their application.
pub async fn session_with_user_in_one_read(db: &TestDb) {
    let (a, _) = insert_app(db, "a", T0).await;
    let (b, _) = insert_app(db, "b", T0).await;
    let u = user(&a.id, T0, &[], Some("ext-joined"));
    put_user(db, &u).await;
    let s = session(&a.id, &u.id, T0);
    db.store
        .insert_session(&s)
        .await
        .unwrap_or_else(|e| panic!("insert_session: {e}"));
    let (got_s, got_u) = db
        .store
        .get_session_with_user(&a.id, &s.id)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("the session is found with its user"));
    assert_eq!(got_s, s);
    assert_eq!(
        (got_u.id, got_u.external_id, got_u.profile_sealed),
        (
            u.id.clone(),
            u.external_id.clone(),
            u.profile_sealed.clone()
        )
    );
    assert_eq!(
        db.store.get_session_with_user(&b.id, &s.id).await.ok(),
        Some(None),
        "another application's session is not found"
    );
    assert_eq!(
        db.store
            .get_session_with_user(&a.id, &SessionId::new())
            .await
            .ok(),
        Some(None)
    );
}

/// Bulk deletions (`DELETE /sessions/expired`, `DELETE /users/{id}/sessions`): a session has
/// lapsed at T when its expiry, abandonment or idle deadline is at or before T; filters combine;
/// another application's sessions are never touched.
pub async fn session_deletions_by_user_and_lapse(db: &TestDb) {
    use sessiond_core::store::SessionDeletion;
    let (a, _) = insert_app(db, "a", T0).await;
    let (b, _) = insert_app(db, "b", T0).await;
    let (u1, u2, ub) = (
        user(&a.id, T0, &[], None),
        user(&a.id, T0, &[], None),
        user(&b.id, T0, &[], None),
    );
    for u in [&u1, &u2, &ub] {
        put_user(db, u).await;
    }
    let t = Timestamp(T0.0 + 10_000);
    let with = |u: &StoredUser, app: &AppId, f: fn(&mut Session)| {
        let mut s = session(app, &u.id, T0);
        s.expire_at = Timestamp(T0.0 + 1_000_000);
        s.abandon_at = Timestamp(T0.0 + 2_000_000);
        f(&mut s);
        s
    };
    let live = with(&u1, &a.id, |_| {});
    let expired = with(&u1, &a.id, |s| s.expire_at = Timestamp(T0.0 + 10_000));
    let abandoned = with(&u2, &a.id, |s| s.abandon_at = Timestamp(T0.0 + 9_999));
    let idle = with(&u2, &a.id, |s| s.idle_deadline = Some(Timestamp(T0.0 + 5)));
    let idle_later = with(&u2, &a.id, |s| {
        s.idle_deadline = Some(Timestamp(T0.0 + 10_001));
    });
    let foreign = with(&ub, &b.id, |s| s.expire_at = Timestamp(T0.0 + 1));
    for s in [&live, &expired, &abandoned, &idle, &idle_later, &foreign] {
        assert_eq!(db.store.insert_session(s).await, Ok(()));
    }
    let exists = |s: &Session| {
        let (app, id) = (s.application_id.clone(), s.id.clone());
        async move { matches!(db.store.get_session(&app, &id).await, Ok(Some(_))) }
    };

    let lapsed_of_u1 = SessionDeletion {
        user_id: Some(u1.id.clone()),
        lapsed_at: Some(t),
    };
    assert_eq!(db.store.delete_sessions(&a.id, &lapsed_of_u1).await, Ok(1));
    assert!(!exists(&expired).await, "expiry exactly at T has lapsed");
    assert!(exists(&abandoned).await, "the user filter holds");

    let lapsed = SessionDeletion {
        user_id: None,
        lapsed_at: Some(t),
    };
    assert_eq!(db.store.delete_sessions(&a.id, &lapsed).await, Ok(2));
    assert!(!exists(&abandoned).await && !exists(&idle).await);
    assert!(
        exists(&live).await && exists(&idle_later).await,
        "not lapsed yet"
    );
    assert!(
        exists(&foreign).await,
        "B's lapsed session is B's to delete"
    );

    let all_of_u2 = SessionDeletion {
        user_id: Some(u2.id.clone()),
        lapsed_at: None,
    };
    assert_eq!(db.store.delete_sessions(&a.id, &all_of_u2).await, Ok(1));
    assert!(!exists(&idle_later).await && exists(&live).await);
}

//! Contract cases: users.

use crate::TestDb;
use crate::cases::{T0, insert_app};
use sessiond_core::Timestamp;
use sessiond_core::store::StoreError;
use sessiond_core::user::{StoredOrder, UserFilter};

use super::*;

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
        db.store.insert_user(&dup, None).await,
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
        db.store.update_user(&changed, None).await,
        Err(StoreError::Conflict),
        "an update cannot take another user's email"
    );
    changed.identifiers = vec![("email".into(), [9; 32])];
    assert_eq!(db.store.update_user(&changed, None).await, Ok(()));
    assert_eq!(
        db.store.update_user(&changed, None).await,
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
    assert_eq!(db.store.update_user(&touched, None).await, Ok(()));
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
        db.store.delete_user(&b.id, &u1.id, None).await.ok(),
        Some(false),
        "B cannot delete A's user"
    );
    assert_eq!(
        db.store.delete_user(&a.id, &u1.id, None).await.ok(),
        Some(true)
    );
    put_user(db, &user(&a.id, T0, &[("email", 1)], None)).await; // the identifier is free again
}

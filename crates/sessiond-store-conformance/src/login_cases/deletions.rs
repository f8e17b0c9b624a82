//! Contract cases: bulk session deletions (by user, by lapse) and what they leave behind.

use crate::TestDb;
use crate::cases::{T0, insert_app};
use sessiond_core::Timestamp;
use sessiond_core::ids::UserId;
use sessiond_core::jobs::{Job, SessionSweeper};
use sessiond_core::session::Session;
use sessiond_core::store::{SessionFilter, StoreError, StoredUser, VaultEntry};

use super::*;

/// Whether `s` can still be read back.
async fn stored(db: &TestDb, s: &Session) -> bool {
    matches!(
        db.store.get_session(&s.application_id, &s.id).await,
        Ok(Some(_))
    )
}

/// [`stored`], checked against the read that joins the session's user: both agree.
async fn readable(db: &TestDb, s: &Session) -> bool {
    let one = stored(db, s).await;
    let joined = matches!(
        db.store
            .get_session_with_user(&s.application_id, &s.id)
            .await,
        Ok(Some(_))
    );
    assert_eq!(one, joined, "both reads agree");
    one
}

/// Bulk deletions (`DELETE /sessions/expired`, `DELETE /users/{id}/sessions`): a session has
/// lapsed at T when its expiry, abandonment or idle deadline is at or before T; filters combine;
/// another application's sessions are never touched.
pub async fn session_deletions_by_user_and_lapse(db: &TestDb) {
    use sessiond_core::store::SessionDeletion;
    let (a, _, [u1, u2, ub]) = users_of_two_apps(db).await;
    let t = Timestamp(T0.0 + 10_000);
    let l = Lapses::insert(db, [&u1, &u1, &u2, &u2, &u2, &ub]).await;

    let lapsed_of_u1 = SessionDeletion {
        user_id: Some(u1.id.clone()),
        lapsed_at: Some(t),
    };
    assert_eq!(db.store.delete_sessions(&a.id, &lapsed_of_u1).await, Ok(1));
    assert!(
        !stored(db, &l.expired).await,
        "expiry exactly at T has lapsed"
    );
    assert!(stored(db, &l.abandoned).await, "the user filter holds");

    let lapsed = SessionDeletion {
        user_id: None,
        lapsed_at: Some(t),
    };
    assert_eq!(db.store.delete_sessions(&a.id, &lapsed).await, Ok(2));
    assert!(!stored(db, &l.abandoned).await && !stored(db, &l.idle).await);
    assert!(
        stored(db, &l.live).await && stored(db, &l.idle_later).await,
        "not lapsed yet"
    );
    assert!(
        stored(db, &l.foreign).await,
        "B's lapsed session is B's to delete"
    );

    let all_of_u2 = SessionDeletion {
        user_id: Some(u2.id.clone()),
        lapsed_at: None,
    };
    assert_eq!(db.store.delete_sessions(&a.id, &all_of_u2).await, Ok(1));
    assert!(!stored(db, &l.idle_later).await && stored(db, &l.live).await);
}

pub async fn deleting_all_of_a_users_sessions_is_one_write(db: &TestDb) {
    let (a, b, [u1, u2, ub]) = users_of_two_apps(db).await;
    let gone: Vec<Session> = (0..5).map(|_| session(&a.id, &u1.id, T0)).collect();
    let kept = session(&a.id, &u2.id, T0);
    let foreign = session(&b.id, &ub.id, T0);
    for s in gone.iter().chain([&kept, &foreign]) {
        assert_eq!(db.store.insert_session(s, None).await, Ok(()));
    }
    let entry = VaultEntry {
        row_id: "vt_generations".into(),
        value_sealed: vec![7],
    };
    let vault = |s: &Session| {
        let (app, id) = (s.application_id.clone(), s.id.clone());
        async move { db.store.get_session_token(&app, &id, "t").await }
    };
    assert_eq!(
        db.store
            .put_session_token(&a.id, &gone[0].id, "t", &entry, 5, T0)
            .await,
        Ok(true)
    );
    let of_u1 = SessionFilter {
        user_id: Some(u1.id.clone()),
        ..SessionFilter::default()
    };
    let listed = |f: SessionFilter| {
        let app = a.id.clone();
        async move {
            let (page, total) = db
                .store
                .list_sessions(&app, &f, 50, 0, T0)
                .await
                .unwrap_or_else(|e| panic!("list: {e}"));
            (page.len(), total)
        }
    };
    assert_eq!(listed(of_u1.clone()).await, (5, 5));

    // Another application cannot reach the user; an unknown user is reported as such.
    assert_eq!(
        db.store.delete_user_sessions(&b.id, &u1.id, T0).await,
        Ok(false)
    );
    assert_eq!(listed(of_u1.clone()).await, (5, 5));
    assert_eq!(
        db.store
            .delete_user_sessions(&a.id, &UserId::new(), T0)
            .await,
        Ok(false)
    );

    assert_eq!(
        db.store.delete_user_sessions(&a.id, &u1.id, T0).await,
        Ok(true)
    );
    // Every read path stops seeing them at once.
    for s in &gone {
        assert_eq!(db.store.get_session(&a.id, &s.id).await, Ok(None));
        assert_eq!(db.store.get_session_with_user(&a.id, &s.id).await, Ok(None));
    }
    assert_eq!(listed(of_u1.clone()).await, (0, 0));
    assert_eq!(
        listed(SessionFilter::default()).await,
        (1, 1),
        "only u2's is left"
    );
    assert_eq!(vault(&gone[0]).await, Ok(None), "the vault went with it");
    assert_eq!(
        db.store
            .put_session_token(&a.id, &gone[1].id, "t", &entry, 5, T0)
            .await,
        Err(StoreError::NotFound)
    );
    let mut late = gone[2].clone();
    late.version += 1;
    late.updated_at = Timestamp(T0.0 + 1);
    assert_eq!(
        db.store.update_session(&late, None).await,
        Err(StoreError::NotFound),
        "a write prepared before the deletion does not bring it back"
    );
    // Moving a deleted session to a live user does not bring it back either.
    late.user_id = u2.id.clone();
    assert_eq!(
        db.store.update_session(&late, None).await,
        Err(StoreError::NotFound)
    );
    assert_eq!(
        db.store.delete_session(&a.id, &gone[3].id, None).await,
        Ok(false)
    );
    // Others are untouched.
    assert!(matches!(
        db.store.get_session(&a.id, &kept.id).await,
        Ok(Some(_))
    ));
    assert!(matches!(
        db.store.get_session(&b.id, &foreign.id).await,
        Ok(Some(_))
    ));

    // Sessions created afterwards belong to the new generation and are seen.
    let fresh = session(&a.id, &u1.id, Timestamp(T0.0 + 2));
    assert_eq!(db.store.insert_session(&fresh, None).await, Ok(()));
    assert_eq!(listed(of_u1.clone()).await, (1, 1));
    let mut touched = fresh.clone();
    touched.version += 1;
    touched.last_active_at = Timestamp(T0.0 + 3);
    assert_eq!(db.store.update_session(&touched, None).await, Ok(()));

    // The sweeper removes exactly the deleted rows, in batches, and then finds nothing.
    assert_eq!(db.store.sweep_deleted_sessions(2).await, Ok(2));
    assert_eq!(db.store.sweep_deleted_sessions(100).await, Ok(3));
    assert_eq!(db.store.sweep_deleted_sessions(100).await, Ok(0));
    assert!(matches!(
        db.store.get_session(&a.id, &fresh.id).await,
        Ok(Some(_))
    ));
    assert_eq!(listed(SessionFilter::default()).await, (2, 2));

    // A second deletion sweeps only what it deleted; the sweeper job takes a backlog larger
    // than one batch.
    for _ in 0..(SessionSweeper::<dyn crate::Store>::BATCH + 10) {
        let s = session(&a.id, &u1.id, Timestamp(T0.0 + 4));
        assert_eq!(db.store.insert_session(&s, None).await, Ok(()));
    }
    assert_eq!(
        db.store.delete_user_sessions(&a.id, &u1.id, T0).await,
        Ok(true)
    );
    assert_eq!(
        db.store.delete_user_sessions(&a.id, &u1.id, T0).await,
        Ok(true)
    );
    assert_eq!(listed(of_u1).await, (0, 0));
    let ran = SessionSweeper::new(db.store.clone(), Default::default())
        .run_once(Timestamp(T0.0 + 5))
        .await
        .unwrap_or_else(|e| panic!("sweep: {e}"));
    assert_eq!(
        ran.items,
        u64::from(SessionSweeper::<dyn crate::Store>::BATCH) + 11
    );
    assert_eq!(db.store.sweep_deleted_sessions(100).await, Ok(0));
    assert!(matches!(
        db.store.get_session(&a.id, &kept.id).await,
        Ok(Some(_))
    ));
}

pub async fn deleting_lapsed_sessions_is_one_write(db: &TestDb) {
    let (a, _, [ua, _, ub]) = users_of_two_apps(db).await;
    let t = Timestamp(T0.0 + 10_000);
    let l = Lapses::insert(db, [&ua, &ua, &ua, &ua, &ua, &ub]).await;
    assert_eq!(
        db.store
            .put_session_token(
                &a.id,
                &l.idle.id,
                "t",
                &VaultEntry {
                    row_id: "vt_purges".into(),
                    value_sealed: vec![9],
                },
                5,
                T0,
            )
            .await,
        Ok(true)
    );
    let total = || async {
        db.store
            .list_sessions(&a.id, &SessionFilter::default(), 50, 0, t)
            .await
            .map(|(page, n)| (page.len(), n))
    };
    assert_eq!(total().await, Ok((5, 5)));

    assert_eq!(db.store.delete_lapsed_sessions(&a.id, t).await, Ok(()));
    for s in [&l.expired, &l.abandoned, &l.idle] {
        assert!(!readable(db, s).await, "lapsed at or before T: gone");
    }
    assert!(
        readable(db, &l.live).await && readable(db, &l.idle_later).await,
        "not lapsed by T"
    );
    assert!(
        readable(db, &l.foreign).await,
        "B's lapsed session is B's to delete"
    );
    assert_eq!(total().await, Ok((2, 2)));
    assert_eq!(
        db.store.get_session_token(&a.id, &l.idle.id, "t").await,
        Ok(None)
    );
    assert_eq!(
        db.store.delete_session(&a.id, &l.expired.id, None).await,
        Ok(false)
    );
    let mut revived = l.idle.clone();
    revived.version += 1;
    revived.idle_deadline = Some(Timestamp(T0.0 + 50_000));
    assert_eq!(
        db.store.update_session(&revived, None).await,
        Err(StoreError::NotFound),
        "a write prepared before the purge does not bring it back"
    );
    assert_eq!(
        db.store.change_session(&l.idle, &revived, None).await,
        Err(StoreError::NotFound),
        "nor does a change decided before it"
    );
    // An earlier cut-off moves nothing back.
    assert_eq!(
        db.store
            .delete_lapsed_sessions(&a.id, Timestamp(T0.0))
            .await,
        Ok(())
    );
    assert!(!readable(db, &l.expired).await);
    // Updates of the survivors and new sessions go on as usual.
    let mut kept = l.idle_later.clone();
    kept.version += 1;
    kept.idle_deadline = Some(Timestamp(T0.0 + 20_000));
    assert_eq!(db.store.update_session(&kept, None).await, Ok(()));
    let fresh = session(&a.id, &ua.id, T0);
    assert_eq!(db.store.insert_session(&fresh, None).await, Ok(()));
    assert!(readable(db, &fresh).await);

    // The sweeper removes exactly the purged rows (with their vaults).
    assert_eq!(db.store.sweep_deleted_sessions(2).await, Ok(2));
    assert_eq!(db.store.sweep_deleted_sessions(100).await, Ok(1));
    assert_eq!(db.store.sweep_deleted_sessions(100).await, Ok(0));
    assert!(
        readable(db, &l.live).await
            && readable(db, &l.idle_later).await
            && readable(db, &fresh).await
    );
    assert!(readable(db, &l.foreign).await);
    assert_eq!(total().await, Ok((3, 3)));
}

/// Applications `a` and `b`, and three stored users: two of `a`, then one of `b`.
async fn users_of_two_apps(
    db: &TestDb,
) -> (
    sessiond_core::application::Application,
    sessiond_core::application::Application,
    [StoredUser; 3],
) {
    let (a, _) = insert_app(db, "a", T0).await;
    let (b, _) = insert_app(db, "b", T0).await;
    let users = [
        user(&a.id, T0, &[], None),
        user(&a.id, T0, &[], None),
        user(&b.id, T0, &[], None),
    ];
    for u in &users {
        put_user(db, u).await;
    }
    (a, b, users)
}

/// Six stored sessions, seen at `T0 + 10 s`: one live, one expired exactly then, one abandoned
/// just before, one idle long before, one whose idle deadline is just after, and one (of another
/// application, given by the last owner) expired long before.
struct Lapses {
    live: Session,
    expired: Session,
    abandoned: Session,
    idle: Session,
    idle_later: Session,
    foreign: Session,
}

impl Lapses {
    /// Inserts the six, owned in field order by `owners`; each in its owner's application.
    async fn insert(db: &TestDb, owners: [&StoredUser; 6]) -> Lapses {
        let at = |ms: i64| Timestamp(T0.0 + ms);
        let mut all = owners.map(|u| {
            let mut s = session(&u.application_id, &u.id, T0);
            s.expire_at = at(1_000_000);
            s.abandon_at = at(2_000_000);
            s
        });
        all[1].expire_at = at(10_000);
        all[2].abandon_at = at(9_999);
        all[3].idle_deadline = Some(at(5));
        all[4].idle_deadline = Some(at(10_001));
        all[5].expire_at = at(1);
        for s in &all {
            assert_eq!(db.store.insert_session(s, None).await, Ok(()));
        }
        let [live, expired, abandoned, idle, idle_later, foreign] = all;
        Lapses {
            live,
            expired,
            abandoned,
            idle,
            idle_later,
            foreign,
        }
    }
}

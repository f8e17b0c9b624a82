//! Storage contract of users, sessions, signing keys and JWT templates.

mod concurrent;
mod deletions;
mod keys_templates;
mod modify;
mod sessions;
mod users;

pub use concurrent::*;
pub use deletions::*;
pub use keys_templates::*;
pub use modify::*;
pub use sessions::*;
pub use users::*;

use sessiond_core::Timestamp;
use sessiond_core::application::AppId;
use sessiond_core::ids::{ClientId, UserId};
use sessiond_core::session::Session;
use sessiond_core::store::StoredUser;

use crate::TestDb;

use test_session as session;
use test_user as user;

pub fn test_user(app: &AppId, at: Timestamp, ids: &[(&str, u8)], ext: Option<&str>) -> StoredUser {
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

pub fn test_session(app: &AppId, user: &UserId, at: Timestamp) -> Session {
    let settings = sessiond_core::application::AppSettings::defaults_for(app);
    Session::new(app, &settings, user.clone(), ClientId::new(), false, at)
}

async fn put_session(db: &TestDb, s: &Session) {
    db.store
        .insert_session(s, None)
        .await
        .unwrap_or_else(|e| panic!("insert_session: {e}"));
}

async fn put_user(db: &TestDb, u: &StoredUser) {
    db.store
        .insert_user(u, None)
        .await
        .unwrap_or_else(|e| panic!("insert_user: {e}"));
}

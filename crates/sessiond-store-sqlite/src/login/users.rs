//! Users and their blind-indexed identifiers.

use crate::{Arg, SqliteStore, count, exec, first, get, i64_of};
use async_trait::async_trait;
use rusqlite::{Connection, params};
use sessiond_core::application::AppId;
use sessiond_core::events::NewEvent;
use sessiond_core::ids::UserId;
use sessiond_core::store::{StoreError, StoreResult, StoredUser, UserStore};
use sessiond_core::user::UserFilter;
use sessiond_store_sql::statements;

use super::*;
use crate::{Run, sql};
use sessiond_store_sql::filters::*;

pub(super) fn insert_identifiers(conn: &Connection, u: &StoredUser) -> StoreResult<()> {
    for (kind, hash) in &u.identifiers {
        exec(
            conn,
            "INSERT INTO user_identifiers (application_id, kind, hash, user_id) VALUES (?1, ?2, ?3, ?4)",
            params![
                u.application_id.as_str(),
                kind.as_str(),
                &hash[..],
                u.id.as_str()
            ],
        )?;
    }
    Ok(())
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn insert_user(&self, u: &StoredUser, event: Option<&NewEvent>) -> StoreResult<()> {
        let u = u.clone();
        let event = event.cloned();
        self.write(move |c| {
            exec(
                c,
                statements::INSERT_USER,
                params![
                    u.id.as_str(),
                    u.application_id.as_str(),
                    u.external_id.as_deref(),
                    u.profile_sealed.as_slice(),
                    u.created_at.0,
                    u.updated_at.0,
                    u.version
                ],
            )?;
            insert_identifiers(c, &u)?;
            crate::events::append(c, event.as_ref())
        })
        .await
    }

    async fn get_user(&self, app: &AppId, id: &UserId) -> StoreResult<Option<StoredUser>> {
        self.read(|c| {
            first(
                c,
                concat!(
                    "SELECT ",
                    user_cols!(),
                    " FROM users u WHERE u.application_id = ?1 AND u.id = ?2"
                ),
                [app.as_str(), id.as_str()],
                user_from_row,
            )
        })
    }

    async fn list_users(
        &self,
        app: &AppId,
        filter: &UserFilter,
        limit: u32,
        offset: u64,
    ) -> StoreResult<(Vec<StoredUser>, u64)> {
        let mut total = sql("SELECT COUNT(*) AS n FROM users u");
        user_where(app, filter, &mut total);
        let mut page = sql(&format!("SELECT {USER_COLS} FROM users u"));
        user_where(app, filter, &mut page);
        page.push(user_order_by(filter.order))
            .push(" LIMIT ")
            .bind(Arg::I64(i64::from(limit)))
            .push(" OFFSET ")
            .bind(Arg::I64(i64_of(offset)));
        self.read(|c| {
            let n: i64 = total.first(c, |r| get(r, "n"))?.unwrap_or(0);
            let users = page.all(c, user_from_row)?;
            Ok((users, u64::try_from(n).unwrap_or(0)))
        })
    }

    async fn update_user(&self, u: &StoredUser, event: Option<&NewEvent>) -> StoreResult<()> {
        let u = u.clone();
        let event = event.cloned();
        self.write(move |c| {
            let n = exec(
                c,
                statements::UPDATE_USER,
                params![
                    u.external_id.as_deref(),
                    u.profile_sealed.as_slice(),
                    u.updated_at.0,
                    u.version,
                    u.application_id.as_str(),
                    u.id.as_str(),
                    u.version - 1
                ],
            )?;
            if n != 1 {
                let exists = count(
                    c,
                    "SELECT COUNT(*) FROM users WHERE application_id = ?1 AND id = ?2",
                    [u.application_id.as_str(), u.id.as_str()],
                )?;
                return Err(if exists > 0 {
                    StoreError::Conflict
                } else {
                    StoreError::NotFound
                });
            }
            exec(c, statements::DELETE_USER_IDENTIFIERS, [u.id.as_str()])?;
            insert_identifiers(c, &u)?;
            crate::events::append(c, event.as_ref())
        })
        .await
    }

    async fn delete_user(
        &self,
        app: &AppId,
        id: &UserId,
        event: Option<&NewEvent>,
    ) -> StoreResult<bool> {
        self.write_one(
            "DELETE FROM users WHERE application_id = ?1 AND id = ?2",
            app.as_str(),
            id.as_str(),
            event,
        )
        .await
    }
}

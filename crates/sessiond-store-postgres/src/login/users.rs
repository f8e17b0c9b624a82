//! Users and their blind-indexed identifiers.

use crate::{SqlStore, map_err};
use async_trait::async_trait;
use sessiond_core::application::AppId;
use sessiond_core::events::NewEvent;
use sessiond_core::ids::UserId;
use sessiond_core::store::{StoreError, StoreResult, StoredUser, UserStore};
use sessiond_core::user::UserFilter;
use sessiond_store_sql::{dollar, statements};

use super::*;
use sessiond_store_sql::filters::*;

#[async_trait]
impl UserStore for SqlStore {
    async fn insert_user(&self, u: &StoredUser, event: Option<&NewEvent>) -> StoreResult<()> {
        let mut tx = self.pool().begin().await.map_err(map_err)?;
        sqlx::query(dollar!(statements::INSERT_USER))
            .bind(u.id.as_str())
            .bind(u.application_id.as_str())
            .bind(u.external_id.as_deref())
            .bind(u.profile_sealed.as_slice())
            .bind(u.created_at.0)
            .bind(u.updated_at.0)
            .bind(u.version)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        insert_identifiers(&mut tx, u).await?;
        crate::events::append(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn get_user(&self, app: &AppId, id: &UserId) -> StoreResult<Option<StoredUser>> {
        self.row(
            sqlx::query(concat!(
                "SELECT ",
                user_cols!(),
                " FROM users u WHERE u.application_id = $1 AND u.id = $2"
            ))
            .bind(app.as_str())
            .bind(id.as_str()),
            user_from_row,
        )
        .await
    }

    async fn list_users(
        &self,
        app: &AppId,
        filter: &UserFilter,
        limit: u32,
        offset: u64,
    ) -> StoreResult<(Vec<StoredUser>, u64)> {
        let mut count = sql("SELECT COUNT(*) AS n FROM users u");
        user_where(app, filter, &mut count);
        let total = self.n_of(&count).await?;
        let mut page = sql(&format!("SELECT {USER_COLS} FROM users u"));
        user_where(app, filter, &mut page);
        page.push(user_order_by(filter.order))
            .push(" LIMIT ")
            .bind(Arg::I64(i64::from(limit)))
            .push(" OFFSET ")
            .bind(Arg::I64(i64_of(offset)));
        let rows = page.query().fetch_all(self.pool()).await.map_err(map_err)?;
        let users = rows
            .iter()
            .map(user_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok((users, u64::try_from(total).unwrap_or(0)))
    }

    async fn update_user(&self, u: &StoredUser, event: Option<&NewEvent>) -> StoreResult<()> {
        let mut tx = self.pool().begin().await.map_err(map_err)?;
        let done = sqlx::query(dollar!(statements::UPDATE_USER))
            .bind(u.external_id.as_deref())
            .bind(u.profile_sealed.as_slice())
            .bind(u.updated_at.0)
            .bind(u.version)
            .bind(u.application_id.as_str())
            .bind(u.id.as_str())
            .bind(u.version - 1)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        if done.rows_affected() != 1 {
            let exists =
                sqlx::query("SELECT 1 AS x FROM users WHERE application_id = $1 AND id = $2")
                    .bind(u.application_id.as_str())
                    .bind(u.id.as_str())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(map_err)?;
            return Err(if exists.is_some() {
                StoreError::Conflict
            } else {
                StoreError::NotFound
            });
        }
        sqlx::query(dollar!(statements::DELETE_USER_IDENTIFIERS))
            .bind(u.id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        insert_identifiers(&mut tx, u).await?;
        crate::events::append(&mut tx, event).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn delete_user(
        &self,
        app: &AppId,
        id: &UserId,
        event: Option<&NewEvent>,
    ) -> StoreResult<bool> {
        const DELETE: &str = crate::events::delete_with_event!(
            "DELETE FROM users WHERE application_id = $1 AND id = $2"
        );
        self.delete_one(DELETE, app, id.as_str(), event).await
    }
}

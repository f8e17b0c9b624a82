//! Users, sessions, signing keys and JWT templates.

use async_trait::async_trait;
use serde_json::{Map, Value};
use sessiond_core::Timestamp;
use sessiond_core::application::AppId;
use sessiond_core::ids::{ClientId, SessionId, SigningKeyId, TemplateId, UserId};
use sessiond_core::session::{Session, SessionStatus};
use sessiond_core::store::{
    KeyState, SessionFilter, SessionStore, SigningKeyRecord, SigningKeyStore, StoreError,
    StoreResult, StoredUser, TemplateStore, UserStore,
};
use sessiond_core::template::JwtTemplate;
use sessiond_core::user::{StoredOrder, UserFilter};
use sessiond_crypto::jwt::Algorithm;
use sqlx::Postgres;
use sqlx::postgres::PgRow;

use crate::{SqlStore, corrupt, get, map_err};

/// A bound value of a dynamically assembled query.
enum Arg {
    Str(String),
    I64(i64),
    Bytes(Vec<u8>),
}

/// A query whose text is assembled from fixed fragments and numbered placeholders only; every
/// value travels as a bind parameter.
struct Sql {
    text: String,
    args: Vec<Arg>,
}

impl Sql {
    fn new(text: &str) -> Self {
        Sql {
            text: text.to_owned(),
            args: Vec::new(),
        }
    }
    fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }
    fn bind(&mut self, a: Arg) -> &mut Self {
        self.args.push(a);
        self.text.push_str(&format!("${}", self.args.len()));
        self
    }
    fn bind_list(&mut self, items: impl IntoIterator<Item = Arg>) -> &mut Self {
        self.text.push('(');
        for (i, a) in items.into_iter().enumerate() {
            if i > 0 {
                self.text.push_str(", ");
            }
            self.bind(a);
        }
        self.text.push(')');
        self
    }
    fn query(&self) -> sqlx::query::Query<'_, Postgres, sqlx::postgres::PgArguments> {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(self.text.as_str()));
        for a in &self.args {
            q = match a {
                Arg::Str(s) => q.bind(s.as_str()),
                Arg::I64(v) => q.bind(*v),
                Arg::Bytes(b) => q.bind(b.as_slice()),
            };
        }
        q
    }
}

fn i64_of(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

// ---- users ----

macro_rules! user_cols {
    () => {
        "u.id, u.application_id, u.external_id, u.profile, u.created_at, u.updated_at, u.version"
    };
}
const USER_COLS: &str = user_cols!();

/// A user's columns as `u_…` aliases, for statements that also select a session.
macro_rules! user_cols_aliased {
    () => {
        "u.id AS u_id, u.application_id AS u_application_id, \
     u.external_id AS u_external_id, u.profile AS u_profile, u.created_at AS u_created_at, \
     u.updated_at AS u_updated_at, u.version AS u_version"
    };
}

fn user_from_aliased_row(row: &PgRow) -> StoreResult<StoredUser> {
    Ok(StoredUser {
        id: UserId(get(row, "u_id")?),
        application_id: AppId(get(row, "u_application_id")?),
        external_id: get(row, "u_external_id")?,
        profile_sealed: get(row, "u_profile")?,
        identifiers: Vec::new(),
        created_at: Timestamp(get(row, "u_created_at")?),
        updated_at: Timestamp(get(row, "u_updated_at")?),
        version: get(row, "u_version")?,
    })
}

fn user_from_row(row: &PgRow) -> StoreResult<StoredUser> {
    Ok(StoredUser {
        id: UserId(get(row, "id")?),
        application_id: AppId(get(row, "application_id")?),
        external_id: get(row, "external_id")?,
        profile_sealed: get(row, "profile")?,
        identifiers: Vec::new(),
        created_at: Timestamp(get(row, "created_at")?),
        updated_at: Timestamp(get(row, "updated_at")?),
        version: get(row, "version")?,
    })
}

async fn insert_identifiers(tx: &mut crate::pool::Tx, u: &StoredUser) -> StoreResult<()> {
    for (kind, hash) in &u.identifiers {
        sqlx::query(
            "INSERT INTO user_identifiers (application_id, kind, hash, user_id) VALUES ($1, $2, $3, $4)",
        )
        .bind(u.application_id.as_str())
        .bind(kind.as_str())
        .bind(&hash[..])
        .bind(u.id.as_str())
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
    }
    Ok(())
}

fn user_where(app: &AppId, f: &UserFilter, sql: &mut Sql) {
    sql.push(" WHERE u.application_id = ")
        .bind(Arg::Str(app.0.clone()));
    if !f.user_ids.is_empty() {
        sql.push(" AND u.id IN ")
            .bind_list(f.user_ids.iter().map(|i| Arg::Str(i.0.clone())));
    }
    for (kind, hashes) in [
        ("external_id", &f.external_id_hashes),
        ("email", &f.email_hashes),
    ] {
        if hashes.is_empty() {
            continue;
        }
        sql.push(" AND EXISTS (SELECT 1 FROM user_identifiers i WHERE i.user_id = u.id AND i.application_id = ")
            .bind(Arg::Str(app.0.clone()))
            // `kind` is one of the two literals above, never input.
            .push(" AND i.kind = '")
            .push(kind)
            .push("' AND i.hash IN ")
            .bind_list(hashes.iter().map(|h| Arg::Bytes(h.to_vec())))
            .push(")");
    }
}

fn order_by(o: StoredOrder) -> &'static str {
    match o {
        StoredOrder::CreatedDesc => " ORDER BY u.created_at DESC, u.id DESC",
        StoredOrder::CreatedAsc => " ORDER BY u.created_at ASC, u.id ASC",
        StoredOrder::UpdatedDesc => " ORDER BY u.updated_at DESC, u.id DESC",
        StoredOrder::UpdatedAsc => " ORDER BY u.updated_at ASC, u.id ASC",
    }
}

#[async_trait]
impl UserStore for SqlStore {
    async fn insert_user(&self, u: &StoredUser) -> StoreResult<()> {
        let mut tx = self.pool().begin().await.map_err(map_err)?;
        sqlx::query(
            "INSERT INTO users (id, application_id, external_id, profile, created_at, updated_at, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
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
        tx.commit().await.map_err(map_err)
    }

    async fn get_user(&self, app: &AppId, id: &UserId) -> StoreResult<Option<StoredUser>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            user_cols!(),
            " FROM users u WHERE u.application_id = $1 AND u.id = $2"
        ))
        .bind(app.as_str())
        .bind(id.as_str())
        .fetch_optional(self.pool())
        .await
        .map_err(map_err)?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn list_users(
        &self,
        app: &AppId,
        filter: &UserFilter,
        limit: u32,
        offset: u64,
    ) -> StoreResult<(Vec<StoredUser>, u64)> {
        let mut count = Sql::new("SELECT COUNT(*) AS n FROM users u");
        user_where(app, filter, &mut count);
        let total: i64 = get(
            &count
                .query()
                .fetch_one(self.pool())
                .await
                .map_err(map_err)?,
            "n",
        )?;
        let mut page = Sql::new(&format!("SELECT {USER_COLS} FROM users u"));
        user_where(app, filter, &mut page);
        page.push(order_by(filter.order))
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

    async fn update_user(&self, u: &StoredUser) -> StoreResult<()> {
        let mut tx = self.pool().begin().await.map_err(map_err)?;
        let done = sqlx::query(
            "UPDATE users SET external_id = $1, profile = $2, updated_at = $3, version = $4 \
             WHERE application_id = $5 AND id = $6 AND version = $7",
        )
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
        sqlx::query("DELETE FROM user_identifiers WHERE user_id = $1")
            .bind(u.id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        insert_identifiers(&mut tx, u).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn delete_user(&self, app: &AppId, id: &UserId) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM users WHERE application_id = $1 AND id = $2")
            .bind(app.as_str())
            .bind(id.as_str())
            .execute(self.pool())
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }
}

// ---- sessions ----

macro_rules! session_cols {
    () => {
        "s.id, s.application_id, s.user_id, s.client_id, s.status, s.actor, s.activity, \
     s.attributes, s.last_active_organization_id, s.created_at, s.updated_at, s.last_active_at, s.expire_at, \
     s.abandon_at, s.idle_deadline, s.version, s.sso"
    };
}
const SESSION_COLS: &str = session_cols!();

fn session_from_row(row: &PgRow) -> StoreResult<Session> {
    let status: String = get(row, "status")?;
    let actor: Option<String> = get(row, "actor")?;
    Ok(Session {
        id: SessionId(get(row, "id")?),
        application_id: AppId(get(row, "application_id")?),
        user_id: UserId(get(row, "user_id")?),
        client_id: ClientId(get(row, "client_id")?),
        status: SessionStatus::parse(&status).ok_or_else(|| corrupt("session status", &status))?,
        actor: actor
            .map(|a| serde_json::from_str::<Value>(&a))
            .transpose()
            .map_err(|e| corrupt("session actor", e))?,
        activity: get(row, "activity")?,
        sso: get(row, "sso")?,
        attributes: serde_json::from_str(&get::<String>(row, "attributes")?)
            .map_err(|e| corrupt("session attributes", e))?,
        last_active_organization_id: get(row, "last_active_organization_id")?,
        created_at: Timestamp(get(row, "created_at")?),
        updated_at: Timestamp(get(row, "updated_at")?),
        last_active_at: Timestamp(get(row, "last_active_at")?),
        expire_at: Timestamp(get(row, "expire_at")?),
        abandon_at: Timestamp(get(row, "abandon_at")?),
        idle_deadline: get::<Option<i64>>(row, "idle_deadline")?.map(Timestamp),
        version: get(row, "version")?,
    })
}

fn attributes_json(s: &Session) -> StoreResult<String> {
    serde_json::to_string(&s.attributes).map_err(|e| StoreError::Backend(e.to_string()))
}

/// The effective status of a row as of `now` (mirrors `Session::effective_status`).
fn push_effective_status(sql: &mut Sql, now: Timestamp) {
    sql.push("(CASE WHEN s.status IN ('active', 'pending') AND s.expire_at <= ")
        .bind(Arg::I64(now.0))
        .push(" THEN 'expired' WHEN s.status IN ('active', 'pending') AND s.idle_deadline IS NOT NULL AND s.idle_deadline <= ")
        .bind(Arg::I64(now.0))
        .push(" THEN 'suspended' WHEN s.status IN ('active', 'pending') AND s.abandon_at <= ")
        .bind(Arg::I64(now.0))
        .push(" THEN 'abandoned' ELSE s.status END)");
}

fn session_where(app: &AppId, f: &SessionFilter, now: Timestamp, sql: &mut Sql) {
    sql.push(" WHERE s.application_id = ")
        .bind(Arg::Str(app.0.clone()));
    if let Some(u) = &f.user_id {
        sql.push(" AND s.user_id = ").bind(Arg::Str(u.0.clone()));
    }
    if let Some(c) = &f.client_id {
        sql.push(" AND s.client_id = ").bind(Arg::Str(c.0.clone()));
    }
    if !f.statuses.is_empty() {
        sql.push(" AND ");
        push_effective_status(sql, now);
        sql.push(" IN ")
            .bind_list(f.statuses.iter().map(|s| Arg::Str(s.as_str().to_owned())));
    }
}

#[async_trait]
impl SessionStore for SqlStore {
    async fn insert_session(&self, s: &Session) -> StoreResult<()> {
        let actor = s.actor.as_ref().map(Value::to_string);
        let done = sqlx::query(
            "INSERT INTO sessions (id, application_id, user_id, client_id, status, actor, activity, \
             last_active_organization_id, created_at, updated_at, last_active_at, expire_at, abandon_at, \
             idle_deadline, version, attributes, sso) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $18, $19 \
             WHERE EXISTS (SELECT 1 FROM users WHERE application_id = $16 AND id = $17)",
        )
        .bind(s.id.as_str())
        .bind(s.application_id.as_str())
        .bind(s.user_id.as_str())
        .bind(s.client_id.as_str())
        .bind(s.status.as_str())
        .bind(actor)
        .bind(s.activity.clone())
        .bind(s.last_active_organization_id.clone())
        .bind(s.created_at.0)
        .bind(s.updated_at.0)
        .bind(s.last_active_at.0)
        .bind(s.expire_at.0)
        .bind(s.abandon_at.0)
        .bind(s.idle_deadline.map(|t| t.0))
        .bind(s.version)
        .bind(s.application_id.as_str())
        .bind(s.user_id.as_str())
        .bind(attributes_json(s)?)
        .bind(s.sso.clone())
        .execute(self.pool())
        .await
        .map_err(map_err)?;
        // The user must belong to the same application; otherwise nothing is inserted.
        if done.rows_affected() == 1 {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    async fn get_session(&self, app: &AppId, id: &SessionId) -> StoreResult<Option<Session>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            session_cols!(),
            " FROM sessions s WHERE s.application_id = $1 AND s.id = $2"
        ))
        .bind(app.as_str())
        .bind(id.as_str())
        .fetch_optional(self.pool())
        .await
        .map_err(map_err)?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn get_session_with_user(
        &self,
        app: &AppId,
        id: &SessionId,
    ) -> StoreResult<Option<(Session, StoredUser)>> {
        // Built at compile time: this is the Equisoft read path, run on every request.
        const SQL: &str = concat!(
            "SELECT ",
            session_cols!(),
            ", ",
            user_cols_aliased!(),
            " FROM sessions s JOIN users u ON u.application_id = s.application_id \
             AND u.id = s.user_id WHERE s.application_id = $1 AND s.id = $2"
        );
        let row = sqlx::query(SQL)
            .bind(app.as_str())
            .bind(id.as_str())
            .fetch_optional(self.pool())
            .await
            .map_err(map_err)?;
        row.map(|r| Ok((session_from_row(&r)?, user_from_aliased_row(&r)?)))
            .transpose()
    }

    async fn list_sessions(
        &self,
        app: &AppId,
        filter: &SessionFilter,
        limit: u32,
        offset: u64,
        now: Timestamp,
    ) -> StoreResult<(Vec<Session>, u64)> {
        let mut count = Sql::new("SELECT COUNT(*) AS n FROM sessions s");
        session_where(app, filter, now, &mut count);
        let total: i64 = get(
            &count
                .query()
                .fetch_one(self.pool())
                .await
                .map_err(map_err)?,
            "n",
        )?;
        let sessions = self
            .list_sessions_page(app, filter, limit, offset, now)
            .await?;
        Ok((sessions, u64::try_from(total).unwrap_or(0)))
    }

    async fn list_sessions_page(
        &self,
        app: &AppId,
        filter: &SessionFilter,
        limit: u32,
        offset: u64,
        now: Timestamp,
    ) -> StoreResult<Vec<Session>> {
        let mut page = Sql::new(&format!("SELECT {SESSION_COLS} FROM sessions s"));
        session_where(app, filter, now, &mut page);
        page.push(" ORDER BY s.created_at DESC, s.id DESC LIMIT ")
            .bind(Arg::I64(i64::from(limit)))
            .push(" OFFSET ")
            .bind(Arg::I64(i64_of(offset)));
        let rows = page.query().fetch_all(self.pool()).await.map_err(map_err)?;
        rows.iter().map(session_from_row).collect()
    }

    async fn update_session(&self, s: &Session) -> StoreResult<()> {
        // One statement, one round trip: the conditional update and, for a terminal status, the
        // vault deletion (a data-modifying CTE that only sees the row if the update matched).
        let row = sqlx::query(
            "WITH upd AS (UPDATE sessions SET status = $1, actor = $2, activity = $3, \
             last_active_organization_id = $4, updated_at = $5, last_active_at = $6, abandon_at = $7, \
             idle_deadline = $8, version = $9, user_id = $13, attributes = $14 \
             WHERE application_id = $10 AND id = $11 AND version = $12 \
             AND EXISTS (SELECT 1 FROM users WHERE application_id = $15 AND id = $16) RETURNING id), \
             del AS (DELETE FROM session_tokens WHERE $17 AND application_id = $15 \
             AND session_id IN (SELECT id FROM upd)) \
             SELECT count(*) AS n FROM upd",
        )
        .bind(s.status.as_str())
        .bind(s.actor.as_ref().map(Value::to_string))
        .bind(s.activity.clone())
        .bind(s.last_active_organization_id.clone())
        .bind(s.updated_at.0)
        .bind(s.last_active_at.0)
        .bind(s.abandon_at.0)
        .bind(s.idle_deadline.map(|t| t.0))
        .bind(s.version)
        .bind(s.application_id.as_str())
        .bind(s.id.as_str())
        .bind(s.version - 1)
        .bind(s.user_id.as_str())
        .bind(attributes_json(s)?)
        .bind(s.application_id.as_str())
        .bind(s.user_id.as_str())
        .bind(s.status.is_terminal())
        .fetch_one(self.pool())
        .await
        .map_err(map_err)?;
        if get::<i64>(&row, "n")? == 1 {
            return Ok(());
        }
        match self.get_session(&s.application_id, &s.id).await? {
            Some(_) => Err(StoreError::Conflict),
            None => Err(StoreError::NotFound),
        }
    }

    async fn purge_sessions(&self, cutoff: Timestamp) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM sessions WHERE expire_at < $1 OR abandon_at < $2 \
             OR (idle_deadline IS NOT NULL AND idle_deadline < $3) \
             OR (status NOT IN ('active', 'pending') AND updated_at < $4)",
        )
        .bind(cutoff.0)
        .bind(cutoff.0)
        .bind(cutoff.0)
        .bind(cutoff.0)
        .execute(self.pool())
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected())
    }
}

// ---- signing keys ----

fn key_from_row(row: &PgRow) -> StoreResult<SigningKeyRecord> {
    let state: String = get(row, "state")?;
    Ok(SigningKeyRecord {
        kid: SigningKeyId(get(row, "kid")?),
        application_id: AppId(get(row, "application_id")?),
        algorithm: get(row, "algorithm")?,
        private_sealed: get(row, "private_key")?,
        public_jwk: get(row, "public_jwk")?,
        state: KeyState::parse(&state).ok_or_else(|| corrupt("key state", &state))?,
        created_at: Timestamp(get(row, "created_at")?),
        activates_at: Timestamp(get(row, "activates_at")?),
        retired_at: get::<Option<i64>>(row, "retired_at")?.map(Timestamp),
        publish_until: Timestamp(get(row, "publish_until")?),
        version: get(row, "version")?,
    })
}

#[async_trait]
impl SigningKeyStore for SqlStore {
    async fn insert_signing_key(&self, k: &SigningKeyRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO signing_keys (kid, application_id, algorithm, private_key, public_jwk, state, \
             created_at, activates_at, retired_at, publish_until, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(k.kid.as_str())
        .bind(k.application_id.as_str())
        .bind(k.algorithm.as_str())
        .bind(k.private_sealed.as_slice())
        .bind(k.public_jwk.as_str())
        .bind(k.state.as_str())
        .bind(k.created_at.0)
        .bind(k.activates_at.0)
        .bind(k.retired_at.map(|t| t.0))
        .bind(k.publish_until.0)
        .bind(k.version)
        .execute(self.pool())
        .await
        .map_err(|e| match map_err(e) {
            StoreError::Backend(m) if m.to_lowercase().contains("foreign key") => StoreError::NotFound,
            other => other,
        })?;
        Ok(())
    }

    async fn list_signing_keys(&self, app: &AppId) -> StoreResult<Vec<SigningKeyRecord>> {
        let rows = sqlx::query(
            "SELECT kid, application_id, algorithm, private_key, public_jwk, state, created_at, \
             activates_at, retired_at, publish_until, version FROM signing_keys \
             WHERE application_id = $1 ORDER BY created_at, kid",
        )
        .bind(app.as_str())
        .fetch_all(self.pool())
        .await
        .map_err(map_err)?;
        rows.iter().map(key_from_row).collect()
    }

    async fn promote_signing_key(
        &self,
        app: &AppId,
        next: &SigningKeyId,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let mut tx = self.pool().begin().await.map_err(map_err)?;
        sqlx::query(
            "UPDATE signing_keys SET state = 'retired', retired_at = $1, version = version + 1 \
             WHERE application_id = $2 AND state = 'current'",
        )
        .bind(now.0)
        .bind(app.as_str())
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        let done = sqlx::query(
            "UPDATE signing_keys SET state = 'current', activates_at = $1, version = version + 1 \
             WHERE application_id = $2 AND kid = $3 AND state = 'next'",
        )
        .bind(now.0)
        .bind(app.as_str())
        .bind(next.as_str())
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() != 1 {
            tx.rollback().await.map_err(map_err)?;
            return Ok(false);
        }
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn extend_signing_key(
        &self,
        app: &AppId,
        kid: &SigningKeyId,
        until: Timestamp,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE signing_keys SET publish_until = $1 \
             WHERE application_id = $2 AND kid = $3 AND publish_until < $4",
        )
        .bind(until.0)
        .bind(app.as_str())
        .bind(kid.as_str())
        .bind(until.0)
        .execute(self.pool())
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn delete_expired_signing_keys(&self, app: &AppId, now: Timestamp) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM signing_keys WHERE application_id = $1 AND state = 'retired' AND publish_until < $2",
        )
        .bind(app.as_str())
        .bind(now.0)
        .execute(self.pool())
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected())
    }
}

// ---- JWT templates ----

const TEMPLATE_COLS: &str = "t.id, t.application_id, t.name, t.claims, t.lifetime, t.allowed_clock_skew, \
     t.custom_signing_key, t.signing_algorithm, t.signing_key, t.created_at, t.updated_at, t.version, t.claims_sealed";

fn template_from_row(row: &PgRow) -> StoreResult<JwtTemplate> {
    let claims: String = get(row, "claims")?;
    let claims: Map<String, Value> =
        serde_json::from_str(&claims).map_err(|e| corrupt("template claims", e))?;
    let alg: String = get(row, "signing_algorithm")?;
    Ok(JwtTemplate {
        id: TemplateId(get(row, "id")?),
        application_id: AppId(get(row, "application_id")?),
        name: get(row, "name")?,
        claims,
        lifetime_secs: u64::try_from(get::<i64>(row, "lifetime")?).unwrap_or(60),
        allowed_clock_skew_secs: u64::try_from(get::<i64>(row, "allowed_clock_skew")?).unwrap_or(5),
        custom_signing_key: get::<i64>(row, "custom_signing_key")? != 0,
        signing_algorithm: Algorithm::parse(&alg)
            .ok_or_else(|| corrupt("template algorithm", &alg))?,
        signing_key_sealed: get(row, "signing_key")?,
        claims_sealed: get(row, "claims_sealed")?,
        created_at: Timestamp(get(row, "created_at")?),
        updated_at: Timestamp(get(row, "updated_at")?),
        version: get(row, "version")?,
    })
}

async fn fetch_template(store: &SqlStore, sql: Sql) -> StoreResult<Option<JwtTemplate>> {
    let row = sql
        .query()
        .fetch_optional(store.pool())
        .await
        .map_err(map_err)?;
    row.as_ref().map(template_from_row).transpose()
}

#[async_trait]
impl TemplateStore for SqlStore {
    async fn insert_template(&self, t: &JwtTemplate) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO jwt_templates (id, application_id, name, claims, lifetime, allowed_clock_skew, \
             custom_signing_key, signing_algorithm, signing_key, created_at, updated_at, version, claims_sealed) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(t.id.as_str())
        .bind(t.application_id.as_str())
        .bind(t.name.as_str())
        .bind(Value::Object(t.claims.clone()).to_string())
        .bind(i64_of(t.lifetime_secs))
        .bind(i64_of(t.allowed_clock_skew_secs))
        .bind(i64::from(t.custom_signing_key))
        .bind(t.signing_algorithm.as_str())
        .bind(t.signing_key_sealed.clone())
        .bind(t.created_at.0)
        .bind(t.updated_at.0)
        .bind(t.version)
        .bind(t.claims_sealed.clone())
        .execute(self.pool())
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn get_template(&self, app: &AppId, id: &TemplateId) -> StoreResult<Option<JwtTemplate>> {
        let mut sql = Sql::new(&format!(
            "SELECT {TEMPLATE_COLS} FROM jwt_templates t WHERE t.application_id = "
        ));
        sql.bind(Arg::Str(app.0.clone()))
            .push(" AND t.id = ")
            .bind(Arg::Str(id.0.clone()));
        fetch_template(self, sql).await
    }

    async fn get_template_by_name(
        &self,
        app: &AppId,
        name: &str,
    ) -> StoreResult<Option<JwtTemplate>> {
        let mut sql = Sql::new(&format!(
            "SELECT {TEMPLATE_COLS} FROM jwt_templates t WHERE t.application_id = "
        ));
        sql.bind(Arg::Str(app.0.clone()))
            .push(" AND t.name = ")
            .bind(Arg::Str(name.to_owned()));
        fetch_template(self, sql).await
    }

    async fn list_templates(
        &self,
        app: &AppId,
        limit: u32,
        offset: u64,
    ) -> StoreResult<(Vec<JwtTemplate>, u64)> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM jwt_templates WHERE application_id = $1")
            .bind(app.as_str())
            .fetch_one(self.pool())
            .await
            .map_err(map_err)?;
        let total: i64 = get(&row, "n")?;
        let mut sql = Sql::new(&format!(
            "SELECT {TEMPLATE_COLS} FROM jwt_templates t WHERE t.application_id = "
        ));
        sql.bind(Arg::Str(app.0.clone()))
            .push(" ORDER BY t.created_at DESC, t.id DESC LIMIT ")
            .bind(Arg::I64(i64::from(limit)))
            .push(" OFFSET ")
            .bind(Arg::I64(i64_of(offset)));
        let rows = sql.query().fetch_all(self.pool()).await.map_err(map_err)?;
        let list = rows
            .iter()
            .map(template_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok((list, u64::try_from(total).unwrap_or(0)))
    }

    async fn update_template(&self, t: &JwtTemplate) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE jwt_templates SET name = $1, claims = $2, lifetime = $3, allowed_clock_skew = $4, \
             custom_signing_key = $5, signing_algorithm = $6, signing_key = $7, updated_at = $8, version = $9, \
             claims_sealed = $13 WHERE application_id = $10 AND id = $11 AND version = $12",
        )
        .bind(t.name.as_str())
        .bind(Value::Object(t.claims.clone()).to_string())
        .bind(i64_of(t.lifetime_secs))
        .bind(i64_of(t.allowed_clock_skew_secs))
        .bind(i64::from(t.custom_signing_key))
        .bind(t.signing_algorithm.as_str())
        .bind(t.signing_key_sealed.clone())
        .bind(t.updated_at.0)
        .bind(t.version)
        .bind(t.application_id.as_str())
        .bind(t.id.as_str())
        .bind(t.version - 1)
        .bind(t.claims_sealed.clone())
        .execute(self.pool())
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 1 {
            return Ok(());
        }
        match self.get_template(&t.application_id, &t.id).await? {
            Some(_) => Err(StoreError::Conflict),
            None => Err(StoreError::NotFound),
        }
    }

    async fn delete_template(&self, app: &AppId, id: &TemplateId) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM jwt_templates WHERE application_id = $1 AND id = $2")
            .bind(app.as_str())
            .bind(id.as_str())
            .execute(self.pool())
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }
}

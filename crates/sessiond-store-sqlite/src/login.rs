//! Users, sessions, signing keys and JWT templates.

use async_trait::async_trait;
use rusqlite::{Connection, Row, params};
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

use crate::{
    Arg, Sql, SqliteStore, all, corrupt, count, exec, first, get, i64_of, is_foreign_key, map_err,
};

// ---- users ----

/// A user's columns, in the order [`user_at`] reads them by position.
macro_rules! user_cols {
    () => {
        "u.id, u.application_id, u.external_id, u.profile, u.created_at, u.updated_at, u.version"
    };
}
const USER_COLS: &str = user_cols!();

/// A user from [`USER_COLS`] starting at column `at`. Columns are
/// read by position: looking them up by name costs a scan of the column names per field.
fn user_at(row: &Row<'_>, at: usize) -> StoreResult<StoredUser> {
    Ok(StoredUser {
        id: UserId(get(row, at)?),
        application_id: AppId(get(row, at + 1)?),
        external_id: get(row, at + 2)?,
        profile_sealed: get(row, at + 3)?,
        identifiers: Vec::new(),
        created_at: Timestamp(get(row, at + 4)?),
        updated_at: Timestamp(get(row, at + 5)?),
        version: get(row, at + 6)?,
    })
}

fn user_from_row(row: &Row<'_>) -> StoreResult<StoredUser> {
    user_at(row, 0)
}

fn insert_identifiers(conn: &Connection, u: &StoredUser) -> StoreResult<()> {
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
impl UserStore for SqliteStore {
    async fn insert_user(&self, u: &StoredUser) -> StoreResult<()> {
        let u = u.clone();
        self.write(move |c| {
            exec(
                c,
                "INSERT INTO users (id, application_id, external_id, profile, created_at, updated_at, version) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
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
            insert_identifiers(c, &u)
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
        let mut total = Sql::new("SELECT COUNT(*) AS n FROM users u");
        user_where(app, filter, &mut total);
        let mut page = Sql::new(&format!("SELECT {USER_COLS} FROM users u"));
        user_where(app, filter, &mut page);
        page.push(order_by(filter.order))
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

    async fn update_user(&self, u: &StoredUser) -> StoreResult<()> {
        let u = u.clone();
        self.write(move |c| {
            let n = exec(
                c,
                "UPDATE users SET external_id = ?1, profile = ?2, updated_at = ?3, version = ?4 \
                 WHERE application_id = ?5 AND id = ?6 AND version = ?7",
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
            exec(
                c,
                "DELETE FROM user_identifiers WHERE user_id = ?1",
                [u.id.as_str()],
            )?;
            insert_identifiers(c, &u)
        })
        .await
    }

    async fn delete_user(&self, app: &AppId, id: &UserId) -> StoreResult<bool> {
        self.write_one(
            "DELETE FROM users WHERE application_id = ?1 AND id = ?2",
            app.as_str(),
            id.as_str(),
        )
        .await
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

/// Number of columns in [`SESSION_COLS`].
const SESSION_COL_COUNT: usize = 17;

/// A session from a row that starts with [`SESSION_COLS`], read by position.
fn session_from_row(row: &Row<'_>) -> StoreResult<Session> {
    let status: String = get(row, 4)?;
    let actor: Option<String> = get(row, 5)?;
    Ok(Session {
        id: SessionId(get(row, 0)?),
        application_id: AppId(get(row, 1)?),
        user_id: UserId(get(row, 2)?),
        client_id: ClientId(get(row, 3)?),
        status: SessionStatus::parse(&status).ok_or_else(|| corrupt("session status", &status))?,
        actor: actor
            .map(|a| serde_json::from_str::<Value>(&a))
            .transpose()
            .map_err(|e| corrupt("session actor", e))?,
        activity: get(row, 6)?,
        sso: get(row, 16)?,
        attributes: serde_json::from_str(&get::<String, _>(row, 7)?)
            .map_err(|e| corrupt("session attributes", e))?,
        last_active_organization_id: get(row, 8)?,
        created_at: Timestamp(get(row, 9)?),
        updated_at: Timestamp(get(row, 10)?),
        last_active_at: Timestamp(get(row, 11)?),
        expire_at: Timestamp(get(row, 12)?),
        abandon_at: Timestamp(get(row, 13)?),
        idle_deadline: get::<Option<i64>, _>(row, 14)?.map(Timestamp),
        version: get(row, 15)?,
    })
}

fn attributes_json(s: &Session) -> StoreResult<String> {
    serde_json::to_string(&s.attributes).map_err(|e| StoreError::Backend(e.to_string()))
}

fn get_session(conn: &Connection, app: &str, id: &str) -> StoreResult<Option<Session>> {
    first(
        conn,
        concat!(
            "SELECT ",
            session_cols!(),
            " FROM sessions s WHERE s.application_id = ?1 AND s.id = ?2"
        ),
        [app, id],
        session_from_row,
    )
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

fn session_page(
    app: &AppId,
    filter: &SessionFilter,
    limit: u32,
    offset: u64,
    now: Timestamp,
) -> Sql {
    let mut page = Sql::new(&format!("SELECT {SESSION_COLS} FROM sessions s"));
    session_where(app, filter, now, &mut page);
    page.push(" ORDER BY s.created_at DESC, s.id DESC LIMIT ")
        .bind(Arg::I64(i64::from(limit)))
        .push(" OFFSET ")
        .bind(Arg::I64(i64_of(offset)));
    page
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn insert_session(&self, s: &Session) -> StoreResult<()> {
        let attributes = attributes_json(s)?;
        let s = s.clone();
        self.write(move |c| {
            let n = exec(
                c,
                "INSERT INTO sessions (id, application_id, user_id, client_id, status, actor, activity, \
                 last_active_organization_id, created_at, updated_at, last_active_at, expire_at, abandon_at, \
                 idle_deadline, version, attributes, sso) \
                 SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17 \
                 WHERE EXISTS (SELECT 1 FROM users WHERE application_id = ?2 AND id = ?3)",
                params![
                    s.id.as_str(),
                    s.application_id.as_str(),
                    s.user_id.as_str(),
                    s.client_id.as_str(),
                    s.status.as_str(),
                    s.actor.as_ref().map(Value::to_string),
                    s.activity,
                    s.last_active_organization_id,
                    s.created_at.0,
                    s.updated_at.0,
                    s.last_active_at.0,
                    s.expire_at.0,
                    s.abandon_at.0,
                    s.idle_deadline.map(|t| t.0),
                    s.version,
                    attributes,
                    s.sso
                ],
            )?;
            // The user must belong to the same application; otherwise nothing is inserted.
            if n == 1 {
                Ok(())
            } else {
                Err(StoreError::NotFound)
            }
        })
        .await
    }

    async fn get_session(&self, app: &AppId, id: &SessionId) -> StoreResult<Option<Session>> {
        self.read(|c| get_session(c, app.as_str(), id.as_str()))
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
            user_cols!(),
            " FROM sessions s JOIN users u ON u.application_id = s.application_id \
             AND u.id = s.user_id WHERE s.application_id = ?1 AND s.id = ?2"
        );
        self.read(|c| {
            first(c, SQL, [app.as_str(), id.as_str()], |r| {
                Ok((session_from_row(r)?, user_at(r, SESSION_COL_COUNT)?))
            })
        })
    }

    async fn list_sessions(
        &self,
        app: &AppId,
        filter: &SessionFilter,
        limit: u32,
        offset: u64,
        now: Timestamp,
    ) -> StoreResult<(Vec<Session>, u64)> {
        let mut total = Sql::new("SELECT COUNT(*) AS n FROM sessions s");
        session_where(app, filter, now, &mut total);
        let page = session_page(app, filter, limit, offset, now);
        self.read(|c| {
            let n: i64 = total.first(c, |r| get(r, "n"))?.unwrap_or(0);
            Ok((
                page.all(c, session_from_row)?,
                u64::try_from(n).unwrap_or(0),
            ))
        })
    }

    async fn list_sessions_page(
        &self,
        app: &AppId,
        filter: &SessionFilter,
        limit: u32,
        offset: u64,
        now: Timestamp,
    ) -> StoreResult<Vec<Session>> {
        let page = session_page(app, filter, limit, offset, now);
        self.read(|c| page.all(c, session_from_row))
    }

    async fn update_session(&self, s: &Session) -> StoreResult<()> {
        let attributes = attributes_json(s)?;
        let s = s.clone();
        self.write(move |c| {
            let n = exec(
                c,
                "UPDATE sessions SET status = ?1, actor = ?2, activity = ?3, last_active_organization_id = ?4, \
                 updated_at = ?5, last_active_at = ?6, abandon_at = ?7, idle_deadline = ?8, version = ?9, \
                 user_id = ?13, attributes = ?14 \
                 WHERE application_id = ?10 AND id = ?11 AND version = ?12 \
                 AND EXISTS (SELECT 1 FROM users WHERE application_id = ?10 AND id = ?13)",
                params![
                    s.status.as_str(),
                    s.actor.as_ref().map(Value::to_string),
                    s.activity,
                    s.last_active_organization_id,
                    s.updated_at.0,
                    s.last_active_at.0,
                    s.abandon_at.0,
                    s.idle_deadline.map(|t| t.0),
                    s.version,
                    s.application_id.as_str(),
                    s.id.as_str(),
                    s.version - 1,
                    s.user_id.as_str(),
                    attributes
                ],
            )?;
            if n == 1 {
                if s.status.is_terminal() {
                    exec(
                        c,
                        "DELETE FROM session_tokens WHERE application_id = ?1 AND session_id = ?2",
                        [s.application_id.as_str(), s.id.as_str()],
                    )?;
                }
                return Ok(());
            }
            match get_session(c, s.application_id.as_str(), s.id.as_str())? {
                Some(_) => Err(StoreError::Conflict),
                None => Err(StoreError::NotFound),
            }
        })
        .await
    }

    async fn purge_sessions(&self, cutoff: Timestamp) -> StoreResult<u64> {
        self.write(move |c| {
            exec(
                c,
                "DELETE FROM sessions WHERE expire_at < ?1 OR abandon_at < ?1 \
                 OR (idle_deadline IS NOT NULL AND idle_deadline < ?1) \
                 OR (status NOT IN ('active', 'pending') AND updated_at < ?1)",
                [cutoff.0],
            )
        })
        .await
    }
}

// ---- signing keys ----

fn signing_key_from_row(row: &Row<'_>) -> StoreResult<SigningKeyRecord> {
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
        retired_at: get::<Option<i64>, _>(row, "retired_at")?.map(Timestamp),
        publish_until: Timestamp(get(row, "publish_until")?),
        version: get(row, "version")?,
    })
}

#[async_trait]
impl SigningKeyStore for SqliteStore {
    async fn insert_signing_key(&self, k: &SigningKeyRecord) -> StoreResult<()> {
        let k = k.clone();
        self.write(move |c| {
            let done = c
                .prepare_cached(
                    "INSERT INTO signing_keys (kid, application_id, algorithm, private_key, public_jwk, state, \
                     created_at, activates_at, retired_at, publish_until, version) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )
                .and_then(|mut stmt| {
                    stmt.execute(params![
                        k.kid.as_str(),
                        k.application_id.as_str(),
                        k.algorithm.as_str(),
                        k.private_sealed.as_slice(),
                        k.public_jwk.as_str(),
                        k.state.as_str(),
                        k.created_at.0,
                        k.activates_at.0,
                        k.retired_at.map(|t| t.0),
                        k.publish_until.0,
                        k.version
                    ])
                });
            match done {
                Ok(_) => Ok(()),
                Err(e) if is_foreign_key(&e) => Err(StoreError::NotFound),
                Err(e) => Err(map_err(e)),
            }
        })
        .await
    }

    async fn list_signing_keys(&self, app: &AppId) -> StoreResult<Vec<SigningKeyRecord>> {
        self.read(|c| {
            all(
                c,
                "SELECT kid, application_id, algorithm, private_key, public_jwk, state, created_at, \
                 activates_at, retired_at, publish_until, version FROM signing_keys \
                 WHERE application_id = ?1 ORDER BY created_at, kid",
                [app.as_str()],
                signing_key_from_row,
            )
        })
    }

    async fn promote_signing_key(
        &self,
        app: &AppId,
        next: &SigningKeyId,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let (app, next) = (app.0.clone(), next.0.clone());
        let promoted = self
            .write(move |c| {
                exec(
                    c,
                    "UPDATE signing_keys SET state = 'retired', retired_at = ?1, version = version + 1 \
                     WHERE application_id = ?2 AND state = 'current'",
                    params![now.0, app],
                )?;
                let n = exec(
                    c,
                    "UPDATE signing_keys SET state = 'current', activates_at = ?1, version = version + 1 \
                     WHERE application_id = ?2 AND kid = ?3 AND state = 'next'",
                    params![now.0, app, next],
                )?;
                // Not promoted: undo the retirement too (the request's savepoint is rolled back).
                if n == 1 {
                    Ok(())
                } else {
                    Err(StoreError::Conflict)
                }
            })
            .await;
        match promoted {
            Ok(()) => Ok(true),
            Err(StoreError::Conflict) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn extend_signing_key(
        &self,
        app: &AppId,
        kid: &SigningKeyId,
        until: Timestamp,
    ) -> StoreResult<()> {
        let (app, kid) = (app.0.clone(), kid.0.clone());
        self.write(move |c| {
            exec(
                c,
                "UPDATE signing_keys SET publish_until = ?1 \
                 WHERE application_id = ?2 AND kid = ?3 AND publish_until < ?1",
                params![until.0, app, kid],
            )?;
            Ok(())
        })
        .await
    }

    async fn delete_expired_signing_keys(&self, app: &AppId, now: Timestamp) -> StoreResult<u64> {
        let app = app.0.clone();
        self.write(move |c| {
            exec(
                c,
                "DELETE FROM signing_keys WHERE application_id = ?1 AND state = 'retired' AND publish_until < ?2",
                params![app, now.0],
            )
        })
        .await
    }
}

// ---- JWT templates ----

const TEMPLATE_COLS: &str = "t.id, t.application_id, t.name, t.claims, t.lifetime, t.allowed_clock_skew, \
     t.custom_signing_key, t.signing_algorithm, t.signing_key, t.created_at, t.updated_at, t.version, t.claims_sealed";

fn template_from_row(row: &Row<'_>) -> StoreResult<JwtTemplate> {
    let claims: String = get(row, "claims")?;
    let claims: Map<String, Value> =
        serde_json::from_str(&claims).map_err(|e| corrupt("template claims", e))?;
    let alg: String = get(row, "signing_algorithm")?;
    Ok(JwtTemplate {
        id: TemplateId(get(row, "id")?),
        application_id: AppId(get(row, "application_id")?),
        name: get(row, "name")?,
        claims,
        lifetime_secs: u64::try_from(get::<i64, _>(row, "lifetime")?).unwrap_or(60),
        allowed_clock_skew_secs: u64::try_from(get::<i64, _>(row, "allowed_clock_skew")?)
            .unwrap_or(5),
        custom_signing_key: get::<i64, _>(row, "custom_signing_key")? != 0,
        signing_algorithm: Algorithm::parse(&alg)
            .ok_or_else(|| corrupt("template algorithm", &alg))?,
        signing_key_sealed: get(row, "signing_key")?,
        claims_sealed: get(row, "claims_sealed")?,
        created_at: Timestamp(get(row, "created_at")?),
        updated_at: Timestamp(get(row, "updated_at")?),
        version: get(row, "version")?,
    })
}

fn get_template(conn: &Connection, app: &str, id: &str) -> StoreResult<Option<JwtTemplate>> {
    first(
        conn,
        &format!(
            "SELECT {TEMPLATE_COLS} FROM jwt_templates t WHERE t.application_id = ?1 AND t.id = ?2"
        ),
        [app, id],
        template_from_row,
    )
}

#[async_trait]
impl TemplateStore for SqliteStore {
    async fn insert_template(&self, t: &JwtTemplate) -> StoreResult<()> {
        let t = t.clone();
        self.write(move |c| {
            exec(
                c,
                "INSERT INTO jwt_templates (id, application_id, name, claims, lifetime, allowed_clock_skew, \
                 custom_signing_key, signing_algorithm, signing_key, created_at, updated_at, version, \
                 claims_sealed) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                params![
                    t.id.as_str(),
                    t.application_id.as_str(),
                    t.name.as_str(),
                    Value::Object(t.claims.clone()).to_string(),
                    i64_of(t.lifetime_secs),
                    i64_of(t.allowed_clock_skew_secs),
                    i64::from(t.custom_signing_key),
                    t.signing_algorithm.as_str(),
                    t.signing_key_sealed,
                    t.created_at.0,
                    t.updated_at.0,
                    t.version,
                    t.claims_sealed
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn get_template(&self, app: &AppId, id: &TemplateId) -> StoreResult<Option<JwtTemplate>> {
        self.read(|c| get_template(c, app.as_str(), id.as_str()))
    }

    async fn get_template_by_name(
        &self,
        app: &AppId,
        name: &str,
    ) -> StoreResult<Option<JwtTemplate>> {
        self.read(|c| {
            first(
                c,
                &format!(
                    "SELECT {TEMPLATE_COLS} FROM jwt_templates t WHERE t.application_id = ?1 AND t.name = ?2"
                ),
                [app.as_str(), name],
                template_from_row,
            )
        })
    }

    async fn list_templates(
        &self,
        app: &AppId,
        limit: u32,
        offset: u64,
    ) -> StoreResult<(Vec<JwtTemplate>, u64)> {
        self.read(|c| {
            let total = count(
                c,
                "SELECT COUNT(*) FROM jwt_templates WHERE application_id = ?1",
                [app.as_str()],
            )?;
            let list = all(
                c,
                &format!(
                    "SELECT {TEMPLATE_COLS} FROM jwt_templates t WHERE t.application_id = ?1 \
                     ORDER BY t.created_at DESC, t.id DESC LIMIT ?2 OFFSET ?3"
                ),
                params![app.as_str(), i64::from(limit), i64_of(offset)],
                template_from_row,
            )?;
            Ok((list, total))
        })
    }

    async fn update_template(&self, t: &JwtTemplate) -> StoreResult<()> {
        let t = t.clone();
        self.write(move |c| {
            let n = exec(
                c,
                "UPDATE jwt_templates SET name = ?1, claims = ?2, lifetime = ?3, allowed_clock_skew = ?4, \
                 custom_signing_key = ?5, signing_algorithm = ?6, signing_key = ?7, updated_at = ?8, version = ?9, \
                 claims_sealed = ?13 WHERE application_id = ?10 AND id = ?11 AND version = ?12",
                params![
                    t.name.as_str(),
                    Value::Object(t.claims.clone()).to_string(),
                    i64_of(t.lifetime_secs),
                    i64_of(t.allowed_clock_skew_secs),
                    i64::from(t.custom_signing_key),
                    t.signing_algorithm.as_str(),
                    t.signing_key_sealed,
                    t.updated_at.0,
                    t.version,
                    t.application_id.as_str(),
                    t.id.as_str(),
                    t.version - 1,
                    t.claims_sealed
                ],
            )?;
            if n == 1 {
                return Ok(());
            }
            match get_template(c, t.application_id.as_str(), t.id.as_str())? {
                Some(_) => Err(StoreError::Conflict),
                None => Err(StoreError::NotFound),
            }
        })
        .await
    }

    async fn delete_template(&self, app: &AppId, id: &TemplateId) -> StoreResult<bool> {
        self.write_one(
            "DELETE FROM jwt_templates WHERE application_id = ?1 AND id = ?2",
            app.as_str(),
            id.as_str(),
        )
        .await
    }
}

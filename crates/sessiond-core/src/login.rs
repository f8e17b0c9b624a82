//! The login-session service: users, sessions, session tokens and JWT templates of an
//! application. Every dialect that speaks login sessions (Clerk, Equisoft) calls this.

use std::sync::Arc;

use serde_json::{Map, Value, json};
use sessiond_crypto::jwt::{self, Algorithm, SigningKey};

use crate::application::Application;
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::ids::{ClientId, SessionId, TemplateId, UserId};
use crate::session::{
    Event, ImpersonationError, Session, SessionAttributes, SessionStatus, SsoDetails,
    TransitionError, impersonate, revert_identity, transition,
};
use crate::signing::Signer;
use crate::store::{
    ImpersonationEvent, SessionDeletion, SessionFilter, Store, StoreError, StoredUser, VaultEntry,
};
use crate::template::{self, JwtTemplate, TemplateInput};
use crate::user::{
    self, NewUser, PasswordCheck, PasswordInput, StoredOrder, StoredPassword, User, UserFilter,
    UserPatch, UserSearch, UserSortField,
};
use crate::vault::Vault;
use sessiond_crypto::password as pw;

/// Token category header values, as Clerk's SDKs know them: a template token must never be
/// accepted as a session token.
pub const CATEGORY_SESSION: &str = "cl_B7d4PD111AAA";
pub const CATEGORY_TEMPLATE: &str = "cl_B7d4PD222AAA";
/// Bounds of `expires_in_seconds` on token requests.
pub const MIN_TOKEN_SECS: u64 = 30;
pub const MAX_TOKEN_SECS: u64 = 315_360_000;
/// Session tokens are valid from 10 s before issue, to absorb clock skew between servers.
const SESSION_TOKEN_NBF_SKEW_SECS: u64 = 10;
const RETRIES: usize = 5;
/// Users opened per store read when a listing must look inside sealed profiles.
pub const SCAN_CHUNK: u32 = 1000;
/// Largest value the token vault stores.
pub const MAX_VAULT_VALUE: usize = 16 * 1024;
/// Most tokens one session's vault holds.
pub const MAX_VAULT_TOKENS: usize = 32;
/// Longest vault token id.
pub const MAX_TOKEN_ID: usize = 256;

fn validate_token_id(t: &str) -> Result<()> {
    if t.is_empty() || t.len() > MAX_TOKEN_ID || t.chars().any(char::is_control) {
        return Err(Error::invalid(
            "tokenId",
            format!("must be 1 to {MAX_TOKEN_ID} bytes without control characters"),
        ));
    }
    Ok(())
}

pub struct LoginService {
    store: Arc<dyn Store>,
    vault: Arc<Vault>,
    signer: Arc<Signer>,
}

fn user_context(id: &UserId) -> String {
    format!("users:{id}")
}

fn template_context(id: &TemplateId) -> String {
    format!("jwt_templates:{id}")
}

fn template_claims_context(id: &TemplateId) -> String {
    format!("jwt_template_claims:{id}")
}

fn session_sso_context(id: &SessionId) -> String {
    format!("session_sso:{id}")
}

fn not_found(kind: &'static str) -> Error {
    Error::NotFound { kind }
}

fn map_transition(e: TransitionError) -> Error {
    match e {
        TransitionError::NotUsable(status) => Error::SessionNotUsable { status },
    }
}

impl LoginService {
    pub fn new(store: Arc<dyn Store>, vault: Arc<Vault>, signer: Arc<Signer>) -> Self {
        LoginService {
            store,
            vault,
            signer,
        }
    }

    pub fn signer(&self) -> &Arc<Signer> {
        &self.signer
    }

    // ---- users ----

    fn blind(&self, kind: &str, value: &str) -> [u8; 32] {
        self.vault.hasher().hash(&format!("blind:{kind}:{value}"))
    }

    fn seal_user(&self, u: &User) -> Result<StoredUser> {
        let profile = serde_json::to_vec(&u.profile).map_err(|e| Error::Internal(e.to_string()))?;
        Ok(StoredUser {
            id: u.id.clone(),
            application_id: u.application_id.clone(),
            // Sealed in the profile; the clear column only holds what older versions wrote.
            external_id: None,
            profile_sealed: self.vault.seal(&user_context(&u.id), &profile),
            identifiers: user::identifiers(u)
                .into_iter()
                .map(|(k, v)| (k.to_owned(), self.blind(k, &v)))
                .collect(),
            created_at: u.created_at,
            updated_at: u.updated_at,
            version: u.version,
        })
    }

    fn open_user(&self, s: StoredUser) -> Result<User> {
        let raw = self
            .vault
            .unseal(&user_context(&s.id), &s.profile_sealed)
            .map_err(|e| Error::Internal(format!("user {}: {e}", s.id)))?;
        let mut profile: user::Profile =
            serde_json::from_slice(&raw).map_err(|e| Error::Internal(e.to_string()))?;
        if profile.external_id.is_none() {
            profile.external_id = s.external_id;
        }
        Ok(User {
            id: s.id,
            application_id: s.application_id,
            profile,
            created_at: s.created_at,
            updated_at: s.updated_at,
            version: s.version,
        })
    }

    fn identifier_taken(e: StoreError) -> Error {
        match e {
            StoreError::Conflict => Error::AlreadyExists {
                field: "email_address, phone_number, username or external_id".into(),
            },
            other => other.into(),
        }
    }

    pub async fn create_user(
        &self,
        app: &Application,
        mut input: NewUser,
        now: Timestamp,
    ) -> Result<User> {
        let password = input.password.take();
        let mut u = input.into_user(&app.id, now)?;
        if let Some(p) = password {
            u.profile.password = Some(Self::digest_password(p).await?);
        }
        self.store
            .insert_user(&self.seal_user(&u)?)
            .await
            .map_err(Self::identifier_taken)?;
        Ok(u)
    }

    pub async fn get_user(&self, app: &Application, id: &UserId) -> Result<User> {
        let s = self
            .store
            .get_user(&app.id, id)
            .await?
            .ok_or_else(|| not_found("user"))?;
        self.open_user(s)
    }

    /// Users by id, external id or email (exact, case-insensitive), newest first.
    /// Users matching `q`, in its order, and how many match in all.
    ///
    /// Filters on ids, external ids and emails run in the store (emails through the blind
    /// index). A `query` or an order on a profile field needs the profiles, which are sealed: the
    /// matching users are then opened in chunks of [`SCAN_CHUNK`], filtered and sorted here, so
    /// the cost grows with the application's users (see docs/design/dialects.md).
    pub async fn list_users(&self, app: &Application, q: &UserSearch) -> Result<(Vec<User>, u64)> {
        let stored_order = match (q.order.field, q.order.descending) {
            (UserSortField::CreatedAt, true) => Some(StoredOrder::CreatedDesc),
            (UserSortField::CreatedAt, false) => Some(StoredOrder::CreatedAsc),
            (UserSortField::UpdatedAt, true) => Some(StoredOrder::UpdatedDesc),
            (UserSortField::UpdatedAt, false) => Some(StoredOrder::UpdatedAsc),
            _ => None,
        };
        let mut filter = UserFilter {
            user_ids: q.user_ids.clone(),
            external_id_hashes: q
                .external_ids
                .iter()
                .map(|x| self.blind(user::ID_EXTERNAL, x))
                .collect(),
            email_hashes: q
                .emails
                .iter()
                .map(|e| self.blind(user::ID_EMAIL, &e.trim().to_lowercase()))
                .collect(),
            order: stored_order.unwrap_or_default(),
        };
        if let (Some(_), true) = (stored_order, q.query.is_empty()) {
            let (rows, total) = self
                .store
                .list_users(&app.id, &filter, q.limit, q.offset)
                .await?;
            let users = rows
                .into_iter()
                .map(|r| self.open_user(r))
                .collect::<Result<Vec<_>>>()?;
            return Ok((users, total));
        }
        filter.order = StoredOrder::CreatedDesc;
        let mut matched = Vec::new();
        let mut offset = 0u64;
        loop {
            let (rows, _) = self
                .store
                .list_users(&app.id, &filter, SCAN_CHUNK, offset)
                .await?;
            let n = rows.len();
            for r in rows {
                let u = self.open_user(r)?;
                if u.matches(&q.query) {
                    matched.push(u);
                }
            }
            if n < SCAN_CHUNK as usize {
                break;
            }
            offset += u64::from(SCAN_CHUNK);
        }
        let total = matched.len() as u64;
        let field = q.order.field;
        // Stable sort over the newest-first scan: ties keep newest first; absent values last.
        matched.sort_by(|a, b| match (a.sort_key(field), b.sort_key(field)) {
            (Some(x), Some(y)) if q.order.descending => y.cmp(&x),
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        });
        let page = matched
            .into_iter()
            .skip(usize::try_from(q.offset).unwrap_or(usize::MAX))
            .take(q.limit as usize)
            .collect();
        Ok((page, total))
    }

    /// Turns a caller's password into the digest to store: Argon2id for a clear password
    /// (hashed off the async threads: it takes tens of milliseconds on purpose), the digest
    /// itself for an import once it is known to be well formed and within cost bounds.
    async fn digest_password(input: PasswordInput) -> Result<StoredPassword> {
        match input {
            PasswordInput::Plain {
                password,
                skip_checks,
            } => {
                user::check_password(&password, skip_checks)?;
                let digest = tokio::task::spawn_blocking(move || pw::hash(&password))
                    .await
                    .map_err(|e| Error::Internal(format!("password hashing: {e}")))?
                    .map_err(|e| Error::invalid("password", e.to_string()))?;
                Ok(StoredPassword {
                    hasher: pw::Hasher::Argon2id.as_str().to_owned(),
                    digest,
                })
            }
            PasswordInput::Digest { hasher, digest } => {
                let h = pw::Hasher::parse(&hasher).ok_or_else(|| {
                    Error::invalid(
                        "password_hasher",
                        format!("`{hasher}` is not supported; use argon2id, argon2i or bcrypt"),
                    )
                })?;
                pw::validate_digest(h, &digest)
                    .map_err(|e| Error::invalid("password_digest", e.to_string()))?;
                Ok(StoredPassword { hasher, digest })
            }
        }
    }

    /// Checks `password` against the user's. An imported digest that matches is replaced by an
    /// Argon2id digest of the same password.
    pub async fn verify_password(
        &self,
        app: &Application,
        id: &UserId,
        password: &str,
        now: Timestamp,
    ) -> Result<PasswordCheck> {
        let u = self.get_user(app, id).await?;
        let Some(stored) = u.profile.password.clone() else {
            return Ok(PasswordCheck::NotSet);
        };
        let Some(hasher) = pw::Hasher::parse(&stored.hasher) else {
            return Ok(PasswordCheck::Incorrect);
        };
        let candidate = password.to_owned();
        let digest = stored.digest.clone();
        let ok = tokio::task::spawn_blocking(move || pw::verify(hasher, &digest, &candidate))
            .await
            .map_err(|e| Error::Internal(format!("password check: {e}")))?;
        if !ok {
            return Ok(PasswordCheck::Incorrect);
        }
        if hasher != pw::Hasher::Argon2id {
            let patch = UserPatch {
                password: Some(PasswordInput::Plain {
                    password: password.to_owned(),
                    skip_checks: true,
                }),
                ..UserPatch::default()
            };
            // The check already succeeded; a failed upgrade is retried at the next check.
            if let Err(e) = self.update_user(app, id, patch, now).await {
                tracing::warn!(error = %e, "re-hashing an imported password digest failed");
            }
        }
        Ok(PasswordCheck::Verified)
    }

    pub async fn update_user(
        &self,
        app: &Application,
        id: &UserId,
        mut patch: UserPatch,
        now: Timestamp,
    ) -> Result<User> {
        let digest = match patch.password.take() {
            Some(p) => Some(Self::digest_password(p).await?),
            None => None,
        };
        for _ in 0..RETRIES {
            let mut u = self.get_user(app, id).await?;
            patch.clone().apply(&mut u)?;
            if let Some(d) = &digest {
                u.profile.password = Some(d.clone());
            }
            u.version += 1;
            u.updated_at = now.max(u.updated_at);
            match self.store.update_user(&self.seal_user(&u)?).await {
                Ok(()) => return Ok(u),
                Err(StoreError::Conflict) => {
                    // Either a concurrent update or a taken identifier; a re-read tells which.
                    let fresh = self.get_user(app, id).await?;
                    if fresh.version == u.version - 1 {
                        return Err(Self::identifier_taken(StoreError::Conflict));
                    }
                }
                Err(StoreError::NotFound) => return Err(not_found("user")),
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Conflict)
    }

    pub async fn delete_user(&self, app: &Application, id: &UserId) -> Result<()> {
        if self.store.delete_user(&app.id, id).await? {
            Ok(())
        } else {
            Err(not_found("user"))
        }
    }

    // ---- sessions ----

    /// Creates a session for an existing user on a new client.
    pub async fn create_session(
        &self,
        app: &Application,
        user_id: &UserId,
        pending: bool,
        now: Timestamp,
    ) -> Result<Session> {
        // One statement: the insert itself refuses a user that is not the application's.
        let s = Session::new(
            &app.id,
            &app.settings,
            user_id.clone(),
            ClientId::new(),
            pending,
            now,
        );
        self.store.insert_session(&s).await.map_err(|e| match e {
            StoreError::NotFound => not_found("user"),
            other => other.into(),
        })?;
        Ok(s)
    }

    pub async fn get_session(&self, app: &Application, id: &SessionId) -> Result<Session> {
        self.store
            .get_session(&app.id, id)
            .await?
            .ok_or_else(|| not_found("session"))
    }

    /// The session and its user, read together.
    pub async fn get_session_with_user(
        &self,
        app: &Application,
        id: &SessionId,
    ) -> Result<(Session, User)> {
        let (s, u) = self
            .store
            .get_session_with_user(&app.id, id)
            .await?
            .ok_or_else(|| not_found("session"))?;
        Ok((s, self.open_user(u)?))
    }

    pub async fn list_sessions(
        &self,
        app: &Application,
        filter: &SessionFilter,
        limit: u32,
        offset: u64,
        now: Timestamp,
    ) -> Result<(Vec<Session>, u64)> {
        Ok(self
            .store
            .list_sessions(&app.id, filter, limit, offset, now)
            .await?)
    }

    /// A page of sessions without the total count.
    pub async fn list_sessions_page(
        &self,
        app: &Application,
        filter: &SessionFilter,
        limit: u32,
        offset: u64,
        now: Timestamp,
    ) -> Result<Vec<Session>> {
        Ok(self
            .store
            .list_sessions_page(&app.id, filter, limit, offset, now)
            .await?)
    }

    /// Applies `event` under optimistic concurrency; a no-op transition is not written.
    pub async fn apply(
        &self,
        app: &Application,
        id: &SessionId,
        event: Event,
        now: Timestamp,
    ) -> Result<Session> {
        self.apply_from(app, id, None, event, now).await
    }

    /// [`Self::apply`] starting from a session the caller has just read, so the first attempt
    /// needs no second read (a conflict still re-reads).
    async fn apply_from(
        &self,
        app: &Application,
        id: &SessionId,
        loaded: Option<Session>,
        event: Event,
        now: Timestamp,
    ) -> Result<Session> {
        // A write that ends the session also empties its token vault (see `update_session`).
        let (_, after) = self
            .write_session(app, id, loaded, |s| {
                transition(s, event.clone(), &app.settings, now).map_err(map_transition)
            })
            .await?;
        Ok(after)
    }

    /// Writes `step(current)` under optimistic concurrency, re-reading and retrying when another
    /// writer got there first. Returns (before, after); an unchanged result is not written.
    async fn write_session<F>(
        &self,
        app: &Application,
        id: &SessionId,
        mut loaded: Option<Session>,
        step: F,
    ) -> Result<(Session, Session)>
    where
        F: Fn(&Session) -> Result<Session> + Send + Sync,
    {
        for _ in 0..RETRIES {
            let s = match loaded.take() {
                Some(s) => s,
                None => self.get_session(app, id).await?,
            };
            let mut next = step(&s)?;
            if next == s {
                return Ok((s.clone(), s));
            }
            next.version = s.version + 1;
            match self.store.update_session(&next).await {
                Ok(()) => return Ok((s, next)),
                Err(StoreError::Conflict) => continue,
                Err(StoreError::NotFound) => return Err(not_found("session")),
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Conflict)
    }

    pub async fn revoke_session(
        &self,
        app: &Application,
        id: &SessionId,
        now: Timestamp,
    ) -> Result<Session> {
        self.apply(app, id, Event::Revoke, now).await
    }

    /// Revokes every usable (active or pending) session of a user; returns how many.
    pub async fn revoke_user_sessions(
        &self,
        app: &Application,
        user: &UserId,
        now: Timestamp,
    ) -> Result<u64> {
        let filter = SessionFilter {
            user_id: Some(user.clone()),
            statuses: vec![SessionStatus::Active, SessionStatus::Pending],
            ..SessionFilter::default()
        };
        let mut revoked = 0;
        loop {
            let (page, _) = self.list_sessions(app, &filter, 100, 0, now).await?;
            if page.is_empty() {
                return Ok(revoked);
            }
            for s in page {
                match self.revoke_session(app, &s.id, now).await {
                    // Gone or ended meanwhile: nothing left to revoke.
                    Ok(_) | Err(Error::NotFound { .. } | Error::SessionNotUsable { .. }) => {}
                    Err(e) => return Err(e),
                }
                revoked += 1;
            }
        }
    }

    /// Records activity, writing only when the coalescing window has passed.
    pub async fn touch_session(
        &self,
        app: &Application,
        s: Session,
        now: Timestamp,
    ) -> Result<Session> {
        if !s.touch_is_due(&app.settings, now) {
            let status = s.effective_status(now);
            if status.is_terminal() {
                return Err(Error::SessionNotUsable { status });
            }
            return Ok(s);
        }
        let id = s.id.clone();
        self.apply_from(app, &id, Some(s), Event::Touch(None), now)
            .await
    }

    /// The active session `id`, with activity recorded (tokens are minted only for these).
    async fn active_session(
        &self,
        app: &Application,
        id: &SessionId,
        now: Timestamp,
    ) -> Result<Session> {
        let s = self.get_session(app, id).await?;
        let status = s.effective_status(now);
        if status != SessionStatus::Active {
            return Err(Error::SessionNotUsable { status });
        }
        self.touch_session(app, s, now).await
    }

    fn token_lifetime(expires_in: Option<u64>, default: u64) -> Result<u64> {
        match expires_in {
            None => Ok(default.max(1)),
            Some(v) if (MIN_TOKEN_SECS..=MAX_TOKEN_SECS).contains(&v) => Ok(v),
            Some(_) => Err(Error::invalid(
                "expires_in_seconds",
                format!("must be between {MIN_TOKEN_SECS} and {MAX_TOKEN_SECS}"),
            )),
        }
    }

    /// Mints a v2 session token for an active session.
    pub async fn create_session_token(
        &self,
        app: &Application,
        id: &SessionId,
        expires_in: Option<u64>,
        now: Timestamp,
    ) -> Result<String> {
        let lifetime = Self::token_lifetime(expires_in, app.settings.session_token_lifetime_secs)?;
        let s = self.active_session(app, id, now).await?;
        let iat = now.as_secs();
        let exp = now.plus_secs(lifetime);
        let mut claims = json!({
            "exp": exp.as_secs(),
            "fva": [-1, -1],
            "iat": iat,
            "iss": app.settings.frontend_url,
            "jti": sessiond_crypto::ids::new_id("jti")[4..].to_owned(),
            "nbf": iat - SESSION_TOKEN_NBF_SKEW_SECS as i64,
            "sid": s.id,
            "sts": "active",
            "sub": s.user_id,
            "v": 2,
        });
        if let (Some(actor), Value::Object(m)) = (&s.actor, &mut claims) {
            m.insert("act".into(), actor.clone());
        }
        self.signer
            .sign(
                &app.id,
                &claims,
                &[("cat", Value::from(CATEGORY_SESSION))],
                exp,
                now,
            )
            .await
    }

    fn render_context(user: &User, s: &Session) -> Value {
        let p = &user.profile;
        let full_name = match (&p.first_name, &p.last_name) {
            (Some(f), Some(l)) => Some(format!("{f} {l}")),
            (Some(f), None) => Some(f.clone()),
            (None, Some(l)) => Some(l.clone()),
            (None, None) => None,
        };
        json!({
            "user": {
                "id": user.id,
                "external_id": user.profile.external_id,
                "first_name": p.first_name,
                "last_name": p.last_name,
                "full_name": full_name,
                "username": p.username,
                "primary_email_address": p.primary_email(),
                "primary_phone_address": p.primary_phone(),
                "primary_phone_number": p.primary_phone(),
                "email_verified": p.primary_email().is_some(),
                "phone_number_verified": p.primary_phone().is_some(),
                "image_url": p.image_url,
                "profile_image_url": p.image_url,
                "has_image": p.image_url.is_some(),
                "two_factor_enabled": false,
                "created_at": user.created_at.as_secs(),
                "updated_at": user.updated_at.as_secs(),
                "public_metadata": p.public_metadata,
                "unsafe_metadata": p.unsafe_metadata,
            },
            "session": {
                "id": s.id,
                "actor": s.actor,
                "status": s.status.as_str(),
            },
            "org": null,
        })
    }

    /// Mints a token from a JWT template for an active session.
    pub async fn create_template_token(
        &self,
        app: &Application,
        id: &SessionId,
        template_name: &str,
        expires_in: Option<u64>,
        now: Timestamp,
    ) -> Result<String> {
        let t = self
            .store
            .get_template_by_name(&app.id, template_name)
            .await?
            .ok_or_else(|| not_found("jwt_template"))?;
        let t = self.open_template(t)?;
        let lifetime = Self::token_lifetime(expires_in, t.lifetime_secs)?;
        let s = self.active_session(app, id, now).await?;
        let user = self.get_user(app, &s.user_id).await?;
        let mut claims: Map<String, Value> =
            template::render(&t.claims, &Self::render_context(&user, &s));
        let iat = now.as_secs();
        let exp = now.plus_secs(lifetime);
        for (k, v) in [
            ("exp", json!(exp.as_secs())),
            ("iat", json!(iat)),
            ("iss", json!(app.settings.frontend_url)),
            (
                "jti",
                json!(sessiond_crypto::ids::new_id("jti")[4..].to_owned()),
            ),
            ("nbf", json!(iat - t.allowed_clock_skew_secs as i64)),
            ("sub", json!(s.user_id)),
        ] {
            claims.insert(k.to_owned(), v);
        }
        let claims = Value::Object(claims);
        let header = [("cat", Value::from(CATEGORY_TEMPLATE))];
        match &t.signing_key_sealed {
            Some(sealed) if t.custom_signing_key => {
                let material = self
                    .vault
                    .unseal(&template_context(&t.id), sealed)
                    .map_err(|e| Error::Internal(format!("template key {}: {e}", t.id)))?;
                let key = SigningKey::from_der(t.signing_algorithm, &material)
                    .map_err(|e| Error::Internal(e.to_string()))?;
                Ok(key.sign_jwt(None, &header, &claims))
            }
            _ => self.signer.sign(&app.id, &claims, &header, exp, now).await,
        }
    }

    /// The deprecated `/verify`: the session, if `token` is a valid session token of it.
    /// The claims of a session token signed by one of the application's published keys, without
    /// looking at its times.
    async fn session_token_claims(
        &self,
        app: &Application,
        token: &str,
        now: Timestamp,
    ) -> Result<Value> {
        let (header, _) =
            jwt::decode_unverified(token).map_err(|_| Error::InvalidToken("malformed"))?;
        if header
            .get("cat")
            .and_then(Value::as_str)
            .is_some_and(|c| c != CATEGORY_SESSION)
        {
            return Err(Error::InvalidToken("not a session token"));
        }
        let kid = header
            .get("kid")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let ks = self.signer.keyset(&app.id, now).await?;
        let jwk = ks
            .jwks
            .iter()
            .find(|k| k.get("kid").and_then(Value::as_str) == Some(kid))
            .ok_or(Error::InvalidToken("unknown key"))?;
        let public = jwt::RsaPublicKey::from_jwk(jwk).ok_or(Error::InvalidToken("unknown key"))?;
        let (_, claims) =
            jwt::verify_rs256(token, &public).map_err(|_| Error::InvalidToken("bad signature"))?;
        Ok(claims)
    }

    /// A new session token for a backend that has a session token of the session (typically
    /// expired: the `__session` cookie a browser sent). The old token must carry a valid
    /// signature of this application and name this session; the session must be active.
    pub async fn refresh_session_token(
        &self,
        app: &Application,
        id: &SessionId,
        expired_token: &str,
        now: Timestamp,
    ) -> Result<String> {
        let claims = self.session_token_claims(app, expired_token, now).await?;
        if claims.get("sid").and_then(Value::as_str) != Some(id.as_str()) {
            return Err(Error::InvalidToken("token belongs to another session"));
        }
        self.create_session_token(app, id, None, now).await
    }

    pub async fn verify_session(
        &self,
        app: &Application,
        id: &SessionId,
        token: &str,
        now: Timestamp,
    ) -> Result<Session> {
        let s = self.get_session(app, id).await?;
        let claims = self.session_token_claims(app, token, now).await?;
        let secs = now.as_secs();
        let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
        let nbf = claims.get("nbf").and_then(Value::as_i64).unwrap_or(0);
        if claims.get("sid").and_then(Value::as_str) != Some(s.id.as_str()) {
            return Err(Error::InvalidToken("token belongs to another session"));
        }
        if secs >= exp + 5 || nbf > secs + 5 {
            return Err(Error::InvalidToken("token is expired or not yet valid"));
        }
        if s.effective_status(now) != SessionStatus::Active {
            return Err(Error::InvalidToken("session is not active"));
        }
        Ok(s)
    }

    // ---- session attributes, enablement, deletion (Equisoft) ----

    /// Finds a user by id (`user_…`) or, failing that, by external id: deployments that already
    /// have user UUIDs store them as external ids and keep using them.
    pub async fn resolve_user(&self, app: &Application, reference: &str) -> Result<User> {
        if let Some(id) = UserId::parse(reference) {
            return self.get_user(app, &id).await;
        }
        if reference.is_empty() || reference.len() > 256 {
            return Err(not_found("user"));
        }
        let (users, _) = self
            .list_users(
                app,
                &UserSearch {
                    external_ids: vec![reference.to_owned()],
                    limit: 2,
                    ..UserSearch::default()
                },
            )
            .await?;
        match users.as_slice() {
            [one] => Ok(one.clone()),
            _ => Err(not_found("user")),
        }
    }

    /// Creates a session with dialect attributes (mobile, SSO, cookie domain…).
    pub async fn create_session_with(
        &self,
        app: &Application,
        user_id: &UserId,
        pending: bool,
        attributes: SessionAttributes,
        now: Timestamp,
    ) -> Result<Session> {
        if self.store.get_user(&app.id, user_id).await?.is_none() {
            return Err(not_found("user"));
        }
        let mut s = Session::new(
            &app.id,
            &app.settings,
            user_id.clone(),
            ClientId::new(),
            pending,
            now,
        );
        s.attributes = attributes;
        if let Some(sso) = s.attributes.sso.take() {
            let json = serde_json::to_vec(&sso).map_err(|e| Error::Internal(e.to_string()))?;
            s.sso = Some(self.vault.seal(&session_sso_context(&s.id), &json));
        }
        self.store.insert_session(&s).await.map_err(|e| match e {
            StoreError::NotFound => not_found("user"),
            other => other.into(),
        })?;
        Ok(s)
    }

    /// The single sign-on a session started with, opened.
    pub fn session_sso(&self, s: &Session) -> Result<Option<SsoDetails>> {
        let Some(sealed) = &s.sso else {
            return Ok(s.attributes.sso.clone());
        };
        let raw = self
            .vault
            .unseal(&session_sso_context(&s.id), sealed)
            .map_err(|e| Error::Internal(format!("session {} sso: {e}", s.id)))?;
        serde_json::from_slice(&raw)
            .map(Some)
            .map_err(|e| Error::Internal(e.to_string()))
    }

    /// `keepAlive`: records activity on a usable session; a lapsed one is returned unchanged.
    pub async fn keep_alive(
        &self,
        app: &Application,
        id: &SessionId,
        now: Timestamp,
    ) -> Result<Session> {
        let s = self.get_session(app, id).await?;
        self.keep_alive_loaded(app, s, now).await
    }

    /// [`Self::keep_alive`] on a session the caller has just read: a coalesced touch costs no
    /// further statement, a due one a single conditional update.
    pub async fn keep_alive_loaded(
        &self,
        app: &Application,
        s: Session,
        now: Timestamp,
    ) -> Result<Session> {
        if s.effective_status(now).is_terminal() {
            return Ok(s);
        }
        self.touch_session(app, s, now).await
    }

    /// Moves a pending session to active (idempotent on active ones).
    pub async fn enable_session(
        &self,
        app: &Application,
        id: &SessionId,
        now: Timestamp,
    ) -> Result<Session> {
        self.apply(app, id, Event::Activate, now).await
    }

    /// Writes `change` to a usable session under optimistic concurrency.
    async fn modify<F>(
        &self,
        app: &Application,
        id: &SessionId,
        now: Timestamp,
        change: F,
    ) -> Result<Session>
    where
        F: Fn(&mut Session) -> Result<()> + Send + Sync,
    {
        let (_, after) = self
            .write_session(app, id, None, |s| {
                let mut next = s.clone();
                change(&mut next)?;
                if next != *s {
                    next.updated_at = now.max(s.updated_at);
                }
                Ok(next)
            })
            .await?;
        Ok(after)
    }

    /// Enables an active session for Equisoft/Connect, within the user's concurrent-access limit.
    /// Over the limit: refused, or with `disable_oldest` the oldest enabled sessions lose their
    /// enablement until this one fits.
    pub async fn enable_for_connect(
        &self,
        app: &Application,
        id: &SessionId,
        disable_oldest: bool,
        now: Timestamp,
    ) -> Result<Session> {
        let s = self.get_session(app, id).await?;
        let status = s.effective_status(now);
        if status != SessionStatus::Active {
            return Err(Error::SessionNotUsable { status });
        }
        if s.attributes.enabled_for_connect {
            return Ok(s);
        }
        let user = self.get_user(app, &s.user_id).await?;
        let limit = user.profile.max_concurrent_access.unwrap_or(0);
        if limit > 0 {
            let filter = SessionFilter {
                user_id: Some(s.user_id.clone()),
                client_id: None,
                statuses: vec![SessionStatus::Active],
            };
            let (mut others, _) = self
                .store
                .list_sessions(&app.id, &filter, 500, 0, now)
                .await?;
            others.retain(|o| o.id != s.id && o.attributes.enabled_for_connect);
            let excess = (others.len() + 1).saturating_sub(limit as usize);
            if excess > 0 {
                if !disable_oldest {
                    return Err(Error::ConcurrentAccess { limit });
                }
                // Listed newest first: the oldest are at the end.
                for old in others.iter().rev().take(excess) {
                    self.modify(app, &old.id, now, |x| {
                        x.attributes.enabled_for_connect = false;
                        Ok(())
                    })
                    .await?;
                }
            }
        }
        self.modify(app, id, now, |x| {
            let status = x.effective_status(now);
            if status != SessionStatus::Active {
                return Err(Error::SessionNotUsable { status });
            }
            x.attributes.enabled_for_connect = true;
            Ok(())
        })
        .await
    }

    pub async fn delete_session(&self, app: &Application, id: &SessionId) -> Result<()> {
        if self.store.delete_session(&app.id, id).await? {
            Ok(())
        } else {
            Err(not_found("session"))
        }
    }

    /// Deletes the application's sessions: all, one user's, or only lapsed ones.
    pub async fn delete_sessions(&self, app: &Application, which: &SessionDeletion) -> Result<u64> {
        Ok(self.store.delete_sessions(&app.id, which).await?)
    }

    // ---- impersonation ----

    fn impersonation_error(e: ImpersonationError) -> Error {
        match e {
            ImpersonationError::NotUsable(status) => Error::SessionNotUsable { status },
            ImpersonationError::AlreadyImpersonated => Error::AlreadyImpersonated,
            ImpersonationError::NotImpersonated => Error::NotImpersonated,
        }
    }

    /// The session's user (who must hold the impersonation capability) starts acting as `target`.
    pub async fn impersonate(
        &self,
        app: &Application,
        id: &SessionId,
        target: &UserId,
        now: Timestamp,
    ) -> Result<Session> {
        let s = self.get_session(app, id).await?;
        if s.actor.is_some() {
            return Err(Error::AlreadyImpersonated);
        }
        let admin = self.get_user(app, &s.user_id).await?;
        if !admin.profile.can_impersonate {
            return Err(Error::Forbidden(
                "the session's user may not impersonate other users".into(),
            ));
        }
        if target == &admin.id {
            return Err(Error::invalid(
                "userUuid",
                "a user cannot impersonate themselves",
            ));
        }
        self.get_user(app, target).await?;
        let (_, after) = self
            .write_session(app, id, None, |cur| {
                // The checks above were made for this user; a concurrent change voids them.
                if cur.user_id != admin.id {
                    return Err(Error::Conflict);
                }
                impersonate(cur, target, now).map_err(Self::impersonation_error)
            })
            .await?;
        self.audit(app, &after, &admin.id, target, "start", now)
            .await?;
        Ok(after)
    }

    /// Ends an impersonation: the session goes back to the user who started it.
    pub async fn revert_identity(
        &self,
        app: &Application,
        id: &SessionId,
        now: Timestamp,
    ) -> Result<Session> {
        let (before, after) = self
            .write_session(app, id, None, |cur| {
                revert_identity(cur, now).map_err(Self::impersonation_error)
            })
            .await?;
        self.audit(app, &after, &after.user_id, &before.user_id, "end", now)
            .await?;
        Ok(after)
    }

    async fn audit(
        &self,
        app: &Application,
        s: &Session,
        actor: &UserId,
        target: &UserId,
        kind: &str,
        now: Timestamp,
    ) -> Result<()> {
        let e = ImpersonationEvent {
            id: sessiond_crypto::ids::new_id("imp"),
            application_id: app.id.clone(),
            session_id: s.id.clone(),
            actor_user_id: actor.clone(),
            target_user_id: target.clone(),
            kind: kind.to_owned(),
            at: now,
        };
        tracing::info!(session = %s.id, actor = %actor, target = %target, kind, "impersonation");
        Ok(self.store.record_impersonation(&e).await?)
    }

    pub async fn impersonation_log(
        &self,
        app: &Application,
        limit: u32,
    ) -> Result<Vec<ImpersonationEvent>> {
        Ok(self.store.list_impersonations(&app.id, limit).await?)
    }

    // ---- per-session token vault ----

    /// A usable session of the application, or the reason it is not.
    async fn vault_session(
        &self,
        app: &Application,
        id: &SessionId,
        now: Timestamp,
    ) -> Result<Session> {
        let s = self.get_session(app, id).await?;
        let status = s.effective_status(now);
        if status.is_terminal() {
            // Ended sessions keep no secrets; clean up now rather than wait for the purge job.
            self.store.delete_session_tokens(&app.id, id).await?;
            // A lapsed session is still visible (SUSPENDED, EXPIRED) and answers that it is not
            // usable; a revoked or deleted one is gone.
            return Err(match status {
                SessionStatus::Suspended | SessionStatus::Expired | SessionStatus::Abandoned => {
                    Error::SessionNotUsable { status }
                }
                _ => not_found("session"),
            });
        }
        Ok(s)
    }

    pub async fn put_token(
        &self,
        app: &Application,
        id: &SessionId,
        token_id: &str,
        value: &str,
        now: Timestamp,
    ) -> Result<()> {
        validate_token_id(token_id)?;
        if value.is_empty() || value.len() > MAX_VAULT_VALUE {
            return Err(Error::invalid(
                "token",
                format!("must be 1 to {MAX_VAULT_VALUE} bytes"),
            ));
        }
        self.vault_session(app, id, now).await?;
        let row_id = sessiond_crypto::ids::new_id("vt");
        let entry = VaultEntry {
            value_sealed: self
                .vault
                .seal(&format!("session_tokens:{row_id}"), value.as_bytes()),
            row_id,
        };
        match self
            .store
            .put_session_token(&app.id, id, token_id, &entry, MAX_VAULT_TOKENS, now)
            .await
        {
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::LimitExceeded {
                what: "tokens per session",
                limit: MAX_VAULT_TOKENS,
            }),
            Err(StoreError::NotFound) => Err(not_found("session")),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn get_token(
        &self,
        app: &Application,
        id: &SessionId,
        token_id: &str,
        now: Timestamp,
    ) -> Result<String> {
        validate_token_id(token_id)?;
        self.vault_session(app, id, now).await?;
        let entry = self
            .store
            .get_session_token(&app.id, id, token_id)
            .await?
            .ok_or_else(|| not_found("token"))?;
        let raw = self
            .vault
            .unseal(
                &format!("session_tokens:{}", entry.row_id),
                &entry.value_sealed,
            )
            .map_err(|e| Error::Internal(format!("vault entry: {e}")))?;
        String::from_utf8(raw.to_vec())
            .map_err(|_| Error::Internal("vault entry is not UTF-8".into()))
    }

    pub async fn delete_token(
        &self,
        app: &Application,
        id: &SessionId,
        token_id: &str,
        now: Timestamp,
    ) -> Result<()> {
        validate_token_id(token_id)?;
        self.vault_session(app, id, now).await?;
        if self
            .store
            .delete_session_token(&app.id, id, token_id)
            .await?
        {
            Ok(())
        } else {
            Err(not_found("token"))
        }
    }

    // ---- JWT templates ----

    fn seal_template_key(&self, t: &mut JwtTemplate, alg: Algorithm, key: &str) -> Result<()> {
        let (_, material) = SigningKey::from_pem_or_secret(alg, key)
            .map_err(|e| Error::invalid("signing_key", e.to_string()))?;
        t.signing_key_sealed = Some(self.vault.seal(&template_context(&t.id), &material));
        Ok(())
    }

    /// Applies `input` to `t`, validating the result.
    fn apply_template_input(&self, t: &mut JwtTemplate, input: TemplateInput) -> Result<()> {
        if let Some(name) = input.name {
            template::validate_name(&name)?;
            t.name = name;
        }
        if let Some(claims) = input.claims {
            template::validate_claims(&claims)?;
            t.claims = claims;
        }
        if let Some(l) = input.lifetime {
            let l = l.unwrap_or(template::DEFAULT_LIFETIME_SECS);
            template::validate_lifetime(l)?;
            t.lifetime_secs = l;
        }
        if let Some(s) = input.allowed_clock_skew {
            let s = s.unwrap_or(template::DEFAULT_CLOCK_SKEW_SECS);
            template::validate_skew(s)?;
            t.allowed_clock_skew_secs = s;
        }
        let custom = input.custom_signing_key.unwrap_or(t.custom_signing_key);
        let alg = match input.signing_algorithm {
            Some(Some(a)) => Some(Algorithm::parse(&a).ok_or_else(|| {
                Error::invalid("signing_algorithm", format!("`{a}` is not supported"))
            })?),
            _ => None,
        };
        if custom {
            let alg = alg.unwrap_or(t.signing_algorithm);
            match input.signing_key {
                Some(Some(k)) => self.seal_template_key(t, alg, &k)?,
                _ if t.signing_key_sealed.is_some() && alg == t.signing_algorithm => {}
                _ => {
                    return Err(Error::invalid(
                        "signing_key",
                        "is required with a custom signing key",
                    ));
                }
            }
            t.signing_algorithm = alg;
        } else {
            t.signing_key_sealed = None;
            t.signing_algorithm = Algorithm::RS256;
        }
        t.custom_signing_key = custom;
        Ok(())
    }

    pub async fn create_template(
        &self,
        app: &Application,
        input: TemplateInput,
        now: Timestamp,
    ) -> Result<JwtTemplate> {
        if input.name.is_none() {
            return Err(Error::invalid("name", "is required"));
        }
        if input.claims.is_none() {
            return Err(Error::invalid("claims", "is required"));
        }
        let mut t = JwtTemplate {
            id: TemplateId::new(),
            application_id: app.id.clone(),
            name: String::new(),
            claims: Map::new(),
            claims_sealed: None,
            lifetime_secs: template::DEFAULT_LIFETIME_SECS,
            allowed_clock_skew_secs: template::DEFAULT_CLOCK_SKEW_SECS,
            custom_signing_key: false,
            signing_algorithm: Algorithm::RS256,
            signing_key_sealed: None,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        self.apply_template_input(&mut t, input)?;
        self.store
            .insert_template(&self.seal_template(&t)?)
            .await
            .map_err(|e| match e {
                StoreError::Conflict => Error::AlreadyExists {
                    field: "name".into(),
                },
                other => other.into(),
            })?;
        Ok(t)
    }

    /// What a store gets: the claims sealed, none in clear.
    fn seal_template(&self, t: &JwtTemplate) -> Result<JwtTemplate> {
        let json = serde_json::to_vec(&t.claims).map_err(|e| Error::Internal(e.to_string()))?;
        Ok(JwtTemplate {
            claims: Map::new(),
            claims_sealed: Some(self.vault.seal(&template_claims_context(&t.id), &json)),
            ..t.clone()
        })
    }

    fn open_template(&self, mut t: JwtTemplate) -> Result<JwtTemplate> {
        if let Some(sealed) = t.claims_sealed.take() {
            let raw = self
                .vault
                .unseal(&template_claims_context(&t.id), &sealed)
                .map_err(|e| Error::Internal(format!("template claims {}: {e}", t.id)))?;
            t.claims = serde_json::from_slice(&raw).map_err(|e| Error::Internal(e.to_string()))?;
        }
        Ok(t)
    }

    pub async fn get_template(&self, app: &Application, id: &TemplateId) -> Result<JwtTemplate> {
        let t = self
            .store
            .get_template(&app.id, id)
            .await?
            .ok_or_else(|| not_found("jwt_template"))?;
        self.open_template(t)
    }

    pub async fn list_templates(
        &self,
        app: &Application,
        limit: u32,
        offset: u64,
    ) -> Result<(Vec<JwtTemplate>, u64)> {
        let (rows, total) = self.store.list_templates(&app.id, limit, offset).await?;
        let list = rows
            .into_iter()
            .map(|t| self.open_template(t))
            .collect::<Result<Vec<_>>>()?;
        Ok((list, total))
    }

    pub async fn update_template(
        &self,
        app: &Application,
        id: &TemplateId,
        input: TemplateInput,
        now: Timestamp,
    ) -> Result<JwtTemplate> {
        for _ in 0..RETRIES {
            let mut t = self.get_template(app, id).await?;
            self.apply_template_input(&mut t, input.clone())?;
            t.version += 1;
            t.updated_at = now.max(t.updated_at);
            match self.store.update_template(&self.seal_template(&t)?).await {
                Ok(()) => return Ok(t),
                Err(StoreError::Conflict) => {
                    let fresh = self.get_template(app, id).await?;
                    if fresh.version == t.version - 1 {
                        return Err(Error::AlreadyExists {
                            field: "name".into(),
                        });
                    }
                }
                Err(StoreError::NotFound) => return Err(not_found("jwt_template")),
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Conflict)
    }

    pub async fn delete_template(&self, app: &Application, id: &TemplateId) -> Result<()> {
        if self.store.delete_template(&app.id, id).await? {
            Ok(())
        } else {
            Err(not_found("jwt_template"))
        }
    }
}

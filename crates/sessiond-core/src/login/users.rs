//! Users: create, read, search, update, delete, passwords. Profiles are sealed; emails, phone
//! numbers, usernames and external ids are found through their blind-index hashes.

use crate::application::Application;
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::events::EventType;
use crate::ids::UserId;
use crate::retry::{Attempt, retry_optimistic};
use crate::store::{StoreError, StoredUser};
use crate::user::{
    self, NewUser, PasswordCheck, PasswordInput, StoredOrder, StoredPassword, User, UserFilter,
    UserPatch, UserSearch, UserSortField,
};
use sessiond_crypto::password as pw;

use super::*;

impl LoginService {
    pub(super) fn blind(&self, kind: &str, value: &str) -> [u8; 32] {
        self.vault.hasher().hash(&format!("blind:{kind}:{value}"))
    }

    pub(super) fn seal_user(&self, u: &User) -> Result<StoredUser> {
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

    pub(super) fn open_user(&self, s: StoredUser) -> Result<User> {
        let opened = match self.profiles.get(&s.id, &s.profile_sealed) {
            Some(p) => p,
            None => {
                let raw = self
                    .vault
                    .unseal(&user_context(&s.id), &s.profile_sealed)
                    .map_err(|e| Error::Internal(format!("user {}: {e}", s.id)))?;
                let p: Arc<user::Profile> = Arc::new(
                    serde_json::from_slice(&raw).map_err(|e| Error::Internal(e.to_string()))?,
                );
                self.profiles.put(&s.id, &s.profile_sealed, p.clone());
                p
            }
        };
        let mut profile = user::Profile::clone(&opened);
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

    pub(super) fn identifier_taken(e: StoreError) -> Error {
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
        let event = crate::events::user_event(&app.id, EventType::UserCreated, &u.id, now);
        self.store
            .insert_user(&self.seal_user(&u)?, Some(&event))
            .await
            .map_err(Self::identifier_taken)?;
        self.events.raise();
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
    pub(super) async fn digest_password(input: PasswordInput) -> Result<StoredPassword> {
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
        let (patch, digest) = (&patch, &digest);
        retry_optimistic(|| async move {
            let mut u = self.get_user(app, id).await?;
            patch.clone().apply(&mut u)?;
            if let Some(d) = digest {
                u.profile.password = Some(d.clone());
            }
            u.version += 1;
            u.updated_at = now.max(u.updated_at);
            let event = crate::events::user_event(&app.id, EventType::UserUpdated, &u.id, now);
            match self
                .store
                .update_user(&self.seal_user(&u)?, Some(&event))
                .await
            {
                Err(StoreError::Conflict) => {
                    // Either a concurrent update or a taken identifier; a re-read tells which.
                    let fresh = self.get_user(app, id).await?;
                    if fresh.version == u.version - 1 {
                        return Err(Self::identifier_taken(StoreError::Conflict));
                    }
                    Ok(Attempt::Raced)
                }
                Err(StoreError::NotFound) => Err(not_found("user")),
                Ok(()) => {
                    self.events.raise();
                    Ok(Attempt::Done(u))
                }
                written => Attempt::of_write(written, u),
            }
        })
        .await
    }

    pub async fn delete_user(&self, app: &Application, id: &UserId, now: Timestamp) -> Result<()> {
        let event = crate::events::user_event(&app.id, EventType::UserDeleted, id, now);
        let deleted = self.store.delete_user(&app.id, id, Some(&event)).await?;
        // Deleted personal data should not linger in memory until the entry ages out.
        self.profiles.forget(id);
        if deleted {
            self.events.raise();
            Ok(())
        } else {
            Err(not_found("user"))
        }
    }
}

//! Moving values that versions before sealing kept in clear under seal, once, when a node starts:
//! external ids into the sealed profile (and the blind index), SSO identifiers into their sealed
//! column, template claims into theirs.

use crate::store::StoreError;

use super::*;

/// Rows read per pass.
const BATCH: u32 = 500;

/// What [`LoginService::seal_legacy_values`] moved under seal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sealed {
    pub users: u64,
    pub sessions: u64,
    pub templates: u64,
    /// Users left in clear because their external id is taken by another user of the
    /// application (external ids are unique now; two users shared one before).
    pub users_left: u64,
}

impl LoginService {
    /// Seals every value an older version left in clear. Safe to run on several nodes at once:
    /// each write is conditional on the row being as read.
    pub async fn seal_legacy_values(&self) -> Result<Sealed> {
        let mut done = Sealed::default();
        loop {
            let users = self.store.users_with_clear_external_id(BATCH).await?;
            let found = users.len() as u64;
            let mut progress = 0;
            for stored in users {
                let mut u = self.open_user(stored)?;
                u.version += 1;
                match self.store.update_user(&self.seal_user(&u)?).await {
                    Ok(()) => progress += 1,
                    Err(StoreError::NotFound) => {}
                    // A concurrent update (it sealed the id) or a taken external id.
                    Err(StoreError::Conflict) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            done.users += progress;
            if progress == 0 {
                done.users_left = found;
                break;
            }
        }
        loop {
            let sessions = self.store.sessions_with_clear_sso(BATCH).await?;
            let mut progress = 0;
            for mut s in sessions {
                let Some(sso) = s.attributes.sso.take() else {
                    continue;
                };
                let json = serde_json::to_vec(&sso).map_err(|e| Error::Internal(e.to_string()))?;
                s.sso = Some(self.vault.seal(&session_sso_context(&s.id), &json));
                if self.store.seal_session_sso(&s).await? {
                    progress += 1;
                }
            }
            done.sessions += progress;
            if progress == 0 {
                break;
            }
        }
        loop {
            let templates = self.store.templates_with_clear_claims(BATCH).await?;
            let mut progress = 0;
            for mut t in templates {
                t.version += 1;
                match self.store.update_template(&self.seal_template(&t)?).await {
                    Ok(()) => progress += 1,
                    Err(StoreError::NotFound | StoreError::Conflict) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            done.templates += progress;
            if progress == 0 {
                break;
            }
        }
        Ok(done)
    }
}

//! Moving values that versions before sealing kept in clear under seal, once, when a node starts:
//! external ids into the sealed profile (and the blind index), SSO identifiers into their sealed
//! column, template claims into theirs.

use crate::store::StoreError;

use super::*;

/// Rows read per page.
const BATCH: u32 = 500;

/// What [`LoginService::seal_legacy_values`] moved under seal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sealed {
    pub users: u64,
    pub sessions: u64,
    pub templates: u64,
    /// Users left in clear because their external id is taken by another user of the
    /// application (external ids are unique now; two users shared one before), or because a
    /// concurrent update got there first (and sealed it).
    pub users_left: u64,
}

/// Recorded once a pass has looked at every row: nothing written since is in clear, so later
/// starts skip the scans.
const DONE_META: &str = "legacy_values_sealed";

impl LoginService {
    /// Seals every value an older version left in clear, once per database. Safe to run on
    /// several nodes at once: each write is conditional on the row being as read.
    pub async fn seal_legacy_values(&self) -> Result<Sealed> {
        let mut done = Sealed::default();
        if self.store.get_meta(DONE_META).await?.is_some() {
            return Ok(done);
        }
        let mut after = String::new();
        loop {
            let users = self
                .store
                .users_with_clear_external_id(&after, BATCH)
                .await?;
            let Some(last) = users.last() else { break };
            after = last.id.to_string();
            for stored in users {
                let mut u = self.open_user(stored)?;
                u.version += 1;
                match self.store.update_user(&self.seal_user(&u)?, None).await {
                    Ok(()) => done.users += 1,
                    Err(StoreError::NotFound) => {}
                    // A concurrent update (which sealed the id) or a taken external id.
                    Err(StoreError::Conflict) => done.users_left += 1,
                    Err(e) => return Err(e.into()),
                }
            }
        }
        after.clear();
        loop {
            let sessions = self.store.sessions_with_clear_sso(&after, BATCH).await?;
            let Some(last) = sessions.last() else { break };
            after = last.id.to_string();
            for mut s in sessions {
                self.seal_sso(&mut s)?;
                if s.sso.is_some() && self.store.seal_session_sso(&s).await? {
                    done.sessions += 1;
                }
            }
        }
        after.clear();
        loop {
            let templates = self
                .store
                .templates_with_clear_claims(&after, BATCH)
                .await?;
            let Some(last) = templates.last() else { break };
            after = last.id.to_string();
            for mut t in templates {
                t.version += 1;
                match self.store.update_template(&self.seal_template(&t)?).await {
                    Ok(()) => done.templates += 1,
                    Err(StoreError::NotFound | StoreError::Conflict) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        self.store
            .insert_meta_if_absent(DONE_META, b"1", false)
            .await?;
        Ok(done)
    }
}

//! Sealed-value enumeration (for master-key rotation), job-run claims and health.

use async_trait::async_trait;
use rusqlite::params;
use sessiond_core::Timestamp;
use sessiond_core::store::{HealthStore, JobLeaseStore, SealedRef, SealedStore, StoreResult};

use crate::{SqliteStore, all, exec, get, migrate};

/// Every column that holds sealed values: its kind (also the sealing-context prefix), a page
/// query (`?1` = exclusive lower bound on the id, `?2` = limit) and a compare-and-swap update
/// (`?1` = new value, `?2` = id, `?3` = old value). Kinds are listed in sort order.
struct SealedSource {
    kind: &'static str,
    page: &'static str,
    replace: &'static str,
}

const SEALED_SOURCES: &[SealedSource] = &[
    SealedSource {
        kind: "jwt_template_claims",
        page: "SELECT id, claims_sealed AS blob FROM jwt_templates WHERE claims_sealed IS NOT NULL \
               AND id > ?1 ORDER BY id LIMIT ?2",
        replace: "UPDATE jwt_templates SET claims_sealed = ?1 WHERE id = ?2 AND claims_sealed = ?3",
    },
    SealedSource {
        kind: "jwt_templates",
        page: "SELECT id, signing_key AS blob FROM jwt_templates WHERE signing_key IS NOT NULL \
               AND id > ?1 ORDER BY id LIMIT ?2",
        replace: "UPDATE jwt_templates SET signing_key = ?1 WHERE id = ?2 AND signing_key = ?3",
    },
    SealedSource {
        kind: "meta",
        page: "SELECT name AS id, value AS blob FROM meta WHERE sealed = 1 AND name > ?1 \
               ORDER BY name LIMIT ?2",
        replace: "UPDATE meta SET value = ?1 WHERE name = ?2 AND value = ?3 AND sealed = 1",
    },
    SealedSource {
        kind: "session_sso",
        page: "SELECT id, sso AS blob FROM sessions WHERE sso IS NOT NULL AND id > ?1 \
               ORDER BY id LIMIT ?2",
        replace: "UPDATE sessions SET sso = ?1 WHERE id = ?2 AND sso = ?3",
    },
    SealedSource {
        kind: "session_tokens",
        page: "SELECT id, value AS blob FROM session_tokens WHERE id > ?1 ORDER BY id LIMIT ?2",
        replace: "UPDATE session_tokens SET value = ?1 WHERE id = ?2 AND value = ?3",
    },
    SealedSource {
        kind: "sessions",
        page: "SELECT id, activity AS blob FROM sessions WHERE activity IS NOT NULL AND id > ?1 \
               ORDER BY id LIMIT ?2",
        replace: "UPDATE sessions SET activity = ?1 WHERE id = ?2 AND activity = ?3",
    },
    SealedSource {
        kind: "signing_keys",
        page: "SELECT kid AS id, private_key AS blob FROM signing_keys WHERE kid > ?1 \
               ORDER BY kid LIMIT ?2",
        replace: "UPDATE signing_keys SET private_key = ?1 WHERE kid = ?2 AND private_key = ?3",
    },
    SealedSource {
        kind: "users",
        page: "SELECT id, profile AS blob FROM users WHERE id > ?1 ORDER BY id LIMIT ?2",
        replace: "UPDATE users SET profile = ?1 WHERE id = ?2 AND profile = ?3",
    },
];

#[async_trait]
impl SealedStore for SqliteStore {
    async fn sealed_page(
        &self,
        after: Option<&SealedRef>,
        limit: u32,
    ) -> StoreResult<Vec<(SealedRef, Vec<u8>)>> {
        self.read(|c| {
            let mut out = Vec::new();
            for src in SEALED_SOURCES {
                let lower = match after {
                    Some(a) if a.kind.as_str() > src.kind => continue,
                    Some(a) if a.kind == src.kind => a.id.as_str(),
                    _ => "",
                };
                let want = i64::from(limit) - out.len() as i64;
                if want <= 0 {
                    break;
                }
                let rows = all(c, src.page, params![lower, want], |r| {
                    Ok((
                        SealedRef {
                            kind: src.kind.to_owned(),
                            id: get(r, "id")?,
                        },
                        get(r, "blob")?,
                    ))
                })?;
                out.extend(rows);
            }
            Ok(out)
        })
    }

    async fn replace_sealed(&self, r: &SealedRef, old: &[u8], new: &[u8]) -> StoreResult<bool> {
        let Some(src) = SEALED_SOURCES.iter().find(|s| s.kind == r.kind) else {
            return Ok(false);
        };
        let (sql, id, old, new) = (src.replace, r.id.clone(), old.to_vec(), new.to_vec());
        self.write(move |c| Ok(exec(c, sql, params![new, id, old])? == 1))
            .await
    }
}

#[async_trait]
impl JobLeaseStore for SqliteStore {
    async fn claim_job_run(
        &self,
        job: &str,
        slot: i64,
        holder: &str,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let (job, holder) = (job.to_owned(), holder.to_owned());
        // The primary key (job, slot) is the lease: whichever insert lands first owns the run.
        self.write(move |c| {
            Ok(exec(
                c,
                "INSERT INTO job_runs (job, slot, holder, started_at) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (job, slot) DO NOTHING",
                params![job, slot, holder, now.0],
            )? == 1)
        })
        .await
    }

    async fn finish_job_run(
        &self,
        job: &str,
        slot: i64,
        outcome: &str,
        now: Timestamp,
    ) -> StoreResult<()> {
        let outcome: String = outcome.chars().take(500).collect();
        let job = job.to_owned();
        self.write(move |c| {
            exec(
                c,
                "UPDATE job_runs SET finished_at = ?1, outcome = ?2 WHERE job = ?3 AND slot = ?4",
                params![now.0, outcome, job, slot],
            )?;
            Ok(())
        })
        .await
    }

    async fn purge_job_runs(&self, cutoff: Timestamp) -> StoreResult<u64> {
        self.write(move |c| exec(c, "DELETE FROM job_runs WHERE started_at < ?1", [cutoff.0]))
            .await
    }
}

#[async_trait]
impl HealthStore for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        self.read(|c| {
            c.query_row("SELECT 1", [], |_| Ok(()))
                .map_err(crate::map_err)
        })
    }

    async fn migrations_current(&self) -> StoreResult<bool> {
        self.read(migrate::current)
    }
}

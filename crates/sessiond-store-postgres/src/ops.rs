//! Sealed-value enumeration (for master-key rotation), job-run claims and health.

use async_trait::async_trait;
use sessiond_core::Timestamp;
use sessiond_core::store::{HealthStore, JobLeaseStore, SealedRef, SealedStore, StoreResult};
use sqlx::Row;

use crate::{SqlStore, map_err};

/// Every column that holds sealed values: its kind (also the sealing-context prefix), a page
/// query (`$1` = exclusive lower bound on the id, `$2` = limit) and a compare-and-swap update
/// (`$1` = new value, `$2` = id, `$3` = old value). Kinds are listed in sort order.
struct SealedSource {
    kind: &'static str,
    page: &'static str,
    replace: &'static str,
}

const SEALED_SOURCES: &[SealedSource] = &[
    SealedSource {
        kind: "jwt_template_claims",
        page: "SELECT id, claims_sealed AS blob FROM jwt_templates WHERE claims_sealed IS NOT NULL \
               AND id > $1 ORDER BY id LIMIT $2",
        replace: "UPDATE jwt_templates SET claims_sealed = $1 WHERE id = $2 AND claims_sealed = $3",
    },
    SealedSource {
        kind: "jwt_templates",
        page: "SELECT id, signing_key AS blob FROM jwt_templates WHERE signing_key IS NOT NULL \
               AND id > $1 ORDER BY id LIMIT $2",
        replace: "UPDATE jwt_templates SET signing_key = $1 WHERE id = $2 AND signing_key = $3",
    },
    SealedSource {
        kind: "meta",
        page: "SELECT name AS id, value AS blob FROM meta WHERE sealed = 1 AND name > $1 \
               ORDER BY name LIMIT $2",
        replace: "UPDATE meta SET value = $1 WHERE name = $2 AND value = $3 AND sealed = 1",
    },
    SealedSource {
        kind: "session_sso",
        page: "SELECT id, sso AS blob FROM sessions WHERE sso IS NOT NULL AND id > $1 \
               ORDER BY id LIMIT $2",
        replace: "UPDATE sessions SET sso = $1 WHERE id = $2 AND sso = $3",
    },
    SealedSource {
        kind: "session_tokens",
        page: "SELECT id, value AS blob FROM session_tokens WHERE id > $1 ORDER BY id LIMIT $2",
        replace: "UPDATE session_tokens SET value = $1 WHERE id = $2 AND value = $3",
    },
    SealedSource {
        kind: "sessions",
        page: "SELECT id, activity AS blob FROM sessions WHERE activity IS NOT NULL AND id > $1 \
               ORDER BY id LIMIT $2",
        replace: "UPDATE sessions SET activity = $1 WHERE id = $2 AND activity = $3",
    },
    SealedSource {
        kind: "signing_keys",
        page: "SELECT kid AS id, private_key AS blob FROM signing_keys WHERE kid > $1 \
               ORDER BY kid LIMIT $2",
        replace: "UPDATE signing_keys SET private_key = $1 WHERE kid = $2 AND private_key = $3",
    },
    SealedSource {
        kind: "users",
        page: "SELECT id, profile AS blob FROM users WHERE id > $1 ORDER BY id LIMIT $2",
        replace: "UPDATE users SET profile = $1 WHERE id = $2 AND profile = $3",
    },
];

#[async_trait]
impl SealedStore for SqlStore {
    async fn sealed_page(
        &self,
        after: Option<&SealedRef>,
        limit: u32,
    ) -> StoreResult<Vec<(SealedRef, Vec<u8>)>> {
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
            let rows = sqlx::query(src.page)
                .bind(lower)
                .bind(want)
                .fetch_all(self.pool())
                .await
                .map_err(map_err)?;
            for row in rows {
                let id: String = row.try_get("id").map_err(map_err)?;
                let blob: Vec<u8> = row.try_get("blob").map_err(map_err)?;
                out.push((
                    SealedRef {
                        kind: src.kind.to_owned(),
                        id,
                    },
                    blob,
                ));
            }
        }
        Ok(out)
    }

    async fn replace_sealed(&self, r: &SealedRef, old: &[u8], new: &[u8]) -> StoreResult<bool> {
        let Some(src) = SEALED_SOURCES.iter().find(|s| s.kind == r.kind) else {
            return Ok(false);
        };
        let done = sqlx::query(src.replace)
            .bind(new)
            .bind(r.id.as_str())
            .bind(old)
            .execute(self.pool())
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }
}

#[async_trait]
impl JobLeaseStore for SqlStore {
    async fn claim_job_run(
        &self,
        job: &str,
        slot: i64,
        holder: &str,
        now: Timestamp,
    ) -> StoreResult<bool> {
        // The primary key (job, slot) is the lease: whichever insert lands first owns the run, on
        // one node or many.
        let done = sqlx::query(
            "INSERT INTO job_runs (job, slot, holder, started_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (job, slot) DO NOTHING",
        )
        .bind(job)
        .bind(slot)
        .bind(holder)
        .bind(now.0)
        .execute(self.pool())
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn finish_job_run(
        &self,
        job: &str,
        slot: i64,
        outcome: &str,
        now: Timestamp,
    ) -> StoreResult<()> {
        let outcome: String = outcome.chars().take(500).collect();
        sqlx::query(
            "UPDATE job_runs SET finished_at = $1, outcome = $2 WHERE job = $3 AND slot = $4",
        )
        .bind(now.0)
        .bind(outcome)
        .bind(job)
        .bind(slot)
        .execute(self.pool())
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn purge_job_runs(&self, cutoff: Timestamp) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM job_runs WHERE started_at < $1")
            .bind(cutoff.0)
            .execute(self.pool())
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl HealthStore for SqlStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(self.pool())
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn migrations_current(&self) -> StoreResult<bool> {
        let rows = match sqlx::query(
            "SELECT version FROM _sqlx_migrations WHERE success = TRUE ORDER BY version",
        )
        .fetch_all(self.pool())
        .await
        {
            Ok(rows) => rows,
            // No migrations table yet: nothing is applied.
            Err(sqlx::Error::Database(_)) => return Ok(false),
            Err(e) => return Err(map_err(e)),
        };
        let applied: Vec<i64> = rows
            .iter()
            .map(|r| r.try_get::<i64, _>("version").map_err(map_err))
            .collect::<StoreResult<_>>()?;
        let known: Vec<i64> = crate::migrator()
            .iter()
            .filter(|m| m.migration_type.is_up_migration())
            .map(|m| m.version)
            .collect();
        Ok(applied == known)
    }
}

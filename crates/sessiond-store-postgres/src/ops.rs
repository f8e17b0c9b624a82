//! Sealed-value enumeration (for master-key rotation), job-run claims and health.

use async_trait::async_trait;
use sessiond_core::Timestamp;
use sessiond_core::store::{HealthStore, JobLeaseStore, SealedRef, SealedStore, StoreResult};
use sessiond_store_sql::dollar;
use sessiond_store_sql::statements::{self, SEALED_SOURCES_PG};
use sqlx::Row;

use crate::{SqlStore, map_err};

#[async_trait]
impl SealedStore for SqlStore {
    async fn sealed_page(
        &self,
        after: Option<&SealedRef>,
        limit: u32,
    ) -> StoreResult<Vec<(SealedRef, Vec<u8>)>> {
        let mut out = Vec::new();
        for (src, lower) in statements::sealed_plan(SEALED_SOURCES_PG, after) {
            let Some(want) = statements::page_room(limit, out.len()) else {
                break;
            };
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
        let Some(src) = SEALED_SOURCES_PG.iter().find(|s| s.kind == r.kind) else {
            return Ok(false);
        };
        let done = self
            .affected(
                sqlx::query(src.replace)
                    .bind(new)
                    .bind(r.id.as_str())
                    .bind(old),
            )
            .await?;
        Ok(done == 1)
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
        let done = self
            .affected(
                sqlx::query(dollar!(statements::CLAIM_JOB_RUN))
                    .bind(job)
                    .bind(slot)
                    .bind(holder)
                    .bind(now.0),
            )
            .await?;
        Ok(done == 1)
    }

    async fn finish_job_run(
        &self,
        job: &str,
        slot: i64,
        outcome: &str,
        now: Timestamp,
    ) -> StoreResult<()> {
        sqlx::query(dollar!(statements::FINISH_JOB_RUN))
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
        let done = self
            .affected(sqlx::query(dollar!(statements::DELETE_JOB_RUNS_BEFORE)).bind(cutoff.0))
            .await?;
        Ok(done)
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

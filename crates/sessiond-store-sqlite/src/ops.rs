//! Sealed-value enumeration (for master-key rotation), job-run claims and health.

use async_trait::async_trait;
use rusqlite::params;
use sessiond_core::Timestamp;
use sessiond_core::store::{HealthStore, JobLeaseStore, SealedRef, SealedStore, StoreResult};

use sessiond_store_sql::statements::{self, SEALED_SOURCES};

use crate::{SqliteStore, all, exec, get, migrate};

#[async_trait]
impl SealedStore for SqliteStore {
    async fn sealed_page(
        &self,
        after: Option<&SealedRef>,
        limit: u32,
    ) -> StoreResult<Vec<(SealedRef, Vec<u8>)>> {
        self.read(|c| {
            let mut out = Vec::new();
            for (src, lower) in statements::sealed_plan(SEALED_SOURCES, after) {
                let Some(want) = statements::page_room(limit, out.len()) else {
                    break;
                };
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
                statements::CLAIM_JOB_RUN,
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
        let (job, outcome) = (job.to_owned(), outcome.to_owned());
        self.write(move |c| {
            exec(
                c,
                statements::FINISH_JOB_RUN,
                params![now.0, outcome, job, slot],
            )?;
            Ok(())
        })
        .await
    }

    async fn purge_job_runs(&self, cutoff: Timestamp) -> StoreResult<u64> {
        self.write(move |c| exec(c, statements::DELETE_JOB_RUNS_BEFORE, [cutoff.0]))
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

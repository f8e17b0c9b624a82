//! Timing for background jobs. Job logic lives in `sessiond_core::jobs`; this loop only decides
//! when to call it, claims each run through the store so several nodes run it once, records
//! metrics and stops on shutdown.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sessiond_core::clock::Clock;
use sessiond_core::jobs::{self, Job, Scheduled};
use sessiond_core::store::JobLeaseStore;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub fn spawn(
    jobs: Vec<Arc<dyn Job>>,
    leases: Arc<dyn JobLeaseStore>,
    holder: String,
    clock: Arc<dyn Clock>,
    stop: CancellationToken,
) -> Vec<JoinHandle<()>> {
    jobs.into_iter()
        .map(|job| {
            let leases = Arc::clone(&leases);
            let holder = holder.clone();
            let clock = Arc::clone(&clock);
            let stop = stop.clone();
            tokio::spawn(async move { run_loop(job, leases, holder, clock, stop).await })
        })
        .collect()
}

async fn run_loop(
    job: Arc<dyn Job>,
    leases: Arc<dyn JobLeaseStore>,
    holder: String,
    clock: Arc<dyn Clock>,
    stop: CancellationToken,
) {
    let name = job.name();
    let interval_ms = i64::try_from(job.interval_secs().max(1) * 1000).unwrap_or(i64::MAX);
    loop {
        let now = clock.now();
        let started = Instant::now();
        let result = tokio::select! {
            r = jobs::run_claimed(job.as_ref(), leases.as_ref(), &holder, now) => r,
            () = stop.cancelled() => break,
        };
        let outcome = match &result {
            Ok(Scheduled::Ran(o)) => {
                tracing::info!(job = name, items = o.items, summary = %o.summary, "job ran");
                "ran"
            }
            Ok(Scheduled::Skipped) => "skipped",
            Err(e) => {
                tracing::error!(job = name, error = %e, "job failed");
                "error"
            }
        };
        metrics::counter!("job_runs_total", "job" => name, "outcome" => outcome).increment(1);
        if outcome != "skipped" {
            metrics::histogram!("job_duration_seconds", "job" => name)
                .record(started.elapsed().as_secs_f64());
        }
        // Sleep to the start of the next slot, so every node wakes for the same run.
        let now = clock.now().as_millis();
        let next = (now.div_euclid(interval_ms) + 1).saturating_mul(interval_ms);
        let wait = Duration::from_millis(u64::try_from(next - now).unwrap_or(0) + 50);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = stop.cancelled() => break,
        }
    }
    tracing::debug!(job = name, "job loop stopped");
}

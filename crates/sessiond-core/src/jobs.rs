//! Background job logic. Each job is a `run_once(now)` that tests call directly; the binary's
//! scheduler only decides *when* to call it, and [`run_claimed`] makes sure that several nodes
//! sharing a database run each scheduled run once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use async_trait::async_trait;

use crate::application::DAY_SECS;
use crate::clock::Timestamp;
use crate::error::Result;
use crate::store::{ApiKeyStore, JobLeaseStore};

/// What a job run did, for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JobOutcome {
    /// Items processed (records purged, keys rotated, …).
    pub items: u64,
    pub summary: String,
}

#[async_trait]
pub trait Job: Send + Sync {
    fn name(&self) -> &'static str;
    /// How often the job runs; runs are aligned to multiples of this interval since the epoch.
    fn interval_secs(&self) -> u64;
    /// Whether this slot's run is worth claiming; a job with nothing to do says no and the
    /// slot passes without touching the database.
    fn due(&self, _now: Timestamp) -> bool {
        true
    }
    async fn run_once(&self, now: Timestamp) -> Result<JobOutcome>;
}

/// The run slot that `now` falls in: runs of a job are numbered by interval since the epoch, so
/// every node computes the same slot for the same run.
pub fn slot_of(now: Timestamp, interval_secs: u64) -> i64 {
    let len = i64::try_from(interval_secs.max(1))
        .unwrap_or(i64::MAX)
        .saturating_mul(1000);
    now.as_millis().div_euclid(len)
}

/// Result of one scheduling attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheduled {
    /// This node claimed the slot and ran the job.
    Ran(JobOutcome),
    /// Another node (or an earlier tick of this one) already ran this slot.
    Skipped,
}

/// Claims the current slot of `job` for `holder` and runs it if the claim succeeds.
pub async fn run_claimed<L>(
    job: &dyn Job,
    leases: &L,
    holder: &str,
    now: Timestamp,
) -> Result<Scheduled>
where
    L: JobLeaseStore + ?Sized,
{
    if !job.due(now) {
        return Ok(Scheduled::Skipped);
    }
    let slot = slot_of(now, job.interval_secs());
    if !leases.claim_job_run(job.name(), slot, holder, now).await? {
        return Ok(Scheduled::Skipped);
    }
    let result = job.run_once(now).await;
    let outcome = match &result {
        Ok(o) => format!("ok: {}", o.summary),
        Err(e) => format!("error: {e}"),
    };
    // A run's record is for an operator's glance; an error's full chain belongs in the logs.
    let outcome: String = outcome.chars().take(MAX_OUTCOME_CHARS).collect();
    leases
        .finish_job_run(job.name(), slot, &outcome, now)
        .await?;
    result.map(Scheduled::Ran)
}

/// One kind of record with a retention period. Later features register their own.
#[async_trait]
pub trait Purger: Send + Sync {
    fn name(&self) -> &'static str;
    /// Deletes what is past retention at `now`; returns how many records.
    async fn purge(&self, now: Timestamp) -> Result<u64>;
}

/// The retention job: runs every registered [`Purger`].
pub struct PurgeJob {
    purgers: Vec<Arc<dyn Purger>>,
    interval_secs: u64,
}

impl PurgeJob {
    pub const NAME: &'static str = "purge";

    pub fn new(interval_secs: u64) -> Self {
        PurgeJob {
            purgers: Vec::new(),
            interval_secs,
        }
    }

    pub fn register(mut self, p: Arc<dyn Purger>) -> Self {
        self.purgers.push(p);
        self
    }
}

#[async_trait]
impl Job for PurgeJob {
    fn name(&self) -> &'static str {
        Self::NAME
    }
    fn interval_secs(&self) -> u64 {
        self.interval_secs
    }
    async fn run_once(&self, now: Timestamp) -> Result<JobOutcome> {
        let mut total = 0;
        let mut parts = Vec::with_capacity(self.purgers.len());
        for p in &self.purgers {
            let n = p.purge(now).await?;
            total += n;
            parts.push(format!("{}={n}", p.name()));
        }
        Ok(JobOutcome {
            items: total,
            summary: parts.join(" "),
        })
    }
}

/// How long a revoked key's record is kept (for audit) before it is purged.
pub const REVOKED_KEY_RETENTION_SECS: u64 = 30 * DAY_SECS;
/// How long job-run records are kept.
pub const JOB_RUN_RETENTION_SECS: u64 = 7 * DAY_SECS;
/// The longest outcome a job-run record keeps, in characters.
pub const MAX_OUTCOME_CHARS: usize = 500;

/// Purges secret-key records revoked more than [`REVOKED_KEY_RETENTION_SECS`] ago.
pub struct RevokedKeys<S: ?Sized>(pub Arc<S>);

#[async_trait]
impl<S: ApiKeyStore + ?Sized + 'static> Purger for RevokedKeys<S> {
    fn name(&self) -> &'static str {
        "revoked_api_keys"
    }
    async fn purge(&self, now: Timestamp) -> Result<u64> {
        Ok(self
            .0
            .purge_revoked_api_keys(now.minus_secs(REVOKED_KEY_RETENTION_SECS))
            .await?)
    }
}

/// Purges job-run records older than [`JOB_RUN_RETENTION_SECS`].
pub struct OldJobRuns<S: ?Sized>(pub Arc<S>);

#[async_trait]
impl<S: JobLeaseStore + ?Sized + 'static> Purger for OldJobRuns<S> {
    fn name(&self) -> &'static str {
        "job_runs"
    }
    async fn purge(&self, now: Timestamp) -> Result<u64> {
        Ok(self
            .0
            .purge_job_runs(now.minus_secs(JOB_RUN_RETENTION_SECS))
            .await?)
    }
}

/// How long ended or lapsed login sessions are kept (for listings and audit) before purging.
pub const SESSION_RETENTION_SECS: u64 = 30 * DAY_SECS;

/// Purges login sessions that ended or lapsed more than [`SESSION_RETENTION_SECS`] ago.
pub struct OldSessions<S: ?Sized>(pub Arc<S>);

#[async_trait]
impl<S: crate::store::SessionStore + ?Sized + 'static> Purger for OldSessions<S> {
    fn name(&self) -> &'static str {
        "sessions"
    }
    async fn purge(&self, now: Timestamp) -> Result<u64> {
        Ok(self
            .0
            .purge_sessions(now.minus_secs(SESSION_RETENTION_SECS))
            .await?)
    }
}

/// How long the outbox keeps an event: webhook retries end within two days, and the revocation
/// feed must list a revocation for as long as a token of the session can still be presented
/// (session tokens live minutes; the feed keeps far longer, for readers that were down).
pub const EVENT_RETENTION_SECS: u64 = 30 * DAY_SECS;

/// Purges events older than [`EVENT_RETENTION_SECS`].
pub struct OldEvents<S: ?Sized>(pub Arc<S>);

#[async_trait]
impl<S: crate::store::EventStore + ?Sized + 'static> Purger for OldEvents<S> {
    fn name(&self) -> &'static str {
        "events"
    }
    async fn purge(&self, now: Timestamp) -> Result<u64> {
        Ok(self
            .0
            .purge_events(now.minus_secs(EVENT_RETENTION_SECS))
            .await?)
    }
}

/// Writes `session.expired` events for sessions that lapse by time (their deadlines pass with no
/// write to the session), so webhooks and the revocation feed learn of them within a slot.
pub struct LapseEvents<S: ?Sized> {
    store: Arc<S>,
    signal: Arc<crate::events::EventSignal>,
}

impl<S: ?Sized> LapseEvents<S> {
    pub const NAME: &'static str = "session_lapse_events";
    pub const INTERVAL_SECS: u64 = 10;
    /// Events per application per run; a larger backlog continues at the next run.
    pub const PER_RUN: u32 = 1000;

    pub fn new(store: Arc<S>, signal: Arc<crate::events::EventSignal>) -> Self {
        LapseEvents { store, signal }
    }
}

#[async_trait]
impl<S: crate::store::EventStore + ?Sized + 'static> Job for LapseEvents<S> {
    fn name(&self) -> &'static str {
        Self::NAME
    }
    fn interval_secs(&self) -> u64 {
        Self::INTERVAL_SECS
    }
    async fn run_once(&self, now: Timestamp) -> Result<JobOutcome> {
        let items = self.store.write_lapse_events(now, Self::PER_RUN).await?;
        if items > 0 {
            self.signal.raise();
        }
        Ok(JobOutcome {
            items,
            summary: format!("wrote {items} session.expired events"),
        })
    }
}

/// Says that this node has just deleted sessions in bulk
/// ([`crate::store::SessionDeleteStore::delete_user_sessions`],
/// [`crate::store::SessionDeleteStore::delete_lapsed_sessions`]), so their rows wait for the
/// sweeper.
#[derive(Debug, Default)]
pub struct SweepSignal(AtomicBool);

impl SweepSignal {
    pub fn mark(&self) {
        self.0.store(true, Ordering::Release);
    }
    fn is_marked(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
    fn take(&self) -> bool {
        self.0.swap(false, Ordering::AcqRel)
    }
}

/// Removes the rows of sessions deleted in bulk. Reads stopped seeing them when they were
/// deleted; this takes their bytes (and vaults) off the disk soon after, in batches small enough
/// not to hold up request writes. It runs within a slot ([`Self::INTERVAL_SECS`]) of a bulk
/// deletion on this node, and otherwise every [`Self::FALLBACK_SECS`] for deletions another
/// node made and did not sweep (it stopped, say); between those it does not touch the database.
pub struct SessionSweeper<S: ?Sized> {
    store: Arc<S>,
    signal: Arc<SweepSignal>,
    /// When a run last started, in milliseconds (`i64::MIN`: never).
    last_run: AtomicI64,
}

impl<S: ?Sized> SessionSweeper<S> {
    pub const NAME: &'static str = "session_sweep";
    /// Rows per transaction. A sweep holds the SQLite writer, and every request queued behind
    /// it, for its whole transaction: 250 rows measured 10 to 20 ms, 32 about 2.
    pub const BATCH: u32 = 32;
    /// Rows per run at most; a larger backlog continues at the next run.
    pub const PER_RUN: u64 = 10_000;
    pub const INTERVAL_SECS: u64 = 5;
    pub const FALLBACK_SECS: u64 = 60;

    pub fn new(store: Arc<S>, signal: Arc<SweepSignal>) -> Self {
        SessionSweeper {
            store,
            signal,
            last_run: AtomicI64::new(i64::MIN),
        }
    }
}

#[async_trait]
impl<S: crate::store::SessionDeleteStore + ?Sized + 'static> Job for SessionSweeper<S> {
    fn name(&self) -> &'static str {
        Self::NAME
    }
    fn interval_secs(&self) -> u64 {
        Self::INTERVAL_SECS
    }
    fn due(&self, now: Timestamp) -> bool {
        let last = self.last_run.load(Ordering::Acquire);
        self.signal.is_marked()
            || last == i64::MIN
            || now.as_millis().saturating_sub(last)
                >= i64::try_from(Self::FALLBACK_SECS * 1000).unwrap_or(i64::MAX)
    }
    async fn run_once(&self, now: Timestamp) -> Result<JobOutcome> {
        self.last_run.store(now.as_millis(), Ordering::Release);
        // Taken before sweeping: a deletion made while this run sweeps marks it again.
        self.signal.take();
        let mut items = 0;
        let mut backlog = false;
        while items < Self::PER_RUN {
            let want = (Self::PER_RUN - items).min(u64::from(Self::BATCH));
            let n = self
                .store
                .sweep_deleted_sessions(u32::try_from(want).unwrap_or(Self::BATCH))
                .await?;
            items += n;
            if n < want {
                break;
            }
            backlog = items >= Self::PER_RUN;
        }
        if backlog {
            // More than one run's worth: the next slot continues.
            self.signal.mark();
        }
        Ok(JobOutcome {
            items,
            summary: format!("removed {items} deleted session rows"),
        })
    }
}

/// Destroys the token vaults of sessions that can no longer be used (expired, suspended,
/// abandoned, ended). Reads already refuse them; this removes the sealed bytes.
pub struct LapsedVaults<S: ?Sized>(pub Arc<S>);

#[async_trait]
impl<S: crate::store::VaultStore + ?Sized + 'static> Purger for LapsedVaults<S> {
    fn name(&self) -> &'static str {
        "session_tokens"
    }
    async fn purge(&self, now: Timestamp) -> Result<u64> {
        Ok(self.0.purge_unusable_session_tokens(now).await?)
    }
}

/// Verification retention: settles sessions that ran out of time as expired (dropping the
/// relying party's sealed input), then redacts every application's sessions that finished more
/// than its `verification_retention` ago.
pub struct VerificationRetention<S: ?Sized>(pub Arc<S>);

#[async_trait]
impl<S: crate::store::VerificationStore + crate::store::ApplicationStore + ?Sized + 'static> Purger
    for VerificationRetention<S>
{
    fn name(&self) -> &'static str {
        "verification_sessions"
    }
    async fn purge(&self, now: Timestamp) -> Result<u64> {
        let mut n = self.0.expire_verifications(now).await?;
        for app in self.0.list_applications().await? {
            let cutoff = now.minus_secs(app.settings.verification_retention_secs);
            n += self
                .0
                .redact_verifications_finished_before(&app.id, cutoff, now)
                .await?;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::application::AppId;

    use crate::ids::{SessionId, UserId};
    use crate::store::{SessionDeleteStore, SessionDeletion, StoreResult};
    use std::sync::Mutex;

    /// Counts what the sweeper and the scheduler ask of the database.
    #[derive(Default)]
    struct Db {
        backlog: Mutex<u64>,
        sweeps: Mutex<u32>,
        claims: Mutex<u32>,
        outcomes: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl SessionDeleteStore for Db {
        async fn delete_session(
            &self,
            _: &AppId,
            _: &SessionId,
            _: Option<&crate::events::NewEvent>,
        ) -> StoreResult<bool> {
            Ok(false)
        }
        async fn delete_sessions(&self, _: &AppId, _: &SessionDeletion) -> StoreResult<u64> {
            Ok(0)
        }
        async fn delete_user_sessions(
            &self,
            _: &AppId,
            _: &UserId,
            _: Timestamp,
        ) -> StoreResult<bool> {
            Ok(true)
        }
        async fn delete_lapsed_sessions(&self, _: &AppId, _: Timestamp) -> StoreResult<()> {
            Ok(())
        }
        async fn sweep_deleted_sessions(&self, limit: u32) -> StoreResult<u64> {
            *self.sweeps.lock().unwrap_or_else(|e| e.into_inner()) += 1;
            let mut left = self.backlog.lock().unwrap_or_else(|e| e.into_inner());
            let n = (*left).min(u64::from(limit));
            *left -= n;
            Ok(n)
        }
    }

    #[async_trait]
    impl JobLeaseStore for Db {
        async fn claim_job_run(&self, _: &str, _: i64, _: &str, _: Timestamp) -> StoreResult<bool> {
            *self.claims.lock().unwrap_or_else(|e| e.into_inner()) += 1;
            Ok(true)
        }
        async fn finish_job_run(
            &self,
            _: &str,
            _: i64,
            outcome: &str,
            _: Timestamp,
        ) -> StoreResult<()> {
            let mut all = self.outcomes.lock().unwrap_or_else(|e| e.into_inner());
            all.push(outcome.to_owned());
            Ok(())
        }
        async fn purge_job_runs(&self, _: Timestamp) -> StoreResult<u64> {
            Ok(0)
        }
    }

    #[tokio::test]
    async fn the_sweeper_runs_after_a_bulk_deletion_and_otherwise_rarely() {
        let db = Arc::new(Db::default());
        let signal = Arc::new(SweepSignal::default());
        let sweeper = SessionSweeper::new(db.clone(), signal.clone());
        let counts = || {
            (
                *db.sweeps.lock().unwrap_or_else(|e| e.into_inner()),
                *db.claims.lock().unwrap_or_else(|e| e.into_inner()),
            )
        };
        let tick = |secs: i64| {
            let (sweeper, db) = (&sweeper, db.clone());
            async move {
                run_claimed(sweeper, db.as_ref(), "node", Timestamp(secs * 1000))
                    .await
                    .unwrap_or_else(|e| panic!("{e}"))
            }
        };
        assert!(
            matches!(tick(0).await, Scheduled::Ran(_)),
            "a new node sweeps once"
        );
        assert_eq!(counts(), (1, 1));
        // Nothing deleted: later slots touch nothing, not even the run claim.
        for t in [5, 10, 55] {
            assert_eq!(tick(t).await, Scheduled::Skipped);
        }
        assert_eq!(counts(), (1, 1));
        // A deletion on this node: the next slot sweeps, in batches, then goes quiet again.
        let batch = u64::from(SessionSweeper::<Db>::BATCH);
        *db.backlog.lock().unwrap_or_else(|e| e.into_inner()) = 2 * batch + batch / 2;
        signal.mark();
        match tick(56).await {
            Scheduled::Ran(o) => assert_eq!(o.items, 2 * batch + batch / 2),
            other => panic!("{other:?}"),
        }
        assert_eq!(counts(), (4, 2), "two full batches and a half");
        assert_eq!(tick(57).await, Scheduled::Skipped);
        // A backlog larger than one run continues at the next slot without a new signal.
        *db.backlog.lock().unwrap_or_else(|e| e.into_inner()) = SessionSweeper::<Db>::PER_RUN + 10;
        signal.mark();
        assert!(
            matches!(tick(60).await, Scheduled::Ran(o) if o.items == SessionSweeper::<Db>::PER_RUN)
        );
        assert!(matches!(tick(65).await, Scheduled::Ran(o) if o.items == 10));
        assert_eq!(tick(70).await, Scheduled::Skipped);
        // Deletions other nodes left behind are found within the fallback period.
        assert!(matches!(tick(65 + 60).await, Scheduled::Ran(_)));
    }

    /// A run's record keeps at most `MAX_OUTCOME_CHARS` characters of its outcome, cut on a
    /// character boundary, whatever the job says.
    #[tokio::test]
    async fn a_long_outcome_is_recorded_cut_to_its_bound() {
        struct Failing;
        #[async_trait]
        impl Job for Failing {
            fn name(&self) -> &'static str {
                "failing"
            }
            fn interval_secs(&self) -> u64 {
                60
            }
            async fn run_once(&self, _: Timestamp) -> Result<JobOutcome> {
                Err(crate::error::Error::Internal(
                    "é".repeat(2 * MAX_OUTCOME_CHARS),
                ))
            }
        }
        let db = Db::default();
        assert!(
            run_claimed(&Failing, &db, "node", Timestamp(0))
                .await
                .is_err()
        );
        let outcomes = db.outcomes.lock().unwrap_or_else(|e| e.into_inner());
        let [outcome] = outcomes.as_slice() else {
            panic!("{outcomes:?}")
        };
        assert_eq!(outcome.chars().count(), MAX_OUTCOME_CHARS);
        assert!(outcome.starts_with("error: "), "{outcome}");
    }

    #[test]
    fn slots_align_to_intervals() {
        assert_eq!(slot_of(Timestamp(0), 60), 0);
        assert_eq!(slot_of(Timestamp(59_999), 60), 0);
        assert_eq!(slot_of(Timestamp(60_000), 60), 1);
        assert_eq!(slot_of(Timestamp(-1), 60), -1);
        assert_eq!(slot_of(Timestamp(5_000), 0), 5);
    }
}

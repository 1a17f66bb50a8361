//! Persistence of jobs, URL tasks, API keys and the shared quota.
//!
//! The traits are cut by caller, each as small as its caller needs: [`Jobs`] for the API
//! (create, list, cancel, delete), [`TaskWork`] for the analyzer (look up, places, record, retry),
//! [`Tracking`] for the tracker (status moves, bulk cancellation, the reconciler's sweep),
//! [`KeyStore`] for API keys and callback secrets, [`Tenancy`] for each tenant's limits and
//! usage, [`Reports`] for what is kept of a finished job, [`History`] for a URL's results
//! over time, [`Subscriptions`] for who follows which job live, and [`Lookup`] (one job, one task) under
//! the first and third. [`JobStore`] is all of them, for tests and the contract suite.
//!
//! Every task move is one of `domain::lifecycle`'s: [`MemoryStore`] applies them, and
//! [`DynamoStore`] (one table, layout in `dynamo::items`) derives its conditions from them.
//! `contract` holds both to the same cases.

#[cfg(any(test, feature = "contract"))]
pub mod contract;
pub mod dynamo;
mod memory;
pub mod quota;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::time::Duration;

use domain::analytics::DayTally;
use domain::budget::{BudgetState, Standing, StandingKey, StandingRef};
use domain::callback::CallbackDelivery;
use domain::history::{HistoryCursor, HistoryEntry, HistoryKey, Span};
pub use domain::lifecycle::{Cancel, Delivery, Outcome, Recorded};
pub use domain::monitor::DueTick;
use domain::monitor::{Monitor, MonitorId, TickRecord};
use domain::places::{Full, Lease};
use domain::report::JobReport;
use domain::tally::{ResultChange, Tally};
use domain::tenancy::{LimitOverrides, Limits, OverLimit, TenantUsage};
use domain::time::Millis;
use domain::waits::{WaitNote, Waiting};
use domain::{
    Analysis, CacheKey, CleanUrl, Counters, Error, ErrorKind, Job, JobId, JobStatus, JobUrl, TaskFilter, Tenant,
    UrlStatus, UrlTask,
};
pub use dynamo::DynamoStore;
pub use memory::MemoryStore;
pub use quota::{DynamoQuota, MemoryQuota};

/// Every store trait, for code that calls more than one (`use store::prelude::*`).
pub mod prelude {
    pub use crate::{
        CallbackLog, History, JobStore, Jobs, KeyStore, Lookup, Monitors, Reports, Subscriptions, TaskWork, Tenancy,
        Tracking, WaitLog,
    };
}

/// How many of a URL's newest results a reuse lookup reads for one of its variant: a URL
/// analysed in more variants than this within the reuse age is analysed again, never read
/// without bound.
pub const REUSE_LOOKS_AT: usize = 50;

/// A URL and its job as a delivery finds them ([`TaskWork::look_up`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sighting {
    pub task: UrlStatus,
    pub job: JobStatus,
    /// Whether the job's `started_at` is set ([`TaskWork::start_job`]).
    pub started: bool,
}

impl Sighting {
    pub fn delivery(&self) -> Delivery {
        Delivery::of(self.task, self.job)
    }
}

/// One URL's terminal outcome in a batch of results, with what `record_outcome` takes.
#[derive(Clone, Debug, PartialEq)]
pub struct OutcomeRecord {
    pub job_id: JobId,
    pub seq: u32,
    /// Which attempt this analysis was ([`domain::TaskMessage::attempt`]).
    pub attempt: u32,
    pub outcome: Outcome,
    pub cache_key: Option<CacheKey>,
    /// Where a new successful analysis joins its tenant's history of the URL.
    pub history: Option<HistoryKey>,
    /// The places the URL gives back.
    pub places: Vec<Lease>,
}

impl OutcomeRecord {
    /// The history a new successful analysis joins: a result indexed for reuse is in its
    /// URL's history too, which is where reuse looks.
    pub fn history_key(&self) -> Option<&HistoryKey> {
        self.history.as_ref().or(self.cache_key.as_ref().map(CacheKey::history))
    }
}

/// What a job's open URLs say, for the reconciler.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OpenUrls {
    /// Those that should be moving but may have lost their message.
    pub stalled: Vec<UrlTask>,
    /// Those that have not finished: none, while the job's counters say it has not, means
    /// results never reached the tracker.
    pub unfinished: usize,
}

/// One page of a listing and where the next one starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T, C> {
    pub items: Vec<T>,
    pub next: Option<C>,
}

/// One job or one task, read consistently.
pub trait Lookup: Send + Sync {
    fn get_job(&self, id: &JobId) -> impl Future<Output = Result<Option<Job>, Error>> + Send;

    fn get_task(&self, id: &JobId, seq: u32) -> impl Future<Output = Result<Option<UrlTask>, Error>> + Send;
}

/// What the API does with jobs.
pub trait Jobs: Lookup {
    /// Writes the job and one task per URL (all `queued`, the first window released), and
    /// counts the job against its tenant's `limits` (its unfinished jobs, its analyses today)
    /// in the same write; nothing is created when it does not fit.
    fn create_job_within(
        &self,
        job: &Job,
        urls: &[JobUrl],
        limits: &Limits,
    ) -> impl Future<Output = Result<Result<(), OverLimit>, Error>> + Send;

    /// `create_job_within` without limits (the job is still counted as its tenant's) nor tags.
    fn create_job(&self, job: &Job, urls: &[CleanUrl]) -> impl Future<Output = Result<(), Error>> + Send {
        async move {
            let urls: Vec<JobUrl> = urls.iter().cloned().map(JobUrl::from).collect();
            self.create_job_within(job, &urls, &Limits::UNLIMITED)
                .await?
                .map_err(|over| Error::Conflict(over.message()))
        }
    }

    /// The jobs of `ids` that exist, in the order of `ids` (a page of a monitor's runs): as
    /// few reads as the store allows, not one per job.
    fn get_jobs(&self, ids: &[JobId]) -> impl Future<Output = Result<Vec<Job>, Error>> + Send;

    /// A tenant's jobs, newest first, optionally only those in `status`, starting after
    /// the job `after`.
    fn list_jobs(
        &self,
        tenant: &Tenant,
        status: Option<JobStatus>,
        limit: usize,
        after: Option<&JobId>,
    ) -> impl Future<Output = Result<Page<Job, JobId>, Error>> + Send;

    /// A job's URLs in submission order, only those `filter` keeps, starting after position
    /// `after`.
    fn list_tasks(
        &self,
        id: &JobId,
        filter: &TaskFilter,
        limit: usize,
        after: Option<u32>,
    ) -> impl Future<Output = Result<Page<UrlTask, u32>, Error>> + Send;

    /// The URLs of job `id` at positions `seqs` that exist, in the order of `seqs` (each once):
    /// a page of a sorted listing, read by key (as few reads as the store allows) instead of
    /// through the whole job. Read eventually consistently, as rows to show (a finished job's
    /// no longer change), never to decide a move on.
    fn get_tasks(&self, id: &JobId, seqs: &[u32]) -> impl Future<Output = Result<Vec<UrlTask>, Error>> + Send;

    /// Moves a `pending` or `processing` job to `cancelling`.
    fn request_cancel(&self, id: &JobId, now: Millis) -> impl Future<Output = Result<Cancel, Error>> + Send;

    /// Deletes a job and all its URLs; returns how many of the store's items went (its own
    /// unit: a DynamoDB store keeps a job's URLs fifty to an item until each changes).
    fn delete_job(&self, id: &JobId) -> impl Future<Output = Result<usize, Error>> + Send;

    /// A cheap read that proves the table answers.
    fn ping(&self) -> impl Future<Output = Result<(), Error>> + Send;
}

/// What the analyzer does with the URLs it is handed. Nothing is written when an analysis
/// starts (`domain::lifecycle`): a delivery reads its URL and job, takes its places, and
/// writes its result.
pub trait TaskWork: Send + Sync {
    /// The URLs at `keys` and their jobs as last written, read eventually consistently in as
    /// few requests as the store allows: one per key, in order, `None` where the URL or its
    /// job is gone.
    fn look_up(&self, keys: &[(JobId, u32)]) -> impl Future<Output = Result<Vec<Option<Sighting>>, Error>> + Send;

    /// Marks job `id` started at `now` (its `started_at`, which moves it to `processing`),
    /// unless it has started already.
    fn start_job(&self, id: &JobId, now: Millis) -> impl Future<Output = Result<(), Error>> + Send;

    /// Takes the places each URL asks for (its tenant's, its host's): all of a URL's, or none
    /// and what it found full. One write per set for all the URLs asking for it while there
    /// is room; a full set first gives back the places of leases that have ended. One answer
    /// per ask, in order.
    fn take_places(
        &self,
        asks: &[Vec<Lease>],
        now: Millis,
    ) -> impl Future<Output = Result<Vec<Result<(), Full>>, Error>> + Send;

    /// Gives places back, one write per set for all of them.
    fn give_places_back(&self, leases: &[Lease]) -> impl Future<Output = Result<(), Error>> + Send;

    /// Keeps a retryable failure on the unfinished URL: its last error and `attempt`.
    fn record_retry(
        &self,
        id: &JobId,
        seq: u32,
        kind: ErrorKind,
        reason: &str,
        attempt: u32,
        now: Millis,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Records a URL's terminal status on its own item, at most once (a duplicate finds it
    /// moved on), indexing a new successful analysis in its URL's history (and for reuse under
    /// `cache_key`), and gives its places back. The job's counters and window follow when the
    /// tracker counts the result from the table's stream ([`Tracking::count_results`]).
    fn record(&self, record: &OutcomeRecord, now: Millis) -> impl Future<Output = Result<Recorded, Error>> + Send;

    /// `record` of URL `seq` of job `id`, its first attempt, which holds no places.
    fn record_outcome(
        &self,
        id: &JobId,
        seq: u32,
        outcome: &Outcome,
        cache_key: Option<&CacheKey>,
        now: Millis,
    ) -> impl Future<Output = Result<Recorded, Error>> + Send {
        async move {
            let record = OutcomeRecord {
                job_id: id.clone(),
                seq,
                attempt: 1,
                outcome: outcome.clone(),
                cache_key: cache_key.cloned(),
                history: None,
                places: Vec::new(),
            };
            self.record(&record, now).await
        }
    }

    /// Records several outcomes, each as `record` would, in as few requests as the store
    /// allows; one result per record, in order.
    fn record_outcomes(
        &self,
        records: &[OutcomeRecord],
        now: Millis,
    ) -> impl Future<Output = Vec<Result<Recorded, Error>>> + Send {
        futures::future::join_all(records.iter().map(move |r| self.record(r, now)))
    }

    /// Leaves `host` alone until `until` (it asked, with `Retry-After`): no URL of it is
    /// started before then. A later pause already set stays.
    fn pause_host(&self, host: &str, until: Millis) -> impl Future<Output = Result<(), Error>> + Send;

    /// Marks a URL of a cancelling job, found in status `from` (one not finished),
    /// `cancelled` and counts it; `false` when it was no longer in `from`.
    fn cancel_task(
        &self,
        id: &JobId,
        seq: u32,
        from: UrlStatus,
        now: Millis,
    ) -> impl Future<Output = Result<bool, Error>> + Send;

    /// The URLs of the given tasks (those that exist), in one batched read.
    fn task_urls(
        &self,
        keys: &[(JobId, u32)],
    ) -> impl Future<Output = Result<HashMap<(JobId, u32), String>, Error>> + Send;

    /// The newest result of `key`'s URL and variant that was analysed at or after `since`,
    /// marked with where it comes from. It looks among the URL's newest results only
    /// ([`REUSE_LOOKS_AT`]): a variant not among them is analysed again.
    fn cached_result(
        &self,
        key: &CacheKey,
        since: Millis,
    ) -> impl Future<Output = Result<Option<Analysis>, Error>> + Send;
}

/// Counts tried when another count of the same job comes between the read and the write (a
/// job's results come from one stream shard, read by one tracker at a time: only a retried
/// batch overlapping its own first try).
const COUNT_ROUNDS: u32 = 3;

/// What the tracker does: counts results, moves jobs, cancels in bulk, and sweeps for lost
/// messages.
pub trait Tracking: Lookup {
    /// Moves `job` from the status it has to `to` (a finished job leaves its tenant's
    /// unfinished jobs in the same write); `false` when it was no longer in that status.
    fn transition_job(&self, job: &Job, to: JobStatus, now: Millis)
    -> impl Future<Output = Result<bool, Error>> + Send;

    /// Marks the still-queued URLs of a cancelling job `cancelled`, in batched transactions
    /// that count them on the job, for at most `budget`; returns how many it cancelled.
    fn cancel_queued(
        &self,
        id: &JobId,
        now: Millis,
        budget: Duration,
    ) -> impl Future<Output = Result<u64, Error>> + Send;

    /// Unfinished jobs of every tenant, a page at a time, for the reconciler.
    fn list_active_jobs(
        &self,
        limit: usize,
        after: Option<&JobId>,
    ) -> impl Future<Output = Result<Page<JobId, JobId>, Error>> + Send;

    /// What `job`'s open URLs (its window's frontiers; the job as just read) say: those that
    /// should be moving but may have lost their message ([`UrlTask::is_stalled`]), at most
    /// `limit`, in submission order, and how many have not finished.
    fn open_urls(
        &self,
        job: &Job,
        before: Millis,
        limit: usize,
    ) -> impl Future<Output = Result<OpenUrls, Error>> + Send;

    /// Notes that a stalled URL's message was sent again at `now`.
    fn note_resent(&self, id: &JobId, seq: u32, now: Millis) -> impl Future<Output = Result<(), Error>> + Send;

    /// Adds `tally` to its job — its counters, its window's frontiers and `counted_to` — while
    /// the job's `counted_to` is still `tally.seen`; `false` when another count came between.
    fn add_tally(&self, id: &JobId, tally: &Tally, now: Millis) -> impl Future<Output = Result<bool, Error>> + Send;

    /// Adds the results the stream reported for job `id` that the job has not counted yet;
    /// how many it added (none for a job that is gone). The job is read first: what it has
    /// counted decides, and its window says which URLs the results released.
    fn count_results(
        &self,
        id: &JobId,
        changes: &[ResultChange],
        now: Millis,
    ) -> impl Future<Output = Result<usize, Error>> + Send {
        async move {
            for _ in 0..COUNT_ROUNDS {
                let Some(job) = self.get_job(id).await? else { return Ok(0) };
                let Some(tally) = Tally::new(&job, changes) else { return Ok(0) };
                if self.add_tally(id, &tally, now).await? {
                    return Ok(tally.shifts.len());
                }
            }
            Err(Error::Conflict(format!("job {id}: its results kept being counted by another tracker")))
        }
    }

    /// Every URL of job `id` with its status, in submission order (read consistently, a page
    /// at a time): for a recount.
    fn task_statuses(&self, job: &Job) -> impl Future<Output = Result<Vec<(u32, UrlStatus)>, Error>> + Send;

    /// Writes `job`'s counters and window frontiers as given, while the job is unchanged since
    /// it was read (its `updated_at`); `false` when it changed.
    fn set_counts(&self, job: &Job, now: Millis) -> impl Future<Output = Result<bool, Error>> + Send;

    /// Counts a job's URLs again, for an idle job whose every open URL has finished
    /// ([`OpenUrls::unfinished`]) though its counters say it has not: the stream records of
    /// its results were lost for good (their batch's retries ran out). The job as recounted,
    /// or `None` when nothing was missing (or it changed meanwhile).
    fn recount(&self, job: &Job, now: Millis) -> impl Future<Output = Result<Option<Job>, Error>> + Send {
        async move {
            if job.status.is_finished() || job.counters.all_terminal() {
                return Ok(None);
            }
            let statuses = self.task_statuses(job).await?;
            let finished: std::collections::HashSet<u32> =
                statuses.iter().filter(|(_, status)| status.is_terminal()).map(|(seq, _)| *seq).collect();
            let mut recounted = job.clone();
            recounted.counters = Counters::of_statuses(job.counters.total, statuses.iter().map(|(_, status)| *status));
            recounted.frontiers = job.window().frontiers_of(|seq| finished.contains(&seq));
            if recounted.counters == job.counters {
                return Ok(None);
            }
            if !self.set_counts(&recounted, now).await? {
                return Ok(None);
            }
            recounted.updated_at = now;
            Ok(Some(recounted))
        }
    }

    /// The last job a sweep that ran out of time checked: the next sweep resumes after it.
    fn sweep_cursor(&self) -> impl Future<Output = Result<Option<JobId>, Error>> + Send;

    /// Keeps where the sweep stopped (`None`: it went through every active job).
    fn save_sweep_cursor(&self, after: Option<&JobId>) -> impl Future<Output = Result<(), Error>> + Send;
}

/// API keys and callback secrets, by tenant.
pub trait KeyStore: Send + Sync {
    fn tenant_for_key_hash(&self, hash: &str) -> impl Future<Output = Result<Option<Tenant>, Error>> + Send;

    /// The tenant an API key presented by a client belongs to, wherever it is presented (an
    /// HTTP header, a WebSocket message). Only what could be a key is looked up: a guess or a
    /// value of kilobytes costs no read.
    fn tenant_for_key(&self, key: &str) -> impl Future<Output = Result<Option<Tenant>, Error>> + Send {
        let hash = domain::auth::is_well_formed_key(key).then(|| domain::auth::hash_key(key));
        async move {
            match hash {
                Some(hash) => self.tenant_for_key_hash(&hash).await,
                None => Ok(None),
            }
        }
    }

    fn put_key_hash(&self, hash: &str, tenant: &Tenant) -> impl Future<Output = Result<(), Error>> + Send;

    /// The tenant's callback signing secret, created on first use. Unlike API keys it is
    /// stored as is: signing needs it back.
    fn callback_secret(&self, tenant: &Tenant) -> impl Future<Output = Result<String, Error>> + Send;
}

/// Each tenant's own limits and what it uses of them, for the API.
pub trait Tenancy: Send + Sync {
    /// The tenant's overrides of the deployment's limits and its usage at `now` (its
    /// unfinished jobs, its analyses submitted today), in one read.
    fn tenant_usage(&self, tenant: &Tenant, now: Millis) -> impl Future<Output = Result<TenantUsage, Error>> + Send;

    /// Keeps the limits the tenant has its own values for; the others follow the deployment.
    fn set_limit_overrides(
        &self,
        tenant: &Tenant,
        overrides: &LimitOverrides,
    ) -> impl Future<Output = Result<(), Error>> + Send;
}

/// URLs that wait rather than fail, counted by reason ([`domain::waits`]): noted by the
/// analyzer, read by `GET /queue/status`.
pub trait WaitLog: Send + Sync {
    /// Counts URLs sent back to wait: one note per reason and bucket.
    fn note_waits(&self, notes: &[WaitNote]) -> impl Future<Output = Result<(), Error>> + Send;

    /// How many URLs wait at `now`, by reason.
    fn waiting(&self, now: Millis) -> impl Future<Output = Result<Waiting, Error>> + Send;
}

/// The report kept beside a finished job (its complete summary and where its exports are),
/// and what the job adds to its tenant's analytics: written by the exporter, read by the
/// API's pages (the report is deleted with the job; the days stay, as counts).
pub trait Reports: Send + Sync {
    fn get_report(&self, id: &JobId) -> impl Future<Output = Result<Option<JobReport>, Error>> + Send;

    /// Keeps `report` beside job `id` and adds the job's `tallies` to its tenant's days, in one
    /// write and once: `false`, with nothing written, when the job has its report already (an
    /// export that runs twice counts the job once).
    fn put_report(
        &self,
        id: &JobId,
        report: &JobReport,
        tallies: Option<&JobTallies>,
    ) -> impl Future<Output = Result<bool, Error>> + Send;

    /// The tenant's days from `from` to `to` (`yyyy-mm-dd`, both included) that have anything,
    /// each the sum of every job's share of it.
    fn day_tallies(
        &self,
        tenant: &Tenant,
        from: &str,
        to: &str,
    ) -> impl Future<Output = Result<BTreeMap<String, DayTally>, Error>> + Send;
}

/// What one finished job adds to its tenant's analytics: its URLs by the day they finished.
#[derive(Clone, Debug, PartialEq)]
pub struct JobTallies {
    pub tenant: Tenant,
    pub days: BTreeMap<String, DayTally>,
}

/// Each tenant's new analyses of a URL over time, any job: written with each result, read by
/// `GET /history`.
pub trait History: Send + Sync {
    /// The entries under `key` analysed within `span`, oldest first, at most `limit`,
    /// starting after `after`.
    fn url_history(
        &self,
        key: &HistoryKey,
        span: Span,
        limit: usize,
        after: Option<&HistoryCursor>,
    ) -> impl Future<Output = Result<Page<HistoryEntry, HistoryCursor>, Error>> + Send;
}

/// Monitors: kept by the API, due ticks found and claimed by the scheduler. Every write of a
/// monitor is conditional on what the writer read (its `version`, or for a tick its
/// `next_run_at`), so an edit and a run never undo each other.
pub trait Monitors: Send + Sync {
    /// Writes a new monitor and its URLs (none for a sitemap monitor).
    fn create_monitor(&self, monitor: &Monitor, urls: &[JobUrl]) -> impl Future<Output = Result<(), Error>> + Send;

    fn get_monitor(
        &self,
        tenant: &Tenant,
        id: &MonitorId,
    ) -> impl Future<Output = Result<Option<Monitor>, Error>> + Send;

    /// A monitor's URLs, in the order they were given.
    fn monitor_urls(&self, tenant: &Tenant, id: &MonitorId) -> impl Future<Output = Result<Vec<JobUrl>, Error>> + Send;

    /// A tenant's monitors, newest first, starting after `after`.
    fn list_monitors(
        &self,
        tenant: &Tenant,
        limit: usize,
        after: Option<&MonitorId>,
    ) -> impl Future<Output = Result<Page<Monitor, MonitorId>, Error>> + Send;

    /// Replaces the monitor as read at `version` (its URLs too, when `urls` is given);
    /// `false`, with nothing written, when it has changed since (or is gone). The standings
    /// of budgets it no longer has go.
    fn replace_monitor(
        &self,
        monitor: &Monitor,
        version: u64,
        urls: Option<&[JobUrl]>,
    ) -> impl Future<Output = Result<bool, Error>> + Send;

    /// Deletes a monitor and its URLs (not its runs' jobs); `false` when there was none.
    fn delete_monitor(&self, tenant: &Tenant, id: &MonitorId) -> impl Future<Output = Result<bool, Error>> + Send;

    /// The jobs of a monitor's runs, newest first, starting after `after`.
    fn monitor_runs(
        &self,
        tenant: &Tenant,
        id: &MonitorId,
        limit: usize,
        after: Option<&JobId>,
    ) -> impl Future<Output = Result<Page<JobId, JobId>, Error>> + Send;

    /// Records a run started by hand (`POST /monitors/{id}/run`) on the monitor as read at
    /// its version, its schedule unchanged; `false` when the monitor changed since.
    fn record_run_now(
        &self,
        monitor: &Monitor,
        job: &JobId,
        now: Millis,
    ) -> impl Future<Output = Result<bool, Error>> + Send;

    /// Where the URLs of a monitor stand against its budgets, as last changed (a URL never over
    /// a budget has no standing; one back within it is kept for the retention period).
    fn budget_standings(
        &self,
        tenant: &Tenant,
        id: &MonitorId,
    ) -> impl Future<Output = Result<Vec<Standing>, Error>> + Send;

    /// Keeps `standings` (each replacing the one of its URL and budget).
    fn put_budget_standings(
        &self,
        tenant: &Tenant,
        id: &MonitorId,
        standings: &[Standing],
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// A page of a monitor's standings, in `state` if given, by budget then URL hash, starting
    /// after `after`.
    fn budget_page(
        &self,
        tenant: &Tenant,
        id: &MonitorId,
        state: Option<BudgetState>,
        limit: usize,
        after: Option<&StandingKey>,
    ) -> impl Future<Output = Result<Page<Standing, StandingKey>, Error>> + Send;

    /// Every tenant's monitors due at `now` (their next run at or before it), at most `limit`,
    /// earliest first.
    fn due_monitors(&self, now: Millis, limit: usize) -> impl Future<Output = Result<Vec<DueTick>, Error>> + Send;

    /// Moves the monitor from `tick` to `next` with `outcome`: a run of `job` or a skip.
    /// `false`, with nothing written, when the monitor is no longer at `tick`.
    fn settle_tick(
        &self,
        due: &DueTick,
        next: Option<Millis>,
        outcome: &TickRecord,
        now: Millis,
    ) -> impl Future<Output = Result<bool, Error>> + Send;
}

/// Where each job's callback stands, written by the callbacks function after each attempt.
pub trait CallbackLog: Send + Sync {
    /// Keeps `delivery` on job `id`, unless the job is gone or already holds a later attempt
    /// (a duplicate receive finishing late must not undo what came after it).
    fn record_callback(
        &self,
        id: &JobId,
        delivery: &CallbackDelivery,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Keeps `delivery` on the standing a budget's callback announces, unless the standing is
    /// gone, was changed by a later run than `job`, or holds a later attempt.
    fn record_budget_callback(
        &self,
        tenant: &Tenant,
        standing: &StandingRef,
        job: &JobId,
        delivery: &CallbackDelivery,
    ) -> impl Future<Output = Result<(), Error>> + Send;
}

/// What a live subscription follows, as it is kept: one job, or every job of a tenant.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    Job(JobId),
    Tenant(Tenant),
}

/// A connection to tell of a job's change, and the subscription that made it one (to drop
/// when the connection has gone).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Watcher {
    pub connection: String,
    pub scope: Scope,
}

/// Why a subscription was not made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// No such job for the tenant (another tenant's job is answered the same).
    NotFound,
    /// The connection holds `domain::live::MAX_SUBSCRIPTIONS_PER_CONNECTION` already.
    TooMany,
}

/// Who follows which job over a WebSocket (SPEC §6.5), for the live function. A followed job
/// carries a watch generation, so only its changes pass the live function's stream filter:
/// nobody's progress costs a push, a read or an invocation while nobody watches.
pub trait Subscriptions: Send + Sync {
    /// Records that `connection` follows `watch` for `tenant` (until the subscription's TTL),
    /// then marks what it covers as followed (a new generation), which puts the jobs' current
    /// state on the stream: the new subscriber is sent it by the same path as every change.
    fn subscribe(
        &self,
        connection: &str,
        tenant: &Tenant,
        watch: &domain::live::Watch,
        now: Millis,
    ) -> impl Future<Output = Result<Result<(), Refused>, Error>> + Send;

    /// The connections following `job`: its own subscribers and its tenant's all-jobs ones.
    fn watchers(&self, job: &Job) -> impl Future<Output = Result<Vec<Watcher>, Error>> + Send;

    /// Marks a new job as followed when its tenant has an all-jobs subscriber; whether it did.
    fn follow_new_job(&self, job: &Job, now: Millis) -> impl Future<Output = Result<bool, Error>> + Send;

    /// Takes the mark off a job nobody follows any more, unless a subscription since made a
    /// newer `generation` than the one that found no watcher; whether it did.
    fn unfollow_job(&self, id: &JobId, generation: u64) -> impl Future<Output = Result<bool, Error>> + Send;

    /// Drops these subscriptions (their connections have gone, or their job has finished).
    fn drop_subscriptions(&self, watchers: &[Watcher]) -> impl Future<Output = Result<(), Error>> + Send;

    /// Drops every subscription of a closed connection; how many there were.
    fn disconnect(&self, connection: &str) -> impl Future<Output = Result<usize, Error>> + Send;
}

/// A store that does everything: both implementations are one.
pub trait JobStore:
    Jobs + TaskWork + Tracking + KeyStore + Reports + CallbackLog + Tenancy + WaitLog + History + Monitors + Subscriptions
{
}
impl<
    T: Jobs
        + TaskWork
        + Tracking
        + KeyStore
        + Reports
        + CallbackLog
        + Tenancy
        + WaitLog
        + History
        + Monitors
        + Subscriptions,
> JobStore for T
{
}

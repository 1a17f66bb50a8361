//! Persistence of jobs and URL tasks. Handlers depend on the `JobStore` trait; `DynamoStore`
//! is the DynamoDB implementation and `items` the single-table layout it writes.

mod dynamo;
pub mod items;
mod memory;

use std::future::Future;

pub use dynamo::DynamoStore;
pub use memory::MemoryStore;

use crate::domain::{Analysis, CacheKey, CleanUrl, ErrorKind, Job, JobId, JobStatus, Tenant, UrlStatus, UrlTask};
use crate::error::Error;
use crate::time::Millis;

/// What claiming a URL for analysis found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The URL was queued and is now ours (attempt 1); counters moved from `queued` to
    /// `in_progress`.
    Claimed,
    /// An earlier delivery claimed it and did not finish (a retry after its backoff, or a
    /// crash or timeout whose lease ran out): analyse again; the counters already say
    /// `in_progress`. `attempt` counts this one (the first claim is attempt 1).
    Reclaimed { attempt: u32 },
    /// The URL already has its terminal status: this delivery is a duplicate.
    AlreadyFinished(UrlStatus),
    /// The job is being cancelled: the URL, still in this status, must not start.
    JobCancelling(UrlStatus),
    /// Another delivery is analysing the URL and holds it until then (milliseconds): try
    /// again after that, when it has either finished or is known to have died.
    Busy { until: Millis },
}

/// How one analysis ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Succeeded(Analysis),
    Failed { kind: ErrorKind, reason: String, analysis: Option<Analysis> },
}

/// Whether recording a result counted it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    Counted,
    /// Another delivery recorded this URL first; nothing changed.
    Duplicate,
}

/// One URL of a batch of claims: claimed for `lease` from the batch's `now`.
#[derive(Clone, Debug, PartialEq)]
pub struct ClaimRequest {
    pub job_id: JobId,
    pub seq: u32,
    pub lease: std::time::Duration,
}

/// One URL's terminal outcome in a batch of results, with what `record_outcome` takes.
#[derive(Clone, Debug, PartialEq)]
pub struct OutcomeRecord {
    pub job_id: JobId,
    pub seq: u32,
    pub outcome: Outcome,
    pub release: Option<u32>,
    pub cache_key: Option<CacheKey>,
}

/// What claiming found when the job itself no longer takes work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cancel {
    /// The job is now (or already was) `cancelling`.
    Requested,
    /// The job had already finished with this status.
    AlreadyFinished(JobStatus),
}

/// One page of a listing and where the next one starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Page<T, C> {
    pub items: Vec<T>,
    pub next: Option<C>,
}

pub trait JobStore: Send + Sync {
    /// Writes the job and one task per URL (all `queued`, the first window released).
    fn create_job(&self, job: &Job, urls: &[CleanUrl]) -> impl Future<Output = Result<(), Error>> + Send;

    fn get_job(&self, id: &JobId) -> impl Future<Output = Result<Option<Job>, Error>> + Send;

    fn get_task(&self, id: &JobId, seq: u32) -> impl Future<Output = Result<Option<UrlTask>, Error>> + Send;

    /// Moves a URL to `processing` and the job's counters with it, atomically, and gives this
    /// delivery the URL for `lease`. A URL already `processing` is taken over only once the
    /// previous holder's lease has run out.
    fn claim_task(
        &self,
        id: &JobId,
        seq: u32,
        now: Millis,
        lease: std::time::Duration,
    ) -> impl Future<Output = Result<Claim, Error>> + Send;

    /// Claims several URLs, each as `claim_task` would, in as few requests as the store
    /// allows; one result per request, in order.
    fn claim_tasks(
        &self,
        claims: &[ClaimRequest],
        now: Millis,
    ) -> impl Future<Output = Vec<Result<Claim, Error>>> + Send {
        futures::future::join_all(claims.iter().map(move |c| self.claim_task(&c.job_id, c.seq, now, c.lease)))
    }

    /// Keeps a retryable failure on the URL (its last error) and gives up the lease, so the
    /// delayed redelivery can claim it again.
    fn record_retry(
        &self,
        id: &JobId,
        seq: u32,
        kind: ErrorKind,
        reason: &str,
        now: Millis,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Gives back a claim that turned out to be premature (the URL has to wait, through no
    /// fault of its own): the attempt is not counted and the lease ends now.
    fn release_claim(&self, id: &JobId, seq: u32, now: Millis) -> impl Future<Output = Result<(), Error>> + Send;

    /// Records a URL's terminal status and counts it on the job, atomically and at most once;
    /// in the same transaction marks URL `release` (the next of the window) released and, for
    /// a new successful analysis, indexes it for reuse under `cache_key`.
    fn record_outcome(
        &self,
        id: &JobId,
        seq: u32,
        outcome: &Outcome,
        release: Option<u32>,
        cache_key: Option<&CacheKey>,
        now: Millis,
    ) -> impl Future<Output = Result<Recorded, Error>> + Send;

    /// Records several outcomes, each as `record_outcome` would, in as few requests as the
    /// store allows; one result per record, in order.
    fn record_outcomes(
        &self,
        records: &[OutcomeRecord],
        now: Millis,
    ) -> impl Future<Output = Vec<Result<Recorded, Error>>> + Send {
        futures::future::join_all(
            records
                .iter()
                .map(move |r| self.record_outcome(&r.job_id, r.seq, &r.outcome, r.release, r.cache_key.as_ref(), now)),
        )
    }

    /// The newest result indexed under `key` that was analysed at or after `since`, marked
    /// with where it comes from.
    fn cached_result(
        &self,
        key: &CacheKey,
        since: Millis,
    ) -> impl Future<Output = Result<Option<Analysis>, Error>> + Send;

    /// Marks a URL of a cancelling job, found in status `from`, `cancelled` and counts it;
    /// `false` when it was no longer in `from`.
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
    ) -> impl Future<Output = Result<std::collections::HashMap<(JobId, u32), String>, Error>> + Send;

    /// Unfinished jobs of every tenant, a page at a time, for the reconciler.
    fn list_active_jobs(
        &self,
        limit: usize,
        after: Option<&JobId>,
    ) -> impl Future<Output = Result<Page<JobId, JobId>, Error>> + Send;

    /// URLs of a job that should be moving but may have lost their message: released and
    /// still `queued`, or `processing` past their lease, with nothing sent for them since
    /// `before`. At most `limit`, in submission order.
    fn stalled_tasks(
        &self,
        id: &JobId,
        before: Millis,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<UrlTask>, Error>> + Send;

    /// Notes that a stalled URL's message was sent again at `now`.
    fn note_resent(&self, id: &JobId, seq: u32, now: Millis) -> impl Future<Output = Result<(), Error>> + Send;

    /// Marks the still-queued URLs of a cancelling job `cancelled`, in batched transactions
    /// that count them on the job, for at most `budget`; returns how many it cancelled.
    fn cancel_queued(
        &self,
        id: &JobId,
        now: Millis,
        budget: std::time::Duration,
    ) -> impl Future<Output = Result<u64, Error>> + Send;

    /// Moves a `pending` or `processing` job to `cancelling`.
    fn request_cancel(&self, id: &JobId, now: Millis) -> impl Future<Output = Result<Cancel, Error>> + Send;

    /// A tenant's jobs, newest first, optionally only those in `status`, starting after
    /// the job `after`.
    fn list_jobs(
        &self,
        tenant: &Tenant,
        status: Option<JobStatus>,
        limit: usize,
        after: Option<&JobId>,
    ) -> impl Future<Output = Result<Page<Job, JobId>, Error>> + Send;

    /// A job's URLs in submission order, optionally only those in `status`, starting after
    /// position `after`.
    fn list_tasks(
        &self,
        id: &JobId,
        status: Option<UrlStatus>,
        limit: usize,
        after: Option<u32>,
    ) -> impl Future<Output = Result<Page<UrlTask, u32>, Error>> + Send;

    /// Deletes a job and all its URLs; returns how many items went.
    fn delete_job(&self, id: &JobId) -> impl Future<Output = Result<usize, Error>> + Send;

    /// A cheap read that proves the table answers.
    fn ping(&self) -> impl Future<Output = Result<(), Error>> + Send;

    /// Moves a job from `from` to `to`; `false` when it was no longer in `from`.
    fn transition_job(
        &self,
        id: &JobId,
        from: JobStatus,
        to: JobStatus,
        now: Millis,
    ) -> impl Future<Output = Result<bool, Error>> + Send;
}

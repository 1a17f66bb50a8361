//! Persistence of jobs and URL tasks. Handlers depend on the `JobStore` trait; `DynamoStore`
//! is the DynamoDB implementation and `items` the single-table layout it writes.

mod dynamo;
pub mod items;
mod memory;

use std::future::Future;

pub use dynamo::DynamoStore;
pub use memory::MemoryStore;

use crate::domain::{Analysis, CleanUrl, Job, JobId, JobStatus, UrlStatus, UrlTask};
use crate::error::Error;
use crate::time::Millis;

/// What claiming a URL for analysis found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The URL was queued and is now ours; counters moved from `queued` to `in_progress`.
    Claimed,
    /// An earlier delivery claimed it and never finished (a crash or a timeout): analyse
    /// again, the counters already say `in_progress`.
    Reclaimed,
    /// The URL already has its terminal status: this delivery is a duplicate.
    AlreadyFinished(UrlStatus),
}

/// How one analysis ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Succeeded(Analysis),
    Failed { reason: String, analysis: Option<Analysis> },
}

/// Whether recording a result counted it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    Counted,
    /// Another delivery recorded this URL first; nothing changed.
    Duplicate,
}

pub trait JobStore: Send + Sync {
    /// Writes the job and one task per URL (all `queued`).
    fn create_job(&self, job: &Job, urls: &[CleanUrl]) -> impl Future<Output = Result<(), Error>> + Send;

    fn get_job(&self, id: &JobId) -> impl Future<Output = Result<Option<Job>, Error>> + Send;

    fn get_task(&self, id: &JobId, seq: u32) -> impl Future<Output = Result<Option<UrlTask>, Error>> + Send;

    /// Moves a URL to `processing` and the job's counters with it, atomically.
    fn claim_task(&self, id: &JobId, seq: u32, now: Millis) -> impl Future<Output = Result<Claim, Error>> + Send;

    /// Records a URL's terminal status and counts it on the job, atomically and at most once.
    fn record_outcome(
        &self,
        id: &JobId,
        seq: u32,
        outcome: &Outcome,
        now: Millis,
    ) -> impl Future<Output = Result<Recorded, Error>> + Send;

    /// Moves a job from `from` to `to`; `false` when it was no longer in `from`.
    fn transition_job(
        &self,
        id: &JobId,
        from: JobStatus,
        to: JobStatus,
        now: Millis,
    ) -> impl Future<Output = Result<bool, Error>> + Send;
}

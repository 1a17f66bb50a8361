//! Response bodies: the job as SPEC §2 names its fields.

use serde::Serialize;
use shared::domain::{EngineChoice, Job, JobStatus, Priority, Strategy};
use shared::time::{Millis, rfc3339};

#[derive(Debug, Serialize)]
pub struct JobView {
    pub batch_job_id: String,
    pub name: String,
    pub status: JobStatus,
    pub priority: Priority,
    pub strategy: Strategy,
    pub engine: EngineChoice,
    pub batch_size: u32,
    pub timeout_seconds: u32,
    pub max_retries: u32,
    pub total_urls: u64,
    pub queued: u64,
    pub in_progress: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub cancelled: u64,
    pub progress_percent: f64,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub urls_per_minute: Option<f64>,
    pub eta_seconds: Option<u64>,
}

impl JobView {
    pub fn new(job: &Job, now: Millis) -> Self {
        let c = job.counters;
        JobView {
            batch_job_id: job.id.to_string(),
            name: job.name.clone(),
            status: job.status,
            priority: job.settings.priority,
            strategy: job.settings.strategy,
            engine: job.settings.engine,
            batch_size: job.settings.batch_size,
            timeout_seconds: job.settings.timeout_seconds,
            max_retries: job.settings.max_retries,
            total_urls: c.total,
            queued: c.queued,
            in_progress: c.in_progress,
            succeeded: c.succeeded,
            failed: c.failed,
            cancelled: c.cancelled,
            progress_percent: c.percent(),
            created_at: rfc3339(job.created_at),
            started_at: job.started_at.map(rfc3339),
            finished_at: job.finished_at.map(rfc3339),
            urls_per_minute: job.urls_per_minute(now),
            eta_seconds: job.eta_seconds(now),
        }
    }
}

//! The job as clients see it (SPEC §2 names its fields): the API's responses and the detail
//! of the completion events share it.

use serde::Serialize;

use super::{Counters, Job, JobSettings, JobStatus};
use crate::time::rfc3339;

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobView {
    pub batch_job_id: String,
    pub name: String,
    pub status: JobStatus,
    #[serde(flatten)]
    pub settings: JobSettings,
    /// `timeout_seconds` as it runs: within what the deployment gives one URL.
    pub effective_timeout_seconds: u32,
    #[serde(flatten)]
    pub counters: Counters,
    pub progress_percent: f64,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub urls_per_minute: Option<f64>,
    pub eta_seconds: Option<u64>,
}

impl JobView {
    pub fn new(job: &Job) -> Self {
        JobView {
            batch_job_id: job.id.to_string(),
            name: job.name.clone(),
            status: job.status,
            settings: job.settings.clone(),
            effective_timeout_seconds: job.effective_timeout_seconds,
            counters: job.counters,
            progress_percent: job.counters.percent(),
            created_at: rfc3339(job.created_at),
            started_at: job.started_at.map(rfc3339),
            finished_at: job.finished_at.map(rfc3339),
            urls_per_minute: job.urls_per_minute(),
            eta_seconds: job.eta_seconds(),
        }
    }
}

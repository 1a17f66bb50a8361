//! The job as clients see it (SPEC §2 names its fields): the API's responses and the detail
//! of the completion events share it.

use serde::Serialize;

use super::{Counters, Job, JobSettings, JobStatus};
use crate::callback::{CallbackDelivery, DeliveryState};
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
    /// The call to `callback_url` once the job has ended; absent without one or before then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback: Option<CallbackView>,
    /// The monitor whose run this job is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monitor_id: Option<String>,
}

/// Where the job's callback stands: `pending` until the callbacks function first tries it,
/// `retrying` between attempts, then `delivered` or `failed`.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CallbackView {
    pub event: Option<String>,
    pub state: DeliveryState,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<String>,
    pub updated_at: Option<String>,
}

impl CallbackView {
    /// A delivery as recorded after an attempt.
    pub fn of_delivery(delivery: &CallbackDelivery) -> Self {
        let CallbackDelivery { event, state, attempts, last_error, next_attempt_at, updated_at } = delivery;
        CallbackView {
            event: Some(event.clone()),
            state: *state,
            attempts: *attempts,
            last_error: last_error.clone(),
            next_attempt_at: next_attempt_at.map(rfc3339),
            updated_at: Some(rfc3339(*updated_at)),
        }
    }

    fn of(job: &Job) -> Option<Self> {
        job.settings.callback_url.as_ref()?;
        match &job.callback {
            Some(delivery) => Some(CallbackView::of_delivery(delivery)),
            // Ended, handed to the callbacks queue, not tried yet.
            None if job.status.is_finished() => Some(CallbackView {
                event: None,
                state: DeliveryState::Pending,
                attempts: 0,
                last_error: None,
                next_attempt_at: None,
                updated_at: None,
            }),
            None => None,
        }
    }
}

impl JobView {
    pub fn new(job: &Job) -> Self {
        JobView {
            batch_job_id: job.id.to_string(),
            name: job.name.clone(),
            status: job.status,
            settings: job.settings.clone(),
            effective_timeout_seconds: job.effective_timeout_seconds,
            counters: job.progress(),
            progress_percent: job.counters.percent(),
            created_at: rfc3339(job.created_at),
            started_at: job.started_at.map(rfc3339),
            finished_at: job.finished_at.map(rfc3339),
            urls_per_minute: job.urls_per_minute(),
            eta_seconds: job.eta_seconds(),
            callback: CallbackView::of(job),
            monitor_id: job.monitor_id.as_ref().map(ToString::to_string),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tenant;

    fn job(callback_url: Option<&str>, status: JobStatus) -> Job {
        let settings = JobSettings { callback_url: callback_url.map(str::to_owned), ..JobSettings::default() };
        let mut job = Job::new(Tenant("t".into()), "n".into(), settings, 1, 0);
        job.status = status;
        job
    }

    #[test]
    fn a_callback_shows_once_the_job_ended_pending_until_tried() {
        let view = |job: &Job| serde_json::to_value(JobView::new(job)).unwrap();
        assert!(view(&job(None, JobStatus::Completed)).get("callback").is_none(), "no callback_url");
        assert!(view(&job(Some("https://h.example"), JobStatus::Processing)).get("callback").is_none());
        let ended = job(Some("https://h.example"), JobStatus::Completed);
        assert_eq!(view(&ended)["callback"]["state"], "pending");
        assert_eq!(view(&ended)["callback"]["attempts"], 0);
        let mut tried = ended.clone();
        tried.callback = Some(CallbackDelivery {
            event: "Job Completed".into(),
            state: DeliveryState::Retrying,
            attempts: 2,
            last_error: Some("timed out".into()),
            next_attempt_at: Some(60_000),
            updated_at: 1_000,
        });
        let shown = view(&tried)["callback"].clone();
        assert_eq!((shown["state"].as_str(), shown["attempts"].as_u64()), (Some("retrying"), Some(2)));
        assert_eq!(shown["next_attempt_at"], "1970-01-01T00:01:00.000Z");
        assert_eq!(shown["last_error"], "timed out");
    }
}

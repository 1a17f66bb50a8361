//! Telling the world that a job started, completed or was cancelled: events on the
//! deployment's EventBridge bus, and a signed POST to the job's `callback_url` if it has one
//! (made by the callbacks function, from its queue). Both are at least once: a redelivered
//! stream record announces its change again, so receivers deduplicate on the job id and event
//! (the `x-speedbatch-delivery` header).

mod callback;
mod eventbridge;

use std::future::Future;

pub use callback::{CallbackSender, Callbacks, SIGNATURE_HEADER, sign};
pub use eventbridge::EventBridgePublisher;

use domain::Error;
use domain::budget::{Change, Standing, StandingRef};
use domain::callback::CallbackRequest;
use domain::monitor::MonitorId;
use domain::time::{Millis, rfc3339};
use domain::{Job, JobId, JobStatus, JobView};

/// The `source` of every event this service puts on a bus.
pub const EVENT_SOURCE: &str = "speedbatch";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobEvent {
    Started,
    Completed,
    Cancelled,
}

impl JobEvent {
    /// The EventBridge `detail-type`.
    pub fn detail_type(self) -> &'static str {
        match self {
            JobEvent::Started => "Job Started",
            JobEvent::Completed => "Job Completed",
            JobEvent::Cancelled => "Job Cancelled",
        }
    }

    /// What a status change announces. A job whose URLs all finished before the tracker saw
    /// it start goes from `pending` straight to its outcome: it is announced as started too.
    pub fn for_change(old: Option<JobStatus>, new: JobStatus) -> Vec<JobEvent> {
        if old == Some(new) {
            return Vec::new();
        }
        match new {
            JobStatus::Processing => vec![JobEvent::Started],
            JobStatus::Completed | JobStatus::CompletedWithErrors | JobStatus::Failed => {
                if old == Some(JobStatus::Pending) {
                    vec![JobEvent::Started, JobEvent::Completed]
                } else {
                    vec![JobEvent::Completed]
                }
            }
            JobStatus::Cancelled => vec![JobEvent::Cancelled],
            JobStatus::Pending | JobStatus::Cancelling => Vec::new(),
        }
    }

    /// Whether the job's callback hears about it: only the end of a job.
    pub fn calls_back(self) -> bool {
        matches!(self, JobEvent::Completed | JobEvent::Cancelled)
    }
}

/// One announcement: its `detail-type`, what it is about, and its detail (for a job's
/// event, the job as `progress` shows it).
#[derive(Clone, Debug, PartialEq)]
pub struct Notice {
    pub detail_type: &'static str,
    /// The event's resource: `speedbatch:job/<id>`, or `speedbatch:monitor/<id>`.
    pub resource: String,
    /// The job it is about (for a budget, the run that changed it).
    pub job_id: String,
    pub detail: serde_json::Value,
    calls_back: bool,
    /// For a budget's change, the standing it announces (where its callback's delivery is kept).
    standing: Option<StandingRef>,
}

impl Notice {
    pub fn new(event: JobEvent, job: &Job) -> Result<Self, Error> {
        let detail = serde_json::to_value(JobView::new(job)).map_err(|e| Error::Corrupt(e.to_string()))?;
        Ok(Notice {
            detail_type: event.detail_type(),
            resource: format!("speedbatch:job/{}", job.id),
            job_id: job.id.to_string(),
            detail,
            calls_back: event.calls_back(),
            standing: None,
        })
    }

    /// A budget of a monitor that changed state with the monitor's run `job`: on the bus, and
    /// to the run's callback (the monitor's) when it names one.
    pub fn budget(change: Change, monitor: &MonitorId, job: &JobId, standing: &Standing) -> Notice {
        let detail = serde_json::json!({
            "monitor_id": monitor.as_str(),
            "batch_job_id": job.as_str(),
            "url": standing.url,
            "budget": standing.budget,
            "state": standing.state,
            "value": standing.value,
            "since": rfc3339(standing.since),
        });
        Notice {
            detail_type: change.detail_type(),
            resource: format!("speedbatch:monitor/{monitor}"),
            job_id: job.to_string(),
            detail,
            calls_back: true,
            standing: Some(StandingRef {
                monitor_id: monitor.clone(),
                budget_id: standing.budget_id.clone(),
                url: standing.url.clone(),
            }),
        }
    }

    /// The callback this notice calls for when the job names a URL: the end of a job, or a
    /// change of one of its monitor's budgets.
    pub fn callback(&self, job: &Job, now: Millis) -> Option<CallbackRequest> {
        let url = job.settings.callback_url.as_ref().filter(|_| self.calls_back)?;
        Some(CallbackRequest {
            batch_job_id: job.id.clone(),
            tenant: job.tenant.clone(),
            url: url.clone(),
            event: self.detail_type.to_owned(),
            time: rfc3339(now),
            detail: self.detail.clone(),
            attempt: 1,
            standing: self.standing.clone(),
        })
    }
}

/// Where events go: EventBridge in a deployment.
pub trait EventPublisher: Send + Sync {
    fn publish(&self, notices: &[Notice]) -> impl Future<Output = Result<(), Error>> + Send;
}

/// No bus configured: events are not published.
impl<P: EventPublisher> EventPublisher for Option<P> {
    async fn publish(&self, notices: &[Notice]) -> Result<(), Error> {
        match self {
            Some(publisher) => publisher.publish(notices).await,
            None => Ok(()),
        }
    }
}

/// Keeps what it was asked to publish, for unit tests of the handlers.
#[derive(Default)]
pub struct MemoryPublisher {
    published: std::sync::Mutex<Vec<Notice>>,
}

impl MemoryPublisher {
    pub fn published(&self) -> Vec<Notice> {
        self.published.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl EventPublisher for MemoryPublisher {
    async fn publish(&self, notices: &[Notice]) -> Result<(), Error> {
        self.published.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(notices);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use JobStatus::*;

    #[test]
    fn each_change_announces_what_it_means() {
        assert_eq!(JobEvent::for_change(Some(Pending), Processing), [JobEvent::Started]);
        assert_eq!(JobEvent::for_change(Some(Processing), Completed), [JobEvent::Completed]);
        assert_eq!(JobEvent::for_change(Some(Processing), Failed), [JobEvent::Completed]);
        assert_eq!(JobEvent::for_change(Some(Pending), CompletedWithErrors), [JobEvent::Started, JobEvent::Completed]);
        assert_eq!(JobEvent::for_change(Some(Cancelling), Cancelled), [JobEvent::Cancelled]);
        assert!(JobEvent::for_change(Some(Processing), Cancelling).is_empty());
        assert!(JobEvent::for_change(Some(Completed), Completed).is_empty(), "no change, no event");
    }

    #[test]
    fn callbacks_hear_only_the_end() {
        assert!(!JobEvent::Started.calls_back());
        assert!(JobEvent::Completed.calls_back() && JobEvent::Cancelled.calls_back());
    }
}

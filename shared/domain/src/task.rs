//! One URL of a job as stored, its statuses, why it failed, and what an engine measured.

use serde::{Deserialize, Serialize};

use super::cache::CachedFrom;
use super::field::FieldFilter;
use super::job::{Job, JobId};
use super::labels::{JobUrl, LabelFilter, Tags};
use super::named_enum;
use super::settings::Strategy;
use crate::time::Millis;

named_enum!(
    UrlStatus {
        Queued => "queued",
        Processing => "processing",
        Succeeded => "succeeded",
        Failed => "failed",
        Cancelled => "cancelled",
    }
);

impl UrlStatus {
    pub fn is_terminal(self) -> bool {
        matches!(self, UrlStatus::Succeeded | UrlStatus::Failed | UrlStatus::Cancelled)
    }
}

named_enum!(
    /// Why a URL failed, by cause: what the error breakdown of a job's summary counts.
    ErrorKind {
        Timeout => "timeout",
        Http4xx => "http_4xx",
        Http5xx => "http_5xx",
        RateLimited => "rate_limited",
        Dns => "dns",
        Connection => "connection",
        Transfer => "transfer",
        Redirect => "redirect",
        Blocked => "blocked",
        InvalidUrl => "invalid_url",
        EngineUnavailable => "engine_unavailable",
    }
);

impl ErrorKind {
    /// Whether trying again later can help: timeouts, 5xx, 429 and dropped connections can;
    /// a DNS failure, a 4xx page or an address refused by policy cannot.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::Timeout
                | ErrorKind::Http5xx
                | ErrorKind::RateLimited
                | ErrorKind::Connection
                | ErrorKind::Transfer
        )
    }
}

/// Which of a job's URLs a listing keeps: those in a status, with a label, with a field-data
/// verdict, or any of these together.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskFilter {
    pub status: Option<UrlStatus>,
    pub label: Option<LabelFilter>,
    pub field: Option<FieldFilter>,
}

impl TaskFilter {
    pub fn status(status: UrlStatus) -> TaskFilter {
        TaskFilter { status: Some(status), ..TaskFilter::default() }
    }

    pub fn is_empty(&self) -> bool {
        self.status.is_none() && self.label.is_none() && self.field.is_none()
    }

    pub fn matches(&self, task: &UrlTask) -> bool {
        self.status.is_none_or(|status| task.status == status)
            && self.label.as_ref().is_none_or(|label| task.tags.matches(label))
            && self.field.is_none_or(|field| task.analysis.as_ref().is_some_and(|a| field.matches(&a.metrics)))
    }
}

/// One URL of a job, as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UrlTask {
    pub job_id: JobId,
    /// Position in the submitted list: the task's identity inside its job.
    pub seq: u32,
    pub url: String,
    pub status: UrlStatus,
    pub attempts: u32,
    pub error: Option<String>,
    pub error_kind: Option<ErrorKind>,
    pub analysis: Option<Analysis>,
    pub analyzed_at: Option<Millis>,
    /// Until when the current attempt owns the URL: another delivery before then waits.
    pub lease_until: Option<Millis>,
    /// The client's reference and labels for the URL.
    pub tags: Tags,
}

impl UrlTask {
    /// URL `seq` of a new job, queued (the first window's messages are sent at submission:
    /// [`crate::window::Window`]).
    pub fn queued(job: &Job, seq: u32, url: &JobUrl) -> UrlTask {
        UrlTask::listed(job.id.clone(), seq, url.url.as_str().to_owned(), url.tags.clone())
    }

    /// URL `seq` of job `job_id` as it was submitted (`url`, already clean, and its `tags`),
    /// queued: what a URL is until its first change.
    pub fn listed(job_id: JobId, seq: u32, url: String, tags: Tags) -> UrlTask {
        UrlTask {
            job_id,
            seq,
            url,
            tags,
            status: UrlStatus::Queued,
            attempts: 0,
            error: None,
            error_kind: None,
            analysis: None,
            analyzed_at: None,
            lease_until: None,
        }
    }

    /// Whether the URL should be moving but may have lost its message: released into the
    /// window (`released_at`, [`crate::window::Window::released_at`]) and still queued, or
    /// being analysed past its lease, with nothing sent for it since `before` (`resent_at`:
    /// when the reconciler last sent it again).
    pub fn is_stalled(&self, before: Millis, released_at: Option<Millis>, resent_at: Option<Millis>) -> bool {
        let waiting = match self.status {
            UrlStatus::Queued => released_at.is_some_and(|at| at < before),
            UrlStatus::Processing => self.lease_until.is_none_or(|lease| lease < before),
            _ => false,
        };
        waiting && resent_at.is_none_or(|at| at < before)
    }
}

/// What an engine measured for one URL. `score` is a 0–100 performance score where the engine
/// gives one (PageSpeed Insights, the browser engine); `metrics` holds the engine's
/// measurements by name (absent means unavailable, never zero), the http engine's
/// `delivery_score` among them (`crate::delivery`: not a performance score).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "StoredAnalysis")]
pub struct Analysis {
    pub engine: String,
    pub strategy: Strategy,
    pub score: Option<f64>,
    pub metrics: serde_json::Map<String, serde_json::Value>,
    /// Set when this is an earlier result reused (`cache_ttl_seconds`), not a new analysis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_from: Option<CachedFrom>,
}

impl Analysis {
    /// The number a result is ranked and summed up by, with its name: the performance score
    /// where the engine gives one, else the http engine's delivery score.
    pub fn headline_score(&self) -> Option<(&'static str, f64)> {
        match self.score {
            Some(score) => Some((crate::history::SCORE, score)),
            None => self
                .metrics
                .get(crate::delivery::DELIVERY_SCORE)?
                .as_f64()
                .map(|s| (crate::delivery::DELIVERY_SCORE, s)),
        }
    }
}

/// An analysis as stored, read through [`crate::delivery::name_delivery_score`] so results
/// written before the http engine's number was named read like new ones.
#[derive(Deserialize)]
struct StoredAnalysis {
    engine: String,
    strategy: Strategy,
    score: Option<f64>,
    metrics: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    cached_from: Option<CachedFrom>,
}

impl From<StoredAnalysis> for Analysis {
    fn from(stored: StoredAnalysis) -> Analysis {
        let StoredAnalysis { engine, strategy, score, metrics, cached_from } = stored;
        let mut analysis = Analysis { engine, strategy, score, metrics, cached_from };
        crate::delivery::name_delivery_score(&mut analysis);
        analysis
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_names_are_the_shown_names() {
        for kind in ErrorKind::ALL {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
            assert_eq!(serde_json::from_value::<ErrorKind>(kind.as_str().into()).unwrap(), *kind);
        }
    }

    #[test]
    fn only_transient_causes_are_retried() {
        let retryable: Vec<_> = ErrorKind::ALL.iter().filter(|k| k.is_retryable()).map(|k| k.as_str()).collect();
        assert_eq!(retryable, ["timeout", "http_5xx", "rate_limited", "connection", "transfer"]);
    }
}

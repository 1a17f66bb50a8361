use serde::{Deserialize, Serialize};

use super::cache::{CacheKey, CachedFrom};
use super::job::{Job, JobId, Tenant};
use super::named_enum;
use super::settings::{Category, EngineChoice, Priority, Strategy};
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
    /// When the URL entered the job's window (its message was sent); `None` while it waits
    /// for an earlier URL to finish.
    pub released_at: Option<Millis>,
    /// Until when the current attempt owns the URL: another delivery before then waits.
    pub lease_until: Option<Millis>,
}

impl UrlTask {
    /// Whether the URL should be moving but may have lost its message: released into the
    /// window and still queued, or being analysed past its lease, with nothing sent for it
    /// since `before` (`resent_at`: when the reconciler last sent it again).
    pub fn is_stalled(&self, before: Millis, resent_at: Option<Millis>) -> bool {
        let waiting = match self.status {
            UrlStatus::Queued => self.released_at.is_some_and(|at| at < before),
            UrlStatus::Processing => self.lease_until.is_none_or(|lease| lease < before),
            _ => false,
        };
        waiting && resent_at.is_none_or(|at| at < before)
    }
}

/// What an engine measured for one URL. `score` is 0–100 where the engine scores pages;
/// `metrics` holds the engine's measurements by name (absent means unavailable, never zero).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    pub engine: String,
    pub strategy: Strategy,
    pub score: Option<f64>,
    pub metrics: serde_json::Map<String, serde_json::Value>,
    /// Set when this is an earlier result reused (`cache_ttl_seconds`), not a new analysis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_from: Option<CachedFrom>,
}

/// The SQS message body for one URL: everything the analyzer needs without a read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskMessage {
    pub job_id: JobId,
    pub seq: u32,
    pub url: String,
    pub strategy: Strategy,
    pub engine: String,
    pub timeout_seconds: u32,
    pub max_retries: u32,
    pub priority: Priority,
    /// The job's window: finishing this URL lets URL `seq + batch_size` start.
    pub batch_size: u32,
    pub total_urls: u32,
    #[serde(default = "one")]
    pub runs: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<Category>,
    /// Reuse a result of the tenant's at most this old (0: never); needs `tenant`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_ttl_seconds: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<Tenant>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn one() -> u32 {
    1
}

impl TaskMessage {
    /// The message for URL `seq` of `job`, analysed for at most `timeout_seconds`.
    pub fn new(job: &Job, seq: u32, url: String, timeout_seconds: u32) -> Self {
        TaskMessage {
            job_id: job.id.clone(),
            seq,
            url,
            strategy: job.settings.strategy,
            engine: match job.settings.engine {
                EngineChoice::Psi => "psi".into(),
                // `auto` is resolved at submission; an unresolved one is the built-in engine.
                EngineChoice::Http | EngineChoice::Auto => "http".into(),
            },
            timeout_seconds,
            max_retries: job.settings.max_retries,
            priority: job.settings.priority,
            batch_size: job.settings.batch_size,
            total_urls: u32::try_from(job.counters.total).unwrap_or(u32::MAX),
            runs: job.settings.runs,
            categories: job.settings.categories.clone(),
            cache_ttl_seconds: job.settings.cache_ttl_seconds,
            tenant: Some(job.tenant.clone()),
        }
    }

    /// The URL that may start once this one has finished: the sliding window moves one place.
    /// Each URL releases at most one other, and the first `batch_size` are released at
    /// submission, so no more than `batch_size` URLs of a job are ever in flight.
    pub fn releases(&self) -> Option<u32> {
        let next = self.seq.checked_add(self.batch_size.max(1))?;
        (next < self.total_urls).then_some(next)
    }

    /// Where this URL's result is indexed for reuse by later jobs of the tenant.
    pub fn cache_key(&self) -> Option<CacheKey> {
        let tenant = self.tenant.as_ref()?;
        Some(CacheKey::new(tenant, &self.engine, self.strategy, &self.categories, &self.url))
    }

    /// The message for URL `seq` of the same job.
    pub fn for_seq(&self, seq: u32, url: String) -> Self {
        TaskMessage { seq, url, ..self.clone() }
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

    #[test]
    fn task_message_round_trips_as_json() {
        let message = TaskMessage {
            job_id: JobId::generate(),
            seq: 7,
            url: "https://example.com".into(),
            strategy: Strategy::Desktop,
            engine: "http".into(),
            timeout_seconds: 60,
            max_retries: 2,
            priority: Priority::High,
            batch_size: 3,
            total_urls: 10,
            runs: 3,
            categories: vec![Category::Performance, Category::Seo],
            cache_ttl_seconds: 600,
            tenant: Some(Tenant("acme".into())),
        };
        let json = serde_json::to_string(&message).unwrap();
        assert!(json.contains("\"strategy\":\"desktop\""), "{json}");
        assert_eq!(serde_json::from_str::<TaskMessage>(&json).unwrap(), message);
        // Messages queued before runs and categories existed still read.
        let older: TaskMessage = serde_json::from_str(
            r#"{"job_id":"j","seq":1,"url":"https://a.com","strategy":"mobile","engine":"http","timeout_seconds":60,
                "max_retries":1,"priority":"low","batch_size":1,"total_urls":2}"#,
        )
        .unwrap();
        assert_eq!((older.runs, older.categories.len(), older.cache_ttl_seconds), (1, 0, 0));
        assert_eq!(older.cache_key(), None, "no tenant, no cache");
    }

    #[test]
    fn each_url_releases_the_one_a_window_ahead_until_the_end() {
        let job = Job::new(
            super::super::job::Tenant("t".into()),
            "n".into(),
            super::super::settings::JobSettings { batch_size: 3, ..Default::default() },
            8,
            0,
        );
        let message = TaskMessage::new(&job, 0, "https://a.example".into(), 60);
        let released: Vec<Option<u32>> = (0..8).map(|seq| message.for_seq(seq, String::new()).releases()).collect();
        assert_eq!(released, [Some(3), Some(4), Some(5), Some(6), Some(7), None, None, None]);
        // Every URL past the first window is released by exactly one other.
        let mut targets: Vec<u32> = released.into_iter().flatten().collect();
        targets.dedup();
        assert_eq!(targets, (3..8).collect::<Vec<_>>());
    }
}

//! One URL's result as a client reads it: in a JSON page, a CSV row or a JSON Lines record.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::job::Job;
use crate::labels::Tags;
use crate::settings::Strategy;
use crate::task::{ErrorKind, UrlStatus, UrlTask};
use crate::time::rfc3339;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResultRow {
    pub url: String,
    /// The reference and labels the client gave the URL, when it did.
    #[serde(flatten)]
    pub tags: Tags,
    pub status: UrlStatus,
    pub attempts: u32,
    pub error: Option<String>,
    pub error_kind: Option<ErrorKind>,
    pub engine: Option<String>,
    pub strategy: Strategy,
    /// The 0–100 performance score (PageSpeed Insights, the browser engine); `null` for the
    /// http engine, whose number is `metrics.delivery_score` (not a performance score).
    pub score: Option<f64>,
    /// The engine's measurements by name; an absent metric was not available.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub metrics: Map<String, Value>,
    pub analyzed_at: Option<String>,
    /// Present when the result is an earlier one reused (`cache_ttl_seconds`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_from: Option<CachedRow>,
}

/// Where a reused result comes from: the job that analysed the URL, and when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CachedRow {
    pub batch_job_id: String,
    pub analyzed_at: String,
}

impl ResultRow {
    pub fn new(task: UrlTask, job: &Job) -> Self {
        let (engine, strategy, score, metrics, cached_from) = match task.analysis {
            Some(a) => {
                let cached = a
                    .cached_from
                    .map(|c| CachedRow { batch_job_id: c.job_id.to_string(), analyzed_at: rfc3339(c.analyzed_at) });
                (Some(a.engine), a.strategy, a.score, a.metrics, cached)
            }
            None => (None, job.settings.strategy, None, Map::new(), None),
        };
        ResultRow {
            url: task.url,
            tags: task.tags,
            status: job.shown_status(task.seq, task.status),
            attempts: task.attempts,
            error: task.error,
            error_kind: task.error_kind,
            engine,
            strategy,
            score,
            metrics,
            analyzed_at: task.analyzed_at.map(rfc3339),
            cached_from,
        }
    }

    /// The row as JSON, and so its size in a page or a JSON Lines export.
    pub fn to_json(&self) -> String {
        // A struct of strings, numbers and a JSON map always serialises.
        serde_json::to_string(self).unwrap_or_default()
    }
}

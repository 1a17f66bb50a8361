//! The deployed HTTP API driven like a client: every answer with its status, never a panic,
//! so the bench and the chaos suite can report what went wrong instead of stopping.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::stack::DeployedStack;

pub const API: &str = domain::paths::BASE_PATH;

/// Whether a progress answer shows a status the job never leaves.
pub fn is_finished(progress: &Value) -> bool {
    serde_json::from_value::<domain::JobStatus>(progress["status"].clone()).is_ok_and(domain::JobStatus::is_finished)
}

#[derive(Clone)]
pub struct ApiClient {
    pub http: reqwest::Client,
    pub base: String,
    pub key: String,
}

impl ApiClient {
    pub fn new(stack: &DeployedStack) -> ApiClient {
        ApiClient { http: reqwest::Client::new(), base: stack.api_url.clone(), key: stack.api_key.clone() }
    }

    /// The same API as another tenant.
    pub fn with_key(&self, key: &str) -> ApiClient {
        ApiClient { key: key.to_owned(), ..self.clone() }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{API}{path}", self.base)
    }

    /// One call under `API`; the status and the body (JSON, or the text as a JSON string).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), String> {
        let mut request = self.http.request(method, self.url(path)).header("x-api-key", &self.key);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.timeout(Duration::from_secs(60)).send().await.map_err(|e| format!("{path}: {e}"))?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| format!("{path}: {e}"))?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
    }

    /// A call that must succeed (2xx); its body.
    pub async fn ok(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Result<Value, String> {
        match self.call(method, path, body).await? {
            (status, body) if (200..300).contains(&status) => Ok(body),
            (status, body) => Err(format!("{path} answered {status}: {body}")),
        }
    }

    /// Submits a job that must be accepted; its id.
    pub async fn submit(&self, body: &Value) -> Result<String, String> {
        let created = self.ok(reqwest::Method::POST, "/start", Some(body)).await?;
        created["batch_job_id"].as_str().map(str::to_owned).ok_or_else(|| format!("no batch_job_id in {created}"))
    }

    pub async fn progress(&self, id: &str) -> Result<Value, String> {
        self.ok(reqwest::Method::GET, &format!("/progress/{id}"), None).await
    }

    /// Polls every `every` until `done` says so, or `limit` passes.
    pub async fn until(
        &self,
        id: &str,
        done: impl Fn(&Value) -> bool,
        every: Duration,
        limit: Duration,
    ) -> Result<Value, String> {
        let started = Instant::now();
        loop {
            let progress = self.progress(id).await?;
            if done(&progress) {
                return Ok(progress);
            }
            if started.elapsed() > limit {
                return Err(format!("job {id} still {} after {limit:?}: {progress}", progress["status"]));
            }
            tokio::time::sleep(every).await;
        }
    }

    /// Waits for the job to finish.
    pub async fn finished(&self, id: &str, limit: Duration) -> Result<Value, String> {
        self.until(id, is_finished, Duration::from_millis(250), limit).await
    }
}

/// Whether a finished job's counts are exact: every URL terminal, each counted once.
pub fn counts_exact(progress: &Value, total: u64) -> bool {
    let n = |field: &str| progress[field].as_u64().unwrap_or(u64::MAX);
    n("total_urls") == total
        && n("queued") == 0
        && n("in_progress") == 0
        && n("succeeded").checked_add(n("failed")).and_then(|s| s.checked_add(n("cancelled"))) == Some(total)
}

/// `succeeded/failed/cancelled of total` for a report.
pub fn counts(progress: &Value) -> String {
    format!(
        "{} succeeded, {} failed, {} cancelled of {} ({} queued, {} in progress)",
        progress["succeeded"],
        progress["failed"],
        progress["cancelled"],
        progress["total_urls"],
        progress["queued"],
        progress["in_progress"]
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn finished_means_a_status_the_job_never_leaves() {
        for status in ["completed", "completed_with_errors", "failed", "cancelled"] {
            assert!(is_finished(&json!({"status": status})), "{status}");
        }
        for status in ["pending", "processing", "cancelling", "nonsense"] {
            assert!(!is_finished(&json!({"status": status})), "{status}");
        }
    }

    #[test]
    fn exact_counts_add_up_with_nothing_left_running() {
        let done = json!({"total_urls": 3, "queued": 0, "in_progress": 0, "succeeded": 1, "failed": 1, "cancelled": 1});
        assert!(counts_exact(&done, 3));
        assert!(!counts_exact(&done, 4));
        let counted_twice =
            json!({"total_urls": 3, "queued": 0, "in_progress": 0, "succeeded": 3, "failed": 1, "cancelled": 0});
        assert!(!counts_exact(&counted_twice, 3));
        let running =
            json!({"total_urls": 3, "queued": 1, "in_progress": 0, "succeeded": 2, "failed": 0, "cancelled": 0});
        assert!(!counts_exact(&running, 3));
    }
}

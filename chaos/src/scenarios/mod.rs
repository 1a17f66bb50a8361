//! One module per row group of RELIABILITY.md.

pub mod callbacks;
pub mod crashes;
pub mod duplicates;
pub mod hostile;
pub mod load;
pub mod neighbour;
pub mod outage;
pub mod poison;
pub mod security;
pub mod tools;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::api::{ApiClient, is_finished};

/// Every result row of a job, page by page.
pub async fn all_results(api: &ApiClient, id: &str) -> Result<Vec<Value>, String> {
    let mut rows = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/results/{id}?limit=100&cursor={c}"),
            None => format!("/results/{id}?limit=100"),
        };
        let page = api.ok(reqwest::Method::GET, &path, None).await?;
        rows.extend(page["results"].as_array().into_iter().flatten().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return Ok(rows),
        }
    }
}

/// What a job's result rows say: how many distinct URLs, by status, by error kind, and how
/// many took more than one attempt.
pub struct Outcome {
    pub rows: usize,
    pub distinct: usize,
    pub by_status: BTreeMap<String, usize>,
    pub by_error: BTreeMap<String, usize>,
    pub retried: usize,
}

pub fn outcome(rows: &[Value]) -> Outcome {
    let mut by_status = BTreeMap::new();
    let mut by_error = BTreeMap::new();
    let mut urls = std::collections::HashSet::new();
    let mut retried = 0;
    for row in rows {
        urls.insert(row["url"].as_str().unwrap_or_default().to_owned());
        *by_status.entry(row["status"].as_str().unwrap_or("?").to_owned()).or_default() += 1;
        if let Some(kind) = row["error_kind"].as_str() {
            *by_error.entry(kind.to_owned()).or_default() += 1;
        }
        retried += usize::from(row["attempts"].as_u64().unwrap_or(0) > 1);
    }
    Outcome { rows: rows.len(), distinct: urls.len(), by_status, by_error, retried }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list =
            |m: &BTreeMap<String, usize>| m.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ");
        write!(f, "{} result rows for {} distinct URLs ({})", self.rows, self.distinct, list(&self.by_status))?;
        if !self.by_error.is_empty() {
            write!(f, "; errors: {}", list(&self.by_error))?;
        }
        Ok(())
    }
}

/// Checks that each of a job's `n` URLs has exactly one result, a success; the outcome.
pub async fn one_success_each(
    api: &ApiClient,
    id: &str,
    n: usize,
    section: &mut crate::report::Section,
) -> Result<Outcome, String> {
    let outcome = outcome(&all_results(api, id).await?);
    section.check(
        "every URL has exactly one result",
        format!("{n} URLs"),
        outcome.to_string(),
        outcome.rows == n && outcome.distinct == n && outcome.by_status.get("succeeded") == Some(&n),
    );
    Ok(outcome)
}

/// Polls a job until it finishes, riding out failed polls (the emulator may be down on
/// purpose); `tick` runs between polls with the latest progress.
pub async fn watch(
    api: &ApiClient,
    id: &str,
    limit: Duration,
    mut tick: impl AsyncFnMut(&Value) -> Result<(), String>,
) -> Result<(Value, usize), String> {
    let started = Instant::now();
    let mut failed_polls = 0;
    let mut last = String::new();
    loop {
        match api.progress(id).await {
            Ok(progress) => {
                let line = testkit::api::counts(&progress);
                if line != last {
                    eprintln!("[{:>6.1}s] {id} {}: {line}", started.elapsed().as_secs_f64(), progress["status"]);
                    last = line;
                }
                if is_finished(&progress) {
                    return Ok((progress, failed_polls));
                }
                tick(&progress).await?;
            }
            Err(_) => failed_polls += 1,
        }
        if started.elapsed() > limit {
            return Err(format!("job {id} did not finish within {} s", limit.as_secs()));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outcome_counts_urls_statuses_and_retries() {
        let rows = vec![
            serde_json::json!({"url": "a", "status": "succeeded", "attempts": 1}),
            serde_json::json!({"url": "b", "status": "failed", "attempts": 3, "error_kind": "timeout"}),
        ];
        let outcome = outcome(&rows);
        assert_eq!((outcome.rows, outcome.distinct, outcome.retried), (2, 2, 1));
        assert_eq!(outcome.to_string(), "2 result rows for 2 distinct URLs (failed 1, succeeded 1); errors: timeout 1");
    }
}

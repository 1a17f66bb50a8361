//! A job's result summary: counts by status and by error kind, and percentiles of the score
//! and of every numeric metric over the URLs that succeeded.
//!
//! Computed once, when the job has finished, from every URL (the exporter stores it). While
//! a job runs, reading every URL on each request would cost a read of the whole job per
//! page, so a running job's summary is what its counters say at no cost: the counts by
//! status, `complete: false`, and no percentiles yet.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::field::{FieldCategory, FieldFilter};
use crate::history::is_measurement;
use crate::job::Counters;
use crate::lifecycle::Counter;
use crate::task::{UrlStatus, UrlTask};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Percentiles {
    pub count: usize,
    pub p50: f64,
    pub p75: f64,
    pub p95: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles (every figure is a value that was measured); `None` for no
    /// values.
    pub fn of(mut values: Vec<f64>) -> Option<Percentiles> {
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let rank = |p: f64| values[((p / 100.0 * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1];
        Some(Percentiles { count: values.len(), p50: rank(50.0), p75: rank(75.0), p95: rank(95.0) })
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Summary {
    /// `true` once the job has finished and every figure covers all its URLs; `false` while
    /// it runs (or for the moments before its summary is stored): then only `by_status` is
    /// filled, from the job's counters.
    pub complete: bool,
    pub by_status: BTreeMap<String, u64>,
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Of the performance score; the http engine's delivery score is in `metrics`.
    pub score: Option<Percentiles>,
    pub metrics: BTreeMap<String, Percentiles>,
    /// Where the job asked for field data: how many URLs got each Core Web Vitals verdict
    /// (`good`, `needs_improvement`, `poor`), and how many got none (`unavailable`); each
    /// count is what `field_overall_category=` lists.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub field_verdicts: BTreeMap<String, u64>,
}

impl Summary {
    /// What a running job's counters say, at no cost: counts by status only.
    pub fn from_counters(counters: &Counters) -> Summary {
        Summary {
            by_status: UrlStatus::ALL.iter().map(|s| (s.as_str().to_owned(), counters.get(Counter::of(*s)))).collect(),
            ..Summary::default()
        }
    }
}

/// The filter a result's field data matches, by its name: the verdict, or `unavailable`.
fn field_verdict(metrics: &serde_json::Map<String, serde_json::Value>) -> Option<&'static str> {
    FieldCategory::ALL
        .iter()
        .find(|category| FieldFilter::Verdict(**category).matches(metrics))
        .map(|category| category.as_str())
        .or_else(|| FieldFilter::Unavailable.matches(metrics).then_some("unavailable"))
}

/// The complete summary of a job's URLs (all of them).
pub fn summarize<'a>(tasks: impl IntoIterator<Item = &'a UrlTask>) -> Summary {
    let mut summary = Summary { complete: true, ..Summary::default() };
    for status in UrlStatus::ALL {
        summary.by_status.insert(status.as_str().to_owned(), 0);
    }
    let mut scores = Vec::new();
    let mut metrics: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for task in tasks {
        *summary.by_status.entry(task.status.as_str().to_owned()).or_default() += 1;
        if let Some(kind) = task.error_kind.filter(|_| task.status == UrlStatus::Failed) {
            *summary.errors_by_kind.entry(kind.as_str().to_owned()).or_default() += 1;
        }
        let Some(analysis) = task.analysis.as_ref().filter(|_| task.status == UrlStatus::Succeeded) else { continue };
        scores.extend(analysis.score);
        if let Some(verdict) = field_verdict(&analysis.metrics) {
            *summary.field_verdicts.entry(verdict.to_owned()).or_default() += 1;
        }
        for (name, value) in &analysis.metrics {
            if let Some(number) = value.as_f64().filter(|_| is_measurement(name)) {
                metrics.entry(name.clone()).or_default().push(number);
            }
        }
    }
    summary.score = Percentiles::of(scores);
    summary.metrics = metrics.into_iter().filter_map(|(name, values)| Some((name, Percentiles::of(values)?))).collect();
    summary
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{Analysis, ErrorKind, JobId, Strategy};

    fn task(status: UrlStatus, score: Option<f64>, ttfb: f64, kind: Option<ErrorKind>) -> UrlTask {
        let metrics = json!({"ttfb_ms": ttfb, "status_code": 200, "http_version": "HTTP/1.1"});
        UrlTask {
            job_id: JobId::generate(),
            seq: 0,
            url: "https://a.example".into(),
            status,
            attempts: 1,
            error: kind.map(|k| k.to_string()),
            error_kind: kind,
            analysis: Some(Analysis {
                engine: "http".into(),
                strategy: Strategy::Mobile,
                score,
                metrics: metrics.as_object().unwrap().clone(),
                cached_from: None,
            }),
            analyzed_at: Some(1),
            lease_until: None,
            tags: Default::default(),
        }
    }

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(Percentiles::of(values), Some(Percentiles { count: 20, p50: 10.0, p75: 15.0, p95: 19.0 }));
        assert_eq!(Percentiles::of(vec![7.0]), Some(Percentiles { count: 1, p50: 7.0, p75: 7.0, p95: 7.0 }));
        assert_eq!(Percentiles::of(vec![]), None);
    }

    #[test]
    fn counts_statuses_and_errors_and_measures_only_successes() {
        let tasks = [
            task(UrlStatus::Succeeded, Some(90.0), 100.0, None),
            task(UrlStatus::Succeeded, Some(50.0), 300.0, None),
            task(UrlStatus::Failed, None, 9_000.0, Some(ErrorKind::Http4xx)),
            task(UrlStatus::Failed, None, 9_000.0, Some(ErrorKind::Http4xx)),
            task(UrlStatus::Failed, None, 9_000.0, Some(ErrorKind::Timeout)),
            task(UrlStatus::Queued, None, 9_000.0, None),
        ];
        let summary = summarize(&tasks);
        assert_eq!(summary.by_status["succeeded"], 2);
        assert_eq!(summary.by_status["failed"], 3);
        assert_eq!(summary.by_status["queued"], 1);
        assert_eq!(summary.by_status["cancelled"], 0);
        assert!(summary.complete);
        assert_eq!(summary.errors_by_kind, BTreeMap::from([("http_4xx".to_owned(), 2), ("timeout".to_owned(), 1)]));
        assert_eq!(summary.score, Some(Percentiles { count: 2, p50: 50.0, p75: 90.0, p95: 90.0 }));
        assert_eq!(summary.metrics.keys().collect::<Vec<_>>(), ["ttfb_ms"], "no status codes, no strings");
        assert_eq!(summary.metrics["ttfb_ms"].p95, 300.0);
        assert!(summary.field_verdicts.is_empty(), "no field data asked for");
    }

    #[test]
    fn each_field_verdict_is_counted_as_its_filter_lists_it() {
        let with = |pairs: serde_json::Value| {
            let mut task = task(UrlStatus::Succeeded, None, 100.0, None);
            task.analysis.as_mut().unwrap().metrics.extend(pairs.as_object().unwrap().clone());
            task
        };
        let tasks = [
            with(json!({"field_status": "available", "field_overall_category": "poor", "field_lcp_ms": 4_200})),
            with(json!({"field_status": "available", "field_overall_category": "poor", "field_lcp_ms": 5_000})),
            with(json!({"field_status": "available", "field_overall_category": "good", "field_lcp_ms": 1_000})),
            with(json!({"field_status": "unavailable"})),
            with(json!({"field_status": "error", "field_error": "HTTP 503 from the Chrome UX Report"})),
            task(UrlStatus::Succeeded, None, 100.0, None),
        ];
        let summary = summarize(&tasks);
        let expected = [("good", 1), ("poor", 2), ("unavailable", 2)].map(|(k, n)| (k.to_owned(), n));
        assert_eq!(summary.field_verdicts, BTreeMap::from(expected));
        assert_eq!(summary.metrics["field_lcp_ms"].count, 3, "field p75s are summed up like any measurement");
    }
}

#[cfg(test)]
mod running {
    use super::*;

    #[test]
    fn a_running_jobs_summary_is_its_counters() {
        let counters = Counters { total: 10, queued: 4, in_progress: 2, succeeded: 3, failed: 1, cancelled: 0 };
        let summary = Summary::from_counters(&counters);
        assert!(!summary.complete);
        assert_eq!(summary.by_status["queued"], 4);
        assert_eq!(summary.by_status["processing"], 2);
        assert_eq!(summary.by_status["succeeded"], 3);
        assert_eq!(summary.by_status["failed"], 1);
        assert_eq!(summary.by_status.values().sum::<u64>(), 10);
        assert!(summary.score.is_none() && summary.metrics.is_empty() && summary.errors_by_kind.is_empty());
    }
}

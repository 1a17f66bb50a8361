//! A tenant's analytics: per UTC day, the URLs its jobs finished, how many succeeded, its
//! failures by kind, and percentiles of the score and the headline metrics. Kept as running
//! tallies (counts and histograms, which add up), written once per finished job, so a range
//! of days is read from a few small items, never from the results.
//!
//! Percentiles come from histograms whose buckets are 5 % wide: a percentile is within 2.5 %
//! of the measured value it stands for (the score, a whole number, is exact).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::history::Headline;
use crate::report::Percentiles;
use crate::task::{UrlStatus, UrlTask};
use crate::time::Millis;

/// The numbers whose percentiles are kept per day (the performance score first; the http
/// engine's delivery score is one of the metrics).
pub const TRACKED: [&str; 10] = [
    "score",
    "delivery_score",
    "ttfb_ms",
    "total_ms",
    "fcp_ms",
    "lcp_ms",
    "speed_index_ms",
    "tbt_ms",
    "cls",
    "page_bytes",
];

/// The longest range one request may ask for.
pub const MAX_DAYS: i64 = 93;

/// Each bucket is this much wider than the one below it.
const GROWTH: f64 = 1.05;

/// How a tracked number is bucketed: the scores exactly (whole points), CLS in thousandths,
/// the rest on the 5 % scale.
fn scale(metric: &str) -> Option<f64> {
    match metric {
        "score" | "delivery_score" => None,
        "cls" => Some(1_000.0),
        _ => Some(1.0),
    }
}

/// Counts of values by bucket: histograms add up, which is what lets a day's percentiles be
/// kept without its values.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Histogram(BTreeMap<i32, u64>);

impl Histogram {
    fn bucket(metric: &str, value: f64) -> i32 {
        match scale(metric) {
            None => value.round() as i32,
            Some(scale) => ((value.max(0.0) * scale + 1.0).ln() / GROWTH.ln()).floor() as i32,
        }
    }

    /// The value a bucket stands for: its geometric middle.
    fn value(metric: &str, bucket: i32) -> f64 {
        match scale(metric) {
            None => f64::from(bucket),
            Some(scale) => {
                let middle = GROWTH.powf(f64::from(bucket) + 0.5) - 1.0;
                (middle / scale * 1_000.0).round() / 1_000.0
            }
        }
    }

    pub fn add(&mut self, metric: &str, value: f64) {
        *self.0.entry(Self::bucket(metric, value)).or_default() += 1;
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (bucket, count) in &other.0 {
            *self.0.entry(*bucket).or_default() += count;
        }
    }

    pub fn count(&self) -> u64 {
        self.0.values().sum()
    }

    /// p50, p75 and p95 by nearest rank, as a job's summary takes them.
    pub fn percentiles(&self, metric: &str) -> Option<Percentiles> {
        let count = self.count();
        if count == 0 {
            return None;
        }
        let rank = |p: f64| {
            let wanted = ((p / 100.0 * count as f64).ceil() as u64).clamp(1, count);
            let mut seen = 0;
            for (bucket, n) in &self.0 {
                seen += n;
                if seen >= wanted {
                    return Self::value(metric, *bucket);
                }
            }
            Self::value(metric, *self.0.keys().next_back().unwrap_or(&0))
        };
        Some(Percentiles { count: count as usize, p50: rank(50.0), p75: rank(75.0), p95: rank(95.0) })
    }
}

/// What a day's finished URLs came to (or one job's share of them): it adds up.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DayTally {
    pub succeeded: u64,
    pub failed: u64,
    pub cancelled: u64,
    #[serde(default)]
    pub failures_by_kind: BTreeMap<String, u64>,
    #[serde(default)]
    pub histograms: BTreeMap<String, Histogram>,
}

impl DayTally {
    pub fn merge(&mut self, other: &DayTally) {
        self.succeeded += other.succeeded;
        self.failed += other.failed;
        self.cancelled += other.cancelled;
        for (kind, n) in &other.failures_by_kind {
            *self.failures_by_kind.entry(kind.clone()).or_default() += n;
        }
        for (metric, histogram) in &other.histograms {
            self.histograms.entry(metric.clone()).or_default().merge(histogram);
        }
    }

    fn add(&mut self, task: &UrlTask) {
        match task.status {
            UrlStatus::Succeeded => self.succeeded += 1,
            UrlStatus::Failed => self.failed += 1,
            UrlStatus::Cancelled => self.cancelled += 1,
            UrlStatus::Queued | UrlStatus::Processing => return,
        }
        if let Some(kind) = task.error_kind.filter(|_| task.status == UrlStatus::Failed) {
            *self.failures_by_kind.entry(kind.as_str().to_owned()).or_default() += 1;
        }
        let Some(analysis) = task.analysis.as_ref().filter(|_| task.status == UrlStatus::Succeeded) else { return };
        let headline = Headline::of(analysis);
        for metric in TRACKED {
            if let Some(value) = headline.values.get(metric) {
                self.histograms.entry(metric.to_owned()).or_default().add(metric, *value);
            }
        }
    }
}

/// A finished job's URLs by the UTC day each finished (`analyzed_at`; a URL never analysed,
/// such as a cancelled one, on the day the job finished).
pub fn tally_by_day<'a>(
    tasks: impl IntoIterator<Item = &'a UrlTask>,
    finished_at: Millis,
) -> BTreeMap<String, DayTally> {
    let mut days: BTreeMap<String, DayTally> = BTreeMap::new();
    for task in tasks {
        let day = day_of(task.analyzed_at.unwrap_or(finished_at));
        days.entry(day).or_default().add(task);
    }
    days.retain(|_, tally| tally.succeeded + tally.failed + tally.cancelled > 0);
    days
}

/// The UTC day of a time, as `yyyy-mm-dd`.
pub fn day_of(at: Millis) -> String {
    crate::time::rfc3339(at)[..10].to_owned()
}

/// One day as `GET /analytics` shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DayView {
    /// `yyyy-mm-dd`, UTC.
    pub day: String,
    /// URLs that finished that day: succeeded and failed (cancelled ones are counted apart).
    pub analysed: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub cancelled: u64,
    /// `succeeded / analysed`; absent when nothing was analysed.
    pub success_rate: Option<f64>,
    pub failures_by_kind: BTreeMap<String, u64>,
    /// Of the performance score; the http engine's delivery score is in `metrics`.
    pub score: Option<Percentiles>,
    pub metrics: BTreeMap<String, Percentiles>,
}

impl DayView {
    pub fn new(day: String, tally: &DayTally) -> DayView {
        let analysed = tally.succeeded + tally.failed;
        let percentiles = |metric: &str| tally.histograms.get(metric).and_then(|h| h.percentiles(metric));
        DayView {
            day,
            analysed,
            succeeded: tally.succeeded,
            failed: tally.failed,
            cancelled: tally.cancelled,
            success_rate: (analysed > 0)
                .then(|| (tally.succeeded as f64 / analysed as f64 * 10_000.0).round() / 10_000.0),
            failures_by_kind: tally.failures_by_kind.clone(),
            score: percentiles("score"),
            metrics: TRACKED[1..].iter().filter_map(|m| Some(((*m).to_owned(), percentiles(m)?))).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::job::JobId;
    use crate::settings::Strategy;
    use crate::task::{Analysis, ErrorKind};

    const DAY: Millis = 86_400_000;

    fn task(status: UrlStatus, at: Option<Millis>, score: f64, ttfb: f64) -> UrlTask {
        UrlTask {
            job_id: JobId::generate(),
            seq: 0,
            url: "https://a.example".into(),
            status,
            attempts: 1,
            error: None,
            error_kind: (status == UrlStatus::Failed).then_some(ErrorKind::Timeout),
            analysis: Some(Analysis {
                engine: "http".into(),
                strategy: Strategy::Mobile,
                score: Some(score),
                metrics: json!({"ttfb_ms": ttfb, "cls": 0.12}).as_object().cloned().unwrap_or_default(),
                cached_from: None,
            }),
            analyzed_at: at,
            lease_until: None,
            tags: Default::default(),
        }
    }

    #[test]
    fn percentiles_from_buckets_are_within_their_width_of_the_exact_ones() {
        let values: Vec<f64> = (1..=1_000).map(|i| f64::from(i) * 7.3).collect();
        let mut histogram = Histogram::default();
        for v in &values {
            histogram.add("lcp_ms", *v);
        }
        let exact = Percentiles::of(values).unwrap();
        let kept = histogram.percentiles("lcp_ms").unwrap();
        assert_eq!(kept.count, 1_000);
        for (kept, exact) in [(kept.p50, exact.p50), (kept.p75, exact.p75), (kept.p95, exact.p95)] {
            assert!((kept - exact).abs() / exact <= 0.025, "{kept} against {exact}");
        }
        let mut scores = Histogram::default();
        for s in [40.0, 90.0, 91.0, 99.0] {
            scores.add("score", s);
        }
        assert_eq!(scores.percentiles("score").map(|p| (p.p50, p.p95)), Some((90.0, 99.0)), "scores are exact");
        let mut cls = Histogram::default();
        cls.add("cls", 0.12);
        let p50 = cls.percentiles("cls").unwrap().p50;
        assert!((p50 - 0.12).abs() <= 0.12 * 0.025, "{p50}");
    }

    #[test]
    fn tallies_add_up_like_the_urls_they_count() {
        let day1 = 20_000 * DAY;
        let tasks = [
            task(UrlStatus::Succeeded, Some(day1 + 5), 90.0, 100.0),
            task(UrlStatus::Succeeded, Some(day1 + DAY + 5), 50.0, 900.0),
            task(UrlStatus::Failed, Some(day1 + 7), 0.0, 0.0),
            task(UrlStatus::Cancelled, None, 0.0, 0.0),
        ];
        let days = tally_by_day(&tasks, day1 + DAY + 9);
        assert_eq!(days.keys().cloned().collect::<Vec<_>>(), [day_of(day1), day_of(day1 + DAY)]);
        let first = &days[&day_of(day1)];
        assert_eq!((first.succeeded, first.failed, first.cancelled), (1, 1, 0));
        assert_eq!(first.failures_by_kind, BTreeMap::from([("timeout".to_owned(), 1)]));
        assert_eq!(first.histograms["score"].count(), 1, "only successes are measured");
        assert_eq!(days[&day_of(day1 + DAY)].cancelled, 1, "never analysed: the day the job finished");

        let mut merged = first.clone();
        merged.merge(&days[&day_of(day1 + DAY)]);
        let view = DayView::new("both".into(), &merged);
        assert_eq!((view.analysed, view.succeeded, view.success_rate), (3, 2, Some(0.6667)));
        assert_eq!(view.score.as_ref().map(|p| (p.count, p.p50, p.p95)), Some((2, 50.0, 90.0)));
        assert!(view.metrics.contains_key("ttfb_ms") && view.metrics.contains_key("cls"), "{view:?}");
        let empty = DayView::new("none".into(), &DayTally::default());
        assert_eq!((empty.success_rate, empty.score), (None, None), "no analyses: no rate, never 0");
    }
}

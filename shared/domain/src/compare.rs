//! Comparing two jobs URL by URL: what a finished job keeps for it (its digest: each URL's
//! status and headline numbers, a few hundred bytes a URL), and the verdict on each URL,
//! judged beyond run-to-run noise.
//!
//! A change counts only when it is larger than the metric's noise: a floor in the metric's
//! unit, a share of the base value, and when either job measured each URL more than once, the
//! larger of the two jobs' spreads between runs (the range of the runs' values). The figures
//! are in [`NOISE`]; README "Comparing two jobs" gives their sources.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::history::Headline;
use crate::job::JobId;
use crate::named_enum;
use crate::task::{ErrorKind, UrlStatus, UrlTask};

named_enum!(
    /// What became of a URL from the base job to the head job. Listed in this order: what
    /// needs looking at first.
    Verdict {
        Regressed => "regressed",
        Improved => "improved",
        New => "new",
        Gone => "gone",
        Unchanged => "unchanged",
    }
);

/// Which way a metric gets better.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
}

/// How large a change of a metric must be to be more than noise: at least `floor` (in the
/// metric's unit) and at least `relative` times the base value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Noise {
    pub floor: f64,
    pub relative: f64,
    pub better: Better,
}

/// The metrics a verdict is judged on, and their noise. Other numbers are shown with their
/// change but judge nothing: they move with these (`dns_ms` inside `ttfb_ms`), or are
/// diagnostics.
pub const NOISE: [(&str, Noise); 17] = [
    ("score", Noise { floor: 5.0, relative: 0.0, better: Better::Higher }),
    ("desktop_score", Noise { floor: 5.0, relative: 0.0, better: Better::Higher }),
    ("delivery_score", Noise { floor: 5.0, relative: 0.0, better: Better::Higher }),
    ("desktop_delivery_score", Noise { floor: 5.0, relative: 0.0, better: Better::Higher }),
    ("fcp_ms", Noise { floor: 100.0, relative: 0.10, better: Better::Lower }),
    ("lcp_ms", Noise { floor: 100.0, relative: 0.10, better: Better::Lower }),
    ("speed_index_ms", Noise { floor: 100.0, relative: 0.10, better: Better::Lower }),
    ("tbt_ms", Noise { floor: 50.0, relative: 0.20, better: Better::Lower }),
    ("cls", Noise { floor: 0.02, relative: 0.10, better: Better::Lower }),
    ("ttfb_ms", Noise { floor: 50.0, relative: 0.10, better: Better::Lower }),
    ("total_ms", Noise { floor: 100.0, relative: 0.10, better: Better::Lower }),
    ("page_bytes", Noise { floor: 10_240.0, relative: 0.10, better: Better::Lower }),
    // Field data's p75s over 28 days of real visits have no run-to-run noise, but move with
    // the traffic mix from one day's window to the next: a change counts at the lab figures'
    // floors and shares (INP's floor is its thresholds' step of 50 ms, halved).
    ("field_lcp_ms", Noise { floor: 100.0, relative: 0.10, better: Better::Lower }),
    ("field_inp_ms", Noise { floor: 25.0, relative: 0.10, better: Better::Lower }),
    ("field_cls", Noise { floor: 0.02, relative: 0.10, better: Better::Lower }),
    ("field_fcp_ms", Noise { floor: 100.0, relative: 0.10, better: Better::Lower }),
    ("field_ttfb_ms", Noise { floor: 50.0, relative: 0.10, better: Better::Lower }),
];

pub fn noise_of(metric: &str) -> Option<Noise> {
    NOISE.iter().find(|(name, _)| *name == metric).map(|(_, noise)| *noise)
}

/// What a finished job keeps of each URL for comparisons, sorted by URL.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Digest {
    pub rows: Vec<DigestRow>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DigestRow {
    pub url: String,
    /// The URL's place in the job (`UrlTask::seq`), so a listing sorted from the digest can
    /// read just its page's URLs. Digests written before it was kept have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u32>,
    pub status: UrlStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<ErrorKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headline: Option<Headline>,
}

impl Digest {
    /// Where a finished job's digest is kept, beside its exports (and deleted with them).
    pub fn object_key(job: &JobId) -> String {
        format!("exports/{job}.digest.json")
    }

    pub fn of<'a>(tasks: impl IntoIterator<Item = &'a UrlTask>) -> Digest {
        let mut rows: Vec<DigestRow> = tasks
            .into_iter()
            .map(|task| DigestRow {
                url: task.url.clone(),
                seq: Some(task.seq),
                status: task.status,
                error_kind: task.error_kind.filter(|_| task.status == UrlStatus::Failed),
                headline: task.analysis.as_ref().filter(|_| task.status == UrlStatus::Succeeded).map(Headline::of),
            })
            .collect();
        rows.sort_by(|a, b| a.url.cmp(&b.url));
        Digest { rows }
    }
}

/// One number of a URL in both jobs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Change {
    pub metric: String,
    pub base: f64,
    pub head: f64,
    /// `head - base`.
    pub change: f64,
    /// The least change that counts, for the metrics verdicts are judged on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
}

/// A URL as one of the jobs left it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Side {
    pub status: UrlStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<ErrorKind>,
    /// The performance score, where the engine gives one.
    pub score: Option<f64>,
    /// The http engine's delivery score (not a performance score), where that is the URL's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_score: Option<f64>,
}

impl Side {
    fn of(row: &DigestRow) -> Side {
        let value = |name: &str| row.headline.as_ref().and_then(|h| h.values.get(name).copied());
        Side {
            status: row.status,
            error_kind: row.error_kind,
            score: value(crate::history::SCORE),
            delivery_score: value(crate::delivery::DELIVERY_SCORE),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UrlComparison {
    pub url: String,
    pub verdict: Verdict,
    /// What decided the verdict, in words (`lcp_ms +850 (noise 100)`, `failed: timeout`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    pub base: Option<Side>,
    pub head: Option<Side>,
    /// Every number both jobs measured for the URL, score first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
}

/// Every URL of either job, regressions first (then improved, new, gone, unchanged), by URL
/// within each verdict.
pub fn compare(base: &Digest, head: &Digest) -> Vec<UrlComparison> {
    let mut urls: BTreeMap<&str, (Option<&DigestRow>, Option<&DigestRow>)> = BTreeMap::new();
    for row in &base.rows {
        urls.entry(&row.url).or_default().0 = Some(row);
    }
    for row in &head.rows {
        urls.entry(&row.url).or_default().1 = Some(row);
    }
    let mut compared: Vec<UrlComparison> = urls.into_iter().map(|(url, (b, h))| compare_url(url, b, h)).collect();
    let rank = |v: Verdict| Verdict::ALL.iter().position(|x| *x == v).unwrap_or(usize::MAX);
    compared.sort_by(|a, b| rank(a.verdict).cmp(&rank(b.verdict)).then_with(|| a.url.cmp(&b.url)));
    compared
}

/// How many URLs got each verdict (every verdict named, 0 included).
pub fn counts(compared: &[UrlComparison]) -> BTreeMap<String, u64> {
    let mut counts: BTreeMap<String, u64> = Verdict::ALL.iter().map(|v| (v.as_str().to_owned(), 0)).collect();
    for url in compared {
        *counts.entry(url.verdict.as_str().to_owned()).or_default() += 1;
    }
    counts
}

fn compare_url(url: &str, base: Option<&DigestRow>, head: Option<&DigestRow>) -> UrlComparison {
    let mut compared = UrlComparison {
        url: url.to_owned(),
        verdict: Verdict::Unchanged,
        reasons: Vec::new(),
        base: base.map(Side::of),
        head: head.map(Side::of),
        changes: Vec::new(),
    };
    let (base, head) = match (base, head) {
        (None, _) => return UrlComparison { verdict: Verdict::New, ..compared },
        (_, None) => return UrlComparison { verdict: Verdict::Gone, ..compared },
        (Some(base), Some(head)) => (base, head),
    };
    let failed = |row: &DigestRow| match row.error_kind {
        Some(kind) => format!("failed: {kind}"),
        None => "failed".to_owned(),
    };
    match (&base.headline, &head.headline, base.status, head.status) {
        (Some(b), Some(h), _, _) => {
            compared.changes = changes(b, h);
            judge(&mut compared);
        }
        (Some(_), None, _, UrlStatus::Failed) => {
            compared.verdict = Verdict::Regressed;
            compared.reasons.push(failed(head));
        }
        (None, Some(_), UrlStatus::Failed, _) => {
            compared.verdict = Verdict::Improved;
            compared.reasons.push(format!("succeeded (was {})", failed(base)));
        }
        // Both failed, or one was cancelled: nothing measured to tell a change by.
        _ => {}
    }
    compared
}

/// Every number both headlines hold, score first, each judged where it has a noise.
fn changes(base: &Headline, head: &Headline) -> Vec<Change> {
    let mut changes: Vec<Change> = base
        .values
        .iter()
        .filter_map(|(metric, &b)| {
            let h = *head.values.get(metric)?;
            let mut change =
                Change { metric: metric.clone(), base: b, head: h, change: h - b, threshold: None, verdict: None };
            if let Some(noise) = noise_of(metric) {
                let spread = |headline: &Headline| headline.spread.get(metric).copied().unwrap_or(0.0);
                let threshold = noise.floor.max(noise.relative * b.abs()).max(spread(base)).max(spread(head));
                let worse = match noise.better {
                    Better::Higher => b - h,
                    Better::Lower => h - b,
                };
                change.threshold = Some(threshold);
                change.verdict = Some(if worse > threshold {
                    Verdict::Regressed
                } else if -worse > threshold {
                    Verdict::Improved
                } else {
                    Verdict::Unchanged
                });
            }
            Some(change)
        })
        .collect();
    changes.sort_by_key(|c| (c.metric != crate::history::SCORE, c.metric.clone()));
    changes
}

/// Any judged metric beyond its noise for the worse makes the URL regressed (a faster LCP
/// does not excuse a slower server); otherwise any for the better makes it improved.
fn judge(compared: &mut UrlComparison) {
    for wanted in [Verdict::Regressed, Verdict::Improved] {
        let reasons: Vec<String> = compared
            .changes
            .iter()
            .filter(|c| c.verdict == Some(wanted))
            .map(|c| format!("{} {:+} (noise {})", c.metric, round(c.change), round(c.threshold.unwrap_or(0.0))))
            .collect();
        if !reasons.is_empty() {
            compared.verdict = wanted;
            compared.reasons = reasons;
            return;
        }
    }
}

fn round(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Strategy;

    fn measured(url: &str, values: &[(&str, f64)], spread: &[(&str, f64)]) -> DigestRow {
        DigestRow {
            url: url.into(),
            seq: None,
            status: UrlStatus::Succeeded,
            error_kind: None,
            headline: Some(Headline {
                engine: "http".into(),
                strategy: Strategy::Mobile,
                values: values.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
                spread: spread.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
            }),
        }
    }

    fn failed(url: &str, kind: ErrorKind) -> DigestRow {
        DigestRow { url: url.into(), seq: None, status: UrlStatus::Failed, error_kind: Some(kind), headline: None }
    }

    fn verdict_of(base: DigestRow, head: DigestRow) -> UrlComparison {
        let compared = compare(&Digest { rows: vec![base] }, &Digest { rows: vec![head] });
        assert_eq!(compared.len(), 1);
        compared.into_iter().next().unwrap()
    }

    #[test]
    fn changes_within_the_noise_are_unchanged() {
        let u = verdict_of(
            measured("https://a", &[("score", 80.0), ("ttfb_ms", 20.0), ("lcp_ms", 2_000.0)], &[]),
            measured("https://a", &[("score", 76.0), ("ttfb_ms", 60.0), ("lcp_ms", 2_190.0)], &[]),
        );
        assert_eq!(u.verdict, Verdict::Unchanged, "{u:?}");
        assert_eq!(u.changes[0].metric, "score", "score first");
        assert_eq!(u.changes[0].threshold, Some(5.0));
        let lcp = u.changes.iter().find(|c| c.metric == "lcp_ms").unwrap();
        assert_eq!((lcp.change, lcp.threshold), (190.0, Some(200.0)), "10 % of 2000 ms is above the 100 ms floor");
    }

    #[test]
    fn a_slower_server_is_a_regression_whatever_else_improved() {
        let u = verdict_of(
            measured("https://a", &[("score", 90.0), ("ttfb_ms", 5.0), ("lcp_ms", 2_000.0)], &[]),
            measured("https://a", &[("score", 90.0), ("ttfb_ms", 805.0), ("lcp_ms", 1_000.0)], &[]),
        );
        assert_eq!(u.verdict, Verdict::Regressed);
        assert_eq!(u.reasons, ["ttfb_ms +800 (noise 50)"]);
        let better =
            verdict_of(measured("https://a", &[("score", 60.0)], &[]), measured("https://a", &[("score", 66.0)], &[]));
        assert_eq!(
            (better.verdict, better.reasons.as_slice()),
            (Verdict::Improved, &["score +6 (noise 5)".to_owned()][..])
        );
    }

    #[test]
    fn several_runs_widen_the_noise_to_their_spread() {
        let base = measured("https://a", &[("score", 80.0)], &[("score", 12.0)]);
        let head = measured("https://a", &[("score", 70.0)], &[("score", 3.0)]);
        let u = verdict_of(base.clone(), head);
        assert_eq!((u.verdict, u.changes[0].threshold), (Verdict::Unchanged, Some(12.0)));
        let u = verdict_of(base, measured("https://a", &[("score", 60.0)], &[]));
        assert_eq!(u.verdict, Verdict::Regressed);
    }

    #[test]
    fn failing_is_a_regression_and_recovering_an_improvement() {
        let ok = measured("https://a", &[("score", 80.0)], &[]);
        let broke = verdict_of(ok.clone(), failed("https://a", ErrorKind::Timeout));
        assert_eq!(
            (broke.verdict, broke.reasons.as_slice()),
            (Verdict::Regressed, &["failed: timeout".to_owned()][..])
        );
        assert_eq!(verdict_of(failed("https://a", ErrorKind::Dns), ok).verdict, Verdict::Improved);
        let both = verdict_of(failed("https://a", ErrorKind::Dns), failed("https://a", ErrorKind::Timeout));
        assert_eq!(both.verdict, Verdict::Unchanged);
    }

    #[test]
    fn urls_in_one_job_only_are_new_or_gone_and_regressions_come_first() {
        let base = Digest {
            rows: vec![
                measured("https://a", &[("score", 80.0)], &[]),
                measured("https://gone", &[("score", 80.0)], &[]),
                measured("https://z", &[("score", 80.0)], &[]),
            ],
        };
        let head = Digest {
            rows: vec![
                measured("https://a", &[("score", 81.0)], &[]),
                measured("https://new", &[("score", 80.0)], &[]),
                measured("https://z", &[("score", 20.0)], &[]),
            ],
        };
        let compared = compare(&base, &head);
        let order: Vec<(&str, Verdict)> = compared.iter().map(|u| (u.url.as_str(), u.verdict)).collect();
        assert_eq!(
            order,
            [
                ("https://z", Verdict::Regressed),
                ("https://new", Verdict::New),
                ("https://gone", Verdict::Gone),
                ("https://a", Verdict::Unchanged)
            ]
        );
        let counts = counts(&compared);
        assert_eq!(counts["regressed"], 1);
        assert_eq!(counts["improved"], 0, "every verdict is counted, 0 too");
        assert_eq!(counts.values().sum::<u64>(), 4);
    }

    #[test]
    fn a_digest_keeps_each_urls_outcome_and_place_sorted_by_url() {
        let task = |seq: u32, url: &str, status: UrlStatus| UrlTask {
            job_id: JobId::generate(),
            seq,
            url: url.into(),
            status,
            attempts: 1,
            error: None,
            error_kind: (status == UrlStatus::Failed).then_some(ErrorKind::Dns),
            analysis: None,
            analyzed_at: None,
            lease_until: None,
            tags: Default::default(),
        };
        let digest = Digest::of(&[task(0, "https://b", UrlStatus::Failed), task(1, "https://a", UrlStatus::Cancelled)]);
        let rows: Vec<(&str, Option<u32>, UrlStatus, Option<ErrorKind>)> =
            digest.rows.iter().map(|r| (r.url.as_str(), r.seq, r.status, r.error_kind)).collect();
        assert_eq!(
            rows,
            [
                ("https://a", Some(1), UrlStatus::Cancelled, None),
                ("https://b", Some(0), UrlStatus::Failed, Some(ErrorKind::Dns))
            ]
        );
        let kept: Digest = serde_json::from_slice(&serde_json::to_vec(&digest).unwrap()).unwrap();
        assert_eq!(kept, digest, "the place is kept");
    }

    #[test]
    fn a_digest_written_before_places_were_kept_still_reads() {
        let old = serde_json::json!({"rows": [{"url": "https://a", "status": "failed", "error_kind": "dns"}]});
        let read: Digest = serde_json::from_value(old).unwrap();
        assert_eq!(read.rows, [failed("https://a", ErrorKind::Dns)], "no place, everything else as it was");
    }
}

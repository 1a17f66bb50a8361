//! Field data: what real Chrome users experienced over the last 28 days, as the Chrome UX
//! Report (CrUX) keeps it. Each metric is read at its 75th percentile (p75) and judged
//! against Google's published Core Web Vitals thresholds; the page passes the assessment when
//! its Core Web Vitals are all good. A page with no record is "unavailable": never zero, and
//! never a failure of the URL.
//!
//! One vocabulary for every source: the CrUX API's records and the copy of a record inside
//! PageSpeed Insights' responses are both judged here, from their p75s (PSI's own FAST /
//! AVERAGE / SLOW use the same thresholds).

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

crate::named_enum! {
    /// How a p75 compares with its metric's thresholds.
    FieldCategory { Good => "good", NeedsImprovement => "needs_improvement", Poor => "poor" }
}

crate::named_enum! {
    /// Whose data it is: the URL's own, or (when CrUX has too few visits of the URL) its
    /// origin's.
    FieldSource { Url => "url", Origin => "origin" }
}

/// The metrics CrUX reports that a result keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FieldMetric {
    Lcp,
    Inp,
    Cls,
    Fcp,
    Ttfb,
}

impl FieldMetric {
    pub const ALL: [FieldMetric; 5] =
        [FieldMetric::Lcp, FieldMetric::Inp, FieldMetric::Cls, FieldMetric::Fcp, FieldMetric::Ttfb];

    /// The name in a result's metrics, after `field_` (as the lab metric it matches).
    pub fn name(self) -> &'static str {
        match self {
            FieldMetric::Lcp => "lcp_ms",
            FieldMetric::Inp => "inp_ms",
            FieldMetric::Cls => "cls",
            FieldMetric::Fcp => "fcp_ms",
            FieldMetric::Ttfb => "ttfb_ms",
        }
    }

    /// The CrUX API's name.
    pub fn crux_name(self) -> &'static str {
        match self {
            FieldMetric::Lcp => "largest_contentful_paint",
            FieldMetric::Inp => "interaction_to_next_paint",
            FieldMetric::Cls => "cumulative_layout_shift",
            FieldMetric::Fcp => "first_contentful_paint",
            FieldMetric::Ttfb => "experimental_time_to_first_byte",
        }
    }

    pub fn from_crux_name(name: &str) -> Option<FieldMetric> {
        FieldMetric::ALL.into_iter().find(|m| m.crux_name() == name)
    }

    /// Good at or below the first, poor above the second (web.dev's thresholds: LCP 2.5 s /
    /// 4 s, INP 200 / 500 ms, CLS 0.1 / 0.25, FCP 1.8 / 3 s, TTFB 0.8 / 1.8 s).
    pub fn thresholds(self) -> (f64, f64) {
        match self {
            FieldMetric::Lcp => (2_500.0, 4_000.0),
            FieldMetric::Inp => (200.0, 500.0),
            FieldMetric::Cls => (0.1, 0.25),
            FieldMetric::Fcp => (1_800.0, 3_000.0),
            FieldMetric::Ttfb => (800.0, 1_800.0),
        }
    }

    /// The three Core Web Vitals, which decide the assessment.
    pub fn is_core_web_vital(self) -> bool {
        matches!(self, FieldMetric::Lcp | FieldMetric::Inp | FieldMetric::Cls)
    }

    pub fn category(self, p75: f64) -> FieldCategory {
        let (good, poor) = self.thresholds();
        if p75 <= good {
            FieldCategory::Good
        } else if p75 <= poor {
            FieldCategory::NeedsImprovement
        } else {
            FieldCategory::Poor
        }
    }
}

/// The Core Web Vitals assessment: the worst category among the Core Web Vitals measured;
/// none without LCP and CLS (a page too rarely interacted with has no INP, and is judged on
/// the other two, as Google does).
pub fn overall(p75: &BTreeMap<FieldMetric, f64>) -> Option<FieldCategory> {
    if !(p75.contains_key(&FieldMetric::Lcp) && p75.contains_key(&FieldMetric::Cls)) {
        return None;
    }
    let worst = p75.iter().filter(|(metric, _)| metric.is_core_web_vital()).map(|(metric, v)| metric.category(*v));
    worst.max_by_key(|category| match category {
        FieldCategory::Good => 0,
        FieldCategory::NeedsImprovement => 1,
        FieldCategory::Poor => 2,
    })
}

/// One CrUX record for one form factor: whose it is, the 28 days it covers, and each metric's
/// p75.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldRecord {
    pub source: FieldSource,
    /// The first and last day (`yyyy-mm-dd`, both included); PageSpeed Insights' copy of a
    /// record does not say.
    pub period: Option<(String, String)>,
    pub p75: BTreeMap<FieldMetric, f64>,
}

impl FieldRecord {
    /// The record as a result's metrics: `field_<metric>` and `field_<metric>_category` per
    /// metric, `field_source`, `field_overall_category`, `field_period`. `prefix` is `""` or
    /// `desktop_` (a `both` job keeps the desktop record beside the phone one).
    pub fn metrics(&self, prefix: &str) -> Map<String, Value> {
        let mut out = Map::new();
        out.insert(format!("{prefix}field_source"), json!(self.source));
        if let Some((first, last)) = &self.period {
            out.insert(format!("{prefix}field_period"), json!(format!("{first}/{last}")));
        }
        for (metric, p75) in &self.p75 {
            out.insert(format!("{prefix}field_{}", metric.name()), json!(p75));
            out.insert(format!("{prefix}field_{}_category", metric.name()), json!(metric.category(*p75)));
        }
        if let Some(overall) = overall(&self.p75) {
            out.insert(format!("{prefix}field_overall_category"), json!(overall));
        }
        out
    }
}

/// The most weeks of history the CrUX History API gives (its `collectionPeriodCount`).
pub const MAX_HISTORY_WEEKS: usize = 40;

/// A URL's (or its origin's) weekly p75s from the CrUX History API: each entry covers the 28
/// days ending on its week's date; `None` where CrUX had too little data that week.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldHistory {
    pub source: FieldSource,
    /// Each period's last day (`yyyy-mm-dd`), oldest first.
    pub weeks: Vec<String>,
    /// One value per week for each metric reported.
    pub p75s: BTreeMap<FieldMetric, Vec<Option<f64>>>,
}

impl FieldHistory {
    /// The series as a result's `field_history` (or `desktop_field_history`):
    /// `{"source", "weeks": [...], "<metric>": [p75 or null, ...]}`.
    pub fn metrics(&self, prefix: &str) -> Map<String, Value> {
        let mut series = Map::new();
        series.insert("source".into(), json!(self.source));
        series.insert("weeks".into(), json!(self.weeks));
        for (metric, values) in &self.p75s {
            series.insert(metric.name().into(), json!(values));
        }
        let mut out = Map::new();
        out.insert(format!("{prefix}field_history"), Value::Object(series));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_metric_is_judged_by_its_thresholds_inclusive_of_good() {
        assert_eq!(FieldMetric::Lcp.category(2_500.0), FieldCategory::Good);
        assert_eq!(FieldMetric::Lcp.category(2_501.0), FieldCategory::NeedsImprovement);
        assert_eq!(FieldMetric::Lcp.category(4_000.0), FieldCategory::NeedsImprovement);
        assert_eq!(FieldMetric::Lcp.category(4_001.0), FieldCategory::Poor);
        assert_eq!(FieldMetric::Cls.category(0.1), FieldCategory::Good);
        assert_eq!(FieldMetric::Cls.category(0.26), FieldCategory::Poor);
        assert_eq!(FieldMetric::Inp.category(350.0), FieldCategory::NeedsImprovement);
        assert_eq!(FieldMetric::Ttfb.category(1_900.0), FieldCategory::Poor);
    }

    #[test]
    fn the_assessment_is_the_worst_core_web_vital_and_needs_lcp_and_cls() {
        let p75 = |pairs: &[(FieldMetric, f64)]| pairs.iter().copied().collect::<BTreeMap<_, _>>();
        let good = p75(&[(FieldMetric::Lcp, 1_800.0), (FieldMetric::Cls, 0.02), (FieldMetric::Inp, 120.0)]);
        assert_eq!(overall(&good), Some(FieldCategory::Good));
        // A slow TTFB is not a Core Web Vital: the assessment still passes.
        let mut slow_server = good.clone();
        slow_server.insert(FieldMetric::Ttfb, 3_000.0);
        assert_eq!(overall(&slow_server), Some(FieldCategory::Good));
        let poor_inp = p75(&[(FieldMetric::Lcp, 1_800.0), (FieldMetric::Cls, 0.02), (FieldMetric::Inp, 600.0)]);
        assert_eq!(overall(&poor_inp), Some(FieldCategory::Poor));
        let no_inp = p75(&[(FieldMetric::Lcp, 3_000.0), (FieldMetric::Cls, 0.02)]);
        assert_eq!(overall(&no_inp), Some(FieldCategory::NeedsImprovement), "judged on LCP and CLS");
        assert_eq!(overall(&p75(&[(FieldMetric::Lcp, 1_000.0)])), None);
    }

    #[test]
    fn a_record_becomes_field_metrics_with_their_categories() {
        let record = FieldRecord {
            source: FieldSource::Origin,
            period: Some(("2026-11-01".into(), "2026-11-28".into())),
            p75: [(FieldMetric::Lcp, 2_900.0), (FieldMetric::Cls, 0.05)].into_iter().collect(),
        };
        let metrics = record.metrics("desktop_");
        assert_eq!(metrics["desktop_field_lcp_ms"], 2_900.0);
        assert_eq!(metrics["desktop_field_lcp_ms_category"], "needs_improvement");
        assert_eq!(metrics["desktop_field_cls_category"], "good");
        assert_eq!(metrics["desktop_field_source"], "origin");
        assert_eq!(metrics["desktop_field_overall_category"], "needs_improvement");
        assert_eq!(metrics["desktop_field_period"], "2026-11-01/2026-11-28");
        assert!(!metrics.contains_key("desktop_field_inp_ms"), "what CrUX did not report is absent, never zero");
    }

    #[test]
    fn a_history_is_one_series_per_metric_with_its_weeks() {
        let history = FieldHistory {
            source: FieldSource::Url,
            weeks: vec!["2026-11-21".into(), "2026-11-28".into()],
            p75s: [(FieldMetric::Lcp, vec![None, Some(2_100.0)])].into_iter().collect(),
        };
        let metrics = history.metrics("");
        assert_eq!(
            metrics["field_history"],
            json!({"source": "url", "weeks": ["2026-11-21", "2026-11-28"], "lcp_ms": [null, 2100.0]})
        );
    }

    #[test]
    fn crux_names_round_trip() {
        for metric in FieldMetric::ALL {
            assert_eq!(FieldMetric::from_crux_name(metric.crux_name()), Some(metric));
        }
    }
}

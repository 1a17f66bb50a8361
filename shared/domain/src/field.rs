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

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::settings::{EngineKind, Strategy};

/// What field data a job (or a monitor's runs) asks for: on the wire `field_data` and
/// `field_history`, both false unless asked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldAsk {
    /// Each URL's Chrome UX Report record (the URL's, else its origin's) per form factor.
    #[serde(rename = "field_data", default, skip_serializing_if = "is_false")]
    pub data: bool,
    /// Its weekly p75 series too (up to 40 weeks).
    #[serde(rename = "field_history", default, skip_serializing_if = "is_false")]
    pub history: bool,
}

fn is_false(flag: &bool) -> bool {
    !*flag
}

impl FieldAsk {
    pub const NONE: FieldAsk = FieldAsk { data: false, history: false };

    pub fn is_none(&self) -> bool {
        !self.data
    }

    /// What a submission's `field_data` and `field_history` (each absent, or as given) ask
    /// for with `engine`, where the deployment has field data (`offered`), or each problem by
    /// field. `field_history` and engine `none` imply `field_data` when it is left out, and
    /// contradict it when it is false.
    pub fn resolve(
        engine: EngineKind,
        data: Option<bool>,
        history: Option<bool>,
        offered: bool,
    ) -> Result<FieldAsk, Vec<(&'static str, String)>> {
        let mut problems = Vec::new();
        let history = history.unwrap_or(false);
        let implied = history || !engine.is_lab();
        let data = match data {
            Some(false) if !engine.is_lab() => {
                problems.push((
                    "field_data",
                    "engine none measures field data only: leave field_data out or set it true".into(),
                ));
                false
            }
            Some(false) if history => {
                problems.push(("field_history", "needs field_data: leave field_data out or set it true".into()));
                false
            }
            Some(data) => data,
            None => implied,
        };
        if data && !offered {
            let field = if engine.is_lab() { "field_data" } else { "engine" };
            problems.push((
                field,
                "this deployment has no Chrome UX Report key, so no field data: its operator sets CruxApiKeyParameter or CruxApiKeySecret".into(),
            ));
        }
        if problems.is_empty() { Ok(FieldAsk { data, history: data && history }) } else { Err(problems) }
    }

    /// How the ask tells results apart in the reuse cache: a result without field data does
    /// not stand in for one with it.
    pub fn cache_part(self) -> &'static str {
        match (self.data, self.history) {
            (false, _) => "",
            (true, false) => "field",
            (true, true) => "field+history",
        }
    }
}

crate::named_enum! {
    /// Whether a URL whose job asked for field data has it: `unavailable` when the Chrome UX
    /// Report has no record of the URL or its origin (too few visits), `error` when it could
    /// not be asked (the reason is `field_error`; the lab result stands).
    FieldStatus { Available => "available", Unavailable => "unavailable", Error => "error" }
}

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

/// One form factor's field data as the Chrome UX Report gave it: the record (none when CrUX
/// has no data of the URL or its origin) and, when asked, the weekly series.
#[derive(Clone, Debug, PartialEq)]
pub struct FormFactorField {
    pub strategy: Strategy,
    pub record: Option<FieldRecord>,
    pub history: Option<FieldHistory>,
}

impl FormFactorField {
    fn metrics(&self) -> Map<String, Value> {
        let mut out = match &self.record {
            Some(record) => record.metrics(""),
            None => Map::new(),
        };
        let status = if self.record.is_some() { FieldStatus::Available } else { FieldStatus::Unavailable };
        out.insert(STATUS.into(), json!(status));
        if let Some(history) = &self.history {
            out.extend(history.metrics(""));
        }
        out
    }
}

const STATUS: &str = "field_status";
const OVERALL: &str = "field_overall_category";

/// Adds field data to a result's metrics as the lab's form factors are laid out
/// (`engine::runs`): the first form factor's at the top, desktop's (strategy `both`) inside
/// `desktop`, with its verdict also as `desktop_field_overall_category` beside
/// `desktop_score`. Field data replaces PageSpeed Insights' copy of the same record.
pub fn add_to(metrics: &mut Map<String, Value>, found: &[FormFactorField]) {
    for (index, form_factor) in found.iter().enumerate() {
        let field = form_factor.metrics();
        if index == 0 {
            metrics.extend(field);
            continue;
        }
        let name = form_factor.strategy.as_str();
        if let Some(overall) = field.get(OVERALL) {
            metrics.insert(format!("{name}_{OVERALL}"), overall.clone());
        }
        let nested = metrics.entry(name).or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(nested) = nested {
            nested.extend(field);
        }
    }
}

/// Marks a result whose field data could not be had (the lab result stands): `field_status`
/// `error` and why.
pub fn add_error(metrics: &mut Map<String, Value>, reason: &str) {
    metrics.insert(STATUS.into(), json!(FieldStatus::Error));
    metrics.insert("field_error".into(), json!(reason));
}

/// What `GET /results?field_overall_category=` keeps: URLs with this Core Web Vitals verdict,
/// or (`unavailable`) those whose job asked for field data and got no verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldFilter {
    Verdict(FieldCategory),
    Unavailable,
}

impl FieldFilter {
    const UNAVAILABLE: &'static str = "unavailable";

    /// Every value the filter takes, as written in a query.
    pub fn names() -> impl Iterator<Item = &'static str> {
        FieldCategory::ALL.iter().map(|category| category.as_str()).chain([Self::UNAVAILABLE])
    }
}

impl std::str::FromStr for FieldFilter {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            FieldFilter::UNAVAILABLE => Ok(FieldFilter::Unavailable),
            other => other.parse().map(FieldFilter::Verdict).map_err(|_| {
                format!("{other:?} is not one of {}", FieldFilter::names().collect::<Vec<_>>().join(", "))
            }),
        }
    }
}

// The API documents the filter as the strings it takes: a schema-driven client (or fuzzer)
// then never sends a value the API refuses.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for FieldFilter {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(FieldFilter::names()))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for FieldFilter {}

impl FieldFilter {
    pub fn matches(self, metrics: &Map<String, Value>) -> bool {
        let verdict = metrics.get(OVERALL).and_then(Value::as_str);
        match self {
            FieldFilter::Verdict(category) => verdict == Some(category.as_str()),
            FieldFilter::Unavailable => metrics.contains_key(STATUS) && verdict.is_none(),
        }
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

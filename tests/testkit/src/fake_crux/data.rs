//! The records: deterministic per identifier and form factor, in CrUX's shapes.
//!
//! Every value is drawn from a hash of the normalized identifier (`url:` or `origin:` and its
//! key), so a record never changes between runs or servers. A metric's phone p75 is drawn in
//! a plausible range; desktop is the phone value times a factor below 1 for the timings (so
//! desktop is faster), tablet their mean and "all form factors" three quarters phone. The
//! histogram's three densities agree with the p75 (good >= 75 % exactly when the p75 is good,
//! and so on) and a p75 never sits exactly on a threshold.

use super::*;

/// One of the five metrics CrUX reports as a three-bin histogram and a p75.
pub(super) struct HistogramMetric {
    pub(super) name: &'static str,
    /// Upper edge of the good bin and lower edge of the poor one, in units.
    pub(super) good: u64,
    pub(super) poor: u64,
    /// CLS is counted in hundredths and reported as a string with two decimals; the others
    /// are milliseconds, reported as numbers.
    pub(super) cls: bool,
    /// Where a phone p75 falls, in units.
    phone: (f64, f64),
    /// Desktop p75 = phone p75 times a factor in this range.
    desktop_factor: (f64, f64),
}

pub(super) const LCP: &str = "largest_contentful_paint";
pub(super) const INP: &str = "interaction_to_next_paint";
pub(super) const CLS: &str = "cumulative_layout_shift";
pub(super) const FCP: &str = "first_contentful_paint";
pub(super) const TTFB: &str = "experimental_time_to_first_byte";
pub(super) const NAVIGATION_TYPES: &str = "navigation_types";
pub(super) const FORM_FACTORS: &str = "form_factors";
pub(super) const LCP_RESOURCE_TYPE: &str = "largest_contentful_paint_resource_type";
pub(super) const LCP_IMAGE_TTFB: &str = "largest_contentful_paint_image_time_to_first_byte";

pub(super) const HISTOGRAM_METRICS: [HistogramMetric; 5] = [
    HistogramMetric {
        name: LCP,
        good: 2500,
        poor: 4000,
        cls: false,
        phone: (1200.0, 5200.0),
        desktop_factor: (0.45, 0.8),
    },
    HistogramMetric { name: INP, good: 200, poor: 500, cls: false, phone: (70.0, 650.0), desktop_factor: (0.3, 0.6) },
    HistogramMetric { name: CLS, good: 10, poor: 25, cls: true, phone: (0.0, 32.0), desktop_factor: (0.5, 1.1) },
    HistogramMetric {
        name: FCP,
        good: 1800,
        poor: 3000,
        cls: false,
        phone: (800.0, 3800.0),
        desktop_factor: (0.45, 0.8),
    },
    HistogramMetric {
        name: TTFB,
        good: 800,
        poor: 1800,
        cls: false,
        phone: (250.0, 2300.0),
        desktop_factor: (0.5, 0.85),
    },
];

/// Where TTFB is in [`HISTOGRAM_METRICS`] (the LCP image's TTFB is drawn around it).
const TTFB_INDEX: usize = 4;

const NAVIGATION_KINDS: [(&str, f64, f64); 7] = [
    ("navigate", 0.55, 0.8),
    ("navigate_cache", 0.02, 0.1),
    ("reload", 0.01, 0.05),
    ("restore", 0.0, 0.01),
    ("back_forward", 0.01, 0.05),
    ("back_forward_cache", 0.05, 0.2),
    ("prerender", 0.0, 0.1),
];

/// Weeks of a `sparse-history` identifier older than this (counting the newest as 0) have
/// too little data: `null` p75s and `"NaN"` densities.
pub(super) const SPARSE_RECENT_WEEKS: u32 = 10;

impl HistogramMetric {
    /// The p75 before rounding, for `form_factor`.
    fn raw_p75(&self, seed: u64, form_factor: Option<FormFactor>, slow: bool) -> f64 {
        let factor = uniform(derive(seed, 1), self.desktop_factor.0, self.desktop_factor.1);
        let (phone, desktop) = if slow {
            let floor = self.poor as f64 * 1.05;
            let phone = uniform(derive(seed, 0), self.poor as f64 * 1.3, self.poor as f64 * 2.2);
            (phone, floor + (phone - floor) * factor)
        } else {
            let phone = uniform(derive(seed, 0), self.phone.0, self.phone.1);
            (phone, phone * factor)
        };
        match form_factor {
            Some(FormFactor::Phone) => phone,
            Some(FormFactor::Desktop) => desktop,
            Some(FormFactor::Tablet) => (phone + desktop) / 2.0,
            None => 0.75 * phone + 0.25 * desktop,
        }
    }

    /// Rounded to the reported precision, never exactly on a threshold.
    pub(super) fn quantize(&self, raw: f64) -> u64 {
        let q = raw.round().max(if self.cls { 0.0 } else { 1.0 }) as u64;
        if q == self.good || q == self.poor { q + 1 } else { q }
    }

    /// 0 good, 1 needs improvement, 2 poor.
    pub(super) fn category(&self, p75: u64) -> usize {
        if p75 <= self.good {
            0
        } else if p75 <= self.poor {
            1
        } else {
            2
        }
    }

    pub(super) fn format(&self, units: u64) -> Value {
        if self.cls { Value::from(format!("{}.{:02}", units / 100, units % 100)) } else { Value::from(units) }
    }

    fn bin(&self, start: u64, end: Option<u64>) -> Map<String, Value> {
        let mut bin = Map::new();
        bin.insert("start".into(), self.format(start));
        if let Some(end) = end {
            bin.insert("end".into(), self.format(end));
        }
        bin
    }

    fn bins(&self) -> [Map<String, Value>; 3] {
        [self.bin(0, Some(self.good)), self.bin(self.good, Some(self.poor)), self.bin(self.poor, None)]
    }
}

/// Good, needs-improvement and poor densities in ten-thousandths, summing to 10 000 and
/// agreeing with `category`.
pub(super) fn densities(seed: u64, category: usize) -> [u32; 3] {
    let a = unit_interval(splitmix64(derive(seed, 10)));
    let b = unit_interval(splitmix64(derive(seed, 11)));
    let (good, up_to_ni) = match category {
        0 => {
            let good = 7_600 + (1_900.0 * a) as u32;
            (good, good + ((10_000 - good) as f64 * (0.5 + 0.3 * b)) as u32)
        }
        1 => (4_000 + (3_400.0 * a) as u32, 7_600 + (1_900.0 * b) as u32),
        _ => {
            let good = 2_000 + (3_500.0 * a) as u32;
            (good, good + 500 + ((7_400 - good - 500) as f64 * b) as u32)
        }
    };
    [good, up_to_ni - good, 10_000 - up_to_ni]
}

fn share(ten_thousandths: u32) -> Value {
    Value::from(f64::from(ten_thousandths) / 10_000.0)
}

/// Weights in `[lo, hi)` scaled to ten-thousandths summing to 10 000 (the remainder goes to
/// the first).
fn fractions(seed: u64, ranges: &[(&str, f64, f64)], wobble: f64) -> Vec<u32> {
    let weights: Vec<f64> = ranges
        .iter()
        .enumerate()
        .map(|(i, (_, lo, hi))| uniform(derive(seed, i as u64), *lo, *hi) * (1.0 + wobble * (i as f64 % 3.0 - 1.0)))
        .collect();
    let total: f64 = weights.iter().sum();
    let mut parts: Vec<u32> = weights.iter().map(|w| (w / total * 10_000.0) as u32).collect();
    let rest = 10_000 - parts.iter().sum::<u32>();
    parts[0] += rest;
    parts
}

/// One metric's fractions by kind, in ten-thousandths (`navigate` -> 7100, ...).
type Fractions = Vec<(&'static str, u32)>;
/// One metric's weekly fractions by kind.
type FractionSeries = Vec<(&'static str, Vec<Value>)>;

/// What the fake knows about one identifier and form factor.
pub(super) struct Subject<'a> {
    request: &'a CruxRequest,
    seed: u64,
    /// `seed` and the form factor: what densities and fractions are drawn from.
    form_seed: u64,
    slow: bool,
    sparse: bool,
    no_inp: bool,
}

impl<'a> Subject<'a> {
    /// `None` when CrUX has no data for the identifier (see the module docs). `origin_hidden`:
    /// its origin is one of [`FakeCruxConfig::origins_without_data`].
    pub(super) fn find(request: &'a CruxRequest, origin_hidden: bool) -> Option<Subject<'a>> {
        let id = &request.identifier;
        let sent = id.sent_text();
        if sent.contains(NO_FIELD_DATA) || origin_hidden {
            return None;
        }
        if id.is_url() && sent.contains(ORIGIN_ONLY) {
            return None;
        }
        let kind = if id.is_url() { "url" } else { "origin" };
        let seed = fnv1a(&format!("{kind}:{}", id.key));
        let form_code = match request.form_factor {
            None => 0,
            Some(FormFactor::Phone) => 1,
            Some(FormFactor::Desktop) => 2,
            Some(FormFactor::Tablet) => 3,
        };
        Some(Subject {
            request,
            seed,
            form_seed: derive(seed, 1_000 + form_code),
            slow: sent.contains(SLOW_FIELD),
            sparse: sent.contains(SPARSE_HISTORY),
            no_inp: sent.contains(NO_INP),
        })
    }

    fn wanted(&self, name: &str) -> bool {
        if name == INP && self.no_inp {
            return false;
        }
        if name == FORM_FACTORS && self.request.form_factor.is_some() {
            return false;
        }
        self.request.metrics.as_ref().is_none_or(|asked| asked.iter().any(|m| m == name))
    }

    /// Unrounded p75 of `metric` in the week `weeks_ago` (0: the current period). Older weeks
    /// are a random walk back from the current value, so every history ends on the record.
    fn raw_p75(&self, index: usize, weeks_ago: u32) -> f64 {
        let metric = &HISTOGRAM_METRICS[index];
        let metric_seed = derive(self.seed, index as u64);
        let mut walk = 0.0;
        for k in 1..=weeks_ago {
            walk += uniform(derive(derive(metric_seed, 500), u64::from(k)), -0.06, 0.06);
        }
        let raw = metric.raw_p75(metric_seed, self.request.form_factor, self.slow) * f64::exp(walk);
        if self.slow { raw.max(metric.poor as f64 * 1.05) } else { raw }
    }

    /// The p75 and densities of metric `index` in week `weeks_ago`.
    fn histogram_metric(&self, index: usize, weeks_ago: u32) -> (u64, [u32; 3]) {
        let metric = &HISTOGRAM_METRICS[index];
        let p75 = metric.quantize(self.raw_p75(index, weeks_ago));
        let seed = derive(derive(self.form_seed, index as u64), 100 + u64::from(weeks_ago));
        (p75, densities(seed, metric.category(p75)))
    }

    fn lcp_image_ttfb(&self, weeks_ago: u32) -> u64 {
        let ttfb = self.raw_p75(TTFB_INDEX, weeks_ago);
        (ttfb * uniform(derive(self.form_seed, 40), 0.85, 1.05)).round().max(1.0) as u64
    }

    /// The lists of fractions CrUX reports besides the histograms, for `weeks_ago`.
    fn fraction_metrics(&self, weeks_ago: u32) -> Vec<(&'static str, Fractions)> {
        // The current period is the base draw; older ones move a little around it.
        let wobble =
            if weeks_ago == 0 { 0.0 } else { uniform(derive(self.form_seed, 600 + u64::from(weeks_ago)), -0.1, 0.1) };
        let label = |ranges: &[(&'static str, f64, f64)], parts: Vec<u32>| {
            ranges.iter().map(|r| r.0).zip(parts).collect::<Vec<_>>()
        };
        let mut out = Vec::new();
        if self.wanted(NAVIGATION_TYPES) {
            out.push((
                NAVIGATION_TYPES,
                label(&NAVIGATION_KINDS, fractions(derive(self.form_seed, 20), &NAVIGATION_KINDS, wobble)),
            ));
        }
        if self.wanted(FORM_FACTORS) {
            // Phone first so that it takes the remainder; reported in key order anyway.
            let ranges = [("phone", 0.55, 0.75), ("desktop", 0.2, 0.4), ("tablet", 0.01, 0.06)];
            out.push((FORM_FACTORS, label(&ranges, fractions(derive(self.seed, 21), &ranges, wobble))));
        }
        if self.wanted(LCP_RESOURCE_TYPE) {
            let ranges = [("image", 0.4, 0.9), ("text", 0.1, 0.6)];
            out.push((LCP_RESOURCE_TYPE, label(&ranges, fractions(derive(self.form_seed, 22), &ranges, wobble))));
        }
        out
    }

    fn key(&self) -> Value {
        let mut key = Map::new();
        if let Some(form_factor) = self.request.form_factor {
            key.insert("formFactor".into(), form_factor.as_str().into());
        }
        let field = if self.request.identifier.is_url() { "url" } else { "origin" };
        key.insert(field.into(), self.request.identifier.key.clone().into());
        Value::Object(key)
    }

    fn wrap(&self, record: Map<String, Value>) -> Value {
        let mut body = Map::new();
        body.insert("record".into(), Value::Object(record));
        let id = &self.request.identifier;
        if let Identifier::Url(sent) = &id.sent
            && *sent != id.key
        {
            body.insert("urlNormalizationDetails".into(), json!({"originalUrl": sent, "normalizedUrl": id.key}));
        }
        Value::Object(body)
    }

    /// A `queryRecord` body, or `None` when no metric asked for is there (404).
    pub(super) fn record(&self, last_date: CruxDate) -> Option<Value> {
        let mut metrics = Map::new();
        for (index, metric) in HISTOGRAM_METRICS.iter().enumerate() {
            if !self.wanted(metric.name) {
                continue;
            }
            let (p75, densities) = self.histogram_metric(index, 0);
            let histogram: Vec<Value> = metric
                .bins()
                .into_iter()
                .zip(densities)
                .map(|(mut bin, density)| {
                    bin.insert("density".into(), share(density));
                    Value::Object(bin)
                })
                .collect();
            metrics.insert(
                metric.name.into(),
                json!({"histogram": histogram, "percentiles": {"p75": metric.format(p75)}}),
            );
        }
        for (name, parts) in self.fraction_metrics(0) {
            let fractions: Map<String, Value> = parts.into_iter().map(|(k, v)| (k.to_owned(), share(v))).collect();
            metrics.insert(name.into(), json!({"fractions": fractions}));
        }
        if self.wanted(LCP_IMAGE_TTFB) {
            metrics.insert(LCP_IMAGE_TTFB.into(), json!({"percentiles": {"p75": self.lcp_image_ttfb(0)}}));
        }
        if metrics.is_empty() {
            return None;
        }
        let mut record = Map::new();
        record.insert("key".into(), self.key());
        record.insert("metrics".into(), Value::Object(metrics));
        record.insert("collectionPeriod".into(), collection_period(last_date, 0));
        Some(self.wrap(record))
    }

    /// A `queryHistoryRecord` body over `self.request.periods` weeks, oldest first, or `None`.
    pub(super) fn history(&self, last_date: CruxDate) -> Option<Value> {
        let periods = self.request.periods;
        // Index i of every series is the week `periods - 1 - i` weeks before the newest.
        let weeks: Vec<u32> = (0..periods).rev().collect();
        let missing = |weeks_ago: u32| self.sparse && weeks_ago > SPARSE_RECENT_WEEKS;
        let nan = || Value::from("NaN");

        let mut metrics = Map::new();
        for (index, metric) in HISTOGRAM_METRICS.iter().enumerate() {
            if !self.wanted(metric.name) {
                continue;
            }
            let mut series: [Vec<Value>; 3] = Default::default();
            let mut p75s = Vec::with_capacity(weeks.len());
            for &weeks_ago in &weeks {
                if missing(weeks_ago) {
                    series.iter_mut().for_each(|s| s.push(nan()));
                    p75s.push(Value::Null);
                    continue;
                }
                let (p75, densities) = self.histogram_metric(index, weeks_ago);
                for (s, density) in series.iter_mut().zip(densities) {
                    s.push(share(density));
                }
                p75s.push(metric.format(p75));
            }
            let timeseries: Vec<Value> = metric
                .bins()
                .into_iter()
                .zip(series)
                .map(|(mut bin, densities)| {
                    bin.insert("densities".into(), Value::Array(densities));
                    Value::Object(bin)
                })
                .collect();
            metrics.insert(
                metric.name.into(),
                json!({"histogramTimeseries": timeseries, "percentilesTimeseries": {"p75s": p75s}}),
            );
        }

        let mut fraction_series: Vec<(&'static str, FractionSeries)> = Vec::new();
        for &weeks_ago in &weeks {
            for (i, (name, parts)) in self.fraction_metrics(weeks_ago).into_iter().enumerate() {
                if fraction_series.len() <= i {
                    fraction_series.push((name, parts.iter().map(|(k, _)| (*k, Vec::new())).collect()));
                }
                for ((_, values), (_, part)) in fraction_series[i].1.iter_mut().zip(parts) {
                    values.push(if missing(weeks_ago) { nan() } else { share(part) });
                }
            }
        }
        for (name, parts) in fraction_series {
            let by_kind: Map<String, Value> =
                parts.into_iter().map(|(k, values)| (k.to_owned(), json!({"fractions": values}))).collect();
            metrics.insert(name.into(), json!({"fractionTimeseries": by_kind}));
        }
        if self.wanted(LCP_IMAGE_TTFB) {
            let p75s: Vec<Value> =
                weeks.iter().map(|&w| if missing(w) { Value::Null } else { self.lcp_image_ttfb(w).into() }).collect();
            metrics.insert(LCP_IMAGE_TTFB.into(), json!({"percentilesTimeseries": {"p75s": p75s}}));
        }
        if metrics.is_empty() {
            return None;
        }
        let mut record = Map::new();
        record.insert("key".into(), self.key());
        record.insert("metrics".into(), Value::Object(metrics));
        record.insert(
            "collectionPeriods".into(),
            Value::Array(weeks.iter().map(|&w| collection_period(last_date, w)).collect()),
        );
        Some(self.wrap(record))
    }
}

/// The 28 days ending `weeks_ago` weeks before `last_date`.
pub(super) fn collection_period(last_date: CruxDate, weeks_ago: u32) -> Value {
    let last = last_date.plus_days(-7 * i64::from(weeks_ago));
    json!({"firstDate": last.plus_days(-27).to_json(), "lastDate": last.to_json()})
}

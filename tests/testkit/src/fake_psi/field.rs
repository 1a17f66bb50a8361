//! Field data (CrUX), deterministic per URL so runs are reproducible.

use super::*;

/// (name, p75 at or below which it is FAST, at or below which AVERAGE, plausible p75 range).
pub(super) const FIELD_METRICS: [(&str, u64, u64, u64, u64); 5] = [
    ("LARGEST_CONTENTFUL_PAINT_MS", 2500, 4000, 900, 6000),
    // CrUX reports CLS multiplied by 100.
    ("CUMULATIVE_LAYOUT_SHIFT_SCORE", 10, 25, 0, 40),
    ("INTERACTION_TO_NEXT_PAINT", 200, 500, 60, 700),
    ("FIRST_CONTENTFUL_PAINT_MS", 1800, 3000, 600, 4500),
    ("EXPERIMENTAL_TIME_TO_FIRST_BYTE", 800, 1800, 200, 2600),
];

/// The metrics Google derives `overall_category` from (the Core Web Vitals).
pub(super) const CORE_WEB_VITALS: [&str; 3] =
    ["LARGEST_CONTENTFUL_PAINT_MS", "CUMULATIVE_LAYOUT_SHIFT_SCORE", "INTERACTION_TO_NEXT_PAINT"];

pub(super) fn loading_experiences(url: &str) -> (Value, Value) {
    if url.contains("no-field-data") {
        return (json!({"initial_url": url}), json!({"initial_url": url}));
    }
    let origin = origin_of(url);
    let (origin_metrics, origin_overall) = crux_record(origin);
    let origin_loading = json!({
        "id": origin,
        "metrics": origin_metrics,
        "overall_category": origin_overall,
        "initial_url": url,
    });
    let loading = if url.contains("origin-only") {
        json!({
            "id": origin,
            "metrics": origin_loading["metrics"],
            "overall_category": origin_overall,
            "initial_url": url,
            "origin_fallback": true,
        })
    } else {
        let (metrics, overall) = crux_record(url);
        json!({"id": url, "metrics": metrics, "overall_category": overall, "initial_url": url})
    };
    (loading, origin_loading)
}

/// Metrics and overall category for `key`, stable across runs.
pub(super) fn crux_record(key: &str) -> (Value, &'static str) {
    let seed = fnv1a(key);
    let mut metrics = Map::new();
    let mut overall = "FAST";
    for (i, &(name, good, poor, lo, hi)) in FIELD_METRICS.iter().enumerate() {
        let metric = crux_metric(seed ^ (i as u64 + 1).wrapping_mul(GOLDEN_GAMMA), good, poor, lo, hi);
        if CORE_WEB_VITALS.contains(&name) && severity(metric.category) > severity(overall) {
            overall = metric.category;
        }
        let [good_share, ni_share, poor_share] = metric.proportions;
        metrics.insert(
            name.into(),
            json!({
                "percentile": metric.p75,
                "distributions": [
                    {"min": 0, "max": good, "proportion": good_share},
                    {"min": good, "max": poor, "proportion": ni_share},
                    {"min": poor, "proportion": poor_share},
                ],
                "category": metric.category,
            }),
        );
    }
    (Value::Object(metrics), overall)
}

pub(super) fn severity(category: &str) -> u8 {
    match category {
        "FAST" => 0,
        "AVERAGE" => 1,
        _ => 2,
    }
}

/// A p75 in `[lo, hi]` and good/needs-improvement/poor proportions consistent
/// with it: FAST means at least 75% good, SLOW means under 75% not poor.
pub(super) struct CruxMetric {
    p75: u64,
    /// Good, needs-improvement, poor; rounded to 4 decimals like CrUX.
    pub(super) proportions: [f64; 3],
    pub(super) category: &'static str,
}

pub(super) fn crux_metric(seed: u64, good: u64, poor: u64, lo: u64, hi: u64) -> CruxMetric {
    let h0 = unit_interval(splitmix64(seed));
    let h1 = unit_interval(splitmix64(seed.wrapping_add(1)));
    let h2 = unit_interval(splitmix64(seed.wrapping_add(2)));
    let p75 = lo + ((hi - lo) as f64 * h0).round() as u64;
    let (category, good_share, ni_share) = if p75 <= good {
        let g = 0.75 + 0.2 * h1;
        ("FAST", g, (1.0 - g) * (0.5 + 0.3 * h2))
    } else if p75 <= poor {
        let g = 0.40 + 0.34 * h1;
        ("AVERAGE", g, (0.76 - g) + 0.12 * h2)
    } else {
        let g = 0.25 + 0.3 * h1;
        ("SLOW", g, (0.74 - g) * (0.3 + 0.6 * h2))
    };
    let round4 = |x: f64| (x * 10_000.0).round() / 10_000.0;
    let g = round4(good_share);
    let ni = round4(ni_share);
    let p = round4((1.0 - g - ni).max(0.0));
    CruxMetric { p75, proportions: [g, ni, p], category }
}

//! What the http engine's number is: a **delivery score** — how well the server and the markup
//! deliver the page (server response, connection set-up, redirects, bytes, compression,
//! caching, HTTP/2, render-blocking references) — and not a performance score. Measured
//! against Lighthouse 12.8 on 25 local pages it does not rank pages as Lighthouse does
//! (Spearman 0.05 mobile, −0.15 desktop; 8 of 25 in the same band), because what dominates
//! Lighthouse's score (blocking time, layout shift, when the largest element paints) happens
//! in a browser this engine does not run. So it has its own name, `delivery_score`, among the
//! metrics, and its own bands, never `score` or PageSpeed's good/needs-improvement/poor.

use crate::task::Analysis;

/// The metric holding the http engine's 0–100 delivery score.
pub const DELIVERY_SCORE: &str = "delivery_score";
/// The metric holding its band.
pub const DELIVERY_BAND: &str = "delivery_band";

crate::named_enum! {
    /// How much of the delivery rules' weight a page kept: `sound` lost at most 15 points,
    /// `mixed` up to 40, `weak` more. Words for delivery practice, not speed: a sound page can
    /// still be slow in a browser.
    DeliveryBand {
        Sound => "sound",
        Mixed => "mixed",
        Weak => "weak",
    }
}

impl DeliveryBand {
    pub fn of(score: f64) -> DeliveryBand {
        if score >= 85.0 {
            DeliveryBand::Sound
        } else if score >= 60.0 {
            DeliveryBand::Mixed
        } else {
            DeliveryBand::Weak
        }
    }
}

/// What the http engine's numbers were called before they were named for what they are.
const FORMER_NAMES: [(&str, &str); 3] =
    [("score", DELIVERY_SCORE), ("desktop_score", "desktop_delivery_score"), ("score_spread", "delivery_score_spread")];

/// The http engine's name for a performance-score metric (`score` → `delivery_score`), or
/// `None` for any other metric.
pub fn delivery_name(metric: &str) -> Option<&'static str> {
    FORMER_NAMES[..2].iter().find(|(former, _)| *former == metric).map(|(_, name)| *name)
}

/// Names `score` in `analysis` for what it is: an http result's number becomes its
/// `delivery_score` (and band), leaving `score` to engines whose number is a performance score.
/// Results written before the number was named go through this as they are read.
pub fn name_delivery_score(analysis: &mut Analysis) {
    if analysis.engine != "http" {
        return;
    }
    if let Some(score) = analysis.score.take() {
        analysis.metrics.entry(DELIVERY_SCORE).or_insert(serde_json::json!(score));
        analysis.metrics.entry(DELIVERY_BAND).or_insert(serde_json::json!(DeliveryBand::of(score).as_str()));
    }
    for (former, name) in &FORMER_NAMES[1..] {
        if let Some(value) = analysis.metrics.remove(*former) {
            analysis.metrics.entry(*name).or_insert(value);
        }
    }
}

/// The same for a headline's numbers (kept in history entries and digests) of an http result.
pub fn rename_headline(engine: &str, values: &mut std::collections::BTreeMap<String, f64>) {
    if engine != "http" {
        return;
    }
    for (former, name) in FORMER_NAMES {
        if let Some(value) = values.remove(former) {
            values.entry(name.to_owned()).or_insert(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Strategy;

    #[test]
    fn bands_are_the_delivery_scores_own() {
        let bands: Vec<&str> = [100.0, 85.0, 84.9, 60.0, 59.9, 0.0].map(|s| DeliveryBand::of(s).as_str()).to_vec();
        assert_eq!(bands, ["sound", "sound", "mixed", "mixed", "weak", "weak"]);
    }

    #[test]
    fn an_http_results_number_is_named_a_delivery_score_and_others_are_left_alone() {
        let analysis = |engine: &str| Analysis {
            engine: engine.into(),
            strategy: Strategy::Mobile,
            score: Some(72.5),
            metrics: serde_json::Map::new(),
            cached_from: None,
        };
        let mut http = analysis("http");
        name_delivery_score(&mut http);
        assert_eq!(http.score, None);
        assert_eq!(
            (http.metrics[DELIVERY_SCORE].as_f64(), http.metrics[DELIVERY_BAND].as_str()),
            (Some(72.5), Some("mixed"))
        );
        let mut psi = analysis("psi");
        name_delivery_score(&mut psi);
        assert_eq!((psi.score, psi.metrics.len()), (Some(72.5), 0));
        // A stored http result read back: the same.
        let stored =
            serde_json::json!({"engine": "http", "strategy": "mobile", "score": 90.0, "metrics": {"ttfb_ms": 5.0}});
        let read: Analysis = serde_json::from_value(stored).unwrap();
        assert_eq!((read.score, read.metrics[DELIVERY_BAND].as_str()), (None, Some("sound")));
        let both = serde_json::json!({"engine": "http", "strategy": "both", "score": 90.0,
                                      "metrics": {"desktop_score": 80.0, "score_spread": 4.0}});
        let read: Analysis = serde_json::from_value(both).unwrap();
        let names: Vec<&str> = read.metrics.keys().map(String::as_str).collect();
        assert_eq!(names, ["delivery_band", "delivery_score", "delivery_score_spread", "desktop_delivery_score"]);
    }

    #[test]
    fn a_kept_http_headline_reads_with_the_new_names() {
        let kept = serde_json::json!({"engine": "http", "strategy": "mobile", "values": {"score": 70.0, "ttfb_ms": 9.0},
                                      "spread": {"score": 3.0}});
        let read: crate::history::Headline = serde_json::from_value(kept).unwrap();
        assert_eq!(read.values.keys().collect::<Vec<_>>(), ["delivery_score", "ttfb_ms"]);
        assert_eq!(read.spread.get(DELIVERY_SCORE), Some(&3.0));
        let psi = serde_json::json!({"engine": "psi", "strategy": "mobile", "values": {"score": 70.0}});
        let read: crate::history::Headline = serde_json::from_value(psi).unwrap();
        assert_eq!(read.values.get("score"), Some(&70.0), "a performance score stays one");
    }
}

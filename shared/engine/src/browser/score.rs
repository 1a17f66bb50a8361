//! The browser engine's 0–100 performance score, computed as Lighthouse computes it (versions
//! 12.8 and 13.4: `core/audits/metrics/*.js`, `core/config/default-config.js`,
//! `shared/statistics.js`, `shared/util.js`, `core/scoring.js`; checked against the Lighthouse
//! 13.4.1 result in `../shared/fixtures/lighthouse/sample_v2.json`): each lab metric is scored
//! on a log-normal curve fixed by two control points (the value scoring 0.9, `p10`, and the
//! one scoring 0.5, `median`, from HTTP Archive percentiles), a score above 0.9 nudged up by
//! 5 % of its excess (so more top pages reach 1), cut down to two decimals; the performance
//! score is the weighted mean of those, to two decimals.

use serde::Serialize;

/// A metric's curve: the value scoring 0.9 and the value scoring 0.5.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Curve {
    pub p10: f64,
    pub median: f64,
}

/// One metric of the score: its name among the engine's metrics, its weight and its curves.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Weighted {
    pub metric: &'static str,
    pub weight: f64,
    pub mobile: Curve,
    pub desktop: Curve,
}

/// Lighthouse 12.8's performance category: FCP 10, SI 10, LCP 25, TBT 30, CLS 25 (INP weighs
/// nothing in a lab run).
pub const WEIGHTS: [Weighted; 5] = [
    Weighted {
        metric: "fcp_ms",
        weight: 10.0,
        mobile: Curve { p10: 1_800.0, median: 3_000.0 },
        desktop: Curve { p10: 934.0, median: 1_600.0 },
    },
    Weighted {
        metric: "speed_index_ms",
        weight: 10.0,
        mobile: Curve { p10: 3_387.0, median: 5_800.0 },
        desktop: Curve { p10: 1_311.0, median: 2_300.0 },
    },
    Weighted {
        metric: "lcp_ms",
        weight: 25.0,
        mobile: Curve { p10: 2_500.0, median: 4_000.0 },
        desktop: Curve { p10: 1_200.0, median: 2_400.0 },
    },
    Weighted {
        metric: "tbt_ms",
        weight: 30.0,
        mobile: Curve { p10: 200.0, median: 600.0 },
        desktop: Curve { p10: 150.0, median: 350.0 },
    },
    Weighted {
        metric: "cls",
        weight: 25.0,
        mobile: Curve { p10: 0.1, median: 0.25 },
        desktop: Curve { p10: 0.1, median: 0.25 },
    },
];

/// erfc⁻¹(1/5): where the standard log-normal's complementary CDF is 0.1, scaled.
const INVERSE_ERFC_ONE_FIFTH: f64 = 0.906_193_802_436_823_2;

/// The error function to about 1.5·10⁻⁷ (Abramowitz and Stegun 7.1.26), as Lighthouse uses.
fn erf(x: f64) -> f64 {
    let (sign, x) = (x.signum(), x.abs());
    let t = 1.0 / (1.0 + 0.327_591_1 * x);
    let poly =
        t * (0.254_829_592 + t * (-0.284_496_736 + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    sign * (1.0 - poly * (-x * x).exp())
}

impl Curve {
    /// `value`'s score from 0 to 1: 0.9 at `p10`, 0.5 at the median, kept inside the band its
    /// value falls in (a value at or below `p10` scores at least 0.9, one above the median
    /// below 0.5) so rounding never moves a page across a band.
    pub fn score(self, value: f64) -> f64 {
        if value <= 0.0 {
            return 1.0;
        }
        let x = (value / self.median).max(f64::MIN_POSITIVE).ln();
        let shape = -(self.p10 / self.median).max(f64::MIN_POSITIVE).ln();
        let standardized = x * INVERSE_ERFC_ONE_FIFTH / shape;
        let complementary = (1.0 - erf(standardized)) / 2.0;
        if value <= self.p10 {
            complementary.clamp(0.9, 1.0)
        } else if value <= self.median {
            complementary.clamp(0.5, 0.9 - f64::EPSILON)
        } else {
            complementary.clamp(0.0, 0.5 - f64::EPSILON / 2.0)
        }
    }
}

/// A metric's audit score as Lighthouse reports it: the curve's value, above 0.9 raised by 5 %
/// of what exceeds 0.9, then cut (not rounded) to two decimals.
pub fn audit_score(curve: Curve, value: f64) -> f64 {
    let mut score = curve.score(value);
    if score > 0.9 {
        score += 0.05 * (score - 0.9);
    }
    (score * 100.0).floor() / 100.0
}

/// A metric's part of the score.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Part {
    pub metric: &'static str,
    pub weight: f64,
    pub value: f64,
    /// 0 to 1, two decimals, as Lighthouse reports the metric's audit.
    pub score: f64,
}

/// The performance score (0–100 in whole points: Lighthouse's mean to two decimals, times
/// 100) and its parts, or `None` when a weighted metric was not measured (Lighthouse then
/// reports no score either).
pub fn performance_score(values: impl Fn(&str) -> Option<f64>, desktop: bool) -> Option<(f64, Vec<Part>)> {
    let mut parts = Vec::with_capacity(WEIGHTS.len());
    for w in WEIGHTS {
        let value = values(w.metric)?;
        let curve = if desktop { w.desktop } else { w.mobile };
        let score = audit_score(curve, value);
        parts.push(Part { metric: w.metric, weight: w.weight, value, score });
    }
    let total: f64 = parts.iter().map(|p| p.weight).sum();
    let mean = parts.iter().map(|p| p.weight * p.score).sum::<f64>() / total;
    Some(((mean * 100.0).round(), parts))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Lighthouse 13.4.1 mobile run in the shared fixtures: each audit's score and the
    /// category's, from its numeric values.
    #[test]
    fn a_real_lighthouse_runs_metrics_score_as_lighthouse_scored_them() {
        let values = |metric: &str| match metric {
            "fcp_ms" => Some(6_795.362),
            "lcp_ms" => Some(10_884.681),
            "tbt_ms" => Some(1_055.198),
            "cls" => Some(0.099_576),
            "speed_index_ms" => Some(8_296.0),
            _ => None,
        };
        let (score, parts) = performance_score(values, false).unwrap();
        let scores: Vec<(&str, f64)> = parts.iter().map(|p| (p.metric, p.score)).collect();
        assert_eq!(
            scores,
            [("fcp_ms", 0.02), ("speed_index_ms", 0.19), ("lcp_ms", 0.0), ("tbt_ms", 0.25), ("cls", 0.9)]
        );
        assert_eq!(score, 32.0, "the fixture's performance score is 0.32");
    }

    #[test]
    fn top_scores_are_nudged_up_and_every_score_is_cut_to_two_decimals() {
        let lcp = WEIGHTS[2].mobile;
        assert_eq!(audit_score(lcp, 500.0), 1.0, "a fast page reaches a perfect 1");
        assert_eq!(audit_score(lcp, lcp.p10), 0.9);
        assert_eq!(audit_score(lcp, lcp.median), 0.5);
        let cut = audit_score(lcp, 3_000.0);
        assert!(cut <= lcp.score(3_000.0) && lcp.score(3_000.0) - cut < 0.01, "{cut}");
    }

    #[test]
    fn the_control_points_score_what_they_promise_and_bands_hold() {
        for w in WEIGHTS {
            for curve in [w.mobile, w.desktop] {
                assert!((curve.score(curve.p10) - 0.9).abs() < 1e-6, "{} p10", w.metric);
                assert!((curve.score(curve.median) - 0.5).abs() < 1e-6, "{} median", w.metric);
                assert!(curve.score(curve.median * 1.000_001) < 0.5, "{} just over the median fails", w.metric);
                assert!(curve.score(curve.p10 * 0.999_999) >= 0.9, "{} just under p10 passes", w.metric);
            }
        }
        assert_eq!(WEIGHTS.iter().map(|w| w.weight).sum::<f64>(), 100.0);
        assert_eq!(WEIGHTS[0].mobile.score(0.0), 1.0, "nothing to wait for is perfect");
    }

    #[test]
    fn a_missing_metric_gives_no_score_and_desktop_is_stricter() {
        assert!(performance_score(|m| (m != "tbt_ms").then_some(100.0), false).is_none());
        let page = |metric: &str| match metric {
            "fcp_ms" => Some(1_500.0),
            "speed_index_ms" => Some(2_000.0),
            "lcp_ms" => Some(2_000.0),
            "tbt_ms" => Some(250.0),
            "cls" => Some(0.05),
            _ => None,
        };
        let (mobile, _) = performance_score(page, false).unwrap();
        let (desktop, _) = performance_score(page, true).unwrap();
        assert!(mobile > desktop, "the same timings are worse on desktop's curves: {mobile} vs {desktop}");
    }
}

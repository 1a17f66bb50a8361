//! A 0–100 score from documented rules.
//!
//! Every rule is "lower is better": a value at or below `good` earns the rule's full weight, at
//! or above `poor` nothing, and in between a linear share. Weights sum to 100. A rule whose
//! input was not measured (the subresources were not fetched) is marked not applicable and
//! the score is taken over the remaining weight, so a missing measurement neither helps nor
//! hurts. [`rules_table`] renders the rules for the README.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::probe::Probe;
use super::subresources::{FetchState, SubresourceReport};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FormFactor {
    Mobile,
    Desktop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    Ms,
    Bytes,
    Count,
    Percent,
}

/// What the rules look at. [`ScoreInput::from_reports`] builds it from a probe and a
/// subresource report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoreInput {
    /// The document's request-sent to first-byte time (final hop).
    pub server_response_ms: f64,
    pub redirects: usize,
    /// DNS + connect + TLS over every new connection the document's hops opened.
    pub connection_setup_ms: f64,
    /// The document's body as transferred.
    pub document_transfer_bytes: u64,
    /// Text responses (document, scripts, stylesheets) of at least 1,400 bytes sent without
    /// Content-Encoding, summed.
    pub uncompressed_text_bytes: u64,
    /// The most requests any one origin served over HTTP/1.x.
    pub max_http1_requests_per_origin: usize,
    /// Whole-page facts; None when subresources were not fetched.
    pub page: Option<PageFacts>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PageFacts {
    /// Document (all hops) plus subresources, as transferred.
    pub total_transfer_bytes: u64,
    /// Document hops plus subresource requests.
    pub request_count: usize,
    pub render_blocking: usize,
    /// Successful script, stylesheet, image and font responses.
    pub static_resources: usize,
    /// Of those, the ones whose cache lifetime is shorter than [`LONG_CACHE_SECS`] or unset.
    pub static_short_cache: usize,
}

/// Lighthouse ignores text responses smaller than this in `uses-text-compression`.
pub const COMPRESSION_MIN_BYTES: u64 = 1_400;

/// A static resource cached at least this long counts as well cached (30 days).
pub const LONG_CACHE_SECS: u64 = 30 * 24 * 60 * 60;

impl ScoreInput {
    pub fn from_reports(probe: &Probe, subresources: Option<&SubresourceReport>) -> Self {
        let server_response_ms = probe.hops.last().map_or(0.0, |hop| hop.ttfb_ms);
        let connection_setup_ms = probe
            .hops
            .iter()
            .map(|hop| hop.dns_ms.unwrap_or(0.0) + hop.connect_ms.unwrap_or(0.0) + hop.tls_ms.unwrap_or(0.0))
            .sum();

        let mut uncompressed_text_bytes = 0;
        if probe.content_encoding.is_none() && probe.wire_bytes >= COMPRESSION_MIN_BYTES {
            uncompressed_text_bytes += probe.wire_bytes;
        }

        let mut http1_by_origin: HashMap<String, usize> = HashMap::new();
        for hop in &probe.hops {
            if hop.http_version != "HTTP/2" && hop.http_version != "HTTP/3" {
                *http1_by_origin.entry(hop.url.origin().ascii_serialization()).or_default() += 1;
            }
        }

        let page = subresources.map(|report| {
            let mut static_resources = 0;
            let mut static_short_cache = 0;
            for resource in &report.resources {
                if matches!(resource.http_version, Some("HTTP/1.0" | "HTTP/1.1")) {
                    *http1_by_origin.entry(resource.url.origin().ascii_serialization()).or_default() += 1;
                }
                if resource.state != FetchState::Ok {
                    continue;
                }
                if resource.kind.is_text()
                    && resource.content_encoding.is_none()
                    && resource.transfer_bytes >= COMPRESSION_MIN_BYTES
                {
                    uncompressed_text_bytes += resource.transfer_bytes;
                }
                if resource.kind.is_static() {
                    static_resources += 1;
                    if resource.cache_ttl_secs.is_none_or(|ttl| ttl < LONG_CACHE_SECS) {
                        static_short_cache += 1;
                    }
                }
            }
            let document_bytes: u64 = probe.hops.iter().map(|hop| hop.wire_bytes).sum();
            PageFacts {
                total_transfer_bytes: document_bytes + report.total.transfer_bytes,
                request_count: probe.hops.len() + report.total.count,
                render_blocking: report.render_blocking.count,
                static_resources,
                static_short_cache,
            }
        });

        Self {
            server_response_ms,
            redirects: probe.hops.len().saturating_sub(1),
            connection_setup_ms,
            document_transfer_bytes: probe.wire_bytes,
            uncompressed_text_bytes,
            max_http1_requests_per_origin: http1_by_origin.values().copied().max().unwrap_or(0),
            page,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleResult {
    pub id: &'static str,
    pub title: &'static str,
    pub unit: Unit,
    /// The measured value (0 when not applicable).
    pub value: f64,
    /// At or below: full points.
    pub good: f64,
    /// At or above: no points.
    pub poor: f64,
    pub weight: f64,
    /// 0..=1.
    pub points: f64,
    pub applicable: bool,
    pub source: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoreBreakdown {
    /// 0..=100, one decimal.
    pub score: f64,
    pub form_factor: FormFactor,
    pub rules: Vec<RuleResult>,
}

struct Rule {
    id: &'static str,
    title: &'static str,
    unit: Unit,
    /// [mobile, desktop]
    good: [f64; 2],
    poor: [f64; 2],
    weight: f64,
    source: &'static str,
    value: fn(&ScoreInput) -> Option<f64>,
}

const KIB: f64 = 1024.0;

const RULES: &[Rule] = &[
    Rule {
        id: "server-response-time",
        title: "Server response time",
        unit: Unit::Ms,
        good: [100.0, 100.0],
        poor: [600.0, 600.0],
        weight: 20.0,
        source: "Lighthouse `server-response-time`: document request to first byte; target 100 ms, fails at 600 ms",
        value: |input| Some(input.server_response_ms),
    },
    Rule {
        id: "redirects",
        title: "Document redirects",
        unit: Unit::Count,
        good: [0.0, 0.0],
        poor: [2.0, 3.0],
        weight: 10.0,
        source: "Lighthouse `redirects`: each redirect adds a round trip before the document; mobile latency makes it costlier",
        value: |input| Some(input.redirects as f64),
    },
    Rule {
        id: "connection-setup",
        title: "DNS + connect + TLS",
        unit: Unit::Ms,
        good: [100.0, 100.0],
        poor: [500.0, 500.0],
        weight: 8.0,
        source: "web.dev Time to First Byte: DNS, TCP and TLS set-up are part of TTFB (good within 800 ms in total)",
        value: |input| Some(input.connection_setup_ms),
    },
    Rule {
        id: "total-byte-weight",
        title: "Total byte weight",
        unit: Unit::Bytes,
        good: [1_600.0 * KIB, 2_667.0 * KIB],
        poor: [4_000.0 * KIB, 6_000.0 * KIB],
        weight: 12.0,
        source: "Lighthouse `total-byte-weight` (score 0.9 at 2,667 KiB, 0.5 at 4,000, ~0.1 at 6,000); tighter for mobile data",
        value: |input| input.page.as_ref().map(|page| page.total_transfer_bytes as f64),
    },
    Rule {
        id: "document-size",
        title: "HTML document size (transferred)",
        unit: Unit::Bytes,
        good: [14.0 * KIB, 14.0 * KIB],
        poor: [100.0 * KIB, 200.0 * KIB],
        weight: 8.0,
        source: "web.dev critical rendering path: ~14 KiB fits the first TCP round trip (initial congestion window of 10 packets)",
        value: |input| Some(input.document_transfer_bytes as f64),
    },
    Rule {
        id: "text-compression",
        title: "Uncompressed text",
        unit: Unit::Bytes,
        good: [1_400.0, 1_400.0],
        poor: [100.0 * KIB, 200.0 * KIB],
        weight: 8.0,
        source: "Lighthouse `uses-text-compression`: text responses over 1,400 bytes should be sent with gzip or brotli",
        value: |input| Some(input.uncompressed_text_bytes as f64),
    },
    Rule {
        id: "render-blocking-resources",
        title: "Render-blocking resources",
        unit: Unit::Count,
        good: [1.0, 2.0],
        poor: [6.0, 10.0],
        weight: 12.0,
        source: "Lighthouse `render-blocking-resources`: sync scripts and screen stylesheets in `<head>` delay first paint",
        value: |input| input.page.as_ref().map(|page| page.render_blocking as f64),
    },
    Rule {
        id: "cache-ttl",
        title: "Static resources without long caching",
        unit: Unit::Percent,
        good: [10.0, 10.0],
        poor: [50.0, 50.0],
        weight: 8.0,
        source: "Lighthouse `uses-long-cache-ttl`: static scripts, styles, images and fonts need a long cache lifetime (here 30 days)",
        value: |input| {
            input.page.as_ref().map(|page| {
                if page.static_resources == 0 {
                    0.0
                } else {
                    100.0 * page.static_short_cache as f64 / page.static_resources as f64
                }
            })
        },
    },
    Rule {
        id: "http2",
        title: "HTTP/1.x requests to one origin",
        unit: Unit::Count,
        good: [5.0, 5.0],
        poor: [18.0, 18.0],
        weight: 6.0,
        source: "Lighthouse `uses-http2`: flags origins serving 6+ requests over HTTP/1.1 (6 connections per origin; 18 = 3 waves)",
        value: |input| Some(input.max_http1_requests_per_origin as f64),
    },
    Rule {
        id: "request-count",
        title: "Requests",
        unit: Unit::Count,
        good: [50.0, 70.0],
        poor: [150.0, 200.0],
        weight: 8.0,
        source: "web.dev performance budgets: cap request counts; good sits near the HTTP Archive median page (~70 requests)",
        value: |input| input.page.as_ref().map(|page| page.request_count as f64),
    },
];

/// Linear between `good` (1) and `poor` (0).
pub fn interpolate(value: f64, good: f64, poor: f64) -> f64 {
    if value <= good {
        1.0
    } else if value >= poor {
        0.0
    } else {
        (poor - value) / (poor - good)
    }
}

pub fn score(input: &ScoreInput, form_factor: FormFactor) -> ScoreBreakdown {
    let column = match form_factor {
        FormFactor::Mobile => 0,
        FormFactor::Desktop => 1,
    };
    let rules: Vec<RuleResult> = RULES
        .iter()
        .map(|rule| {
            let good = rule.good[column];
            let poor = rule.poor[column];
            let measured = (rule.value)(input).filter(|v| v.is_finite());
            RuleResult {
                id: rule.id,
                title: rule.title,
                unit: rule.unit,
                value: measured.unwrap_or(0.0),
                good,
                poor,
                weight: rule.weight,
                points: measured.map_or(1.0, |v| interpolate(v, good, poor)),
                applicable: measured.is_some(),
                source: rule.source,
            }
        })
        .collect();
    let (earned, possible) = rules
        .iter()
        .filter(|rule| rule.applicable)
        .fold((0.0, 0.0), |(earned, possible), rule| (earned + rule.weight * rule.points, possible + rule.weight));
    let score = if possible > 0.0 { 100.0 * earned / possible } else { 0.0 };
    ScoreBreakdown { score: (score * 10.0).round() / 10.0, form_factor, rules }
}

/// The rules as a Markdown table for the README.
pub fn rules_table() -> String {
    let mut table = String::from(
        "| Rule | Measures | Good (mobile / desktop) | Poor (mobile / desktop) | Weight | Source |\n\
         | --- | --- | --- | --- | ---: | --- |\n",
    );
    for rule in RULES {
        let _ = writeln!(
            table,
            "| `{}` | {} | {} | {} | {} | {} |",
            rule.id,
            rule.title,
            pair(rule.unit, rule.good),
            pair(rule.unit, rule.poor),
            rule.weight,
            rule.source.replace('|', "\\|"),
        );
    }
    table
}

fn pair(unit: Unit, values: [f64; 2]) -> String {
    let [mobile, desktop] = values.map(|v| format_value(unit, v));
    if mobile == desktop { mobile } else { format!("{mobile} / {desktop}") }
}

fn format_value(unit: Unit, value: f64) -> String {
    match unit {
        Unit::Ms => format!("{} ms", thousands(value)),
        Unit::Count => thousands(value),
        Unit::Percent => format!("{} %", thousands(value)),
        Unit::Bytes if value >= KIB && (value / KIB).fract() == 0.0 => {
            format!("{} KiB", thousands(value / KIB))
        }
        Unit::Bytes => format!("{} B", thousands(value)),
    }
}

fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.round());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn perfect() -> ScoreInput {
        ScoreInput {
            server_response_ms: 50.0,
            redirects: 0,
            connection_setup_ms: 30.0,
            document_transfer_bytes: 10_000,
            uncompressed_text_bytes: 0,
            max_http1_requests_per_origin: 1,
            page: Some(PageFacts {
                total_transfer_bytes: 500_000,
                request_count: 20,
                render_blocking: 1,
                static_resources: 10,
                static_short_cache: 0,
            }),
        }
    }

    fn terrible() -> ScoreInput {
        ScoreInput {
            server_response_ms: 2_000.0,
            redirects: 5,
            connection_setup_ms: 900.0,
            document_transfer_bytes: 500_000,
            uncompressed_text_bytes: 1_000_000,
            max_http1_requests_per_origin: 40,
            page: Some(PageFacts {
                total_transfer_bytes: 20_000_000,
                request_count: 400,
                render_blocking: 20,
                static_resources: 10,
                static_short_cache: 10,
            }),
        }
    }

    fn rule<'a>(breakdown: &'a ScoreBreakdown, id: &str) -> &'a RuleResult {
        breakdown.rules.iter().find(|r| r.id == id).unwrap()
    }

    #[test]
    fn weights_sum_to_100_and_ids_are_unique() {
        let total: f64 = RULES.iter().map(|r| r.weight).sum();
        assert_eq!(total, 100.0);
        let mut ids: Vec<&str> = RULES.iter().map(|r| r.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), RULES.len());
        for rule in RULES {
            for column in 0..2 {
                assert!(rule.good[column] < rule.poor[column], "{}", rule.id);
            }
            assert!(rule.good[0] <= rule.good[1] && rule.poor[0] <= rule.poor[1], "mobile stricter: {}", rule.id);
        }
    }

    #[test]
    fn extremes() {
        for form in [FormFactor::Mobile, FormFactor::Desktop] {
            assert_eq!(score(&perfect(), form).score, 100.0);
            assert_eq!(score(&terrible(), form).score, 0.0);
        }
    }

    #[test]
    fn a_known_input_gives_a_known_score() {
        let mut input = perfect();
        input.server_response_ms = 350.0; // half of 20 points lost
        input.redirects = 1; // mobile: half of 10 lost; desktop: a third
        input.page.as_mut().unwrap().static_short_cache = 3; // 30 %: half of 8 lost
        let mobile = score(&input, FormFactor::Mobile);
        assert_eq!(mobile.score, 100.0 - 10.0 - 5.0 - 4.0);
        assert_eq!(rule(&mobile, "redirects").points, 0.5);
        assert_eq!(rule(&mobile, "cache-ttl").value, 30.0);
        let desktop = score(&input, FormFactor::Desktop);
        assert_eq!(desktop.score, ((100.0 - 10.0 - 10.0 / 3.0 - 4.0) * 10.0_f64).round() / 10.0);
        assert_eq!(desktop.form_factor, FormFactor::Desktop);
    }

    #[test]
    fn missing_page_facts_are_not_applicable_and_do_not_count() {
        let mut input = perfect();
        input.page = None;
        input.server_response_ms = 350.0;
        let breakdown = score(&input, FormFactor::Mobile);
        let skipped: Vec<&str> = breakdown.rules.iter().filter(|r| !r.applicable).map(|r| r.id).collect();
        assert_eq!(skipped, ["total-byte-weight", "render-blocking-resources", "cache-ttl", "request-count"]);
        // 10 of the remaining 60 points lost.
        assert_eq!(breakdown.score, ((100.0 * 50.0 / 60.0) * 10.0_f64).round() / 10.0);
    }

    /// Sets the rule's input to `value` on an otherwise perfect page.
    fn with_value(id: &str, value: f64) -> ScoreInput {
        let mut input = perfect();
        let page = input.page.as_mut().unwrap();
        match id {
            "server-response-time" => input.server_response_ms = value,
            "redirects" => input.redirects = value as usize,
            "connection-setup" => input.connection_setup_ms = value,
            "total-byte-weight" => page.total_transfer_bytes = value as u64,
            "document-size" => input.document_transfer_bytes = value as u64,
            "text-compression" => input.uncompressed_text_bytes = value as u64,
            "render-blocking-resources" => page.render_blocking = value as usize,
            "cache-ttl" => {
                page.static_resources = 1000;
                page.static_short_cache = (value * 10.0) as usize;
            }
            "http2" => input.max_http1_requests_per_origin = value as usize,
            "request-count" => page.request_count = value as usize,
            other => panic!("unknown rule {other}"),
        }
        input
    }

    #[test]
    fn every_rule_boundary() {
        for (column, form) in [(0, FormFactor::Mobile), (1, FormFactor::Desktop)] {
            for spec in RULES {
                let (good, poor) = (spec.good[column], spec.poor[column]);
                let at = |value: f64| {
                    let breakdown = score(&with_value(spec.id, value), form);
                    let result = rule(&breakdown, spec.id).clone();
                    assert_eq!(result.value, value, "{} value", spec.id);
                    (result.points, breakdown.score)
                };
                assert_eq!(at(good), (1.0, 100.0), "{} at good ({form:?})", spec.id);
                assert_eq!(at(poor).0, 0.0, "{} at poor ({form:?})", spec.id);
                assert_eq!(at(poor * 3.0).0, 0.0, "{} beyond poor", spec.id);
                let lost = 100.0 - at(poor).1;
                assert!((lost - spec.weight).abs() < 0.051, "{} loses its weight: {lost}", spec.id);
                // Integer-valued rules get an exact midpoint only when good+poor is even.
                let mid = (good + poor) / 2.0;
                let mid = if spec.unit == Unit::Count { mid.floor() } else { mid };
                let expected = (poor - mid) / (poor - good);
                assert!((at(mid).0 - expected).abs() < 1e-9, "{} midpoint", spec.id);
                assert!(at(good + 1.0).0 < 1.0, "{} just over good", spec.id);
            }
        }
    }

    #[test]
    fn interpolation() {
        assert_eq!(interpolate(200.0, 200.0, 600.0), 1.0);
        assert_eq!(interpolate(199.0, 200.0, 600.0), 1.0);
        assert_eq!(interpolate(600.0, 200.0, 600.0), 0.0);
        assert_eq!(interpolate(500.0, 200.0, 600.0), 0.25);
        assert_eq!(interpolate(-1.0, 0.0, 2.0), 1.0);
    }

    #[test]
    fn the_readme_shows_the_current_table() {
        let readme = include_str!("../../../../README.md");
        let table = rules_table();
        assert!(readme.contains(&table), "README.md's scoring table is stale; the current one is:\n{table}");
    }

    #[test]
    fn the_table_lists_every_rule_with_thresholds() {
        let table = rules_table();
        assert_eq!(table.lines().count(), RULES.len() + 2);
        assert!(table.contains("| `server-response-time` | Server response time | 100 ms | 600 ms | 20 |"));
        assert!(table.contains(
            "| `total-byte-weight` | Total byte weight | 1,600 KiB / 2,667 KiB | 4,000 KiB / 6,000 KiB | 12 |"
        ));
        assert!(table.contains("| `text-compression` | Uncompressed text | 1,400 B | 100 KiB / 200 KiB | 8 |"));
        assert!(table.contains("| `redirects` | Document redirects | 0 | 2 / 3 | 10 |"));
        for rule in RULES {
            assert!(table.contains(&format!("`{}`", rule.id)));
        }
    }
}

use domain::field::{FieldCategory, FieldMetric, FieldSource};
use serde_json::json;

use super::*;

fn record_body() -> Value {
    json!({
        "record": {
            "key": {"formFactor": "PHONE", "url": "https://example.com/"},
            "metrics": {
                "largest_contentful_paint": {
                    "histogram": [{"start": 0, "end": 2500, "density": 0.7}, {"start": 2500, "end": 4000, "density": 0.2},
                                  {"start": 4000, "density": 0.1}],
                    "percentiles": {"p75": 2890}
                },
                "cumulative_layout_shift": {
                    "histogram": [{"start": "0.00", "end": "0.10", "density": 0.9}, {"start": "0.10", "end": "0.25", "density": 0.06},
                                  {"start": "0.25", "density": 0.04}],
                    "percentiles": {"p75": "0.05"}
                },
                "navigation_types": {"fractions": {"navigate": 0.8, "reload": 0.2}}
            },
            "collectionPeriod": {"firstDate": {"year": 2026, "month": 11, "day": 1}, "lastDate": {"year": 2026, "month": 11, "day": 28}}
        },
        "urlNormalizationDetails": {"originalUrl": "https://example.com", "normalizedUrl": "https://example.com/"}
    })
}

#[test]
fn a_record_gives_each_metrics_p75_and_its_period() {
    let record = parse_record(&record_body(), FieldSource::Url).unwrap();
    assert_eq!(record.p75[&FieldMetric::Lcp], 2_890.0);
    assert_eq!(record.p75[&FieldMetric::Cls], 0.05, "CLS comes as a string");
    assert!(!record.p75.contains_key(&FieldMetric::Inp), "what CrUX did not report is absent");
    assert_eq!(record.period, Some(("2026-11-01".into(), "2026-11-28".into())));
    let metrics = record.metrics("");
    assert_eq!(metrics["field_overall_category"], json!(FieldCategory::NeedsImprovement));
    assert_eq!(metrics["field_source"], "url");
}

#[test]
fn a_history_gives_weekly_p75s_with_gaps() {
    let body = json!({
        "record": {
            "key": {"formFactor": "DESKTOP", "origin": "https://example.com"},
            "metrics": {
                "largest_contentful_paint": {"percentilesTimeseries": {"p75s": [null, 2100, 1900]}},
                "cumulative_layout_shift": {"percentilesTimeseries": {"p75s": ["0.10", "0.08", null]}}
            },
            "collectionPeriods": [
                {"firstDate": {"year": 2026, "month": 10, "day": 18}, "lastDate": {"year": 2026, "month": 11, "day": 14}},
                {"firstDate": {"year": 2026, "month": 10, "day": 25}, "lastDate": {"year": 2026, "month": 11, "day": 21}},
                {"firstDate": {"year": 2026, "month": 11, "day": 1}, "lastDate": {"year": 2026, "month": 11, "day": 28}}
            ]
        }
    });
    let history = parse_history(&body, FieldSource::Origin).unwrap();
    assert_eq!(history.weeks, ["2026-11-14", "2026-11-21", "2026-11-28"]);
    assert_eq!(history.p75s[&FieldMetric::Lcp], vec![None, Some(2_100.0), Some(1_900.0)]);
    assert_eq!(history.p75s[&FieldMetric::Cls], vec![Some(0.1), Some(0.08), None]);
    let mut short = body.clone();
    short["record"]["metrics"]["largest_contentful_paint"]["percentilesTimeseries"]["p75s"] = json!([1, 2]);
    assert!(parse_history(&short, FieldSource::Origin).unwrap_err().contains("2 weekly values for 3 weeks"));
}

#[test]
fn an_answer_without_its_parts_is_unreadable_not_zero() {
    assert!(parse_record(&json!({"record": {"metrics": {}}}), FieldSource::Url).is_err());
    assert!(parse_history(&json!({"record": {}}), FieldSource::Url).is_err());
}

#[test]
fn errors_are_classified_as_psis_with_the_quota_waiting() {
    let quota = json!({"error": {"code": 429, "message": "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute' of service 'chromeuxreport.googleapis.com' for consumer 'project_number:123'.", "status": "RESOURCE_EXHAUSTED"}});
    let waited = failure(429, &quota.to_string());
    assert_eq!(waited.kind, ErrorKind::RateLimited);
    assert!(waited.defer_until.is_some(), "a wait, not an attempt");
    assert!(!waited.reason.contains("123"), "the project is not shown: {}", waited.reason);
    let key = json!({"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT"}});
    assert_eq!(failure(400, &key.to_string()).kind, ErrorKind::EngineUnavailable);
    assert_eq!(failure(503, "").kind, ErrorKind::Http5xx);
    assert_eq!(failure(503, "").reason, "HTTP 503 from the Chrome UX Report");
}

#[test]
fn an_origin_is_scheme_host_and_port() {
    assert_eq!(Target::origin_of("https://Example.com/a/b?c#d").unwrap().identifier, "https://example.com");
    assert_eq!(Target::origin_of("http://127.0.0.1:8080/x").unwrap().identifier, "http://127.0.0.1:8080");
    assert_eq!(FormFactor::of(Strategy::Desktop), FormFactor::Desktop);
    assert_eq!(FormFactor::of(Strategy::Mobile), FormFactor::Phone);
}

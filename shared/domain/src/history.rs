//! A URL's results over time: what each new analysis keeps for its history (its headline
//! numbers), where that is indexed (one index partition per tenant and URL, sorted by when it
//! was analysed), and which metric a history or a comparison may be asked for.
//!
//! The headline is kept beside the full analysis, small (a few hundred bytes), so the history
//! index projects it alone: a URL's history is one Query of that index, never a read of a
//! job, and indexing a result costs one more write unit, not the analysis's size again.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::job::{JobId, Tenant};
use crate::settings::Strategy;
use crate::task::Analysis;
use crate::time::Millis;

/// What `score` is called where it sits beside the metrics.
pub const SCORE: &str = "score";

/// Numbers among the metrics that are not measurements of the page's speed.
const NOT_MEASUREMENTS: [&str; 1] = ["status_code"];

/// Whether a numeric metric is a measurement (percentiles, history and comparisons take it).
pub fn is_measurement(name: &str) -> bool {
    !NOT_MEASUREMENTS.contains(&name)
}

/// One analysis's numbers: its score and every numeric measurement, and for a result of
/// several runs the spread between them (`runs`), by the same names.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "StoredHeadline")]
pub struct Headline {
    pub engine: String,
    pub strategy: Strategy,
    pub values: BTreeMap<String, f64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub spread: BTreeMap<String, f64>,
}

/// A headline as kept (history entries, digests): an http result's written before its number
/// was named a delivery score reads with the new names.
#[derive(Deserialize)]
struct StoredHeadline {
    engine: String,
    strategy: Strategy,
    values: BTreeMap<String, f64>,
    #[serde(default)]
    spread: BTreeMap<String, f64>,
}

impl From<StoredHeadline> for Headline {
    fn from(stored: StoredHeadline) -> Headline {
        let StoredHeadline { engine, strategy, mut values, mut spread } = stored;
        crate::delivery::rename_headline(&engine, &mut values);
        crate::delivery::rename_headline(&engine, &mut spread);
        Headline { engine, strategy, values, spread }
    }
}

impl Headline {
    pub fn of(analysis: &Analysis) -> Headline {
        let mut values: BTreeMap<String, f64> = analysis
            .metrics
            .iter()
            .filter(|(name, _)| is_measurement(name))
            .filter_map(|(name, value)| Some((name.clone(), value.as_f64()?)))
            .collect();
        if let Some(score) = analysis.score {
            values.insert(SCORE.to_owned(), score);
        }
        let spread = analysis
            .metrics
            .get("runs")
            .and_then(|runs| runs.get("spread"))
            .and_then(|spread| spread.as_object())
            .map(|spread| spread.iter().filter_map(|(name, v)| Some((name.clone(), v.as_f64()?))).collect())
            .unwrap_or_default();
        Headline { engine: analysis.engine.clone(), strategy: analysis.strategy, values, spread }
    }
}

/// Where a tenant's results for one cleaned URL are indexed, any job, engine or strategy. The
/// URL is hashed so the key has a fixed size; the tenant is part of it, so no query can reach
/// another tenant's history.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HistoryKey(String);

impl HistoryKey {
    pub fn new(tenant: &Tenant, url: &str) -> HistoryKey {
        HistoryKey(format!("HIST#{}#{}", tenant.0, url_hash(url)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A URL in a key: hashed to a fixed size (32 hex digits), whatever the URL's length.
pub fn url_hash(url: &str) -> String {
    hex::encode(&Sha256::digest(url.as_bytes())[..16])
}

/// A metric's name as a history or comparison asks for it: `score` or a metric's name
/// (lowercase letters, digits and `_`, as the engines name them).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MetricName(String);

impl MetricName {
    pub const MAX_CHARS: usize = 64;

    pub fn parse(text: &str) -> Result<MetricName, String> {
        let valid = !text.is_empty()
            && text.len() <= Self::MAX_CHARS
            && text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid {
            return Err(format!(
                "{text:?} is not a metric name: `score` or a metric such as `lcp_ms` (lowercase letters, digits and _, at most {} characters)",
                Self::MAX_CHARS
            ));
        }
        Ok(MetricName(text.to_owned()))
    }

    pub fn score() -> MetricName {
        MetricName(SCORE.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One new analysis of a URL, as its history keeps it.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryEntry {
    pub job_id: JobId,
    pub seq: u32,
    pub analyzed_at: Millis,
    pub headline: Headline,
}

/// Which part of a URL's history a page covers: analysed from `from` to `to` (both included).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub from: Millis,
    pub to: Millis,
}

impl Span {
    pub const ALL: Span = Span { from: 0, to: Millis::MAX };

    pub fn contains(&self, at: Millis) -> bool {
        (self.from..=self.to).contains(&at)
    }
}

/// Where a page of history ends: the last entry's place in the index's order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryCursor {
    pub analyzed_at: Millis,
    pub job_id: JobId,
    pub seq: u32,
}

impl HistoryCursor {
    pub fn of(entry: &HistoryEntry) -> HistoryCursor {
        HistoryCursor { analyzed_at: entry.analyzed_at, job_id: entry.job_id.clone(), seq: entry.seq }
    }

    pub fn encode(&self) -> String {
        format!("{}/{}/{}", self.analyzed_at, self.job_id, self.seq)
    }

    pub fn decode(text: &str) -> Option<HistoryCursor> {
        let mut parts = text.splitn(3, '/');
        let analyzed_at = parts.next()?.parse().ok()?;
        let job_id = JobId::parse(parts.next()?)?;
        let seq = parts.next()?.parse().ok()?;
        Some(HistoryCursor { analyzed_at, job_id, seq })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn analysis(score: Option<f64>, metrics: serde_json::Value) -> Analysis {
        Analysis {
            engine: "http".into(),
            strategy: Strategy::Mobile,
            score,
            metrics: metrics.as_object().cloned().unwrap_or_default(),
            cached_from: None,
        }
    }

    #[test]
    fn a_headline_keeps_the_score_and_numeric_measurements_and_the_runs_spread() {
        let a = analysis(
            Some(71.0),
            json!({"ttfb_ms": 12.5, "status_code": 200, "http_version": "h2", "desktop": {"lcp_ms": 1},
                   "runs": {"requested": 3, "spread": {"score": 4.0, "ttfb_ms": 9.0}}}),
        );
        let headline = Headline::of(&a);
        assert_eq!(headline.values, BTreeMap::from([("score".into(), 71.0), ("ttfb_ms".into(), 12.5)]));
        assert_eq!(headline.spread, BTreeMap::from([("score".into(), 4.0), ("ttfb_ms".into(), 9.0)]));
        let none = Headline::of(&analysis(None, json!({})));
        assert!(none.values.is_empty() && none.spread.is_empty(), "no score is no value, never zero");
    }

    #[test]
    fn a_history_key_is_one_tenant_and_url() {
        let key = |tenant: &str, url: &str| HistoryKey::new(&Tenant(tenant.into()), url);
        assert!(key("acme", "https://a.com").as_str().starts_with("HIST#acme#"));
        assert_eq!(key("acme", "https://a.com"), key("acme", "https://a.com"));
        assert_ne!(key("acme", "https://a.com"), key("acme", "https://a.com/b"));
        assert_ne!(key("acme", "https://a.com"), key("other", "https://a.com"));
        assert_eq!(key("acme", &"https://a.com/".repeat(500)).as_str().len(), "HIST#acme#".len() + 32);
    }

    #[test]
    fn metric_names_are_what_engines_name_them() {
        assert_eq!(MetricName::parse("lcp_ms").unwrap().as_str(), "lcp_ms");
        assert_eq!(MetricName::parse("score"), Ok(MetricName::score()));
        for bad in ["", "LCP", "lcp-ms", "a.b", &"x".repeat(65)] {
            let err = MetricName::parse(bad).unwrap_err();
            assert!(err.contains("not a metric name"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn cursors_round_trip_and_refuse_what_they_did_not_write() {
        let cursor = HistoryCursor { analyzed_at: 1_700_000_000_123, job_id: JobId::generate(), seq: 42 };
        assert_eq!(HistoryCursor::decode(&cursor.encode()), Some(cursor));
        for bad in ["", "x/y/z", "1/not-a-job/3", "1"] {
            assert_eq!(HistoryCursor::decode(bad), None, "{bad:?}");
        }
    }
}

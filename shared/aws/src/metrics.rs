//! CloudWatch Embedded Metric Format: metrics written as one structured log line per
//! invocation, which CloudWatch turns into metrics with no API call (and no extra latency).

use serde_json::{Map, Value, json};

use domain::time::Millis;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// The metrics of one invocation, under one namespace and one set of dimensions.
#[derive(Clone, Debug)]
pub struct MetricLine {
    namespace: &'static str,
    dimensions: Vec<(&'static str, String)>,
    metrics: Vec<(String, Unit, Vec<f64>)>,
}

impl MetricLine {
    pub fn new(namespace: &'static str) -> Self {
        MetricLine { namespace, dimensions: Vec::new(), metrics: Vec::new() }
    }

    pub fn dimension(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.dimensions.push((name, value.into()));
        self
    }

    pub fn count(&mut self, name: impl Into<String>, value: u64) {
        self.metrics.push((name.into(), Unit::Count, vec![value as f64]));
    }

    /// A count that need not be whole (capacity units); skipped when zero.
    pub fn units(&mut self, name: impl Into<String>, value: f64) {
        if value != 0.0 {
            self.metrics.push((name.into(), Unit::Count, vec![value]));
        }
    }

    /// A metric with many values (CloudWatch keeps each for percentiles); skipped if empty.
    pub fn values(&mut self, name: impl Into<String>, unit: Unit, values: Vec<f64>) {
        if !values.is_empty() {
            self.metrics.push((name.into(), unit, values));
        }
    }

    /// The EMF JSON line.
    pub fn render(&self, timestamp: Millis) -> String {
        let mut line = Map::new();
        let definitions: Vec<Value> =
            self.metrics.iter().map(|(name, unit, _)| json!({"Name": name, "Unit": unit.as_str()})).collect();
        let dimensions: Vec<&str> = self.dimensions.iter().map(|(name, _)| *name).collect();
        line.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp,
                "CloudWatchMetrics": [{"Namespace": self.namespace, "Dimensions": [dimensions], "Metrics": definitions}],
            }),
        );
        for (name, value) in &self.dimensions {
            line.insert((*name).into(), json!(value));
        }
        for (name, _, values) in &self.metrics {
            let value = if values.len() == 1 { json!(values[0]) } else { json!(values) };
            line.insert(name.clone(), value);
        }
        Value::Object(line).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_an_emf_line() {
        let mut line = MetricLine::new("speedbatch").dimension("Function", "analyzer");
        line.count("UrlsSucceeded", 3);
        line.values("AnalysisTime", Unit::Milliseconds, vec![12.5, 40.0]);
        line.values("QueueWait", Unit::Milliseconds, vec![]);
        let rendered: Value = serde_json::from_str(&line.render(1_000)).unwrap();
        assert_eq!(
            rendered,
            json!({
                "_aws": {"Timestamp": 1000, "CloudWatchMetrics": [{
                    "Namespace": "speedbatch",
                    "Dimensions": [["Function"]],
                    "Metrics": [{"Name": "UrlsSucceeded", "Unit": "Count"}, {"Name": "AnalysisTime", "Unit": "Milliseconds"}]
                }]},
                "Function": "analyzer",
                "UrlsSucceeded": 3.0,
                "AnalysisTime": [12.5, 40.0]
            })
        );
    }
}

//! Reading the CrUX API's answers: a record's p75 per metric and its collection period, and a
//! history record's weekly p75 series. CLS comes as a string (`"0.05"`), the others as
//! numbers; metrics CrUX did not report are absent, never zero.

use std::collections::BTreeMap;

use domain::field::{FieldHistory, FieldMetric, FieldRecord, FieldSource};
use serde_json::Value;

/// A p75 as CrUX writes it: a number, or a string for CLS.
fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// `{"year", "month", "day"}` as `yyyy-mm-dd`.
fn date(value: &Value) -> Option<String> {
    let part = |name: &str| value.get(name).and_then(Value::as_u64);
    Some(format!("{:04}-{:02}-{:02}", part("year")?, part("month")?, part("day")?))
}

fn metrics(body: &Value) -> Result<&serde_json::Map<String, Value>, String> {
    body.pointer("/record/metrics").and_then(Value::as_object).ok_or_else(|| "no record.metrics".to_owned())
}

/// A `records:queryRecord` answer.
pub fn parse_record(body: &Value, source: FieldSource) -> Result<FieldRecord, String> {
    let period = body.pointer("/record/collectionPeriod").ok_or("no record.collectionPeriod")?;
    let first_date = period.get("firstDate").and_then(date).ok_or("no collectionPeriod.firstDate")?;
    let last_date = period.get("lastDate").and_then(date).ok_or("no collectionPeriod.lastDate")?;
    let p75 = metrics(body)?
        .iter()
        .filter_map(|(name, metric)| {
            let metric_name = FieldMetric::from_crux_name(name)?;
            Some((metric_name, number(metric.pointer("/percentiles/p75")?)?))
        })
        .collect();
    Ok(FieldRecord { source, period: Some((first_date, last_date)), p75 })
}

/// A `records:queryHistoryRecord` answer.
pub fn parse_history(body: &Value, source: FieldSource) -> Result<FieldHistory, String> {
    let periods =
        body.pointer("/record/collectionPeriods").and_then(Value::as_array).ok_or("no record.collectionPeriods")?;
    let weeks: Vec<String> = periods
        .iter()
        .map(|period| period.get("lastDate").and_then(date).ok_or_else(|| "a period without its lastDate".to_owned()))
        .collect::<Result<_, _>>()?;
    let mut p75s = BTreeMap::new();
    for (name, metric) in metrics(body)? {
        let Some(metric_name) = FieldMetric::from_crux_name(name) else { continue };
        let Some(series) = metric.pointer("/percentilesTimeseries/p75s").and_then(Value::as_array) else { continue };
        if series.len() != weeks.len() {
            return Err(format!("{name} has {} weekly values for {} weeks", series.len(), weeks.len()));
        }
        p75s.insert(metric_name, series.iter().map(number).collect());
    }
    Ok(FieldHistory { source, weeks, p75s })
}

//! Whole-job exports: the formats, where a finished job's files are kept, and how rows are
//! written in each. One renderer serves the inline answer and the stored file.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::csv;
use super::rows::ResultRow;
use crate::job::JobId;
use crate::labels::Tags;

/// A whole-job export's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ExportFormat {
    /// RFC 4180, a header row then a row per URL; one column per metric any URL has.
    Csv,
    /// One JSON object per line, as the rows of a JSON page.
    Jsonl,
}

impl ExportFormat {
    pub const ALL: [ExportFormat; 2] = [ExportFormat::Csv, ExportFormat::Jsonl];

    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Jsonl => "jsonl",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::Jsonl => "application/x-ndjson",
        }
    }

    /// Where a finished job's file is kept in the exports bucket. The job id is a UUID in
    /// canonical form, so the key needs no escaping.
    pub fn object_key(self, job: &JobId) -> String {
        format!("exports/{job}.{}", self.extension())
    }

    /// The name a download is saved under.
    pub fn file_name(self, job: &JobId) -> String {
        format!("speedbatch-{job}.{}", self.extension())
    }

    /// The rows in this format.
    pub fn render(self, rows: &[ResultRow]) -> String {
        match self {
            ExportFormat::Csv => render_csv(rows),
            ExportFormat::Jsonl => rows.iter().map(|row| row.to_json() + "\n").collect(),
        }
    }
}

/// The fixed columns (the client's tags after `url`), then one per metric any row has (sorted).
const FIXED_COLUMNS: [&str; 10] =
    ["url", "status", "attempts", "error", "error_kind", "engine", "strategy", "score", "analyzed_at", "cached_from"];

/// The columns of the client's own tags, after `url`, when any row has them: `ref`, then
/// `label.<name>` for each label name any row has (sorted).
struct TagColumns<'a> {
    reference: bool,
    labels: BTreeSet<&'a str>,
}

impl<'a> TagColumns<'a> {
    fn of(rows: &'a [ResultRow]) -> Self {
        TagColumns {
            reference: rows.iter().any(|row| row.tags.reference.is_some()),
            labels: rows.iter().flat_map(|row| row.tags.labels.keys().map(String::as_str)).collect(),
        }
    }

    fn names(&self) -> Vec<String> {
        let reference = self.reference.then(|| "ref".to_owned());
        reference.into_iter().chain(self.labels.iter().map(|name| format!("label.{name}"))).collect()
    }

    fn fields(&self, tags: &Tags) -> Vec<String> {
        let reference = self.reference.then(|| tags.reference.clone().unwrap_or_default());
        let labels = self.labels.iter().map(|name| tags.labels.get(*name).cloned().unwrap_or_default());
        reference.into_iter().chain(labels).collect()
    }
}

/// A metric as CSV columns: one for a plain value, and for the weekly field-data series one
/// per part (`field_history_weeks`, `field_history_lcp_ms`, ...), each week's value in order
/// separated by `;` with nothing for a week without data.
fn columns(name: &str, value: &Value) -> Vec<(String, String)> {
    let cell = |value: &Value| match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    match value {
        Value::Object(series) if name.ends_with(HISTORY) => series
            .iter()
            .map(|(part, value)| {
                let text = match value {
                    Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(";"),
                    other => cell(other),
                };
                (format!("{name}_{part}"), text)
            })
            .collect(),
        other => vec![(name.to_owned(), cell(other))],
    }
}

const HISTORY: &str = "field_history";

fn render_csv(rows: &[ResultRow]) -> String {
    let metric_names: BTreeSet<String> = rows
        .iter()
        .flat_map(|row| row.metrics.iter().flat_map(|(name, value)| columns(name, value)).map(|(column, _)| column))
        .collect();
    let tags = TagColumns::of(rows);
    let header = std::iter::once("url".to_owned())
        .chain(tags.names())
        .chain(FIXED_COLUMNS[1..].iter().map(|c| (*c).to_owned()))
        .chain(metric_names.iter().cloned());
    let mut body = csv::record(header);
    for row in rows {
        let mut fields = vec![row.url.clone()];
        fields.extend(tags.fields(&row.tags));
        fields.extend([
            row.status.to_string(),
            row.attempts.to_string(),
            row.error.clone().unwrap_or_default(),
            row.error_kind.map(|k| k.to_string()).unwrap_or_default(),
            row.engine.clone().unwrap_or_default(),
            row.strategy.to_string(),
            row.score.map(|s| s.to_string()).unwrap_or_default(),
            row.analyzed_at.clone().unwrap_or_default(),
            row.cached_from.as_ref().map(|c| c.batch_job_id.clone()).unwrap_or_default(),
        ]);
        let mut cells: std::collections::HashMap<String, String> =
            row.metrics.iter().flat_map(|(name, value)| columns(name, value)).collect();
        fields.extend(metric_names.iter().map(|name| cells.remove(name).unwrap_or_default()));
        body.push_str(&csv::record(fields));
    }
    body
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::settings::Strategy;
    use crate::task::UrlStatus;

    fn row(url: &str, metrics: Value) -> ResultRow {
        ResultRow {
            url: url.into(),
            tags: Tags::default(),
            status: UrlStatus::Succeeded,
            attempts: 1,
            error: None,
            error_kind: None,
            engine: Some("http".into()),
            strategy: Strategy::Mobile,
            score: Some(88.5),
            metrics: metrics.as_object().cloned().unwrap_or_default(),
            analyzed_at: Some("2026-12-03T00:00:00Z".into()),
            cached_from: None,
        }
    }

    #[test]
    fn csv_carries_the_clients_reference_and_labels_after_the_url() {
        let mut a = row("https://a.example/", json!({}));
        a.tags = Tags { reference: Some("B-17".into()), labels: [("city".into(), "Lyon".into())].into() };
        let mut b = row("https://b.example/", json!({}));
        b.tags.labels.insert("segment".into(), "=cmd".into());
        let csv = ExportFormat::Csv.render(&[a, b]);
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert!(lines[0].starts_with("url,ref,label.city,label.segment,status,"), "{}", lines[0]);
        assert!(lines[1].starts_with("https://a.example/,B-17,Lyon,,succeeded,"), "{}", lines[1]);
        assert!(lines[2].starts_with("https://b.example/,,,'=cmd,succeeded,"), "a label is defused too: {}", lines[2]);
        let jsonl = ExportFormat::Jsonl.render(&[row("https://c.example/", json!({}))]);
        assert!(!jsonl.contains("\"ref\"") && !jsonl.contains("labels"), "untagged rows carry no tags: {jsonl}");
    }

    #[test]
    fn a_field_history_is_a_column_per_series_with_its_weeks_in_order() {
        let history = json!({"source": "origin", "weeks": ["2026-11-21", "2026-11-28"], "lcp_ms": [null, 2100.0]});
        let rows = [
            row("https://a.example/", json!({"field_lcp_ms": 2100.0, "field_history": history})),
            row("https://b.example/", json!({"field_status": "unavailable"})),
        ];
        let csv = ExportFormat::Csv.render(&rows);
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert!(
            lines[0]
                .ends_with(",field_history_lcp_ms,field_history_source,field_history_weeks,field_lcp_ms,field_status"),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].ends_with(",;2100.0,origin,2026-11-21;2026-11-28,2100.0,"),
            "a gap is an empty week: {}",
            lines[1]
        );
        assert!(lines[2].ends_with(",,,,,unavailable"), "{}", lines[2]);
        let jsonl = ExportFormat::Jsonl.render(&rows[..1]);
        assert!(jsonl.contains(r#""field_history":{"lcp_ms":[null,2100.0]"#), "JSON Lines keep the series: {jsonl}");
    }

    #[test]
    fn csv_has_a_column_per_metric_any_row_has() {
        let rows =
            [row("https://a.example/", json!({"ttfb_ms": 12})), row("https://b.example/,x", json!({"lcp_ms": 900}))];
        let csv = ExportFormat::Csv.render(&rows);
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(
            lines[0],
            "url,status,attempts,error,error_kind,engine,strategy,score,analyzed_at,cached_from,lcp_ms,ttfb_ms"
        );
        assert_eq!(lines[1], "https://a.example/,succeeded,1,,,http,mobile,88.5,2026-12-03T00:00:00Z,,,12");
        assert_eq!(lines[2], "\"https://b.example/,x\",succeeded,1,,,http,mobile,88.5,2026-12-03T00:00:00Z,,900,");
        assert_eq!(lines.len(), 4, "every record ends in CRLF");
    }

    #[test]
    fn json_lines_are_the_rows_one_per_line() {
        let rows = [row("https://a.example/", json!({"ttfb_ms": 12})), row("https://b.example/", json!({}))];
        let text = ExportFormat::Jsonl.render(&rows);
        let parsed: Vec<ResultRow> = text.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
        assert_eq!(parsed, rows);
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn keys_and_names_follow_the_job() {
        let id = JobId::generate();
        assert_eq!(ExportFormat::Jsonl.object_key(&id), format!("exports/{id}.jsonl"));
        assert_eq!(ExportFormat::Csv.file_name(&id), format!("speedbatch-{id}.csv"));
    }
}

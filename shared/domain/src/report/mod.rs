//! What a job's results look like to a reader: the rows, the summary, the whole-job exports,
//! and the report kept beside a finished job (its summary and where its exports are).

pub mod csv;
mod export;
mod rows;
mod summary;

use serde::{Deserialize, Serialize};

pub use export::ExportFormat;
pub use rows::{CachedRow, ResultRow};
pub use summary::{Percentiles, Summary, summarize};

use crate::job::JobId;
use crate::time::Millis;

/// What the tracker hands the exporter through its queue: a job that has just finished.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExportRequest {
    pub batch_job_id: JobId,
}

/// Written once when a job has finished: its complete summary and its export files. A page
/// of a finished job reads this instead of every URL.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobReport {
    pub summary: Summary,
    pub exports: Vec<ExportFile>,
    /// Where the job's digest for comparisons is ([`crate::compare::Digest`]); absent on
    /// jobs exported before digests were kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    pub written_at: Millis,
}

impl JobReport {
    pub fn export(&self, format: ExportFormat) -> Option<&ExportFile> {
        self.exports.iter().find(|file| file.format == format)
    }
}

/// One export file of a finished job, in the exports bucket.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExportFile {
    pub format: ExportFormat,
    pub key: String,
    pub bytes: u64,
    pub rows: u64,
}

//! A finished job's report, kept as one JSON attribute beside the job (a few KB: counts and
//! percentiles, and the export files' keys).

use aws_sdk_dynamodb::types::AttributeValue;
use domain::report::JobReport;
use domain::{Error, JobId};

use super::items::REPORT_SK;
use super::{DynamoStore, av_n, av_s};
use crate::Reports;

impl Reports for DynamoStore {
    async fn get_report(&self, id: &JobId) -> Result<Option<JobReport>, Error> {
        let Some(item) = self.get_consistent(Self::key(id, REPORT_SK.to_owned())).await? else { return Ok(None) };
        match item.get("report") {
            Some(AttributeValue::S(json)) => serde_json::from_str(json)
                .map(Some)
                .map_err(|e| Error::Corrupt(format!("the report of job {id} is unreadable: {e}"))),
            _ => Err(Error::Corrupt(format!("the report item of job {id} has no report"))),
        }
    }

    async fn put_report(&self, id: &JobId, report: &JobReport) -> Result<(), Error> {
        let json = serde_json::to_string(report).map_err(|e| Error::Corrupt(e.to_string()))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::key(id, REPORT_SK.to_owned())))
            .item("report", av_s(json))
            .item("written_at", av_n(report.written_at))
            // Kept as long as the finished job it describes.
            .item("expires_at", av_n(self.expiry(report.written_at, 0)))
            .send()
            .await
            .map_err(|e| Error::store("PutItem", e))?;
        Ok(())
    }
}

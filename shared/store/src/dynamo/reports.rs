//! A finished job's report, kept as one JSON attribute beside the job (a few KB: counts and
//! percentiles, and the export files' keys), and its tenant's days: what every finished job
//! added to each UTC day, as running tallies in a few items per day.
//!
//! The report and the job's share of its days are one transaction, conditional on the report
//! not being there: a job is counted once, however often it is exported. A day is split into
//! `DAY_SHARDS` items (a job adds to one, chosen by its id), so jobs finishing at once for one
//! tenant rarely write the same item; each is read, added to, and written back conditional
//! on its version, and a lost race is tried again.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use domain::analytics::DayTally;
use domain::report::JobReport;
use domain::retry::backoff;
use domain::{Error, JobId, Tenant};

use super::items::{REPORT_SK, tenant_pk};
use super::{DynamoStore, Item, av_n, av_s, conflicted, failed_conditions, number_of};
use crate::{JobTallies, Reports};

/// Items a tenant's day is split into.
const DAY_SHARDS: u8 = 4;
/// Times a report is written again after another job's write to the same day won the race.
const TALLY_RETRIES: u32 = 8;
/// How long a day's tallies are kept after the day.
const TALLY_DAYS_KEPT: i64 = 400;

fn day_sk(day: &str, shard: u8) -> String {
    format!("ANALYTICS#{day}#{shard}")
}

/// A job id's last hex digit is random (UUIDv7), so jobs spread evenly over the shards.
fn shard_of(id: &JobId) -> u8 {
    let last = id.as_str().chars().next_back().and_then(|c| c.to_digit(16)).unwrap_or(0);
    (last as u8) % DAY_SHARDS
}

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

    async fn put_report(&self, id: &JobId, report: &JobReport, tallies: Option<&JobTallies>) -> Result<bool, Error> {
        let json = serde_json::to_string(report).map_err(|e| Error::Corrupt(e.to_string()))?;
        let mut report_item = Self::key(id, REPORT_SK.to_owned());
        report_item.insert("report".into(), av_s(json));
        report_item.insert("written_at".into(), av_n(report.written_at));
        // Kept as long as the finished job it describes.
        report_item.insert("expires_at".into(), av_n(self.expiry(report.written_at, 0)));
        let report_put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(report_item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| Error::store("TransactWriteItems", e))?;
        for round in 0..=TALLY_RETRIES {
            let mut members = vec![TransactWriteItem::builder().put(report_put.clone()).build()];
            if let Some(tallies) = tallies {
                members.extend(self.day_puts(id, tallies).await?);
            }
            let written = self.client.transact_write_items().set_transact_items(Some(members)).send().await;
            let err = match written {
                Ok(_) => return Ok(true),
                Err(err) => err,
            };
            let failed = failed_conditions(&err);
            // The report is there: an earlier export wrote it (and counted the job).
            if failed.as_ref().is_some_and(|checks| checks.first().is_some_and(|c| c.failed())) {
                return Ok(false);
            }
            let raced = conflicted(&err) || failed.is_some_and(|checks| checks.iter().any(|c| c.failed()));
            if !raced || round == TALLY_RETRIES {
                return Err(Error::store("TransactWriteItems", err));
            }
            tokio::time::sleep(backoff(round)).await;
        }
        Err(Error::Conflict(format!("job {id}'s report lost every race for its tenant's days")))
    }

    async fn day_tallies(&self, tenant: &Tenant, from: &str, to: &str) -> Result<BTreeMap<String, DayTally>, Error> {
        let mut days: BTreeMap<String, DayTally> = BTreeMap::new();
        // Every shard of the last day: `#9` sorts after each shard's `#<digit>`.
        let (from, to) = (format!("ANALYTICS#{from}"), format!("ANALYTICS#{to}#9"));
        for item in self.items_in_range(&tenant_pk(tenant), &from, &to, false).await? {
            let (day, tally) = tally_of(&item)?;
            days.entry(day).or_default().merge(&tally);
        }
        Ok(days)
    }
}

impl DynamoStore {
    /// The job's share of each of its days added to what the day's shard holds now, each put
    /// conditional on the shard being as read.
    async fn day_puts(&self, id: &JobId, tallies: &JobTallies) -> Result<Vec<TransactWriteItem>, Error> {
        let shard = shard_of(id);
        let pk = tenant_pk(&tallies.tenant);
        let mut puts = Vec::with_capacity(tallies.days.len());
        for (day, tally) in &tallies.days {
            let key = Self::key_of(&pk, &day_sk(day, shard));
            let (mut total, version) = match self.get_consistent(key.clone()).await? {
                Some(item) => (tally_of(&item)?.1, number_of(&item, "version")),
                None => (DayTally::default(), None),
            };
            total.merge(tally);
            let json = serde_json::to_string(&total).map_err(|e| Error::Corrupt(e.to_string()))?;
            let mut item: Item = key;
            item.insert("day".into(), av_s(day.as_str()));
            item.insert("tally".into(), av_s(json));
            item.insert("version".into(), av_n(version.unwrap_or(0) + 1));
            if let Some(expires_at) = expiry_of(day) {
                item.insert("expires_at".into(), av_n(expires_at));
            }
            let condition = match version {
                Some(_) => "version = :version",
                None => "attribute_not_exists(pk)",
            };
            let mut put = Put::builder().table_name(&self.table).set_item(Some(item)).condition_expression(condition);
            if let Some(version) = version {
                put = put.expression_attribute_values(":version", av_n(version));
            }
            let put = put.build().map_err(|e| Error::store("TransactWriteItems", e))?;
            puts.push(TransactWriteItem::builder().put(put).build());
        }
        Ok(puts)
    }
}

fn tally_of(item: &Item) -> Result<(String, DayTally), Error> {
    match (item.get("day"), item.get("tally")) {
        (Some(AttributeValue::S(day)), Some(AttributeValue::S(json))) => {
            let tally =
                serde_json::from_str(json).map_err(|e| Error::Corrupt(format!("the tally of day {day}: {e}")))?;
            Ok((day.clone(), tally))
        }
        _ => Err(Error::Corrupt("a day's tally item without its day or tally".into())),
    }
}

/// `TALLY_DAYS_KEPT` days after the day, in epoch seconds.
fn expiry_of(day: &str) -> Option<i64> {
    let start = domain::time::parse_rfc3339(&format!("{day}T00:00:00Z"))?;
    Some(start / 1000 + TALLY_DAYS_KEPT * 86_400)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_is_read_whole_by_its_range_and_jobs_spread_over_its_shards() {
        let last = format!("ANALYTICS#2026-12-04#{}", 9);
        for shard in 0..DAY_SHARDS {
            let sk = day_sk("2026-12-04", shard);
            assert!(sk.as_str() >= "ANALYTICS#2026-12-04" && sk <= last, "{sk}");
            assert!(sk.as_str() > day_sk("2026-12-03", DAY_SHARDS - 1).as_str());
        }
        let shards: std::collections::HashSet<u8> = (0..64).map(|_| shard_of(&JobId::generate())).collect();
        assert_eq!(shards.len(), DAY_SHARDS as usize);
        assert_eq!(expiry_of("2026-12-04"), Some(1_796_342_400 + 400 * 86_400));
        assert_eq!(expiry_of("not a day"), None);
    }
}

//! Each tenant's limits and what it uses of them (`items` has the layout). A new job is
//! counted in the transaction that creates it, and uncounted in the one that finishes it, so
//! neither count drifts: the active jobs are a set of ids (adding or removing one twice
//! changes nothing, and a job created before counting began is simply not in it).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Put, TransactWriteItem};
use domain::tenancy::{self, LimitOverrides, Limits, OverLimit, TenantUsage, Usage};
use domain::time::Millis;
use domain::{Error, Job, Tenant};

use super::items::{LIMITS_SK, USAGE_SK, day_sk, tenant_pk};
use super::moves::Expression;
use super::{DynamoStore, Item, av_n, from_item, number_of, to_item};
use crate::Tenancy;

/// Days a tenant's daily count outlives its day (for `GET /usage` around midnight).
const DAY_KEPT_DAYS: i64 = 2;

fn key(tenant: &Tenant, sk: String) -> Item {
    DynamoStore::key_of(&tenant_pk(tenant), &sk)
}

/// The usage two items show: the active set's size and the day's count.
fn usage_of(active: Option<&Item>, day: Option<&Item>) -> Usage {
    let active_jobs = match active.and_then(|item| item.get("active")) {
        Some(AttributeValue::Ss(ids)) => u32::try_from(ids.len()).unwrap_or(u32::MAX),
        _ => 0,
    };
    let urls_today = day.and_then(|item| number_of(item, "analyses")).and_then(|n| u64::try_from(n).ok()).unwrap_or(0);
    Usage { active_jobs, urls_today }
}

impl DynamoStore {
    /// Puts the new job and counts it: its id into the tenant's active set while the set has
    /// room, its analyses into today's count while the day has room. All or nothing.
    pub(super) async fn put_counted_job(
        &self,
        job: &Job,
        item: Item,
        limits: &Limits,
    ) -> Result<Result<(), OverLimit>, Error> {
        let now = job.created_at;
        let analyses = tenancy::analyses(&job.settings, job.counters.total);
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| Error::store("TransactWriteItems", e))?;
        let active = Expression::default()
            .add("active :id")
            .value(":id", AttributeValue::Ss(vec![job.id.to_string()]))
            .condition("(attribute_not_exists(active) OR size(active) < :max)")
            .value(":max", av_n(limits.max_active_jobs));
        let room = limits.max_urls_per_day.saturating_sub(analyses);
        let day = Expression::default()
            .add("analyses :n")
            .value(":n", av_n(analyses))
            .set("expires_at = if_not_exists(expires_at, :expires)")
            .value(":expires", av_n(tenancy::day_ends(now) / 1000 + DAY_KEPT_DAYS * 86_400))
            .condition("(attribute_not_exists(analyses) OR analyses <= :room)")
            .value(":room", av_n(room));
        let items = vec![
            TransactWriteItem::builder().put(put).build(),
            active.update(&self.table, key(&job.tenant, USAGE_SK.to_owned()))?,
            day.update(&self.table, key(&job.tenant, day_sk(&tenancy::usage_day(now))))?,
        ];
        let Some(checks) = self.transact(items).await? else { return Ok(Ok(())) };
        if checks[0].failed() {
            return Err(Error::Conflict(format!("job {} exists", job.id)));
        }
        // The items as they were when a condition failed say which limit, and by how much.
        let usage = usage_of(checks[1].item(), checks[2].item());
        match tenancy::admit(limits, &usage, analyses, now) {
            Err(over) => Ok(Err(over)),
            Ok(()) => Err(Error::Conflict("a limit's condition failed but its item shows room".into())),
        }
    }

    /// The member that takes a finishing job out of its tenant's active set.
    pub(super) fn uncount_job(&self, job: &Job) -> Result<TransactWriteItem, Error> {
        Expression::default()
            .remove_from_set("active :id")
            .value(":id", AttributeValue::Ss(vec![job.id.to_string()]))
            .update(&self.table, key(&job.tenant, USAGE_SK.to_owned()))
    }
}

impl Tenancy for DynamoStore {
    async fn tenant_usage(&self, tenant: &Tenant, now: Millis) -> Result<TenantUsage, Error> {
        let keys = [LIMITS_SK.to_owned(), USAGE_SK.to_owned(), day_sk(&tenancy::usage_day(now))];
        let request = KeysAndAttributes::builder()
            .set_keys(Some(keys.iter().map(|sk| key(tenant, sk.clone())).collect()))
            .consistent_read(true)
            .build()
            .map_err(|e| Error::store("BatchGetItem", e))?;
        let output = self
            .client
            .batch_get_item()
            .request_items(&self.table, request)
            .send()
            .await
            .map_err(|e| Error::store("BatchGetItem", e))?;
        if output.unprocessed_keys.as_ref().is_some_and(|keys| !keys.is_empty()) {
            return Err(Error::Store { operation: "BatchGetItem", message: "a tenant's items were not read".into() });
        }
        let mut found: HashMap<String, Item> = HashMap::new();
        for item in output.responses.and_then(|mut r| r.remove(&self.table)).unwrap_or_default() {
            if let Some(AttributeValue::S(sk)) = item.get("sk") {
                found.insert(sk.clone(), item);
            }
        }
        let overrides = match found.remove(LIMITS_SK) {
            Some(item) => from_item::<LimitOverrides>(item)?,
            None => LimitOverrides::default(),
        };
        Ok(TenantUsage { overrides, usage: usage_of(found.get(USAGE_SK), found.get(&keys[2])) })
    }

    async fn set_limit_overrides(&self, tenant: &Tenant, overrides: &LimitOverrides) -> Result<(), Error> {
        let mut item = to_item(overrides)?;
        item.extend(key(tenant, LIMITS_SK.to_owned()));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| Error::store("PutItem", e))?;
        Ok(())
    }
}

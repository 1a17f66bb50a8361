//! Monitors: one item per monitor beside its tenant (`TENANT#<tenant>` / `MONITOR#<id>`), its
//! URLs in chunk items of at most `CHUNK_BYTES` (`MONURLS#<id>#<generation>#<n>`: a 400 KB item
//! cannot hold 10 000 URLs), and one item per run (`MONRUN#<id>#<job id>`, written with the
//! run's claim) for `GET /jobs?monitor_id=`, and one item per (URL, budget) that changed state
//! (`BUDGET#<id>#<budget id>#<URL hash>`: a budget's page of standings is one key range; one
//! back within its budget expires after the retention period).
//!
//! While a monitor has a next run it carries `gsi2pk = DUE`, `gsi2sk = <next run, 13 digits>#…`
//! in the sparse keys-only GSI `by_activity` (whose `ACTIVE` partition lists unfinished jobs):
//! the scheduler's sweep is one Query, and monitors need no index of their own (CloudFormation
//! adds at most one GSI per table update).
//!
//! Replacing a monitor's URLs writes a new generation of chunks, then the monitor (on its
//! version) naming it, then deletes the old one: a reader never sees a mix.

use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, Put, PutRequest, TransactWriteItem, WriteRequest};
use domain::budget::{BudgetState, Standing, StandingKey, budget_id};
use domain::monitor::{Monitor, MonitorId, TickRecord};
use domain::time::Millis;
use domain::{CleanUrl, Error, JobId, JobUrl, Tags, Tenant};
use serde::{Deserialize, Serialize};

use super::expression::Expression;
use super::items::{ACTIVE_INDEX, tenant_pk};
use super::{DynamoStore, Filter, Item, applied, av_n, av_s, failed_conditions, from_item, to_item};
use crate::{DueTick, Monitors, Page};

/// The partition of `by_activity` that holds monitors by their next run.
const DUE_PK: &str = "DUE";
const MONITOR_SK_PREFIX: &str = "MONITOR#";
/// A chunk of URLs stays well inside DynamoDB's 400 KB item.
const CHUNK_BYTES: usize = 300 * 1024;

#[derive(Serialize, Deserialize)]
struct MonitorItem {
    pk: String,
    sk: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi2pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gsi2sk: Option<String>,
    /// Which chunks hold the monitor's URLs.
    #[serde(default)]
    url_generation: u64,
    #[serde(flatten)]
    monitor: Monitor,
}

impl MonitorItem {
    fn new(monitor: &Monitor, url_generation: u64) -> MonitorItem {
        let due_at = monitor.next_run_at.filter(|_| monitor.enabled);
        MonitorItem {
            pk: tenant_pk(&monitor.tenant),
            sk: monitor_sk(&monitor.id),
            gsi2pk: due_at.map(|_| DUE_PK.to_owned()),
            gsi2sk: due_at.map(|at| due_sk(at, &monitor.id)),
            url_generation,
            monitor: monitor.clone(),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct StoredUrl {
    url: String,
    #[serde(flatten)]
    tags: Tags,
}

/// Sorts by the time first: 13 digits hold every time until the year 2286.
fn due_sk(at: Millis, id: &MonitorId) -> String {
    format!("{at:013}#{id}")
}

fn run_sk(id: &MonitorId, job: &JobId) -> String {
    format!("MONRUN#{id}#{job}")
}

fn standings_prefix(id: &MonitorId) -> String {
    format!("BUDGET#{id}#")
}

/// One URL's standing against one budget: the URL hashed, so the key has a fixed size.
pub(super) fn standing_sk(id: &MonitorId, key: &StandingKey) -> String {
    format!("{}{}#{}", standings_prefix(id), key.budget_id, key.url_hash)
}

#[derive(Serialize, Deserialize)]
struct StandingItem {
    pk: String,
    sk: String,
    /// A URL back within its budget is kept only as long as a job (breached, as long as it is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<i64>,
    #[serde(flatten)]
    standing: Standing,
}

fn monitor_sk(id: &MonitorId) -> String {
    format!("{MONITOR_SK_PREFIX}{id}")
}

fn chunks_prefix(id: &MonitorId, generation: u64) -> String {
    format!("MONURLS#{id}#{generation:010}#")
}

impl DynamoStore {
    fn monitor_key(tenant: &Tenant, id: &MonitorId) -> Item {
        Self::key_of(&tenant_pk(tenant), &monitor_sk(id))
    }

    async fn read_monitor(&self, tenant: &Tenant, id: &MonitorId) -> Result<Option<MonitorItem>, Error> {
        self.get_consistent(Self::monitor_key(tenant, id)).await?.map(from_item).transpose()
    }

    /// Writes `urls` as generation `generation` of the monitor's chunks.
    async fn write_url_chunks(&self, monitor: &Monitor, generation: u64, urls: &[JobUrl]) -> Result<(), Error> {
        let pk = tenant_pk(&monitor.tenant);
        let prefix = chunks_prefix(&monitor.id, generation);
        let mut requests = Vec::new();
        let mut chunk: Vec<StoredUrl> = Vec::new();
        let mut bytes = 0;
        let flush = |chunk: &mut Vec<StoredUrl>, requests: &mut Vec<WriteRequest>| -> Result<(), Error> {
            if chunk.is_empty() {
                return Ok(());
            }
            let mut item = Self::key_of(&pk, &format!("{prefix}{:05}", requests.len()));
            item.insert(
                "urls".into(),
                serde_dynamo::to_attribute_value(&*chunk).map_err(|e| Error::Corrupt(e.to_string()))?,
            );
            let put =
                PutRequest::builder().set_item(Some(item)).build().map_err(|e| Error::store("BatchWriteItem", e))?;
            requests.push(WriteRequest::builder().put_request(put).build());
            chunk.clear();
            Ok(())
        };
        for url in urls {
            let size = url.url.as_str().len()
                + url.tags.reference.as_ref().map_or(0, String::len)
                + url.tags.labels.iter().map(|(k, v)| k.len() + v.len() + 8).sum::<usize>()
                + 16;
            if bytes + size > CHUNK_BYTES {
                flush(&mut chunk, &mut requests)?;
                bytes = 0;
            }
            bytes += size;
            chunk.push(StoredUrl { url: url.url.as_str().to_owned(), tags: url.tags.clone() });
        }
        flush(&mut chunk, &mut requests)?;
        self.write_all(requests).await
    }

    /// A Query of the items beside the tenant whose sort key starts with `prefix`.
    fn beside_tenant(&self, tenant: &Tenant, prefix: &str) -> QueryFluentBuilder {
        self.client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", av_s(tenant_pk(tenant)))
            .expression_attribute_values(":prefix", av_s(prefix))
    }

    /// Deletes every item beside the tenant whose sort key starts with `prefix`.
    async fn delete_under(&self, tenant: &Tenant, prefix: &str) -> Result<(), Error> {
        let keys = self.query_all(self.beside_tenant(tenant, prefix).projection_expression("pk, sk")).await?;
        self.delete_keys(keys).await.map(|_| ())
    }

    /// Puts the monitor's item, on the condition given.
    async fn put_monitor(&self, item: &MonitorItem, condition: Expression) -> Result<bool, Error> {
        let result = condition.put_request(&self.client, &self.table, to_item(item)?).send().await;
        applied_put(result)
    }
}

impl Monitors for DynamoStore {
    async fn create_monitor(&self, monitor: &Monitor, urls: &[JobUrl]) -> Result<(), Error> {
        // The URLs first: a monitor is there only once all of them are.
        self.write_url_chunks(monitor, 0, urls).await?;
        let written = self
            .put_monitor(&MonitorItem::new(monitor, 0), Expression::default().condition("attribute_not_exists(pk)"))
            .await?;
        if !written {
            return Err(Error::Conflict(format!("monitor {} exists", monitor.id)));
        }
        Ok(())
    }

    async fn get_monitor(&self, tenant: &Tenant, id: &MonitorId) -> Result<Option<Monitor>, Error> {
        Ok(self.read_monitor(tenant, id).await?.map(|item| item.monitor))
    }

    async fn monitor_urls(&self, tenant: &Tenant, id: &MonitorId) -> Result<Vec<JobUrl>, Error> {
        let Some(item) = self.read_monitor(tenant, id).await? else { return Ok(Vec::new()) };
        let query = self.beside_tenant(tenant, &chunks_prefix(id, item.url_generation)).consistent_read(true);
        let mut urls = Vec::with_capacity(item.monitor.url_count as usize);
        for chunk in self.query_all(query).await? {
            let stored: Vec<StoredUrl> = chunk
                .get("urls")
                .cloned()
                .map(serde_dynamo::from_attribute_value)
                .transpose()
                .map_err(|e| Error::Corrupt(format!("monitor {id}'s URLs: {e}")))?
                .unwrap_or_default();
            urls.extend(stored.into_iter().map(|s| JobUrl { url: CleanUrl::from_stored(s.url), tags: s.tags }));
        }
        Ok(urls)
    }

    async fn list_monitors(
        &self,
        tenant: &Tenant,
        limit: usize,
        after: Option<&MonitorId>,
    ) -> Result<Page<Monitor, MonitorId>, Error> {
        let query = self.beside_tenant(tenant, MONITOR_SK_PREFIX).scan_index_forward(false);
        let start = after.map(|id| Self::monitor_key(tenant, id));
        let page = self.query_page(query, None, start, limit).await?;
        let items: Vec<Monitor> = page
            .items
            .into_iter()
            .map(|item| from_item::<MonitorItem>(item).map(|i| i.monitor))
            .collect::<Result<_, _>>()?;
        let next = items.last().filter(|_| page.more).map(|m| m.id.clone());
        Ok(Page { items, next })
    }

    async fn replace_monitor(&self, monitor: &Monitor, version: u64, urls: Option<&[JobUrl]>) -> Result<bool, Error> {
        let Some(kept) = self.read_monitor(&monitor.tenant, &monitor.id).await? else { return Ok(false) };
        if kept.monitor.version != version {
            return Ok(false);
        }
        let generation = match urls {
            Some(urls) => {
                self.write_url_chunks(monitor, kept.url_generation + 1, urls).await?;
                kept.url_generation + 1
            }
            None => kept.url_generation,
        };
        let replaced = Monitor { version: version + 1, ..monitor.clone() };
        let condition = Expression::default().condition("version = :version").value(":version", av_n(version));
        let written = self.put_monitor(&MonitorItem::new(&replaced, generation), condition).await?;
        // New URLs leave one generation unused: the old one once replaced, else the new one.
        if generation != kept.url_generation {
            let stale = if written { kept.url_generation } else { generation };
            self.delete_under(&monitor.tenant, &chunks_prefix(&monitor.id, stale)).await?;
        }
        if written {
            let now: Vec<String> = monitor.budgets.iter().map(budget_id).collect();
            for gone in kept.monitor.budgets.iter().map(budget_id).filter(|b| !now.contains(b)) {
                self.delete_under(&monitor.tenant, &format!("{}{gone}#", standings_prefix(&monitor.id))).await?;
            }
        }
        Ok(written)
    }

    async fn delete_monitor(&self, tenant: &Tenant, id: &MonitorId) -> Result<bool, Error> {
        let Some(_) = self.read_monitor(tenant, id).await? else { return Ok(false) };
        for prefix in [format!("MONURLS#{id}#"), format!("MONRUN#{id}#"), standings_prefix(id)] {
            self.delete_under(tenant, &prefix).await?;
        }
        // Last: a monitor half deleted is still there to delete again.
        self.delete_keys(vec![Self::monitor_key(tenant, id)]).await?;
        Ok(true)
    }

    async fn monitor_runs(
        &self,
        tenant: &Tenant,
        id: &MonitorId,
        limit: usize,
        after: Option<&JobId>,
    ) -> Result<Page<JobId, JobId>, Error> {
        let query = self.beside_tenant(tenant, &format!("MONRUN#{id}#")).scan_index_forward(false);
        let start = after.map(|job| Self::key_of(&tenant_pk(tenant), &run_sk(id, job)));
        let page = self.query_page(query, None, start, limit).await?;
        let runs: Vec<JobId> = page
            .items
            .iter()
            .map(|item| match item.get("job_id") {
                Some(AttributeValue::S(job)) => {
                    JobId::parse(job).ok_or_else(|| Error::Corrupt(format!("a run of monitor {id}: {job:?}")))
                }
                _ => Err(Error::Corrupt(format!("a run of monitor {id} without its job"))),
            })
            .collect::<Result<_, _>>()?;
        let next = runs.last().filter(|_| page.more).cloned();
        Ok(Page { items: runs, next })
    }

    async fn due_monitors(&self, now: Millis, limit: usize) -> Result<Vec<DueTick>, Error> {
        let output = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(ACTIVE_INDEX)
            // Every entry of a time up to `now` sorts before the first of `now + 1`.
            .key_condition_expression("gsi2pk = :due AND gsi2sk < :after")
            .expression_attribute_values(":due", av_s(DUE_PK))
            .expression_attribute_values(":after", av_s(format!("{:013}", now + 1)))
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| Error::store("Query", e))?;
        output
            .items()
            .iter()
            .map(|key| {
                let text = |name: &str| match key.get(name) {
                    Some(aws_sdk_dynamodb::types::AttributeValue::S(s)) => Some(s.as_str()),
                    _ => None,
                };
                let tenant = text("pk").and_then(|pk| pk.strip_prefix("TENANT#")).map(|t| Tenant(t.to_owned()));
                let id = text("sk").and_then(|sk| sk.strip_prefix(MONITOR_SK_PREFIX)).and_then(MonitorId::parse);
                let tick = text("gsi2sk").and_then(|sk| sk.split('#').next()).and_then(|at| at.parse().ok());
                match (tenant, id, tick) {
                    (Some(tenant), Some(monitor_id), Some(tick)) => {
                        Ok(DueTick { tenant, monitor_id, tick, swept_at: None })
                    }
                    _ => Err(Error::Corrupt("a due monitor's index entry without its keys".into())),
                }
            })
            .collect()
    }

    async fn budget_standings(&self, tenant: &Tenant, id: &MonitorId) -> Result<Vec<Standing>, Error> {
        let items = self.query_all(self.beside_tenant(tenant, &standings_prefix(id))).await?;
        items.into_iter().map(|item| from_item::<StandingItem>(item).map(|i| i.standing)).collect()
    }

    async fn put_budget_standings(&self, tenant: &Tenant, id: &MonitorId, standings: &[Standing]) -> Result<(), Error> {
        let mut requests = Vec::with_capacity(standings.len());
        for standing in standings {
            let item = StandingItem {
                pk: tenant_pk(tenant),
                sk: standing_sk(id, &standing.key()),
                expires_at: (standing.state == BudgetState::Within).then(|| self.expiry(standing.since, 0)),
                standing: standing.clone(),
            };
            let put = PutRequest::builder()
                .set_item(Some(to_item(&item)?))
                .build()
                .map_err(|e| Error::store("BatchWriteItem", e))?;
            requests.push(WriteRequest::builder().put_request(put).build());
        }
        self.write_all(requests).await
    }

    async fn budget_page(
        &self,
        tenant: &Tenant,
        id: &MonitorId,
        state: Option<BudgetState>,
        limit: usize,
        after: Option<&StandingKey>,
    ) -> Result<Page<Standing, StandingKey>, Error> {
        let filter = state.map(|state| Filter {
            expression: "#state = :state".into(),
            names: vec![("#state", "state".into())],
            values: vec![(":state", av_s(state.as_str()))],
        });
        let start = after.map(|key| Self::key_of(&tenant_pk(tenant), &standing_sk(id, key)));
        let page = self.query_page(self.beside_tenant(tenant, &standings_prefix(id)), filter, start, limit).await?;
        let items: Vec<Standing> = page
            .items
            .into_iter()
            .map(|item| from_item::<StandingItem>(item).map(|i| i.standing))
            .collect::<Result<_, _>>()?;
        let next = items.last().filter(|_| page.more).map(Standing::key);
        Ok(Page { items, next })
    }

    async fn record_run_now(&self, monitor: &Monitor, job: &JobId, now: Millis) -> Result<bool, Error> {
        let condition = Expression::default().condition("version = :version").value(":version", av_n(monitor.version));
        let record = TickRecord::Ran(job.clone());
        self.settle_write(&monitor.tenant, &monitor.id, condition, monitor.next_run_at, &record, now).await
    }

    async fn settle_tick(
        &self,
        due: &DueTick,
        next: Option<Millis>,
        record: &TickRecord,
        now: Millis,
    ) -> Result<bool, Error> {
        let condition = Expression::default().condition("next_run_at = :tick").value(":tick", av_n(due.tick));
        self.settle_write(&due.tenant, &due.monitor_id, condition, next, record, now).await
    }
}

impl DynamoStore {
    /// `Monitor::settle` as one write on `condition`: an update, with the run's listing item
    /// beside it in the same transaction for a run.
    async fn settle_write(
        &self,
        tenant: &Tenant,
        id: &MonitorId,
        condition: Expression,
        next: Option<Millis>,
        record: &TickRecord,
        now: Millis,
    ) -> Result<bool, Error> {
        let mut update = condition.add("version :one").value(":one", av_n(1));
        update = match next {
            Some(next) => update
                .set("next_run_at = :next, gsi2pk = :due, gsi2sk = :due_sk")
                .value(":next", av_n(next))
                .value(":due", av_s(DUE_PK))
                .value(":due_sk", av_s(due_sk(next, id))),
            None => update
                .set("next_run_at = :none")
                .value(":none", AttributeValue::Null(true))
                .remove("gsi2pk")
                .remove("gsi2sk"),
        };
        let key = Self::monitor_key(tenant, id);
        let job = match record {
            TickRecord::Ran(job) => job,
            TickRecord::Skipped(skipped) => {
                let skip = serde_dynamo::to_attribute_value(skipped).map_err(|e| Error::Corrupt(e.to_string()))?;
                let update = update.set("last_skip = :skip").value(":skip", skip).add("skipped_runs :one");
                return applied(update.update_request(&self.client, &self.table, key).send().await);
            }
        };
        let update = update
            .set("running_job = :job, last_run_at = :now")
            .value(":job", av_s(job.as_str()))
            .value(":now", av_n(now))
            .add("runs :one");
        // The run is listed beside the monitor in the same write, for `GET /jobs?monitor_id=`.
        let mut run = Self::key_of(&tenant_pk(tenant), &run_sk(id, job));
        run.insert("job_id".into(), av_s(job.as_str()));
        run.insert("expires_at".into(), av_n(self.expiry(now, 1)));
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(run))
            .build()
            .map_err(|e| Error::store("TransactWriteItems", e))?;
        let members = vec![update.update(&self.table, key)?, TransactWriteItem::builder().put(put).build()];
        match self.client.transact_write_items().set_transact_items(Some(members)).send().await {
            Ok(_) => Ok(true),
            Err(err) if failed_conditions(&err).is_some_and(|checks| checks.first().is_some_and(|c| c.failed())) => {
                Ok(false)
            }
            Err(err) => Err(Error::store("TransactWriteItems", err)),
        }
    }
}

fn applied_put<O>(
    result: Result<O, aws_sdk_dynamodb::error::SdkError<aws_sdk_dynamodb::operation::put_item::PutItemError>>,
) -> Result<bool, Error> {
    match result {
        Ok(_) => Ok(true),
        Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
        Err(err) => Err(Error::store("PutItem", err)),
    }
}

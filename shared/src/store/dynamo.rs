use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::builders::UpdateBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, PutRequest, TransactWriteItem, Update, WriteRequest};
use futures::{StreamExt, TryStreamExt};

use super::items::{
    JOB_SK, JobItem, KEY_SK, MAX_SEQ, TASK_SK_PREFIX, TENANT_INDEX, TaskItem, job_pk, key_pk, task_sk, tenant_pk,
};
use super::{Cancel, Claim, JobStore, Outcome, Page, Recorded};
use crate::auth::KeyStore;
use crate::domain::{CleanUrl, Job, JobId, JobStatus, Tenant, UrlStatus, UrlTask};
use crate::error::Error;
use crate::retry::backoff;
use crate::time::Millis;

/// DynamoDB's limit for one BatchWriteItem.
const BATCH_WRITE_MAX: usize = 25;
/// BatchWriteItem calls in flight at once while writing a job's tasks.
const WRITE_PARALLELISM: usize = 8;
/// URLs cancelled per transaction (plus the job's counters: DynamoDB allows 100 items; fewer
/// items make a collision with a concurrent delivery less likely).
const CANCEL_BATCH: usize = 25;
/// Re-reads of a page whose cancellation collided with deliveries before giving up (the
/// stream record is then retried).
const MAX_CANCEL_CONFLICTS: u32 = 20;
/// Rounds of re-sending unprocessed items before giving up.
const UNPROCESSED_RETRIES: u32 = 8;

struct RawPage {
    items: Vec<HashMap<String, AttributeValue>>,
    more: bool,
}

#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
    /// How long a job's items live; URL items get their expiry at creation (with margin for
    /// the job to run), the job item when it finishes.
    retention_days: u32,
}

fn av_s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn av_n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn to_item<T: serde::Serialize>(value: &T) -> Result<HashMap<String, AttributeValue>, Error> {
    serde_dynamo::to_item(value).map_err(|e| Error::Corrupt(e.to_string()))
}

fn from_item<T: serde::de::DeserializeOwned>(item: HashMap<String, AttributeValue>) -> Result<T, Error> {
    serde_dynamo::from_item(item).map_err(|e| Error::Corrupt(e.to_string()))
}

/// Which items of a cancelled transaction failed their condition.
fn failed_conditions(err: &SdkError<TransactWriteItemsError>) -> Option<Vec<bool>> {
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(e)) => {
            Some(e.cancellation_reasons().iter().map(|r| r.code() == Some("ConditionalCheckFailed")).collect())
        }
        _ => None,
    }
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>, retention_days: u32) -> Self {
        DynamoStore { client, table: table.into(), retention_days }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    fn key(id: &JobId, sk: String) -> HashMap<String, AttributeValue> {
        HashMap::from([("pk".to_owned(), av_s(job_pk(id))), ("sk".to_owned(), av_s(sk))])
    }

    /// An update that moves a task from `from` to `to` (and only if it is in `from`), with
    /// `:now` bound; callers add the rest of the `SET` and its values.
    fn task_transition(&self, id: &JobId, seq: u32, from: UrlStatus, to: UrlStatus, now: Millis) -> UpdateBuilder {
        Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(id, task_sk(seq))))
            .condition_expression("#status = :from")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":from", av_s(from.as_str()))
            .expression_attribute_values(":to", av_s(to.as_str()))
            .expression_attribute_values(":now", av_n(now))
    }

    fn expiry(&self, from: Millis, extra_days: u32) -> i64 {
        from / 1000 + i64::from(self.retention_days + extra_days) * 86_400
    }

    async fn batch_write(&self, mut requests: Vec<WriteRequest>) -> Result<(), Error> {
        for round in 0..=UNPROCESSED_RETRIES {
            let output = self
                .client
                .batch_write_item()
                .request_items(&self.table, requests)
                .send()
                .await
                .map_err(|e| Error::store("BatchWriteItem", e))?;
            requests = output.unprocessed_items.and_then(|mut items| items.remove(&self.table)).unwrap_or_default();
            if requests.is_empty() {
                return Ok(());
            }
            tokio::time::sleep(backoff(round)).await;
        }
        Err(Error::Store {
            operation: "BatchWriteItem",
            message: format!("{} items still unprocessed after retries", requests.len()),
        })
    }

    async fn get_consistent(
        &self,
        key: HashMap<String, AttributeValue>,
    ) -> Result<Option<HashMap<String, AttributeValue>>, Error> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| Error::store("GetItem", e))?;
        Ok(output.item)
    }

    /// Runs a Query, keeping only items in `status` when one is given, until `limit` items
    /// pass or the data ends. `more` says whether anything may follow the last item returned.
    async fn query_page(
        &self,
        query: QueryFluentBuilder,
        status: Option<&str>,
        mut start: Option<HashMap<String, AttributeValue>>,
        limit: usize,
    ) -> Result<RawPage, Error> {
        let query = match status {
            Some(status) => query
                .filter_expression("#status = :status")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":status", av_s(status)),
            None => query,
        };
        let filtered = status.is_some();
        let mut items = Vec::new();
        loop {
            // DynamoDB applies Limit before the filter: with a filter, read a full page per
            // request rather than a few items at a time.
            let want = if filtered { 1_000 } else { (limit - items.len()).max(1) };
            let output = query
                .clone()
                .limit(i32::try_from(want).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| Error::store("Query", e))?;
            items.extend(output.items.unwrap_or_default());
            start = output.last_evaluated_key;
            if items.len() >= limit {
                let more = items.len() > limit || start.is_some();
                items.truncate(limit);
                return Ok(RawPage { items, more });
            }
            if start.is_none() {
                return Ok(RawPage { items, more: false });
            }
        }
    }

    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<Option<Vec<bool>>, Error> {
        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(None),
            Err(err) => match failed_conditions(&err) {
                Some(failed) if failed.iter().any(|f| *f) => Ok(Some(failed)),
                _ => Err(Error::store("TransactWriteItems", err)),
            },
        }
    }

    fn job_counter_update(
        &self,
        id: &JobId,
        expression: &str,
        values: &[(&str, AttributeValue)],
    ) -> Result<TransactWriteItem, Error> {
        self.job_update(id, expression, "attribute_exists(pk)", values)
    }

    /// A counter update that succeeds only while the job still takes work.
    fn job_update_while_running(
        &self,
        id: &JobId,
        expression: &str,
        values: &[(&str, AttributeValue)],
    ) -> Result<TransactWriteItem, Error> {
        let mut values = values.to_vec();
        values.push((":pending", av_s(JobStatus::Pending.as_str())));
        values.push((":running", av_s(JobStatus::Processing.as_str())));
        self.job_update(id, expression, "#job_status IN (:pending, :running)", &values)
    }

    fn job_update(
        &self,
        id: &JobId,
        expression: &str,
        condition: &str,
        values: &[(&str, AttributeValue)],
    ) -> Result<TransactWriteItem, Error> {
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(id, JOB_SK.to_owned())))
            .update_expression(expression)
            .condition_expression(condition);
        if condition.contains("#job_status") {
            update = update.expression_attribute_names("#job_status", "status");
        }
        for (name, value) in values {
            update = update.expression_attribute_values(*name, value.clone());
        }
        let update = update.build().map_err(|e| Error::store("TransactWriteItems", e))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

impl JobStore for DynamoStore {
    async fn create_job(&self, job: &Job, urls: &[CleanUrl]) -> Result<(), Error> {
        // Tasks first, the job item last: a job never exists without all its tasks, and an
        // interrupted creation leaves only orphan tasks, which expire.
        let expires_at = self.expiry(job.created_at, 7);
        let requests = urls
            .iter()
            .enumerate()
            .map(|(seq, url)| {
                let item = TaskItem::queued(&job.id, seq as u32, url.as_str().to_owned(), expires_at);
                let put = PutRequest::builder()
                    .set_item(Some(to_item(&item)?))
                    .build()
                    .map_err(|e| Error::store("BatchWriteItem", e))?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let chunks: Vec<Vec<WriteRequest>> = requests.chunks(BATCH_WRITE_MAX).map(<[_]>::to_vec).collect();
        futures::stream::iter(chunks)
            .map(|chunk| self.batch_write(chunk))
            .buffer_unordered(WRITE_PARALLELISM)
            .try_collect::<()>()
            .await?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(&JobItem::from_job(job, job.created_at))?))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(|e| Error::store("PutItem", e))?;
        Ok(())
    }

    async fn get_job(&self, id: &JobId) -> Result<Option<Job>, Error> {
        let item = self.get_consistent(Self::key(id, JOB_SK.to_owned())).await?;
        item.map(|item| from_item::<JobItem>(item)?.into_job()).transpose()
    }

    async fn get_task(&self, id: &JobId, seq: u32) -> Result<Option<UrlTask>, Error> {
        let item = self.get_consistent(Self::key(id, task_sk(seq))).await?;
        item.map(|item| Ok(from_item::<TaskItem>(item)?.into_task())).transpose()
    }

    async fn claim_task(&self, id: &JobId, seq: u32, now: Millis) -> Result<Claim, Error> {
        let task = self
            .task_transition(id, seq, UrlStatus::Queued, UrlStatus::Processing, now)
            .update_expression("SET #status = :to, claimed_at = :now ADD attempts :one")
            .expression_attribute_values(":one", av_n(1))
            .build()
            .map_err(|e| Error::store("TransactWriteItems", e))?;
        let job = self.job_update_while_running(
            id,
            "SET updated_at = :now, started_at = if_not_exists(started_at, :now) ADD queued :minus, in_progress :one",
            &[(":now", av_n(now)), (":one", av_n(1)), (":minus", av_n(-1))],
        )?;
        let items = vec![TransactWriteItem::builder().update(task).build(), job];
        match self.transact(items).await? {
            None => Ok(Claim::Claimed),
            Some(failed) if failed.get(1) == Some(&true) => match self.get_job(id).await? {
                None => Err(Error::NotFound),
                Some(job) if matches!(job.status, JobStatus::Cancelling | JobStatus::Cancelled) => {
                    Ok(Claim::JobCancelling)
                }
                Some(job) => Err(Error::Conflict(format!("job {id} is {} but its URL {seq} was queued", job.status))),
            },
            Some(_) => {
                // The task was not queued: find out whether this is a crash recovery or a
                // duplicate. Rare path, so one extra read is fine.
                let task = self.get_task(id, seq).await?.ok_or(Error::NotFound)?;
                match task.status {
                    UrlStatus::Processing => {
                        self.client
                            .update_item()
                            .table_name(&self.table)
                            .set_key(Some(Self::key(id, task_sk(seq))))
                            .update_expression("SET claimed_at = :now ADD attempts :one")
                            .condition_expression("#status = :processing")
                            .expression_attribute_names("#status", "status")
                            .expression_attribute_values(":processing", av_s(UrlStatus::Processing.as_str()))
                            .expression_attribute_values(":now", av_n(now))
                            .expression_attribute_values(":one", av_n(1))
                            .send()
                            .await
                            .map_err(|e| Error::store("UpdateItem", e))?;
                        Ok(Claim::Reclaimed)
                    }
                    status => Ok(Claim::AlreadyFinished(status)),
                }
            }
        }
    }

    async fn record_outcome(&self, id: &JobId, seq: u32, outcome: &Outcome, now: Millis) -> Result<Recorded, Error> {
        let (status, error, analysis) = match outcome {
            Outcome::Succeeded(analysis) => (UrlStatus::Succeeded, None, Some(analysis)),
            Outcome::Failed { kind, reason, analysis } => (UrlStatus::Failed, Some((kind, reason)), analysis.as_ref()),
        };
        let mut set = vec!["#status = :to", "analyzed_at = :now"];
        let mut task = self.task_transition(id, seq, UrlStatus::Processing, status, now);
        if let Some((kind, reason)) = error {
            set.push("#error = :error, error_kind = :kind");
            task = task
                .expression_attribute_names("#error", "error")
                .expression_attribute_values(":error", av_s(reason.as_str()))
                .expression_attribute_values(":kind", av_s(kind.as_str()));
        }
        if let Some(analysis) = analysis {
            set.push("analysis = :analysis");
            let value = serde_dynamo::to_attribute_value(analysis).map_err(|e| Error::Corrupt(e.to_string()))?;
            task = task.expression_attribute_values(":analysis", value);
        }
        let task = task
            .update_expression(format!("SET {}", set.join(", ")))
            .build()
            .map_err(|e| Error::store("TransactWriteItems", e))?;
        let counter = match status {
            UrlStatus::Succeeded => "succeeded",
            _ => "failed",
        };
        let job = self.job_counter_update(
            id,
            &format!("SET updated_at = :now ADD in_progress :minus, {counter} :one"),
            &[(":now", av_n(now)), (":one", av_n(1)), (":minus", av_n(-1))],
        )?;
        match self.transact(vec![TransactWriteItem::builder().update(task).build(), job]).await? {
            None => Ok(Recorded::Counted),
            Some(failed) if failed.first() == Some(&true) => Ok(Recorded::Duplicate),
            Some(_) => Err(Error::NotFound),
        }
    }

    async fn cancel_task(&self, id: &JobId, seq: u32, now: Millis) -> Result<bool, Error> {
        let Some(task) = self.get_task(id, seq).await? else { return Ok(false) };
        let counter = match task.status {
            UrlStatus::Queued => "queued",
            UrlStatus::Processing => "in_progress",
            _ => return Ok(false),
        };
        let update = self
            .task_transition(id, seq, task.status, UrlStatus::Cancelled, now)
            .update_expression("SET #status = :to, analyzed_at = :now")
            .build()
            .map_err(|e| Error::store("TransactWriteItems", e))?;
        let job = self.job_counter_update(
            id,
            &format!("SET updated_at = :now ADD {counter} :minus, cancelled :one"),
            &[(":now", av_n(now)), (":one", av_n(1)), (":minus", av_n(-1))],
        )?;
        Ok(self.transact(vec![TransactWriteItem::builder().update(update).build(), job]).await?.is_none())
    }

    async fn cancel_queued(&self, id: &JobId, now: Millis, budget: Duration) -> Result<u64, Error> {
        let started = std::time::Instant::now();
        let mut cancelled = 0;
        let mut conflicts = 0;
        // Tasks before `after` are done with, so each page is read once: linear, not quadratic.
        let mut after = None;
        while started.elapsed() < budget {
            let page = self.list_tasks(id, Some(UrlStatus::Queued), CANCEL_BATCH, after).await?;
            let Some(last) = page.items.last().map(|task| task.seq) else { break };
            let n = page.items.len() as u64;
            let mut items = Vec::with_capacity(page.items.len() + 1);
            for task in &page.items {
                let update = self
                    .task_transition(id, task.seq, UrlStatus::Queued, UrlStatus::Cancelled, now)
                    .update_expression("SET #status = :to, analyzed_at = :now")
                    .build()
                    .map_err(|e| Error::store("TransactWriteItems", e))?;
                items.push(TransactWriteItem::builder().update(update).build());
            }
            items.push(self.job_counter_update(
                id,
                "SET updated_at = :now ADD queued :minus, cancelled :n",
                &[(":now", av_n(now)), (":minus", av_n(-(n as i64))), (":n", av_n(n))],
            )?);
            match self.transact(items).await? {
                None => {
                    cancelled += n;
                    after = Some(last);
                    if page.next.is_none() {
                        break;
                    }
                }
                // A delivery claimed or cancelled one of these meanwhile: read the page again.
                Some(_) if conflicts < MAX_CANCEL_CONFLICTS => {
                    conflicts += 1;
                    tokio::time::sleep(backoff(conflicts)).await;
                }
                Some(_) => {
                    return Err(Error::Conflict(format!("cancelling job {id}: URLs kept changing underneath")));
                }
            }
        }
        Ok(cancelled)
    }

    async fn request_cancel(&self, id: &JobId, now: Millis) -> Result<Cancel, Error> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(id, JOB_SK.to_owned())))
            .update_expression("SET #status = :cancelling, updated_at = :now, cancel_requested_at = :now")
            .condition_expression("#status IN (:pending, :running)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":cancelling", av_s(JobStatus::Cancelling.as_str()))
            .expression_attribute_values(":pending", av_s(JobStatus::Pending.as_str()))
            .expression_attribute_values(":running", av_s(JobStatus::Processing.as_str()))
            .expression_attribute_values(":now", av_n(now))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Cancel::Requested),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                match self.get_job(id).await?.map(|job| job.status) {
                    None => Err(Error::NotFound),
                    Some(JobStatus::Cancelling) => Ok(Cancel::Requested),
                    Some(status) => Ok(Cancel::AlreadyFinished(status)),
                }
            }
            Err(err) => Err(Error::store("UpdateItem", err)),
        }
    }

    async fn list_jobs(
        &self,
        tenant: &Tenant,
        status: Option<JobStatus>,
        limit: usize,
        after: Option<&JobId>,
    ) -> Result<Page<Job, JobId>, Error> {
        let start = after.map(|id| {
            HashMap::from([
                ("pk".to_owned(), av_s(job_pk(id))),
                ("sk".to_owned(), av_s(JOB_SK)),
                ("gsi1pk".to_owned(), av_s(tenant_pk(tenant))),
                ("gsi1sk".to_owned(), av_s(id.as_str())),
            ])
        });
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(TENANT_INDEX)
            .key_condition_expression("gsi1pk = :tenant")
            .expression_attribute_values(":tenant", av_s(tenant_pk(tenant)))
            .scan_index_forward(false);
        let page = self.query_page(query, status.map(JobStatus::as_str), start, limit).await?;
        let items =
            page.items.into_iter().map(|item| from_item::<JobItem>(item)?.into_job()).collect::<Result<Vec<_>, _>>()?;
        let next = if page.more { items.last().map(|job| job.id.clone()) } else { None };
        Ok(Page { items, next })
    }

    async fn list_tasks(
        &self,
        id: &JobId,
        status: Option<UrlStatus>,
        limit: usize,
        after: Option<u32>,
    ) -> Result<Page<UrlTask, u32>, Error> {
        let from = after.map_or_else(|| TASK_SK_PREFIX.to_owned(), |seq| task_sk(seq + 1));
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
            .expression_attribute_values(":pk", av_s(job_pk(id)))
            .expression_attribute_values(":from", av_s(from))
            .expression_attribute_values(":to", av_s(task_sk(MAX_SEQ)))
            .consistent_read(true);
        let page = self.query_page(query, status.map(UrlStatus::as_str), None, limit).await?;
        let items = page
            .items
            .into_iter()
            .map(|item| Ok(from_item::<TaskItem>(item)?.into_task()))
            .collect::<Result<Vec<_>, Error>>()?;
        let next = if page.more { items.last().map(|task| task.seq) } else { None };
        Ok(Page { items, next })
    }

    async fn delete_job(&self, id: &JobId) -> Result<usize, Error> {
        let mut deleted = 0;
        let mut start = None;
        loop {
            let output = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", av_s(job_pk(id)))
                .projection_expression("pk, sk")
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| Error::store("Query", e))?;
            let mut requests = Vec::new();
            for key in output.items.unwrap_or_default() {
                let delete = DeleteRequest::builder()
                    .set_key(Some(key))
                    .build()
                    .map_err(|e| Error::store("BatchWriteItem", e))?;
                requests.push(WriteRequest::builder().delete_request(delete).build());
            }
            deleted += requests.len();
            let chunks: Vec<Vec<WriteRequest>> = requests.chunks(BATCH_WRITE_MAX).map(<[_]>::to_vec).collect();
            futures::stream::iter(chunks)
                .map(|chunk| self.batch_write(chunk))
                .buffer_unordered(WRITE_PARALLELISM)
                .try_collect::<()>()
                .await?;
            start = output.last_evaluated_key;
            if start.is_none() {
                return Ok(deleted);
            }
        }
    }

    async fn ping(&self) -> Result<(), Error> {
        self.client
            .get_item()
            .table_name(&self.table)
            .key("pk", av_s("HEALTH"))
            .key("sk", av_s("HEALTH"))
            .send()
            .await
            .map_err(|e| Error::store("GetItem", e))?;
        Ok(())
    }

    async fn transition_job(&self, id: &JobId, from: JobStatus, to: JobStatus, now: Millis) -> Result<bool, Error> {
        if !from.can_become(to) {
            return Err(Error::Conflict(format!("a job cannot go from {from} to {to}")));
        }
        let mut expression = String::from("SET #status = :to, updated_at = :now");
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(id, JOB_SK.to_owned())))
            .condition_expression("#status = :from")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":to", av_s(to.as_str()))
            .expression_attribute_values(":from", av_s(from.as_str()))
            .expression_attribute_values(":now", av_n(now));
        if to == JobStatus::Processing || to.is_finished() {
            expression.push_str(", started_at = if_not_exists(started_at, :now)");
        }
        if to.is_finished() {
            expression.push_str(", finished_at = :now, expires_at = :expires");
            request = request.expression_attribute_values(":expires", av_n(self.expiry(now, 0)));
        }
        match request.update_expression(expression).send().await {
            Ok(_) => Ok(true),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(err) => Err(Error::store("UpdateItem", err)),
        }
    }
}

impl KeyStore for DynamoStore {
    async fn tenant_for_key_hash(&self, hash: &str) -> Result<Option<Tenant>, Error> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", av_s(key_pk(hash)))
            .key("sk", av_s(KEY_SK))
            .projection_expression("tenant")
            .send()
            .await
            .map_err(|e| Error::store("GetItem", e))?;
        match output.item.as_ref().and_then(|item| item.get("tenant")) {
            None => Ok(None),
            Some(AttributeValue::S(tenant)) => Ok(Some(Tenant(tenant.clone()))),
            Some(_) => Err(Error::Corrupt("an API key item has a non-string tenant".into())),
        }
    }

    async fn put_key_hash(&self, hash: &str, tenant: &Tenant) -> Result<(), Error> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", av_s(key_pk(hash)))
            .item("sk", av_s(KEY_SK))
            .item("tenant", av_s(&tenant.0))
            .item("created_at", av_n(crate::time::now_millis()))
            .send()
            .await
            .map_err(|e| Error::store("PutItem", e))?;
        Ok(())
    }
}

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::builders::UpdateBuilder;
use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, KeysAndAttributes, PutRequest, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update, WriteRequest,
};
use futures::{StreamExt, TryStreamExt};

use super::items::{
    ACTIVE_INDEX, ACTIVE_PK, CACHE_INDEX, JOB_SK, JobItem, KEY_SK, MAX_SEQ, SECRET_SK, TASK_SK_PREFIX, TENANT_INDEX,
    TaskItem, job_pk, key_pk, task_sk, tenant_pk,
};
use super::{Cancel, Claim, ClaimRequest, JobStore, Outcome, OutcomeRecord, Page, Recorded};
use crate::auth::KeyStore;
use crate::domain::{
    Analysis, CacheKey, CachedFrom, CleanUrl, ErrorKind, Job, JobId, JobStatus, Tenant, UrlStatus, UrlTask,
};
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
/// DynamoDB's limit for one BatchGetItem.
const BATCH_GET_MAX: usize = 100;
/// URLs claimed or recorded in one transaction: with their releases and one counter update
/// per job, at most 75 of DynamoDB's 100 items.
const BATCH_TRANSACTION_URLS: usize = 25;

type Item = HashMap<String, AttributeValue>;

fn lease_end(now: Millis, lease: Duration) -> Millis {
    now.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX))
}

/// A new job's task for URL `seq`, queued (and released when it is in the first window).
fn task_put(job: &Job, seq: u32, url: &CleanUrl, window: u32, expires_at: i64) -> Result<WriteRequest, Error> {
    let released = (seq < window).then_some(job.created_at);
    let item = TaskItem::queued(&job.id, seq, url.as_str().to_owned(), released, expires_at);
    let put =
        PutRequest::builder().set_item(Some(to_item(&item)?)).build().map_err(|e| Error::store("BatchWriteItem", e))?;
    Ok(WriteRequest::builder().put_request(put).build())
}

/// Whether URLs touching these task items can share one transaction: more than one of them
/// (or there is nothing to gain), and no item twice (DynamoDB refuses a transaction that
/// touches one item twice).
fn batchable<'a>(keys: impl Iterator<Item = (&'a JobId, u32)>) -> bool {
    let mut seen = std::collections::HashSet::new();
    let mut count = 0;
    for key in keys {
        count += 1;
        if !seen.insert(key) {
            return false;
        }
    }
    count > 1
}

/// Whether a shared transaction was written. When it was not (a failed condition: a
/// duplicate, a crash's take-over, a cancelling job; or an error), nothing was, and each URL
/// is then written alone, which tells what became of it.
fn held(written: Result<bool, Error>, what: &str) -> bool {
    written.unwrap_or_else(|err| {
        tracing::warn!(error = %err, "{what} a batch failed; writing its URLs one by one");
        false
    })
}

/// How one member of a cancelled transaction fared.
#[derive(Debug)]
enum Check {
    Held,
    /// Its condition failed; the item as it was, when the member asked for it.
    Failed(Option<Item>),
}

impl Check {
    fn failed(&self) -> bool {
        matches!(self, Check::Failed(_))
    }

    fn old(&self) -> Option<&Item> {
        match self {
            Check::Failed(item) => item.as_ref(),
            Check::Held => None,
        }
    }
}

/// A filter applied to a Query's results.
struct Filter {
    expression: &'static str,
    names: Vec<(&'static str, &'static str)>,
    values: Vec<(&'static str, AttributeValue)>,
}

impl Filter {
    fn status(status: &str) -> Self {
        Filter {
            expression: "#status = :status",
            names: vec![("#status", "status")],
            values: vec![(":status", av_s(status))],
        }
    }
}

fn status_of<T: std::str::FromStr<Err = String>>(item: &Item) -> Result<T, Error> {
    match item.get("status") {
        Some(AttributeValue::S(text)) => text.parse().map_err(Error::Corrupt),
        _ => Err(Error::Corrupt("an item without a status".into())),
    }
}

fn number_of(item: &Item, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(AttributeValue::N(n)) => n.parse().ok(),
        _ => None,
    }
}

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

/// Whether a conditional UpdateItem applied: `false` when its condition did not hold (the
/// item had moved on), an error for anything else.
fn applied<O>(result: Result<O, SdkError<UpdateItemError>>) -> Result<bool, Error> {
    match result {
        Ok(_) => Ok(true),
        Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
        Err(err) => Err(Error::store("UpdateItem", err)),
    }
}

/// Where a listing of job items on a GSI resumes: after the job `id`, whose index key is
/// `pk_name = pk_value`, `sk_name = <job id>`.
fn job_index_start(id: &JobId, pk_name: &str, pk_value: String, sk_name: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_owned(), av_s(job_pk(id))),
        ("sk".to_owned(), av_s(JOB_SK)),
        (pk_name.to_owned(), av_s(pk_value)),
        (sk_name.to_owned(), av_s(id.as_str())),
    ])
}

/// How each member of a cancelled transaction fared.
fn failed_conditions(err: &SdkError<TransactWriteItemsError>) -> Option<Vec<Check>> {
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(e)) => Some(
            e.cancellation_reasons()
                .iter()
                .map(|r| match r.code() {
                    Some("ConditionalCheckFailed") => Check::Failed(r.item().cloned()),
                    _ => Check::Held,
                })
                .collect(),
        ),
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
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
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
        filter: Option<Filter>,
        mut start: Option<HashMap<String, AttributeValue>>,
        limit: usize,
    ) -> Result<RawPage, Error> {
        let filtered = filter.is_some();
        let query = match filter {
            Some(filter) => {
                let mut query = query.filter_expression(filter.expression);
                for (name, attribute) in filter.names {
                    query = query.expression_attribute_names(name, attribute);
                }
                for (name, value) in filter.values {
                    query = query.expression_attribute_values(name, value);
                }
                query
            }
            None => query,
        };
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

    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<Option<Vec<Check>>, Error> {
        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(None),
            Err(err) => match failed_conditions(&err) {
                Some(checks) if checks.iter().any(Check::failed) => Ok(Some(checks)),
                _ => Err(Error::store("TransactWriteItems", err)),
            },
        }
    }

    /// A delivery found its URL not queued: it is finished (a duplicate), held by a live
    /// delivery (busy), or held by one whose lease ran out (a crash: take it over).
    async fn take_over(&self, id: &JobId, seq: u32, old: &Item, now: Millis, until: Millis) -> Result<Claim, Error> {
        let status: UrlStatus = status_of(old)?;
        if status.is_terminal() {
            return Ok(Claim::AlreadyFinished(status));
        }
        if status != UrlStatus::Processing {
            return Err(Error::Conflict(format!("URL {seq} of job {id} is {status} and could not be claimed")));
        }
        if let Some(lease) = number_of(old, "lease_until").filter(|lease| *lease > now) {
            return Ok(Claim::Busy { until: lease });
        }
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(id, task_sk(seq))))
            .update_expression("SET claimed_at = :now, lease_until = :until ADD attempts :one")
            .condition_expression(
                "#status = :processing AND (attribute_not_exists(lease_until) OR lease_until <= :now)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":processing", av_s(UrlStatus::Processing.as_str()))
            .expression_attribute_values(":now", av_n(now))
            .expression_attribute_values(":until", av_n(until))
            .expression_attribute_values(":one", av_n(1))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await;
        match result {
            Ok(output) => {
                let attempt = output.attributes.as_ref().and_then(|new| number_of(new, "attempts")).unwrap_or(1);
                Ok(Claim::Reclaimed { attempt: u32::try_from(attempt).unwrap_or(u32::MAX) })
            }
            Err(err) => {
                let raced = match err.as_service_error() {
                    Some(
                        aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(e),
                    ) => e.item().cloned(),
                    _ => return Err(Error::store("UpdateItem", err)),
                };
                // Another delivery took it over or finished it first.
                let raced = raced.ok_or(Error::NotFound)?;
                match status_of::<UrlStatus>(&raced)? {
                    status if status.is_terminal() => Ok(Claim::AlreadyFinished(status)),
                    _ => Ok(Claim::Busy { until: number_of(&raced, "lease_until").unwrap_or(until) }),
                }
            }
        }
    }

    /// Moves a queued task to `processing` under a lease until `until`.
    fn claim_item(&self, id: &JobId, seq: u32, now: Millis, until: Millis) -> Result<TransactWriteItem, Error> {
        let task = self
            .task_transition(id, seq, UrlStatus::Queued, UrlStatus::Processing, now)
            .update_expression("SET #status = :to, claimed_at = :now, lease_until = :until ADD attempts :one")
            .expression_attribute_values(":until", av_n(until))
            .expression_attribute_values(":one", av_n(1))
            .build()
            .map_err(|e| Error::store("TransactWriteItems", e))?;
        Ok(TransactWriteItem::builder().update(task).build())
    }

    /// Moves `count` claimed URLs from `queued` to `in_progress` while the job takes work.
    fn claim_job_item(&self, id: &JobId, count: usize, now: Millis) -> Result<TransactWriteItem, Error> {
        self.job_update_while_running(
            id,
            "SET updated_at = :now, started_at = if_not_exists(started_at, :now) ADD queued :minus, in_progress :count",
            &[(":now", av_n(now)), (":count", av_n(count)), (":minus", av_n(-(count as i64)))],
        )
    }

    /// A processing task's terminal status, error, analysis and (for a new successful
    /// analysis) its entry in the reuse index.
    fn outcome_item(
        &self,
        id: &JobId,
        seq: u32,
        outcome: &Outcome,
        cache_key: Option<&CacheKey>,
        now: Millis,
    ) -> Result<TransactWriteItem, Error> {
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
        // A reused result is not indexed again: its age is its original analysis's.
        let fresh_success = matches!(outcome, Outcome::Succeeded(a) if a.cached_from.is_none());
        if let Some(key) = cache_key.filter(|_| fresh_success) {
            set.push("cache_pk = :cache_pk, cache_sk = :now");
            task = task.expression_attribute_values(":cache_pk", av_s(key.as_str()));
        }
        let task = task
            .update_expression(format!("SET {}", set.join(", ")))
            .build()
            .map_err(|e| Error::store("TransactWriteItems", e))?;
        Ok(TransactWriteItem::builder().update(task).build())
    }

    /// Counts finished URLs on the job.
    fn outcome_job_item(
        &self,
        id: &JobId,
        succeeded: usize,
        failed: usize,
        now: Millis,
    ) -> Result<TransactWriteItem, Error> {
        self.job_counter_update(
            id,
            "SET updated_at = :now ADD in_progress :minus, succeeded :succeeded, failed :failed",
            &[
                (":now", av_n(now)),
                (":succeeded", av_n(succeeded)),
                (":failed", av_n(failed)),
                (":minus", av_n(-((succeeded + failed) as i64))),
            ],
        )
    }

    /// Marks URL `next` released. Written in the same transaction as the result that
    /// releases it, so a crash before its message is sent leaves a released, queued URL that
    /// the reconciler finds.
    fn release_item(&self, id: &JobId, next: u32, now: Millis) -> Result<TransactWriteItem, Error> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(id, task_sk(next))))
            .update_expression("SET released_at = if_not_exists(released_at, :now)")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":now", av_n(now))
            .build()
            .map_err(|e| Error::store("TransactWriteItems", e))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Claims queued URLs of running jobs in one transaction, each job's counters moved once;
    /// `false` when any claim's condition failed (and nothing was written).
    async fn claim_together(&self, claims: &[ClaimRequest], now: Millis) -> Result<bool, Error> {
        let mut items = Vec::with_capacity(claims.len() + 1);
        let mut per_job: HashMap<&JobId, usize> = HashMap::new();
        for claim in claims {
            items.push(self.claim_item(&claim.job_id, claim.seq, now, lease_end(now, claim.lease))?);
            *per_job.entry(&claim.job_id).or_default() += 1;
        }
        for (id, count) in per_job {
            items.push(self.claim_job_item(id, count, now)?);
        }
        Ok(self.transact(items).await?.is_none())
    }

    /// Records outcomes, their releases and each job's counters in one transaction; `false`
    /// when any result's condition failed (and nothing was written).
    async fn record_together(&self, records: &[OutcomeRecord], now: Millis) -> Result<bool, Error> {
        let mut items = Vec::with_capacity(records.len() * 2 + 1);
        let mut per_job: HashMap<&JobId, (usize, usize)> = HashMap::new();
        for record in records {
            items.push(self.outcome_item(
                &record.job_id,
                record.seq,
                &record.outcome,
                record.cache_key.as_ref(),
                now,
            )?);
            if let Some(next) = record.release {
                items.push(self.release_item(&record.job_id, next, now)?);
            }
            let counts = per_job.entry(&record.job_id).or_default();
            match record.outcome {
                Outcome::Succeeded(_) => counts.0 += 1,
                Outcome::Failed { .. } => counts.1 += 1,
            }
        }
        for (id, (succeeded, failed)) in per_job {
            items.push(self.outcome_job_item(id, succeeded, failed, now)?);
        }
        Ok(self.transact(items).await?.is_none())
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
            .condition_expression(condition)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
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
        let window = job.initial_window();
        // Each batch's items are built when it is sent, so a 10 000-URL job never holds more
        // than the batches in flight as DynamoDB items (building all first peaked at 51 MB).
        // By start index: a closure taking the chunk itself trips the compiler's proof that
        // the future is `Send`.
        futures::stream::iter((0..urls.len()).step_by(BATCH_WRITE_MAX))
            .map(|start| {
                let batch = &urls[start..urls.len().min(start + BATCH_WRITE_MAX)];
                let requests = batch
                    .iter()
                    .zip(start as u32..)
                    .map(|(url, seq)| task_put(job, seq, url, window, expires_at))
                    .collect::<Result<Vec<_>, _>>();
                async move { self.batch_write(requests?).await }
            })
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

    async fn claim_task(&self, id: &JobId, seq: u32, now: Millis, lease: Duration) -> Result<Claim, Error> {
        let until = lease_end(now, lease);
        let items = vec![self.claim_item(id, seq, now, until)?, self.claim_job_item(id, 1, now)?];
        // A failed condition returns the item as it was, so telling a duplicate from a
        // crash recovery or a cancelled job costs no extra read.
        let Some(checks) = self.transact(items).await? else { return Ok(Claim::Claimed) };
        let task_status = match &checks[0] {
            Check::Held => UrlStatus::Queued,
            Check::Failed(Some(item)) => status_of(item)?,
            Check::Failed(None) => return Err(Error::NotFound),
        };
        if task_status.is_terminal() {
            return Ok(Claim::AlreadyFinished(task_status));
        }
        if let Some(check) = checks.get(1).filter(|check| check.failed()) {
            let job = check.old().ok_or(Error::NotFound)?;
            return match status_of::<JobStatus>(job)? {
                JobStatus::Cancelling | JobStatus::Cancelled => Ok(Claim::JobCancelling(task_status)),
                status => Err(Error::Conflict(format!("job {id} is {status} but its URL {seq} was {task_status}"))),
            };
        }
        let old = checks[0].old().ok_or(Error::NotFound)?;
        self.take_over(id, seq, old, now, until).await
    }

    async fn record_retry(
        &self,
        id: &JobId,
        seq: u32,
        kind: ErrorKind,
        reason: &str,
        now: Millis,
    ) -> Result<(), Error> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(id, task_sk(seq))))
            .update_expression("SET #error = :error, error_kind = :kind, lease_until = :now")
            .condition_expression("#status = :processing")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#error", "error")
            .expression_attribute_values(":processing", av_s(UrlStatus::Processing.as_str()))
            .expression_attribute_values(":error", av_s(reason))
            .expression_attribute_values(":kind", av_s(kind.as_str()))
            .expression_attribute_values(":now", av_n(now))
            .send()
            .await;
        // Not applied: finished or cancelled meanwhile, and the retry has nothing left to keep.
        applied(result).map(drop)
    }

    async fn release_claim(&self, id: &JobId, seq: u32, now: Millis) -> Result<(), Error> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(id, task_sk(seq))))
            .update_expression("SET lease_until = :now ADD attempts :minus")
            .condition_expression("#status = :processing AND attempts > :zero")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":processing", av_s(UrlStatus::Processing.as_str()))
            .expression_attribute_values(":now", av_n(now))
            .expression_attribute_values(":minus", av_n(-1))
            .expression_attribute_values(":zero", av_n(0))
            .send()
            .await;
        // Not applied: the URL finished meanwhile, and there is no claim left to give back.
        applied(result).map(drop)
    }

    async fn record_outcome(
        &self,
        id: &JobId,
        seq: u32,
        outcome: &Outcome,
        release: Option<u32>,
        cache_key: Option<&CacheKey>,
        now: Millis,
    ) -> Result<Recorded, Error> {
        let (succeeded, failed) = if matches!(outcome, Outcome::Succeeded(_)) { (1, 0) } else { (0, 1) };
        let mut items = vec![
            self.outcome_item(id, seq, outcome, cache_key, now)?,
            self.outcome_job_item(id, succeeded, failed, now)?,
        ];
        if let Some(next) = release {
            items.push(self.release_item(id, next, now)?);
        }
        match self.transact(items).await? {
            None => Ok(Recorded::Counted),
            Some(checks) if checks[0].failed() => Ok(Recorded::Duplicate),
            Some(_) => Err(Error::NotFound),
        }
    }

    async fn claim_tasks(&self, claims: &[ClaimRequest], now: Millis) -> Vec<Result<Claim, Error>> {
        let mut results = Vec::with_capacity(claims.len());
        for chunk in claims.chunks(BATCH_TRANSACTION_URLS) {
            let keys = chunk.iter().map(|c| (&c.job_id, c.seq));
            if batchable(keys) && held(self.claim_together(chunk, now).await, "claiming") {
                results.extend(chunk.iter().map(|_| Ok(Claim::Claimed)));
            } else {
                let one_by_one = chunk.iter().map(|c| self.claim_task(&c.job_id, c.seq, now, c.lease));
                results.extend(futures::future::join_all(one_by_one).await);
            }
        }
        results
    }

    async fn record_outcomes(&self, records: &[OutcomeRecord], now: Millis) -> Vec<Result<Recorded, Error>> {
        let mut results = Vec::with_capacity(records.len());
        for chunk in records.chunks(BATCH_TRANSACTION_URLS) {
            let keys = chunk
                .iter()
                .flat_map(|r| std::iter::once((&r.job_id, r.seq)).chain(r.release.map(|next| (&r.job_id, next))));
            if batchable(keys) && held(self.record_together(chunk, now).await, "recording") {
                results.extend(chunk.iter().map(|_| Ok(Recorded::Counted)));
            } else {
                let one_by_one = chunk
                    .iter()
                    .map(|r| self.record_outcome(&r.job_id, r.seq, &r.outcome, r.release, r.cache_key.as_ref(), now));
                results.extend(futures::future::join_all(one_by_one).await);
            }
        }
        results
    }

    async fn cancel_task(&self, id: &JobId, seq: u32, from: UrlStatus, now: Millis) -> Result<bool, Error> {
        let counter = match from {
            UrlStatus::Queued => "queued",
            UrlStatus::Processing => "in_progress",
            _ => return Ok(false),
        };
        let update = self
            .task_transition(id, seq, from, UrlStatus::Cancelled, now)
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

    async fn task_urls(&self, keys: &[(JobId, u32)]) -> Result<HashMap<(JobId, u32), String>, Error> {
        let mut urls = HashMap::with_capacity(keys.len());
        for chunk in keys.chunks(BATCH_GET_MAX) {
            let mut request = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.iter().map(|(id, seq)| Self::key(id, task_sk(*seq))).collect()))
                    .projection_expression("job_id, #seq, #url")
                    .expression_attribute_names("#seq", "seq")
                    .expression_attribute_names("#url", "url")
                    .build()
                    .map_err(|e| Error::store("BatchGetItem", e))?,
            );
            let mut round = 0;
            while let Some(keys) = request.take() {
                let output = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, keys)
                    .send()
                    .await
                    .map_err(|e| Error::store("BatchGetItem", e))?;
                for item in output.responses.and_then(|mut r| r.remove(&self.table)).unwrap_or_default() {
                    #[derive(serde::Deserialize)]
                    struct Url {
                        job_id: JobId,
                        seq: u32,
                        url: String,
                    }
                    let found: Url = from_item(item)?;
                    urls.insert((found.job_id, found.seq), found.url);
                }
                request = output.unprocessed_keys.and_then(|mut keys| keys.remove(&self.table));
                if request.is_some() {
                    if round == UNPROCESSED_RETRIES {
                        return Err(Error::Store {
                            operation: "BatchGetItem",
                            message: "keys still unprocessed after retries".into(),
                        });
                    }
                    tokio::time::sleep(backoff(round)).await;
                    round += 1;
                }
            }
        }
        Ok(urls)
    }

    async fn list_active_jobs(&self, limit: usize, after: Option<&JobId>) -> Result<Page<JobId, JobId>, Error> {
        let start = after.map(|id| job_index_start(id, "gsi2pk", ACTIVE_PK.to_owned(), "gsi2sk"));
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(ACTIVE_INDEX)
            .key_condition_expression("gsi2pk = :active")
            .expression_attribute_values(":active", av_s(ACTIVE_PK));
        let page = self.query_page(query, None, start, limit).await?;
        let items = page
            .items
            .iter()
            .map(|item| match item.get("gsi2sk") {
                Some(AttributeValue::S(id)) => {
                    JobId::parse(id).ok_or_else(|| Error::Corrupt(format!("active-job index entry {id:?}")))
                }
                _ => Err(Error::Corrupt("an active-job index entry without a job id".into())),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let next = if page.more { items.last().cloned() } else { None };
        Ok(Page { items, next })
    }

    async fn cached_result(&self, key: &CacheKey, since: Millis) -> Result<Option<Analysis>, Error> {
        // The index holds keys only (a result's size is not written twice); the newest entry
        // names the task, which one read fetches.
        let found = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(CACHE_INDEX)
            .key_condition_expression("cache_pk = :key AND cache_sk >= :since")
            .expression_attribute_values(":key", av_s(key.as_str()))
            .expression_attribute_values(":since", av_n(since))
            .scan_index_forward(false)
            .limit(1)
            .send()
            .await
            .map_err(|e| Error::store("Query", e))?;
        let Some(entry) = found.items().first() else { return Ok(None) };
        let (Some(pk), Some(sk), Some(AttributeValue::N(at))) =
            (entry.get("pk"), entry.get("sk"), entry.get("cache_sk"))
        else {
            return Err(Error::Corrupt("a cache index entry without its keys".into()));
        };
        let analyzed_at: Millis = at.parse().map_err(|_| Error::Corrupt(format!("cache entry time {at:?}")))?;
        let key = HashMap::from([("pk".to_owned(), pk.clone()), ("sk".to_owned(), sk.clone())]);
        let Some(item) = self.get_consistent(key).await? else { return Ok(None) };
        let task = from_item::<TaskItem>(item)?.into_task();
        Ok(task.analysis.map(|analysis| Analysis {
            cached_from: Some(CachedFrom { job_id: task.job_id, analyzed_at }),
            ..analysis
        }))
    }

    async fn stalled_tasks(&self, id: &JobId, before: Millis, limit: usize) -> Result<Vec<UrlTask>, Error> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", av_s(job_pk(id)))
            .expression_attribute_values(":prefix", av_s(TASK_SK_PREFIX))
            .consistent_read(true);
        let filter = Filter {
            expression: "((#status = :queued AND released_at < :before) \
                 OR (#status = :processing AND (attribute_not_exists(lease_until) OR lease_until < :before))) \
                 AND (attribute_not_exists(resent_at) OR resent_at < :before)",
            names: vec![("#status", "status")],
            values: vec![
                (":queued", av_s(UrlStatus::Queued.as_str())),
                (":processing", av_s(UrlStatus::Processing.as_str())),
                (":before", av_n(before)),
            ],
        };
        let page = self.query_page(query, Some(filter), None, limit).await?;
        page.items.into_iter().map(|item| Ok(from_item::<TaskItem>(item)?.into_task())).collect()
    }

    async fn note_resent(&self, id: &JobId, seq: u32, now: Millis) -> Result<(), Error> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(id, task_sk(seq))))
            .update_expression("SET resent_at = :now")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":now", av_n(now))
            .send()
            .await
            .map_err(|e| Error::store("UpdateItem", e))?;
        Ok(())
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
        let start = after.map(|id| job_index_start(id, "gsi1pk", tenant_pk(tenant), "gsi1sk"));
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(TENANT_INDEX)
            .key_condition_expression("gsi1pk = :tenant")
            .expression_attribute_values(":tenant", av_s(tenant_pk(tenant)))
            .scan_index_forward(false);
        let page = self.query_page(query, status.map(|s| Filter::status(s.as_str())), start, limit).await?;
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
        let page = self.query_page(query, status.map(|s| Filter::status(s.as_str())), None, limit).await?;
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
            // Leaving the active-jobs index: the reconciler no longer looks at it.
            expression.push_str(", finished_at = :now, expires_at = :expires REMOVE gsi2pk, gsi2sk");
            request = request.expression_attribute_values(":expires", av_n(self.expiry(now, 0)));
        }
        applied(request.update_expression(expression).send().await)
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

    async fn callback_secret(&self, tenant: &Tenant) -> Result<String, Error> {
        let key = HashMap::from([("pk".to_owned(), av_s(tenant_pk(tenant))), ("sk".to_owned(), av_s(SECRET_SK))]);
        for _ in 0..2 {
            if let Some(item) = self.get_consistent(key.clone()).await? {
                return match item.get("secret") {
                    Some(AttributeValue::S(secret)) => Ok(secret.clone()),
                    _ => Err(Error::Corrupt("a callback secret item without its secret".into())),
                };
            }
            let created = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(key.clone()))
                .item("secret", av_s(crate::auth::generate_callback_secret()))
                .item("created_at", av_n(crate::time::now_millis()))
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await;
            match created {
                Ok(_) => continue,
                // Another request created it first: read theirs.
                Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                    continue;
                }
                Err(err) => return Err(Error::store("PutItem", err)),
            }
        }
        Err(Error::Conflict("the callback secret could not be read back".into()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_two_or_more_distinct_items_share_a_transaction() {
        let (a, b) = (JobId::generate(), JobId::generate());
        assert!(batchable([(&a, 0), (&a, 1), (&b, 0)].into_iter()));
        assert!(!batchable([(&a, 0)].into_iter()), "one URL gains nothing");
        assert!(!batchable([(&a, 0), (&b, 0), (&a, 0)].into_iter()), "an item twice is refused by DynamoDB");
    }
}

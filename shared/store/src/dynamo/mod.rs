//! The DynamoDB store: one table (its layout in `items`), where every task move is a
//! conditional write or a transaction whose conditions `moves` derives from
//! `domain::lifecycle`. The traits are implemented by concern: `jobs` (the API's), `tasks`
//! (the analyzer's), `tracking` (the tracker's), `keys` (API keys and callback secrets),
//! `reports` (what is kept of a finished job) and `history` (a URL's results over time);
//! this file holds what they share.

mod callbacks;
pub(crate) mod expression;
mod history;
pub mod items;
mod jobs;
mod keys;
mod monitors;
mod moves;
mod packed;
mod places;
mod reports;
pub mod size;
mod subscriptions;
mod tasks;
mod tenancy;
mod tracking;
mod url_lists;
mod waits;

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::builders::KeysAndAttributesBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, KeysAndAttributes, TransactWriteItem, WriteRequest};
use domain::retry::backoff;
use domain::time::Millis;
use domain::{Error, Job, JobId, UrlTask};
use futures::{StreamExt, TryStreamExt};

use self::items::{JOB_SK, JobItem, TaskItem, job_pk, task_sk};
pub use self::items::{job_from_stream_image, watch_generation};
use crate::Lookup;

/// DynamoDB's limit for one BatchGetItem.
const BATCH_GET_MAX: usize = 100;
/// DynamoDB's limit for one BatchWriteItem.
const BATCH_WRITE_MAX: usize = 25;
/// BatchWriteItem calls in flight at once while writing many items (a job's tasks).
const WRITE_PARALLELISM: usize = 8;
/// Rounds of re-sending unprocessed items before giving up.
const UNPROCESSED_RETRIES: u32 = 8;
/// Times a transaction is written again after it lost a race for an item another one was
/// writing (`TransactionConflict`): a job's counters, a host's or a tenant's places are
/// written by every analyzer at once on a busy fleet.
const CONFLICT_RETRIES: u32 = 4;

pub(crate) type Item = HashMap<String, AttributeValue>;

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

pub(crate) fn av_n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn to_item<T: serde::Serialize>(value: &T) -> Result<Item, Error> {
    serde_dynamo::to_item(value).map_err(|e| Error::Corrupt(e.to_string()))
}

fn from_item<T: serde::de::DeserializeOwned>(item: Item) -> Result<T, Error> {
    serde_dynamo::from_item(item).map_err(|e| Error::Corrupt(e.to_string()))
}

fn status_of<T: std::str::FromStr<Err = String>>(item: &Item) -> Result<T, Error> {
    match item.get("status") {
        Some(AttributeValue::S(text)) => text.parse().map_err(Error::Corrupt),
        _ => Err(Error::Corrupt("an item without a status".into())),
    }
}

pub(crate) fn number_of(item: &Item, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(AttributeValue::N(n)) => n.parse().ok(),
        _ => None,
    }
}

/// A conditional UpdateItem's outcome: `Err` with the item as it was (when it exists) if its
/// condition did not hold, an error for anything else.
fn raced<O>(result: Result<O, SdkError<UpdateItemError>>) -> Result<Result<O, Option<Item>>, Error> {
    match result {
        Ok(output) => Ok(Ok(output)),
        Err(err) => match err.as_service_error() {
            Some(UpdateItemError::ConditionalCheckFailedException(e)) => Ok(Err(e.item().cloned())),
            _ => Err(Error::store("UpdateItem", err)),
        },
    }
}

/// Whether a conditional UpdateItem applied: `false` when its condition did not hold (the
/// item had moved on), an error for anything else.
fn applied<O>(result: Result<O, SdkError<UpdateItemError>>) -> Result<bool, Error> {
    raced(result).map(|outcome| outcome.is_ok())
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

    /// The item as it was, when the member's condition failed and it asked for it.
    fn item(&self) -> Option<&Item> {
        match self {
            Check::Failed(item) => item.as_ref(),
            Check::Held => None,
        }
    }
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

/// Whether a transaction was cancelled only because another one was writing one of its
/// items at the moment (nothing was written; the same transaction may well succeed now).
fn conflicted(err: &SdkError<TransactWriteItemsError>) -> bool {
    match err.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(e)) => {
            only_conflicts(e.cancellation_reasons().iter().map(|r| r.code()))
        }
        _ => false,
    }
}

/// Cancellation reasons that name a conflict and no failed condition (`None` or `"None"`:
/// that member was fine).
fn only_conflicts<'a>(codes: impl IntoIterator<Item = Option<&'a str>>) -> bool {
    let mut conflict = false;
    for code in codes {
        match code {
            Some("TransactionConflict") => conflict = true,
            None | Some("None") => {}
            Some(_) => return false,
        }
    }
    conflict
}

/// A filter applied to a Query's results.
struct Filter {
    expression: String,
    names: Vec<(&'static str, String)>,
    values: Vec<(&'static str, AttributeValue)>,
}

impl Filter {
    fn status(status: &str) -> Self {
        Filter {
            expression: "#status = :status".into(),
            names: vec![("#status", "status".into())],
            values: vec![(":status", av_s(status))],
        }
    }
}

struct RawPage {
    items: Vec<Item>,
    more: bool,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>, retention_days: u32) -> Self {
        DynamoStore { client, table: table.into(), retention_days }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    fn key(id: &JobId, sk: String) -> Item {
        Self::key_of(&job_pk(id), &sk)
    }

    fn key_of(pk: &str, sk: &str) -> Item {
        HashMap::from([("pk".to_owned(), av_s(pk)), ("sk".to_owned(), av_s(sk))])
    }

    fn job_key(id: &JobId) -> Item {
        Self::key(id, JOB_SK.to_owned())
    }

    fn task_key(id: &JobId, seq: u32) -> Item {
        Self::key(id, task_sk(seq))
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

    /// Writes `requests`, [`BATCH_WRITE_MAX`] to a call, a few calls at a time.
    async fn write_all(&self, requests: Vec<WriteRequest>) -> Result<(), Error> {
        let chunks: Vec<Vec<WriteRequest>> = requests.chunks(BATCH_WRITE_MAX).map(<[_]>::to_vec).collect();
        futures::stream::iter(chunks)
            .map(|chunk| self.batch_write(chunk))
            .buffer_unordered(WRITE_PARALLELISM)
            .try_collect::<()>()
            .await
    }

    /// Deletes the items with these keys; how many there were.
    async fn delete_keys(&self, keys: Vec<Item>) -> Result<usize, Error> {
        let count = keys.len();
        let requests = keys
            .into_iter()
            .map(|key| {
                let delete = DeleteRequest::builder().set_key(Some(key)).build();
                delete.map(|d| WriteRequest::builder().delete_request(d).build())
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::store("BatchWriteItem", e))?;
        self.write_all(requests).await?;
        Ok(count)
    }

    /// The items with these keys that exist (in no particular order), [`BATCH_GET_MAX`] keys a
    /// call, keys DynamoDB left unprocessed asked for again; `shape` adds a projection.
    async fn batch_get(
        &self,
        keys: Vec<Item>,
        shape: impl Fn(KeysAndAttributesBuilder) -> KeysAndAttributesBuilder,
    ) -> Result<Vec<Item>, Error> {
        let mut items = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(BATCH_GET_MAX) {
            let mut request = Some(
                shape(KeysAndAttributes::builder().set_keys(Some(chunk.to_vec())))
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
                items.extend(output.responses.and_then(|mut r| r.remove(&self.table)).unwrap_or_default());
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
        Ok(items)
    }

    /// Every item a Query gives, page after page: for what is bounded by its owner (a
    /// monitor's URLs, its standings), never for a job's URLs.
    async fn query_all(&self, query: QueryFluentBuilder) -> Result<Vec<Item>, Error> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let output =
                query.clone().set_exclusive_start_key(start).send().await.map_err(|e| Error::store("Query", e))?;
            items.extend(output.items.unwrap_or_default());
            start = output.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
    }

    async fn get_consistent(&self, key: Item) -> Result<Option<Item>, Error> {
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

    /// Every item of partition `pk` whose sort key is from `from` to `to`, both included, all
    /// pages of them (callers bound the range).
    async fn items_in_range(&self, pk: &str, from: &str, to: &str, consistent: bool) -> Result<Vec<Item>, Error> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
            .expression_attribute_values(":pk", av_s(pk))
            .expression_attribute_values(":from", av_s(from))
            .expression_attribute_values(":to", av_s(to))
            .consistent_read(consistent);
        Ok(self.query_page(query, None, None, usize::MAX).await?.items)
    }

    /// Runs a Query, keeping only the items `filter` passes when there is one, until `limit`
    /// items pass or the data ends. `more` says whether anything may follow the last item.
    async fn query_page(
        &self,
        query: QueryFluentBuilder,
        filter: Option<Filter>,
        mut start: Option<Item>,
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

    /// Writes a transaction; `Some` with each member's check when a condition failed (and
    /// nothing was written).
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<Option<Vec<Check>>, Error> {
        let mut conflicts = 0;
        loop {
            let request = self.client.transact_write_items().set_transact_items(Some(items.clone()));
            match request.send().await {
                Ok(_) => return Ok(None),
                Err(err) if conflicted(&err) && conflicts < CONFLICT_RETRIES => {
                    conflicts += 1;
                    tracing::debug!(conflicts, "a transaction met another on one of its items; writing it again");
                    tokio::time::sleep(backoff(conflicts)).await;
                }
                Err(err) => {
                    return match failed_conditions(&err) {
                        Some(checks) if checks.iter().any(Check::failed) => Ok(Some(checks)),
                        _ => Err(Error::store("TransactWriteItems", err)),
                    };
                }
            }
        }
    }
}

impl Lookup for DynamoStore {
    async fn get_job(&self, id: &JobId) -> Result<Option<Job>, Error> {
        let item = self.get_consistent(Self::job_key(id)).await?;
        item.map(|item| from_item::<JobItem>(item)?.into_job()).transpose()
    }

    async fn get_task(&self, id: &JobId, seq: u32) -> Result<Option<UrlTask>, Error> {
        let item = self.get_consistent(Self::task_key(id, seq)).await?;
        let item = item.map(|item| from_item::<TaskItem>(item).map(TaskItem::into_task)).transpose()?;
        let found = item.into_iter().map(|task| (seq, task)).collect();
        Ok(self.tasks_at(id, &[seq], found).await?.pop())
    }
}

#[cfg(test)]
mod tests {
    use super::only_conflicts;

    #[test]
    fn a_transaction_is_written_again_only_when_it_lost_a_race_and_nothing_else() {
        assert!(only_conflicts([Some("None"), Some("TransactionConflict"), None]));
        assert!(!only_conflicts([Some("TransactionConflict"), Some("ConditionalCheckFailed")]), "a condition decides");
        assert!(!only_conflicts([Some("None"), Some("ValidationError")]));
        assert!(!only_conflicts([Some("None"), None]), "no reason given is no conflict");
    }
}

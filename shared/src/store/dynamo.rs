use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, TransactWriteItem, Update, WriteRequest};
use futures::{StreamExt, TryStreamExt};

use super::items::{JOB_SK, JobItem, KEY_SK, TaskItem, job_pk, key_pk, task_sk};
use super::{Claim, JobStore, Outcome, Recorded};
use crate::auth::KeyStore;
use crate::domain::{CleanUrl, Job, JobId, JobStatus, Tenant, UrlStatus, UrlTask};
use crate::error::Error;
use crate::retry::backoff;
use crate::time::Millis;

/// DynamoDB's limit for one BatchWriteItem.
const BATCH_WRITE_MAX: usize = 25;
/// BatchWriteItem calls in flight at once while writing a job's tasks.
const WRITE_PARALLELISM: usize = 8;
/// Rounds of re-sending unprocessed items before giving up.
const UNPROCESSED_RETRIES: u32 = 8;

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
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(id, JOB_SK.to_owned())))
            .update_expression(expression)
            .condition_expression("attribute_exists(pk)");
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
        let task = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(id, task_sk(seq))))
            .update_expression("SET #status = :processing, claimed_at = :now ADD attempts :one")
            .condition_expression("#status = :queued")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":processing", av_s(UrlStatus::Processing.as_str()))
            .expression_attribute_values(":queued", av_s(UrlStatus::Queued.as_str()))
            .expression_attribute_values(":now", av_n(now))
            .expression_attribute_values(":one", av_n(1))
            .build()
            .map_err(|e| Error::store("TransactWriteItems", e))?;
        let job = self.job_counter_update(
            id,
            "SET updated_at = :now, started_at = if_not_exists(started_at, :now) ADD queued :minus, in_progress :one",
            &[(":now", av_n(now)), (":one", av_n(1)), (":minus", av_n(-1))],
        )?;
        let items = vec![TransactWriteItem::builder().update(task).build(), job];
        match self.transact(items).await? {
            None => Ok(Claim::Claimed),
            Some(failed) if failed.get(1) == Some(&true) => Err(Error::NotFound),
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
            Outcome::Failed { reason, analysis } => (UrlStatus::Failed, Some(reason), analysis.as_ref()),
        };
        let mut set = vec!["#status = :status", "analyzed_at = :now"];
        let mut task = Update::builder()
            .table_name(&self.table)
            .set_key(Some(Self::key(id, task_sk(seq))))
            .condition_expression("#status = :processing")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", av_s(status.as_str()))
            .expression_attribute_values(":processing", av_s(UrlStatus::Processing.as_str()))
            .expression_attribute_values(":now", av_n(now));
        if let Some(error) = error {
            set.push("#error = :error");
            task = task
                .expression_attribute_names("#error", "error")
                .expression_attribute_values(":error", av_s(error.as_str()));
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

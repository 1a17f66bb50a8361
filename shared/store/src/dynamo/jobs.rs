//! The API's reads and writes of jobs: creating one with all its tasks, listing a tenant's
//! jobs and a job's URLs, requesting a cancellation, deleting, and the health check's ping.

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use domain::tenancy::{Limits, OverLimit};
use domain::time::Millis;
use domain::{Cancel, Error, Job, JobId, JobStatus, JobUrl, TaskFilter, Tenant, UrlTask};
use futures::{StreamExt, TryStreamExt};

use super::items::{JobItem, MAX_SEQ, TASK_SK_PREFIX, TENANT_INDEX, TaskItem, job_pk, task_sk, tenant_pk};
use super::moves::Expression;
use super::{
    BATCH_WRITE_MAX, DynamoStore, Filter, Item, WRITE_PARALLELISM, av_n, av_s, from_item, raced, status_of, to_item,
};
use crate::{Jobs, Page};

/// A new job's task for URL `seq`, queued.
fn task_put(job: &Job, seq: u32, url: &JobUrl, expires_at: i64) -> Result<WriteRequest, Error> {
    let item = TaskItem::new(UrlTask::queued(job, seq, url), expires_at);
    let put =
        PutRequest::builder().set_item(Some(to_item(&item)?)).build().map_err(|e| Error::store("BatchWriteItem", e))?;
    Ok(WriteRequest::builder().put_request(put).build())
}

/// Where a listing of job items on a GSI resumes: after the job `id`, whose index key is
/// `pk_name = pk_value`, `sk_name = <job id>`.
pub(super) fn job_index_start(id: &JobId, pk_name: &str, pk_value: String, sk_name: &str) -> Item {
    let mut key = DynamoStore::job_key(id);
    key.insert(pk_name.to_owned(), av_s(pk_value));
    key.insert(sk_name.to_owned(), av_s(id.as_str()));
    key
}

impl Jobs for DynamoStore {
    async fn create_job_within(
        &self,
        job: &Job,
        urls: &[JobUrl],
        limits: &Limits,
    ) -> Result<Result<(), OverLimit>, Error> {
        // Tasks first, the job item last: a job never exists without all its tasks, and an
        // interrupted creation leaves only orphan tasks, which expire. The same goes for a
        // job that a limit refuses at the last moment (a concurrent submission took the
        // room the caller saw): the caller checks the limits first, so that is rare.
        let expires_at = self.expiry(job.created_at, 7);
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
                    .map(|(url, seq)| task_put(job, seq, url, expires_at))
                    .collect::<Result<Vec<_>, _>>();
                async move { self.batch_write(requests?).await }
            })
            .buffer_unordered(WRITE_PARALLELISM)
            .try_collect::<()>()
            .await?;
        self.put_counted_job(job, to_item(&JobItem::from_job(job, job.created_at))?, limits).await
    }

    async fn get_jobs(&self, ids: &[JobId]) -> Result<Vec<Job>, Error> {
        let items = self.batch_get(ids.iter().map(Self::job_key).collect(), |request| request).await?;
        let mut found: HashMap<JobId, Job> = HashMap::with_capacity(items.len());
        for item in items {
            let job = from_item::<JobItem>(item)?.into_job()?;
            found.insert(job.id.clone(), job);
        }
        Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
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
        filter: &TaskFilter,
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
        let page = self.query_page(query, Filter::tasks(filter), None, limit).await?;
        let items = page
            .items
            .into_iter()
            .map(|item| Ok(from_item::<TaskItem>(item)?.into_task()))
            .collect::<Result<Vec<_>, Error>>()?;
        let next = if page.more { items.last().map(|task| task.seq) } else { None };
        Ok(Page { items, next })
    }

    async fn get_tasks(&self, id: &JobId, seqs: &[u32]) -> Result<Vec<UrlTask>, Error> {
        // BatchGetItem refuses a request naming one key twice.
        let mut seen = HashSet::with_capacity(seqs.len());
        let wanted: Vec<u32> = seqs.iter().copied().filter(|seq| seen.insert(*seq)).collect();
        let keys = wanted.iter().map(|seq| Self::task_key(id, *seq)).collect();
        let items = self.batch_get(keys, |request| request).await?;
        let mut found: HashMap<u32, UrlTask> = HashMap::with_capacity(items.len());
        for item in items {
            let task = from_item::<TaskItem>(item)?.into_task();
            found.insert(task.seq, task);
        }
        Ok(wanted.iter().filter_map(|seq| found.remove(seq)).collect())
    }

    async fn request_cancel(&self, id: &JobId, now: Millis) -> Result<Cancel, Error> {
        let taking: Vec<&str> = JobStatus::TAKING_WORK.iter().map(|s| s.as_str()).collect();
        let update = Expression::default()
            .name("#status", "status")
            .status_in("#status", "from", &taking)
            .set("#status = :cancelling, updated_at = :now, cancel_requested_at = :now")
            .value(":cancelling", av_s(JobStatus::Cancelling.as_str()))
            .value(":now", av_n(now));
        // A failed condition returns the job as it was: no second read to say why.
        match raced(update.update_item(self, Self::job_key(id)).await)? {
            Ok(()) => Ok(Cancel::Requested),
            Err(None) => Err(Error::NotFound),
            Err(Some(job)) => match status_of::<JobStatus>(&job)? {
                JobStatus::Cancelling => Ok(Cancel::Requested),
                status => Ok(Cancel::AlreadyFinished(status)),
            },
        }
    }

    async fn delete_job(&self, id: &JobId) -> Result<usize, Error> {
        let mut deleted = 0;
        let mut start = None;
        loop {
            // A page at a time: a 10 000-URL job's keys are never all held at once.
            let (items, next) = self.job_page(id, "", &["pk", "sk"], start).await?;
            deleted += self.delete_keys(items).await?;
            start = next;
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
}

impl DynamoStore {
    /// One page of job `id`'s items whose sort key starts with `sk_prefix` (all of them when
    /// empty), read consistently with only `attributes`, from `start`; and where the next
    /// page starts.
    pub(super) async fn job_page(
        &self,
        id: &JobId,
        sk_prefix: &str,
        attributes: &[&str],
        start: Option<Item>,
    ) -> Result<(Vec<Item>, Option<Item>), Error> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .expression_attribute_values(":pk", av_s(job_pk(id)))
            .consistent_read(true)
            .set_exclusive_start_key(start);
        query = if sk_prefix.is_empty() {
            query.key_condition_expression("pk = :pk")
        } else {
            query
                .key_condition_expression("pk = :pk AND begins_with(sk, :sk)")
                .expression_attribute_values(":sk", av_s(sk_prefix))
        };
        // Every attribute by a placeholder: `seq` and `status` are reserved words.
        let names: Vec<String> = attributes.iter().map(|name| format!("#{name}")).collect();
        query = query.projection_expression(names.join(", "));
        for (placeholder, name) in names.iter().zip(attributes) {
            query = query.expression_attribute_names(placeholder, *name);
        }
        let output = query.send().await.map_err(|e| Error::store("Query", e))?;
        Ok((output.items.unwrap_or_default(), output.last_evaluated_key))
    }
}

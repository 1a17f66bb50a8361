//! The API's reads and writes of jobs: creating one with its URLs' lists, listing a tenant's
//! jobs and a job's URLs, requesting a cancellation, deleting, and the health check's ping.

use std::collections::{HashMap, HashSet};

use domain::tenancy::{Limits, OverLimit};
use domain::time::Millis;
use domain::{Cancel, Error, Job, JobId, JobStatus, JobUrl, TaskFilter, Tenant, UrlTask};
use futures::{StreamExt, TryStreamExt};

use super::items::{JobItem, TENANT_INDEX, TaskItem, job_pk, task_sk, tenant_pk};
use super::moves::Expression;
use super::url_lists;
use super::{
    BATCH_WRITE_MAX, DynamoStore, Filter, Item, WRITE_PARALLELISM, av_n, av_s, from_item, raced, status_of, to_item,
};
use crate::{Jobs, Lookup, Page};

/// The most URLs a listing reads at a time: the most a page may hold.
const FILTERED_SPAN: u32 = 1_000;

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
        // The URLs' lists first, the job item last: a job never exists without all its URLs,
        // and an interrupted creation leaves only orphan lists, which expire. The same goes
        // for a job that a limit refuses at the last moment (a concurrent submission took the
        // room the caller saw): the caller checks the limits first, so that is rare.
        let lists = url_lists::list_puts(&job.id, urls, self.expiry(job.created_at, 7))?;
        let mut lists = lists.into_iter();
        let batches = std::iter::from_fn(|| Some(lists.by_ref().take(BATCH_WRITE_MAX).collect::<Vec<_>>()))
            .take_while(|batch| !batch.is_empty());
        futures::stream::iter(batches)
            .map(|batch| self.batch_write(batch))
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
        let Some(job) = self.get_job(id).await? else { return Ok(Page { items: Vec::new(), next: None }) };
        let total = u32::try_from(job.counters.total).unwrap_or(u32::MAX);
        // The job's URLs a span at a time, each span's items laid over its lists, until `limit`
        // pass the filter: the first span the page's size, each next one twice the last, up to
        // the most a page holds (a filter most URLs pass reads no more than it returns, a
        // rare one few spans).
        let mut span = u32::try_from(limit.max(1)).unwrap_or(u32::MAX);
        let widest = span.max(FILTERED_SPAN);
        let mut from = after.map_or(0, |seq| seq.saturating_add(1));
        let mut found = Vec::new();
        while from < total {
            let to = from.saturating_add(span).min(total);
            span = span.saturating_mul(2).min(widest);
            let seqs: Vec<u32> = (from..to).collect();
            for task in self.tasks_at(id, &seqs, self.items_between(id, from, to).await?).await? {
                if !filter.matches(&task) {
                    continue;
                }
                let seq = task.seq;
                found.push(task);
                if found.len() == limit {
                    return Ok(Page { items: found, next: (seq + 1 < total).then_some(seq) });
                }
            }
            from = to;
        }
        Ok(Page { items: found, next: None })
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
        self.tasks_at(id, &wanted, found).await
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
    /// The items of job `id`'s URLs from position `from` to before `to` (those that have one),
    /// read consistently, by position.
    pub(super) async fn items_between(&self, id: &JobId, from: u32, to: u32) -> Result<HashMap<u32, UrlTask>, Error> {
        if from >= to {
            return Ok(HashMap::new());
        }
        self.items_in_range(&job_pk(id), &task_sk(from), &task_sk(to - 1), true)
            .await?
            .into_iter()
            .map(|item| from_item::<TaskItem>(item).map(|task| (task.seq, task.into_task())))
            .collect()
    }

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

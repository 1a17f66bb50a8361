//! The tracker's writes and reads: a job's status moves, the bulk cancellation of a
//! cancelling job's queued URLs, and the reconciler's sweep (active jobs, stalled URLs among
//! their open ones: each window chain's frontier).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use domain::lifecycle::{CANCEL, Counter};
use domain::retry::backoff;
use domain::tally::Tally;
use domain::time::Millis;
use domain::{Error, Job, JobId, JobStatus, TaskFilter, UrlStatus, UrlTask};

use super::items::{ACTIVE_INDEX, ACTIVE_PK, SWEEP_PK, SWEEP_SK, TASK_SK_PREFIX, TaskItem, frontier_attribute};
use super::jobs::job_index_start;
use super::moves::{Expression, Shifts, task_move};
use super::{DynamoStore, Item, applied, av_n, av_s, from_item, number_of, status_of};
use crate::{Jobs, OpenUrls, Page, Tracking};

/// URLs cancelled per transaction (plus the job's counters: DynamoDB allows 100 items; fewer
/// items make a collision with a concurrent delivery less likely).
const CANCEL_BATCH: usize = 25;
/// Re-reads of a page whose cancellation collided with deliveries before giving up (the
/// stream record is then retried).
const MAX_CANCEL_CONFLICTS: u32 = 20;

impl Tracking for DynamoStore {
    async fn transition_job(&self, job: &Job, to: JobStatus, now: Millis) -> Result<bool, Error> {
        let from = job.status;
        if !from.can_become(to) {
            return Err(Error::Conflict(format!("a job cannot go from {from} to {to}")));
        }
        let mut update = Expression::default()
            .name("#status", "status")
            .condition("#status = :from")
            .value(":from", av_s(from.as_str()))
            .set("#status = :to, updated_at = :now")
            .value(":to", av_s(to.as_str()))
            .value(":now", av_n(now));
        if to.marks_started() {
            update = update.set("started_at = if_not_exists(started_at, :now)");
        }
        if !to.is_finished() {
            return applied(update.update_item(self, Self::job_key(&job.id)).await);
        }
        // Leaving the active-jobs index (the reconciler no longer looks at it) and the
        // tenant's unfinished jobs (a place for its next one), together.
        update = update
            .set("finished_at = :now, expires_at = :expires")
            .value(":expires", av_n(self.expiry(now, 0)))
            .remove("gsi2pk")
            .remove("gsi2sk");
        let items = vec![update.update(&self.table, Self::job_key(&job.id))?, self.uncount_job(job)?];
        Ok(self.transact(items).await?.is_none())
    }

    async fn cancel_queued(&self, id: &JobId, now: Millis, budget: Duration) -> Result<u64, Error> {
        let started = std::time::Instant::now();
        let mut cancelled = 0;
        let mut conflicts = 0;
        // Tasks before `after` are done with, so each page is read once: linear, not quadratic.
        let mut after = None;
        while started.elapsed() < budget {
            let page = self.list_tasks(id, &TaskFilter::status(UrlStatus::Queued), CANCEL_BATCH, after).await?;
            let Some(last) = page.items.last().map(|task| task.seq) else { break };
            let n = page.items.len() as u64;
            let mut items = Vec::with_capacity(page.items.len() + 1);
            let mut shifts = Shifts::default();
            for task in &page.items {
                let item = self.task_item_id(id, task.seq, now);
                items.push(task_move(&CANCEL, now, 0, &item).update(&self.table, Self::task_key(id, task.seq))?);
                shifts.add(&CANCEL, UrlStatus::Queued, 1);
            }
            items.push(shifts.update(now).update(&self.table, Self::job_key(id))?);
            match self.transact(items).await? {
                None => {
                    cancelled += n;
                    after = Some(last);
                    if page.next.is_none() {
                        break;
                    }
                }
                // A result or a delivery's cancel came first for one of these: read the page again.
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

    async fn open_urls(&self, job: &Job, before: Millis, limit: usize) -> Result<OpenUrls, Error> {
        // A job's open URLs are its window chains' frontiers, kept on the job: at most its
        // window of keys whatever the job's size, read with the URLs before them in their
        // chains (whose finishing released them, and when).
        let (id, window) = (&job.id, job.window());
        let open = window.open(&job.frontiers);
        let before_them = open.iter().filter_map(|seq| window.released_by(*seq));
        let keys = open.iter().copied().chain(before_them).map(|seq| Self::task_key(id, seq)).collect();
        let items: HashMap<u32, Item> = self
            .batch_get(keys, |request| request)
            .await?
            .into_iter()
            .filter_map(|task| Some((u32::try_from(number_of(&task, "seq")?).ok()?, task)))
            .collect();
        let open_items = open
            .iter()
            .filter_map(|seq| Some((*seq, items.get(seq)?.clone())))
            .map(|(seq, item)| Ok((seq, from_item::<TaskItem>(item)?.into_task())))
            .collect::<Result<HashMap<u32, UrlTask>, Error>>()?;
        let mut found = OpenUrls::default();
        for task in self.tasks_at(id, &open, open_items).await? {
            let released_at = window
                .released_at(task.seq, job.created_at, |p| items.get(&p).and_then(|p| number_of(p, "analyzed_at")));
            let resent_at = items.get(&task.seq).and_then(|item| number_of(item, "resent_at"));
            found.unfinished += usize::from(!task.status.is_terminal());
            if task.is_stalled(before, released_at, resent_at) {
                found.stalled.push(task);
            }
        }
        found.stalled.sort_by_key(|task| task.seq);
        found.stalled.truncate(limit);
        Ok(found)
    }

    async fn note_resent(&self, id: &JobId, seq: u32, now: Millis) -> Result<(), Error> {
        // A URL sent again before any change of its own gets its item here, queued.
        let item = self.task_item_id(id, seq, now);
        let update = Expression::default()
            .name("#status", "status")
            .name("#seq", "seq")
            .set("resent_at = :now, #status = if_not_exists(#status, :queued), job_id = :job, #seq = :seq")
            .set("expires_at = if_not_exists(expires_at, :expires)")
            .value(":now", av_n(now))
            .value(":queued", av_s(UrlStatus::Queued.as_str()))
            .value(":job", av_s(id.as_str()))
            .value(":seq", av_n(seq))
            .value(":expires", av_n(item.expires_at));
        update.update_item(self, Self::task_key(id, seq)).await.map_err(|e| Error::store("UpdateItem", e))
    }

    async fn task_statuses(&self, job: &Job) -> Result<Vec<(u32, UrlStatus)>, Error> {
        let id = &job.id;
        let mut statuses = BTreeMap::new();
        let mut start = None;
        loop {
            let (items, next) = self.job_page(id, TASK_SK_PREFIX, &["seq", "status"], start).await?;
            for item in &items {
                let seq = number_of(item, "seq").and_then(|seq| u32::try_from(seq).ok());
                let seq = seq.ok_or_else(|| Error::Corrupt(format!("a URL of job {id} without its position")))?;
                statuses.insert(seq, status_of::<UrlStatus>(item)?);
            }
            start = next;
            if start.is_none() {
                break;
            }
        }
        // A URL with no item is queued, as listed.
        let total = u32::try_from(job.counters.total).unwrap_or(u32::MAX);
        Ok((0..total).map(|seq| (seq, statuses.get(&seq).copied().unwrap_or(UrlStatus::Queued))).collect())
    }

    async fn set_counts(&self, job: &Job, now: Millis) -> Result<bool, Error> {
        let c = &job.counters;
        let mut update = Expression::default()
            .condition("updated_at = :seen")
            .value(":seen", av_n(job.updated_at))
            .set("updated_at = :now")
            .value(":now", av_n(now));
        let counts = [
            (Counter::Queued, c.queued),
            (Counter::InProgress, c.in_progress),
            (Counter::Succeeded, c.succeeded),
            (Counter::Failed, c.failed),
            (Counter::Cancelled, c.cancelled),
        ];
        for (counter, count) in counts {
            let name = counter.name();
            update = update.set(format!("{name} = :{name}")).value(&format!(":{name}"), av_n(count));
        }
        for (chain, seq) in job.frontiers.iter() {
            let placeholder = format!(":w{chain}");
            update =
                update.set(format!("{} = {placeholder}", frontier_attribute(chain))).value(&placeholder, av_n(seq));
        }
        applied(update.update_item(self, Self::job_key(&job.id)).await)
    }

    async fn add_tally(&self, id: &JobId, tally: &Tally, now: Millis) -> Result<bool, Error> {
        let mut shifts = Shifts::default();
        tally.shifts.iter().for_each(|shift| shifts.shift(*shift, 1));
        tally.releases.iter().for_each(|release| shifts.release(*release));
        let update =
            shifts.update(now).set("counted_to = :counted_to").value(":counted_to", av_s(tally.counted_to.as_str()));
        let update = match &tally.seen {
            None => update.condition("attribute_not_exists(counted_to)"),
            Some(seen) => update.condition("counted_to = :seen").value(":seen", av_s(seen.as_str())),
        };
        applied(update.update_item(self, Self::job_key(id)).await)
    }

    async fn sweep_cursor(&self) -> Result<Option<JobId>, Error> {
        let Some(item) = self.get_consistent(Self::key_of(SWEEP_PK, SWEEP_SK)).await? else { return Ok(None) };
        match item.get("resume_after") {
            None => Ok(None),
            Some(AttributeValue::S(id)) => {
                JobId::parse(id).map(Some).ok_or_else(|| Error::Corrupt(format!("the sweep cursor {id:?}")))
            }
            Some(_) => Err(Error::Corrupt("the sweep cursor is not a job id".into())),
        }
    }

    async fn save_sweep_cursor(&self, after: Option<&JobId>) -> Result<(), Error> {
        let update = match after {
            Some(id) => Expression::default().set("resume_after = :after").value(":after", av_s(id.as_str())),
            None => Expression::default().remove("resume_after"),
        };
        update.update_item(self, Self::key_of(SWEEP_PK, SWEEP_SK)).await.map_err(|e| Error::store("UpdateItem", e))
    }
}

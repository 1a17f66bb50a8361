//! The tracker function counts results and watches jobs.
//!
//! - From the table's stream it takes the URLs' results (a result is written to its URL's
//!   item alone) and adds each batch's to their jobs, one update per job, with the URLs they
//!   release into the window (`domain::tally`); a job's `counted_to` makes a record delivered
//!   again count once.
//! - From the same stream (job items, by `FilterCriteria`) it moves each job to the status its
//!   counters call for, cancels a cancelling job's queued URLs in bulk, and announces every
//!   status change on EventBridge. A job that has finished is handed on through two queues:
//!   to the exporter, to have its report and whole-job files written, and, if it names a
//!   `callback_url`, to the callbacks function, to be called back. Neither is waited for: a
//!   tenant's slow endpoint or a big job's export holds up no stream batch. Every move is a
//!   conditional update from the status it saw, so a redelivered or stale record changes
//!   nothing.
//! - On a schedule it reconciles: a URL released into a job's window whose message was lost
//!   (a crash between recording and sending, a message deleted by hand) is sent again, a job
//!   whose move a lost stream record missed is moved, and a job whose results never reached
//!   the tracker (their batch's retries ran out) is counted again from its URLs. A sweep reads
//!   each unfinished job and its open URLs only, within a time budget, and the next resumes
//!   where it stopped.

use std::collections::HashSet;
use std::time::Duration;

use tracing::Instrument;

use aws::config::QueueUrls;
use aws::metrics::MetricLine;
use aws::notify::{EventPublisher, JobEvent, Notice};
use aws::queue::{Outbox, TaskQueue};
use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use domain::report::ExportRequest;
use domain::tally;
use domain::time::{Millis, now_millis};
use domain::{Job, JobId, JobStatus, TaskMessage};
use serde::{Deserialize, Serialize};
use store::Tracking;
use store::dynamo::items::{is_job_key, job_from_stream_image, result_from_stream};

/// Time spent cancelling queued URLs per invocation: well inside the function's timeout.
/// What is left is continued from the job's next stream record (each batch changes the job).
const CANCEL_BUDGET: Duration = Duration::from_secs(20);
/// Stalled URLs of one job sent again per sweep; the next sweep takes the rest.
const RESEND_MAX: usize = 500;
/// Active jobs read per page of the reconciler's sweep.
const SWEEP_PAGE: usize = 100;
/// How long one sweep may check jobs: well inside the function's timeout (120 s), whatever
/// the number of jobs; the next sweep (5 minutes later) resumes where this one stopped.
pub const SWEEP_BUDGET: Duration = Duration::from_secs(60);

pub struct Tracker<S, Q, P> {
    pub store: S,
    pub queue: Q,
    pub events: P,
    pub settings: TrackerSettings,
}

#[derive(Clone, Debug)]
pub struct TrackerSettings {
    pub queues: QueueUrls,
    /// How long a released URL may show no progress before its message is sent again.
    pub reconcile_after: Duration,
    /// The exporter's queue; `None` (no exports bucket) exports nothing.
    pub export_queue: Option<String>,
    /// The callbacks function's queue; `None` calls nobody back (and says so in the log).
    pub callback_queue: Option<String>,
}

/// What invokes the tracker: its stream, or the schedule that runs the reconciler.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum TrackerEvent {
    // First: a stream batch has no `detail-type`, while `Event` would accept almost anything.
    Schedule(ScheduledEvent),
    Stream(Event),
}

/// An EventBridge scheduled event (only its type is read).
#[derive(Debug, Deserialize)]
pub struct ScheduledEvent {
    #[serde(rename = "detail-type")]
    pub detail_type: String,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum TrackerResponse {
    Stream(DynamoDbEventResponse),
    Sweep(SweepReport),
}

/// What one reconciler sweep found and did.
#[derive(Debug, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// It went on from where the last sweep ran out of time.
    pub resumed: bool,
    /// It reached the newest active job (otherwise the next sweep goes on).
    pub complete: bool,
    pub jobs_checked: u64,
    pub urls_resent: u64,
    pub urls_cancelled: u64,
    pub jobs_moved: u64,
    /// Jobs counted again because results never reached the tracker.
    pub jobs_recounted: u64,
    pub errors: u64,
}

impl<S, Q, P> Tracker<S, Q, P>
where
    S: Tracking,
    Q: TaskQueue + Outbox,
    P: EventPublisher,
{
    pub async fn handle_event(&self, event: TrackerEvent) -> TrackerResponse {
        match event {
            TrackerEvent::Stream(event) => TrackerResponse::Stream(self.handle(event).await),
            TrackerEvent::Schedule(schedule) => {
                tracing::info!(detail_type = %schedule.detail_type, "reconciler sweep");
                TrackerResponse::Sweep(self.reconcile(now_millis()).await)
            }
        }
    }

    /// Handles one stream batch: first the results it reports, added to each job in one
    /// update ([`Tracking::count_results`]), then each change of a job, in order. On a failure
    /// it reports the first record not handled, so Lambda retries from there (records of one
    /// shard stay in order); what was handled and comes again changes nothing, as a count goes
    /// by the job's `counted_to` and a move by the status it saw.
    pub async fn handle(&self, event: Event) -> DynamoDbEventResponse {
        let records = &event.records;
        let (counting, moving) = futures::join!(self.count_results(records), self.handle_jobs(records));
        let mut response = DynamoDbEventResponse::default();
        if let Some(first) = [counting, moving].into_iter().flatten().min() {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = records[first].change.sequence_number.clone();
            response.batch_item_failures.push(failure);
        }
        response
    }

    /// Adds the batch's results to their jobs, each job's in one update; the position in
    /// `records` of the first record not counted, if any.
    async fn count_results(&self, records: &[EventRecord]) -> Option<usize> {
        let mut results = Vec::new();
        let mut unread = None;
        for (i, record) in records.iter().enumerate() {
            let sequence_number = record.change.sequence_number.as_deref().unwrap_or_default();
            match result_from_stream(&record.change.old_image, &record.change.new_image, sequence_number) {
                Ok(Some((id, change))) => results.push((i, id, change)),
                Ok(None) => {}
                Err(err) => {
                    tracing::error!(event_id = %record.event_id, error = %err, "a URL's stream record could not be read");
                    unread = Some(i);
                    break;
                }
            }
        }
        let now = now_millis();
        let jobs = tally::by_job(results);
        let counts = jobs.iter().map(|job| async move {
            match self.store.count_results(&job.job_id, &job.changes, now).await {
                Ok(counted) => {
                    tracing::debug!(job_id = %job.job_id, counted, "results counted");
                    None
                }
                Err(err) => {
                    tracing::error!(job_id = %job.job_id, error = %err, "counting results failed; will be retried");
                    Some(job.first)
                }
            }
        });
        futures::future::join_all(counts).await.into_iter().flatten().chain(unread).min()
    }

    /// Moves each job a record in the batch changed, in order; the position in `records` of
    /// the record that failed, if one did (the rest wait for the retry).
    async fn handle_jobs(&self, records: &[EventRecord]) -> Option<usize> {
        // Jobs whose queued URLs this invocation already cancelled: their later records in the
        // same batch would only find what the writes of this one are still working through.
        let mut cancelled_jobs = HashSet::new();
        for (i, record) in records.iter().enumerate().filter(|(_, record)| is_job_key(&record.change.keys)) {
            // Every line logged about this record carries its event and, once read, its job.
            let span = tracing::info_span!("record", event_id = %record.event_id, job_id = tracing::field::Empty);
            if let Err(err) = self.handle_record(record, &mut cancelled_jobs).instrument(span.clone()).await {
                span.in_scope(|| tracing::error!(error = %err, "stream record failed; will be retried"));
                return Some(i);
            }
        }
        None
    }

    async fn handle_record(
        &self,
        record: &EventRecord,
        cancelled_jobs: &mut HashSet<JobId>,
    ) -> Result<(), domain::Error> {
        if record.change.new_image.is_empty() {
            return Ok(()); // a deletion: nothing to move
        }
        let job = job_from_stream_image(record.change.new_image.clone())?;
        tracing::Span::current().record("job_id", tracing::field::display(&job.id));
        let old_status = if record.change.old_image.is_empty() {
            None
        } else {
            Some(job_from_stream_image(record.change.old_image.clone())?.status)
        };
        let events = JobEvent::for_change(old_status, job.status);
        // The record of the move to a finished status, once per move (and again only if this
        // record is retried: the exporter writes a job once whatever it is sent).
        if let Some(queue) = self.settings.export_queue.as_deref().filter(|_| events.iter().any(|e| e.calls_back())) {
            self.queue.post(queue, &[ExportRequest { batch_job_id: job.id.clone() }]).await?;
            tracing::info!("finished job handed to the exporter");
        }
        for event in events {
            self.announce(event, &job).await?;
        }
        if job.status == JobStatus::Cancelling && job.counters.queued > 0 {
            if !cancelled_jobs.insert(job.id.clone()) {
                return Ok(());
            }
            // The image is as old as the record: a big job's cancellation leaves a record per
            // batch of URLs it cancelled, and scanning the job's URLs again for each of them
            // would cost a scan per 25 URLs. One read of the job says whether any are left.
            let Some(current) = self.store.get_job(&job.id).await? else { return Ok(()) };
            if current.status == JobStatus::Cancelling && current.counters.queued > 0 {
                // Cancel what has not started in batched writes, rather than waiting for every
                // queued message to come round. Bounded in time: each batch changes the job,
                // whose next stream record continues where this one stopped.
                let cancelled = self.store.cancel_queued(&job.id, now_millis(), CANCEL_BUDGET).await?;
                tracing::info!(cancelled, "queued URLs of a cancelling job cancelled");
                let Some(current) = self.store.get_job(&job.id).await? else { return Ok(()) };
                // Finished now, the job moves now, not when the stream reaches its last record.
                self.move_job(&current, now_millis()).await?;
            } else {
                self.move_job(&current, now_millis()).await?;
            }
            return Ok(());
        }
        self.move_job(&job, now_millis()).await?;
        Ok(())
    }

    /// Moves the job to the status its counters call for; `true` if this call moved it.
    async fn move_job(&self, job: &Job, now: Millis) -> Result<bool, domain::Error> {
        let Some(next) = job.next_status() else {
            return Ok(false);
        };
        let moved = self.store.transition_job(job, next, now).await?;
        if moved {
            tracing::info!(from = %job.status, to = %next, "job status changed");
        } else {
            tracing::info!(from = %job.status, to = %next, "already moved by an earlier record");
        }
        Ok(moved)
    }

    /// Publishes the event and hands the job's callback, if it has one, to the callbacks
    /// queue; a failure of either fails the record, so it is retried (and a delivery may be
    /// queued twice: receivers deduplicate on `x-speedbatch-delivery`).
    async fn announce(&self, event: JobEvent, job: &Job) -> Result<(), domain::Error> {
        let notice = Notice::new(event, job)?;
        self.events.publish(std::slice::from_ref(&notice)).await?;
        tracing::info!(event = event.detail_type(), "event published");
        let Some(request) = notice.callback(job, now_millis()) else { return Ok(()) };
        let mut line = MetricLine::new("speedbatch").dimension("Function", "tracker");
        match self.settings.callback_queue.as_deref() {
            Some(queue) => {
                self.queue.post(queue, &[request]).await?;
                tracing::info!("callback queued");
                line.count("CallbacksQueued", 1);
            }
            None => {
                tracing::warn!("the job names a callback but this deployment has no callback queue");
                line.count("CallbacksDropped", 1);
            }
        }
        println!("{}", line.render(now_millis()));
        Ok(())
    }

    /// One reconciler sweep, within [`SWEEP_BUDGET`].
    pub async fn reconcile(&self, now: Millis) -> SweepReport {
        self.sweep(now, SWEEP_BUDGET).await
    }

    /// Checks unfinished jobs, oldest first, from where the last sweep stopped, until every
    /// one was checked or `budget` is spent (at least one job is checked, so sweeps always
    /// move on); where it stopped is kept for the next. Each job costs a read of the job and
    /// of its open URLs (its window): the sweep's reads grow with jobs, not with their sizes.
    pub async fn sweep(&self, now: Millis, budget: Duration) -> SweepReport {
        let started = std::time::Instant::now();
        let mut report = SweepReport::default();
        let mut after = match self.store.sweep_cursor().await {
            Ok(cursor) => cursor,
            Err(err) => {
                tracing::error!(error = %err, "could not read where the last sweep stopped; starting from the oldest job");
                report.errors += 1;
                None
            }
        };
        report.resumed = after.is_some();
        // Out of time, or the list could not be read: the next sweep goes on from `after`.
        let mut cut_short = false;
        loop {
            let page = match self.store.list_active_jobs(SWEEP_PAGE, after.as_ref()).await {
                Ok(page) => page,
                Err(err) => {
                    tracing::error!(error = %err, "could not list active jobs");
                    report.errors += 1;
                    cut_short = true;
                    break;
                }
            };
            for id in &page.items {
                if report.jobs_checked > 0 && started.elapsed() >= budget {
                    cut_short = true;
                    break;
                }
                report.jobs_checked += 1;
                let span = tracing::info_span!("job", job_id = %id);
                if let Err(err) = self.reconcile_job(id, now, &mut report).instrument(span.clone()).await {
                    span.in_scope(
                        || tracing::error!(error = %err, "reconciling a job failed; the next sweep tries again"),
                    );
                    report.errors += 1;
                }
                after = Some(id.clone());
            }
            if cut_short {
                break;
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        report.complete = !cut_short;
        let cursor = if cut_short { after.as_ref() } else { None };
        if let Err(err) = self.store.save_sweep_cursor(cursor).await {
            tracing::error!(error = %err, "could not keep where the sweep stopped; the next starts from the oldest job");
            report.errors += 1;
        }
        let mut line = MetricLine::new("speedbatch").dimension("Function", "reconciler");
        line.count("JobsChecked", report.jobs_checked);
        line.count("UrlsResent", report.urls_resent);
        line.count("UrlsCancelled", report.urls_cancelled);
        line.count("JobsMoved", report.jobs_moved);
        line.count("JobsRecounted", report.jobs_recounted);
        line.count("SweepsCutShort", u64::from(!report.complete));
        line.count("Errors", report.errors);
        println!("{}", line.render(now_millis()));
        tracing::info!(?report, "reconciler sweep done");
        report
    }

    async fn reconcile_job(&self, id: &JobId, now: Millis, report: &mut SweepReport) -> Result<(), domain::Error> {
        let Some(job) = self.store.get_job(id).await? else { return Ok(()) };
        let wait = i64::try_from(self.settings.reconcile_after.as_millis()).unwrap_or(i64::MAX);
        let before = now.saturating_sub(wait);
        match job.status {
            JobStatus::Pending | JobStatus::Processing => {
                let open = self.store.open_urls(&job, before, RESEND_MAX).await?;
                let stalled = open.stalled;
                if !stalled.is_empty() {
                    let messages: Vec<TaskMessage> =
                        stalled.iter().map(|task| TaskMessage::new(&job, task.seq, task.url.clone())).collect();
                    self.queue
                        .send(self.settings.queues.for_task(job.settings.priority, job.settings.engine), &messages)
                        .await?;
                    for task in &stalled {
                        self.store.note_resent(id, task.seq, now).await?;
                    }
                    tracing::warn!(urls = messages.len(), "stalled URLs sent again");
                    report.urls_resent += messages.len() as u64;
                }
                // Results whose stream records were lost for good leave a job that looks
                // unfinished with nothing open: its URLs are counted again.
                if open.unfinished == 0
                    && job.updated_at < before
                    && let Some(recounted) = self.store.recount(&job, now).await?
                {
                    tracing::warn!(counters = ?recounted.counters, "results that never reached the tracker counted again");
                    report.jobs_recounted += 1;
                    if self.move_job(&recounted, now).await? {
                        report.jobs_moved += 1;
                    }
                    return Ok(());
                }
            }
            // A stream record that failed for good left queued URLs of a cancelling job.
            JobStatus::Cancelling if job.counters.queued > 0 && job.updated_at < before => {
                report.urls_cancelled += self.store.cancel_queued(id, now, CANCEL_BUDGET).await?;
            }
            _ => {}
        }
        // A job whose counters call for a move nobody made: its stream record was lost.
        if job.updated_at < before && self.move_job(&job, now).await? {
            report.jobs_moved += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use aws::notify::MemoryPublisher;
    use aws::queue::MemoryQueue;
    use domain::{CleanUrl, Counters, Job, JobSettings, JobStatus, Tenant, UrlStatus};
    use serde_json::json;
    use store::dynamo::items::JobItem;
    use store::prelude::*;
    use store::{MemoryStore, Outcome};

    use super::*;

    type TestTracker = Tracker<MemoryStore, MemoryQueue, MemoryPublisher>;

    fn tracker() -> TestTracker {
        Tracker {
            store: MemoryStore::new(),
            queue: MemoryQueue::new(),
            events: MemoryPublisher::default(),
            settings: TrackerSettings {
                queues: QueueUrls {
                    high: "q/high".into(),
                    normal: "q/normal".into(),
                    low: "q/low".into(),
                    browser: None,
                },
                reconcile_after: Duration::ZERO,
                export_queue: Some("q/export".into()),
                callback_queue: Some("q/callback".into()),
            },
        }
    }

    fn change(old: &Job, new: &Job, sequence: &str) -> serde_json::Value {
        let mut record = record(new, sequence);
        let image: serde_dynamo::Item = serde_dynamo::to_item(JobItem::from_job(old, 0)).unwrap();
        record["dynamodb"]["OldImage"] = serde_json::to_value(image).unwrap();
        record
    }

    fn job(status: JobStatus, counters: Counters) -> Job {
        let mut job = Job::new(Tenant("t".into()), "n".into(), JobSettings::default(), counters.total, 0);
        job.status = status;
        job.counters = counters;
        job
    }

    fn record(job: &Job, sequence: &str) -> serde_json::Value {
        let image: serde_dynamo::Item = serde_dynamo::to_item(JobItem::from_job(job, 0)).unwrap();
        json!({
            "eventID": sequence, "eventName": "MODIFY", "eventVersion": "1.1", "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": {"Keys": {"pk": {"S": format!("JOB#{}", job.id)}, "sk": {"S": "JOB"}}, "NewImage": image,
                         "SequenceNumber": sequence, "SizeBytes": 1, "StreamViewType": "NEW_AND_OLD_IMAGES"}
        })
    }

    /// A stream record of URL `seq` of `job` moving from `processing` to `to`, as a result's
    /// write leaves it (only the attributes the tracker reads).
    fn result_record(job: &Job, seq: u32, to: UrlStatus, sequence: &str) -> serde_json::Value {
        let image = |status: UrlStatus| {
            json!({"pk": {"S": format!("JOB#{}", job.id)}, "sk": {"S": format!("URL#{seq:06}")},
                   "job_id": {"S": job.id.as_str()}, "seq": {"N": seq.to_string()}, "status": {"S": status.as_str()}})
        };
        json!({
            "eventID": sequence, "eventName": "MODIFY", "eventVersion": "1.1", "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": {"Keys": {"pk": {"S": format!("JOB#{}", job.id)}, "sk": {"S": format!("URL#{seq:06}")}},
                         "OldImage": image(UrlStatus::Queued), "NewImage": image(to),
                         "SequenceNumber": sequence, "SizeBytes": 1, "StreamViewType": "NEW_AND_OLD_IMAGES"}
        })
    }

    fn event(records: Vec<serde_json::Value>) -> Event {
        serde_json::from_value(json!({ "Records": records })).unwrap()
    }

    async fn stored(tracker: &TestTracker, job: &Job) -> Job {
        tracker.store.create_job(job, &[]).await.unwrap();
        job.clone()
    }

    #[tokio::test]
    async fn results_are_added_to_their_jobs_once_however_often_the_stream_delivers_them() {
        let tracker = tracker();
        let settings = JobSettings { batch_size: 2, ..JobSettings::default() };
        let job = Job::new(Tenant("t".into()), "n".into(), settings, 5, 0);
        tracker.store.create_job(&job, &urls(5)).await.unwrap();
        let other = Job::new(Tenant("t".into()), "other".into(), JobSettings::default(), 1, 0);
        tracker.store.create_job(&other, &urls(1)).await.unwrap();
        let first = vec![
            result_record(&job, 0, UrlStatus::Succeeded, "100"),
            result_record(&other, 0, UrlStatus::Failed, "101"),
            result_record(&job, 1, UrlStatus::Failed, "102"),
        ];
        let response = tracker.handle(event(first.clone())).await;
        assert!(response.batch_item_failures.is_empty(), "{response:?}");
        let counted = tracker.store.get_job(&job.id).await.unwrap().unwrap();
        let c = &counted.counters;
        assert_eq!((c.succeeded, c.failed, c.queued), (1, 1, 3));
        assert_eq!(counted.window().open(&counted.frontiers), [2, 3], "0 released 2, 1 released 3");
        let other_counted = tracker.store.get_job(&other.id).await.unwrap().unwrap();
        assert_eq!((other_counted.counters.failed, other_counted.counters.queued), (1, 0));

        // Retried from its first record, with what arrived since: only the new one counts.
        let mut retried = first;
        retried.push(result_record(&job, 2, UrlStatus::Succeeded, "1000"));
        assert!(tracker.handle(event(retried)).await.batch_item_failures.is_empty());
        let again = tracker.store.get_job(&job.id).await.unwrap().unwrap();
        assert_eq!((again.counters.succeeded, again.counters.failed, again.counters.queued), (2, 1, 2));
        assert_eq!(again.window().open(&again.frontiers), [4, 3], "2 released 4 (1000 sorts after 102)");
        let other_again = tracker.store.get_job(&other.id).await.unwrap().unwrap();
        assert_eq!(other_again.counters.failed, 1, "counted once");
    }

    #[tokio::test]
    async fn a_result_that_cannot_be_counted_is_retried_from_its_jobs_first_record() {
        let tracker = tracker();
        let job = Job::new(Tenant("t".into()), "n".into(), JobSettings::default(), 2, 0);
        tracker.store.create_job(&job, &urls(2)).await.unwrap();
        let records = vec![
            record(&job, "5"),
            result_record(&job, 0, UrlStatus::Succeeded, "6"),
            result_record(&job, 1, UrlStatus::Succeeded, "7"),
        ];
        tracker.store.set_unavailable(true);
        let response = tracker.handle(event(records)).await;
        let failed: Vec<_> = response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
        assert_eq!(
            failed,
            [Some("6".to_owned())],
            "the job's change needed no write; its first result was not counted"
        );
    }

    #[tokio::test]
    async fn moves_jobs_as_their_counters_say() {
        let tracker = tracker();
        let started = Counters { total: 2, queued: 1, in_progress: 1, ..Counters::default() };
        let done = Counters { total: 2, succeeded: 1, failed: 1, ..Counters::default() };
        let a = stored(&tracker, &job(JobStatus::Pending, started)).await;
        let b = stored(&tracker, &job(JobStatus::Processing, done)).await;
        let response = tracker.handle(event(vec![record(&a, "1"), record(&b, "2")])).await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(tracker.store.get_job(&a.id).await.unwrap().unwrap().status, JobStatus::Processing);
        let b = tracker.store.get_job(&b.id).await.unwrap().unwrap();
        assert_eq!(b.status, JobStatus::CompletedWithErrors);
        assert!(b.finished_at.is_some());
    }

    #[tokio::test]
    async fn a_cancelling_job_has_its_queued_urls_cancelled_in_bulk() {
        let tracker = tracker();
        let job = Job::new(Tenant("t".into()), "n".into(), JobSettings::default(), 3, 0);
        let urls: Vec<_> = ["https://a.example", "https://b.example", "https://c.example"]
            .iter()
            .map(|u| domain::CleanUrl::parse(u, Default::default()).unwrap())
            .collect();
        tracker.store.create_job(&job, &urls).await.unwrap();
        tracker.store.record_outcome(&job.id, 0, &Outcome::Succeeded(analysis()), None, 1).await.unwrap();
        tracker.store.request_cancel(&job.id, 2).await.unwrap();
        let seen = tracker.store.get_job(&job.id).await.unwrap().unwrap();
        assert!(tracker.handle(event(vec![record(&seen, "1")])).await.batch_item_failures.is_empty());
        let after = tracker.store.get_job(&job.id).await.unwrap().unwrap();
        assert_eq!((after.counters.queued, after.counters.succeeded, after.counters.cancelled), (1, 0, 2));
        assert_eq!(after.status, JobStatus::Cancelling, "one URL's result is still to be counted");
        assert_eq!(tracker.store.get_task(&job.id, 2).await.unwrap().unwrap().status, domain::UrlStatus::Cancelled);
        tracker.store.count_recorded(3).await.unwrap();
        let counted = tracker.store.get_job(&job.id).await.unwrap().unwrap();
        assert!(tracker.handle(event(vec![record(&counted, "2")])).await.batch_item_failures.is_empty());
        let finished = tracker.store.get_job(&job.id).await.unwrap().unwrap();
        assert_eq!((finished.status, finished.counters.succeeded), (JobStatus::Cancelled, 1), "the result stands");
    }

    #[tokio::test]
    async fn a_cancellation_that_finishes_moves_the_job_at_once_and_stale_records_leave_it() {
        let tracker = tracker();
        let job = Job::new(Tenant("t".into()), "n".into(), JobSettings::default(), 2, 0);
        let urls: Vec<_> = ["https://a.example", "https://b.example"]
            .iter()
            .map(|u| domain::CleanUrl::parse(u, Default::default()).unwrap())
            .collect();
        tracker.store.create_job(&job, &urls).await.unwrap();
        tracker.store.request_cancel(&job.id, 2).await.unwrap();
        let seen = tracker.store.get_job(&job.id).await.unwrap().unwrap();
        // The first record cancels both URLs; the second is the same stale image again.
        let response = tracker.handle(event(vec![record(&seen, "1")])).await;
        assert!(response.batch_item_failures.is_empty());
        let after = tracker.store.get_job(&job.id).await.unwrap().unwrap();
        assert_eq!((after.status, after.counters.cancelled), (JobStatus::Cancelled, 2), "moved at once");
        let response = tracker.handle(event(vec![record(&seen, "2")])).await;
        assert!(response.batch_item_failures.is_empty(), "a stale record reads the job and finds nothing to do");
        assert_eq!(tracker.store.get_job(&job.id).await.unwrap().unwrap().status, JobStatus::Cancelled);
    }

    #[tokio::test]
    async fn a_stale_record_changes_nothing() {
        let tracker = tracker();
        let done = Counters { total: 1, succeeded: 1, ..Counters::default() };
        let current = stored(&tracker, &job(JobStatus::Completed, done)).await;
        let mut stale = current.clone();
        stale.status = JobStatus::Processing;
        assert!(tracker.handle(event(vec![record(&stale, "1")])).await.batch_item_failures.is_empty());
        assert_eq!(tracker.store.get_job(&current.id).await.unwrap().unwrap(), current);
    }

    #[tokio::test]
    async fn a_failure_reports_its_sequence_number_and_stops() {
        let tracker = tracker();
        let done = Counters { total: 1, succeeded: 1, ..Counters::default() };
        let a = stored(&tracker, &job(JobStatus::Processing, done)).await;
        let b = stored(&tracker, &job(JobStatus::Processing, done)).await;
        tracker.store.set_unavailable(true);
        let response = tracker.handle(event(vec![record(&a, "41"), record(&b, "42")])).await;
        let failed: Vec<_> = response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
        assert_eq!(failed, [Some("41".to_owned())], "retry from the first failure; later records keep their order");
    }

    #[tokio::test]
    async fn status_changes_are_announced_once_each() {
        let tracker = tracker();
        let done = Counters { total: 1, succeeded: 1, ..Counters::default() };
        let running = stored(&tracker, &job(JobStatus::Processing, done)).await;
        let mut finished = running.clone();
        finished.status = JobStatus::Completed;
        let mut counted = running.clone();
        counted.updated_at += 1;
        let response =
            tracker.handle(event(vec![change(&running, &counted, "1"), change(&running, &finished, "2")])).await;
        assert!(response.batch_item_failures.is_empty());
        let published = tracker.events.published();
        assert_eq!(published.len(), 1, "a counter change announces nothing");
        let posted = tracker.queue.posted();
        assert_eq!(posted, [("q/export".to_owned(), json!({"batch_job_id": running.id.to_string()}))], "exported once");
        assert_eq!(published[0].detail_type, JobEvent::Completed.detail_type());
        assert_eq!(published[0].job_id, running.id.to_string());
        assert_eq!(published[0].detail["status"], "completed");
        assert_eq!(published[0].detail["succeeded"], 1);
    }

    #[tokio::test]
    async fn a_job_that_names_a_callback_has_it_queued_not_delivered() {
        let tracker = tracker();
        let done = Counters { total: 1, succeeded: 1, ..Counters::default() };
        let mut running = job(JobStatus::Processing, done);
        // An endpoint nobody answers on: the tracker must not even try it.
        running.settings.callback_url = Some("http://192.0.2.1/hook".into());
        let running = stored(&tracker, &running).await;
        let mut finished = running.clone();
        finished.status = JobStatus::Completed;
        let response = tracker.handle(event(vec![change(&running, &finished, "1")])).await;
        assert!(response.batch_item_failures.is_empty());
        let posted = tracker.queue.posted();
        let (queue, request) = &posted[1];
        assert_eq!(queue, "q/callback");
        assert_eq!(request["batch_job_id"], running.id.to_string());
        assert_eq!((request["tenant"].as_str(), request["event"].as_str()), (Some("t"), Some("Job Completed")));
        assert_eq!(request["url"], "http://192.0.2.1/hook");
        assert_eq!(request["detail"]["status"], "completed");
        assert_eq!(request["detail"]["callback"]["state"], "pending", "the job shows it waiting");
        let mut started = job(JobStatus::Processing, Counters::new(1));
        started.settings.callback_url = Some("http://192.0.2.1/hook".into());
        let mut pending = started.clone();
        pending.status = JobStatus::Pending;
        tracker.handle(event(vec![change(&pending, &started, "2")])).await;
        assert_eq!(tracker.queue.posted().len(), 2, "a start calls nobody back");
    }

    #[test]
    fn schedule_and_stream_events_are_told_apart() {
        let schedule = json!({"version": "0", "id": "x", "detail-type": "Scheduled Event", "source": "aws.events",
                              "account": "000000000000", "time": "2026-11-28T00:00:00Z", "region": "us-east-1",
                              "resources": [], "detail": {}});
        assert!(matches!(serde_json::from_value(schedule).unwrap(), TrackerEvent::Schedule(_)));
        let job = job(JobStatus::Pending, Counters::new(1));
        let stream = json!({ "Records": [record(&job, "1")] });
        assert!(matches!(serde_json::from_value(stream).unwrap(), TrackerEvent::Stream(e) if e.records.len() == 1));
    }

    fn urls(n: usize) -> Vec<CleanUrl> {
        (0..n).map(|i| CleanUrl::parse(&format!("https://site.example/{i}"), Default::default()).unwrap()).collect()
    }

    #[tokio::test]
    async fn the_reconciler_sends_released_urls_whose_message_was_lost_once() {
        let tracker = tracker();
        let settings = JobSettings { batch_size: 2, priority: domain::Priority::Low, ..JobSettings::default() };
        let job = Job::new(Tenant("t".into()), "n".into(), settings, 5, 0);
        tracker.store.create_job(&job, &urls(5)).await.unwrap();
        // URL 0 finishes and releases URL 2, but the messages of 1 and 2 are lost.
        let outcome = Outcome::Failed { kind: domain::ErrorKind::Http4xx, reason: "HTTP 404".into(), analysis: None };
        tracker.store.record_outcome(&job.id, 0, &outcome, None, 20).await.unwrap();
        tracker.store.count_recorded(20).await.unwrap();

        let report = tracker.reconcile(1_000).await;
        assert_eq!((report.jobs_checked, report.urls_resent, report.errors), (1, 2, 0));
        let sent = tracker.queue.take_sent();
        let seqs: Vec<u32> = sent.iter().map(|(_, m)| m.seq).collect();
        assert_eq!(seqs, [1, 2], "released and queued; 3 and 4 wait for their turn");
        assert!(sent.iter().all(|(queue, m)| queue == "q/low" && m.batch_size == 2 && m.total_urls == 5));
        assert_eq!(sent[1].1.url, "https://site.example/2");

        let again = tracker.reconcile(1_000).await;
        assert_eq!(again.urls_resent, 0, "sent again at most once per reconcile_after");
        let later = tracker.reconcile(2_000).await;
        assert_eq!(later.urls_resent, 2, "still lost a period later: sent again");
    }

    #[tokio::test]
    async fn the_reconciler_resends_a_url_whose_analysis_never_reported_and_moves_a_forgotten_job() {
        let tracker = tracker();
        let job = Job::new(Tenant("t".into()), "n".into(), JobSettings::default(), 1, 0);
        tracker.store.create_job(&job, &urls(1)).await.unwrap();
        let report = tracker.reconcile(1_000).await;
        assert_eq!(report.urls_resent, 1, "released at submission, no result: the message is sent again");
        tracker.store.record_outcome(&job.id, 0, &Outcome::Succeeded(analysis()), None, 1_002).await.unwrap();
        // The stream record of that write is lost: the next sweep counts the job's URLs again
        // and finishes it.
        let report = tracker.reconcile(5_000).await;
        assert_eq!((report.jobs_recounted, report.jobs_moved), (1, 1), "{report:?}");
        let stored = tracker.store.get_job(&job.id).await.unwrap().unwrap();
        assert_eq!(stored.status, JobStatus::Completed);
        assert_eq!(tracker.store.get_task(&job.id, 0).await.unwrap().unwrap().status, UrlStatus::Succeeded);
        assert_eq!(tracker.reconcile(6_000).await.jobs_checked, 0, "finished jobs leave the sweep");
    }

    #[tokio::test]
    async fn a_sweep_out_of_time_is_resumed_by_the_next_one() {
        let tracker = tracker();
        let mut ids = Vec::new();
        for _ in 0..3 {
            let job = Job::new(Tenant("t".into()), "n".into(), JobSettings::default(), 1, 0);
            tracker.store.create_job(&job, &urls(1)).await.unwrap();
            ids.push(job.id);
        }
        // No time at all: each sweep checks one job (so sweeps always move on) and stops.
        let first = tracker.sweep(1_000, Duration::ZERO).await;
        assert_eq!((first.resumed, first.complete, first.jobs_checked, first.urls_resent), (false, false, 1, 1));
        assert_eq!(tracker.store.sweep_cursor().await.unwrap().as_ref(), Some(&ids[0]));
        let second = tracker.sweep(1_000, Duration::ZERO).await;
        assert_eq!((second.resumed, second.complete, second.jobs_checked), (true, false, 1));
        let third = tracker.sweep(1_000, Duration::ZERO).await;
        assert_eq!((third.resumed, third.complete, third.jobs_checked, third.urls_resent), (true, true, 1, 1));
        assert_eq!(tracker.store.sweep_cursor().await.unwrap(), None, "through them all: the next starts over");
        let sent: Vec<_> = tracker.queue.take_sent().into_iter().map(|(_, m)| m.job_id).collect();
        assert_eq!(sent, ids, "each job's lost message sent once, oldest job first");
        let whole = tracker.sweep(100_000, SWEEP_BUDGET).await;
        assert_eq!((whole.resumed, whole.complete, whole.jobs_checked), (false, true, 3));
    }

    fn analysis() -> domain::Analysis {
        domain::Analysis {
            engine: "http".into(),
            strategy: domain::Strategy::Mobile,
            score: Some(90.0),
            metrics: Default::default(),
            cached_from: None,
        }
    }
}

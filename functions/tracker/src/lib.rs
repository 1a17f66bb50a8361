//! The tracker function: reads the jobs table's stream (job items only, by `FilterCriteria`)
//! and moves each job to the status its counters call for. Every move is a conditional
//! update from the status it saw, so a redelivered or stale record changes nothing.

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use std::collections::HashSet;

use shared::domain::{JobId, JobStatus};
use shared::store::JobStore;
use shared::store::items::job_from_stream_image;
use shared::time::now_millis;

/// Time spent cancelling queued URLs per invocation: well inside the 60 s timeout. What is
/// left is continued from the job's next stream record (each batch changes the job).
const CANCEL_BUDGET: std::time::Duration = std::time::Duration::from_secs(20);

pub struct Tracker<S> {
    pub store: S,
}

impl<S: JobStore> Tracker<S> {
    /// Handles one stream batch. On a failure it reports that record's sequence number, so
    /// Lambda retries from there (records of one shard stay in order).
    pub async fn handle(&self, event: Event) -> DynamoDbEventResponse {
        let mut response = DynamoDbEventResponse::default();
        // Jobs whose queued URLs this invocation already cancelled: their later records in the
        // same batch would only find what the writes of this one are still working through.
        let mut cancelled_jobs = HashSet::new();
        for record in &event.records {
            if let Err(err) = self.handle_record(record, &mut cancelled_jobs).await {
                tracing::error!(event_id = %record.event_id, error = %err, "stream record failed; will be retried");
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = record.change.sequence_number.clone();
                response.batch_item_failures.push(failure);
                break;
            }
        }
        response
    }

    async fn handle_record(
        &self,
        record: &EventRecord,
        cancelled_jobs: &mut HashSet<JobId>,
    ) -> Result<(), shared::Error> {
        if record.change.new_image.is_empty() {
            return Ok(()); // a deletion: nothing to move
        }
        let job = job_from_stream_image(record.change.new_image.clone())?;
        if job.status == JobStatus::Cancelling && job.counters.queued > 0 {
            if !cancelled_jobs.insert(job.id.clone()) {
                return Ok(());
            }
            // Cancel what has not started in batched writes, rather than waiting for every
            // queued message to come round. Bounded in time: each batch changes the job, whose
            // next stream record continues where this one stopped.
            let cancelled = self.store.cancel_queued(&job.id, now_millis(), CANCEL_BUDGET).await?;
            tracing::info!(job_id = %job.id, cancelled, "queued URLs of a cancelling job cancelled");
            return Ok(());
        }
        let Some(next) = job.next_status() else {
            return Ok(());
        };
        let moved = self.store.transition_job(&job.id, job.status, next, now_millis()).await?;
        if moved {
            tracing::info!(job_id = %job.id, from = %job.status, to = %next, "job status changed");
        } else {
            tracing::info!(job_id = %job.id, from = %job.status, to = %next, "already moved by an earlier record");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use shared::domain::{Counters, Job, JobSettings, JobStatus, Tenant};
    use shared::store::MemoryStore;
    use shared::store::items::JobItem;

    use super::*;

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
            "dynamodb": {"Keys": {}, "NewImage": image, "SequenceNumber": sequence, "SizeBytes": 1,
                         "StreamViewType": "NEW_AND_OLD_IMAGES"}
        })
    }

    fn event(records: Vec<serde_json::Value>) -> Event {
        serde_json::from_value(json!({ "Records": records })).unwrap()
    }

    async fn stored(tracker: &Tracker<MemoryStore>, job: &Job) -> Job {
        tracker.store.create_job(job, &[]).await.unwrap();
        job.clone()
    }

    #[tokio::test]
    async fn moves_jobs_as_their_counters_say() {
        let tracker = Tracker { store: MemoryStore::new() };
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
        let tracker = Tracker { store: MemoryStore::new() };
        let job = Job::new(Tenant("t".into()), "n".into(), JobSettings::default(), 3, 0);
        let urls: Vec<_> = ["https://a.example", "https://b.example", "https://c.example"]
            .iter()
            .map(|u| shared::domain::CleanUrl::parse(u, Default::default()).unwrap())
            .collect();
        tracker.store.create_job(&job, &urls).await.unwrap();
        assert_eq!(tracker.store.claim_task(&job.id, 0, 1).await.unwrap(), shared::store::Claim::Claimed);
        tracker.store.request_cancel(&job.id, 2).await.unwrap();
        let seen = tracker.store.get_job(&job.id).await.unwrap().unwrap();
        assert!(tracker.handle(event(vec![record(&seen, "1")])).await.batch_item_failures.is_empty());
        let after = tracker.store.get_job(&job.id).await.unwrap().unwrap();
        assert_eq!((after.counters.queued, after.counters.in_progress, after.counters.cancelled), (0, 1, 2));
        assert_eq!(after.status, JobStatus::Cancelling, "one URL is still being analysed");
        assert_eq!(
            tracker.store.get_task(&job.id, 2).await.unwrap().unwrap().status,
            shared::domain::UrlStatus::Cancelled
        );
    }

    #[tokio::test]
    async fn a_stale_record_changes_nothing() {
        let tracker = Tracker { store: MemoryStore::new() };
        let done = Counters { total: 1, succeeded: 1, ..Counters::default() };
        let current = stored(&tracker, &job(JobStatus::Completed, done)).await;
        let mut stale = current.clone();
        stale.status = JobStatus::Processing;
        assert!(tracker.handle(event(vec![record(&stale, "1")])).await.batch_item_failures.is_empty());
        assert_eq!(tracker.store.get_job(&current.id).await.unwrap().unwrap(), current);
    }

    #[tokio::test]
    async fn a_failure_reports_its_sequence_number_and_stops() {
        let tracker = Tracker { store: MemoryStore::new() };
        let done = Counters { total: 1, succeeded: 1, ..Counters::default() };
        let a = stored(&tracker, &job(JobStatus::Processing, done)).await;
        let b = stored(&tracker, &job(JobStatus::Processing, done)).await;
        tracker.store.set_unavailable(true);
        let response = tracker.handle(event(vec![record(&a, "41"), record(&b, "42")])).await;
        let failed: Vec<_> = response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
        assert_eq!(failed, [Some("41".to_owned())], "retry from the first failure; later records keep their order");
    }
}

//! The tracker function: reads the jobs table's stream (job items only, by `FilterCriteria`)
//! and moves each job to the status its counters call for. Every move is a conditional
//! update from the status it saw, so a redelivered or stale record changes nothing.

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use shared::store::JobStore;
use shared::store::items::job_from_stream_image;
use shared::time::now_millis;

pub struct Tracker<S> {
    pub store: S,
}

impl<S: JobStore> Tracker<S> {
    /// Handles one stream batch. On a failure it reports that record's sequence number, so
    /// Lambda retries from there (records of one shard stay in order).
    pub async fn handle(&self, event: Event) -> DynamoDbEventResponse {
        let mut response = DynamoDbEventResponse::default();
        for record in &event.records {
            if let Err(err) = self.handle_record(record).await {
                tracing::error!(event_id = %record.event_id, error = %err, "stream record failed; will be retried");
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = record.change.sequence_number.clone();
                response.batch_item_failures.push(failure);
                break;
            }
        }
        response
    }

    async fn handle_record(&self, record: &EventRecord) -> Result<(), shared::Error> {
        if record.change.new_image.is_empty() {
            return Ok(()); // a deletion: nothing to move
        }
        let job = job_from_stream_image(record.change.new_image.clone())?;
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

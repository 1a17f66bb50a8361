//! Pushes from the table's stream. The mapping's filter passes new jobs (which a tenant's
//! all-jobs subscriber may follow) and changes of followed jobs (`live_gen` in the new
//! image). A batch is coalesced to each job's newest image; each is sent to every watcher
//! once the job's last push is half a second old. Waiting holds the shard, so what changes
//! meanwhile arrives as the next batch, coalesced again: at most 2 pushes per second per job,
//! and the last state is always sent, because every batch pushes its newest image.
//! A job that had to wait is read again after the wait, and what a push may show is `pace`'s.

use std::collections::BTreeMap;

use aws::connections::{Connections, PostError};
use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use domain::live::Outgoing;
use domain::time::now_millis;
use domain::{Job, JobId, JobView};
use futures::StreamExt;
use store::dynamo::{job_from_stream_image, watch_generation};
use store::{KeyStore, Lookup, Scope, Subscriptions, Watcher};

use crate::Live;

/// Frames in flight at once while pushing to many watchers.
const POST_PARALLELISM: usize = 32;
/// A followed job's newest image in the batch, and where its records start (to be retried
/// from there if pushing it fails).
pub(crate) struct Change {
    pub(crate) job: Job,
    pub(crate) generation: u64,
    first_sequence: String,
}

impl<S, C> Live<S, C>
where
    S: KeyStore + Subscriptions + Lookup,
    C: Connections,
{
    pub(crate) async fn push(&self, batch: Event) -> DynamoDbEventResponse {
        let mut failed: Vec<String> = Vec::new();
        let mut changes: BTreeMap<JobId, Change> = BTreeMap::new();
        for record in &batch.records {
            let sequence = record.change.sequence_number.clone().unwrap_or_default();
            let outcome = match record.event_name.as_str() {
                "INSERT" => self.follow_if_watched(record).await,
                _ => coalesce(&mut changes, record, &sequence),
            };
            if let Err(err) = outcome {
                tracing::error!(error = %err, sequence, "a stream record was not handled");
                failed.push(sequence);
            }
        }
        let mut pending = Vec::new();
        for change in changes.into_values().filter(|change| self.news(change)) {
            match self.store.watchers(&change.job).await {
                Ok(watchers) if watchers.is_empty() => {
                    // Nobody left: its changes stop reaching this function.
                    if let Err(err) = self.store.unfollow_job(&change.job.id, change.generation).await {
                        tracing::warn!(error = %err, "a job nobody follows is still marked");
                    }
                }
                Ok(watchers) => pending.push((change, watchers)),
                Err(err) => {
                    tracing::error!(error = %err, "a job's watchers were not read");
                    failed.push(change.first_sequence);
                }
            }
        }
        if !pending.is_empty() && self.wait_for_pace(pending.iter().map(|(change, _)| &change.job.id)).await {
            for (change, _) in &mut pending {
                self.refresh(change).await;
            }
        }
        for (change, watchers) in pending {
            if let Err(err) = self.deliver(&change, watchers).await {
                tracing::error!(error = %err, "a job's progress was not pushed");
                failed.push(change.first_sequence);
            }
        }
        // Lambda retries from the earliest failed record (records of a shard stay in order).
        let mut response = DynamoDbEventResponse::default();
        if let Some(earliest) = failed.into_iter().filter(|s| !s.is_empty()).min_by(|a, b| by_sequence(a, b)) {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(earliest);
            response.batch_item_failures.push(failure);
        }
        response
    }

    /// A new job is followed from its start when its tenant has an all-jobs subscriber.
    async fn follow_if_watched(&self, record: &EventRecord) -> Result<(), domain::Error> {
        let job = job_from_stream_image(record.change.new_image.clone())?;
        self.store.follow_new_job(&job, now_millis()).await?;
        Ok(())
    }

    /// Sends the job's state to every watcher; drops the subscriptions of connections that
    /// have gone, and a finished job's own (nothing more will change).
    async fn deliver(&self, change: &Change, watchers: Vec<Watcher>) -> Result<(), domain::Error> {
        let frame = Outgoing::Progress { job: &JobView::new(&change.job) }.to_bytes();
        let outcomes: Vec<(Watcher, Result<(), PostError>)> = futures::stream::iter(watchers)
            .map(|watcher| {
                let frame = frame.clone();
                async move {
                    let outcome = self.connections.send_frame(&watcher.connection, frame).await;
                    (watcher, outcome)
                }
            })
            .buffer_unordered(POST_PARALLELISM)
            .collect()
            .await;
        let finished = change.job.status.is_finished();
        self.note_push(change, finished);
        let mut dropped = Vec::new();
        let mut undelivered = 0;
        for (watcher, outcome) in outcomes {
            match outcome {
                Ok(()) if finished && watcher.scope == Scope::Job(change.job.id.clone()) => dropped.push(watcher),
                Ok(()) => {}
                Err(PostError::Gone) => dropped.push(watcher),
                Err(PostError::Failed(message)) => {
                    undelivered += 1;
                    tracing::warn!(message, "a frame was not delivered");
                }
            }
        }
        if undelivered > 0 {
            tracing::warn!(undelivered, job = %change.job.id, "some watchers missed a push; the next change reaches them");
        }
        if !dropped.is_empty() {
            self.store.drop_subscriptions(&dropped).await?;
        }
        if finished {
            // All-jobs subscribers have had the last state; later changes (the callback's
            // delivery) are not progress.
            self.store.unfollow_job(&change.job.id, change.generation).await?;
        }
        Ok(())
    }
}

/// Keeps the newest image of each followed job (records arrive in order).
fn coalesce(changes: &mut BTreeMap<JobId, Change>, record: &EventRecord, sequence: &str) -> Result<(), domain::Error> {
    let image = &record.change.new_image;
    let Some(generation) = watch_generation(image) else { return Ok(()) };
    let job = job_from_stream_image(image.clone())?;
    match changes.get_mut(&job.id) {
        Some(change) => {
            change.job = job;
            change.generation = generation;
        }
        None => {
            changes.insert(job.id.clone(), Change { job, generation, first_sequence: sequence.to_owned() });
        }
    }
    Ok(())
}

/// Stream sequence numbers are decimal strings of growing length: compare them as numbers.
fn by_sequence(a: &str, b: &str) -> std::cmp::Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

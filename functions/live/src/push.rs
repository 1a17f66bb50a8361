//! Pushes from the table's stream. The mapping's filter passes new jobs (which a tenant's
//! all-jobs subscriber may follow) and changes of followed jobs (`live_gen` in the new
//! image). A batch is coalesced to each job's newest image; each is sent to every watcher
//! once the job's last push is half a second old. Waiting holds the shard, so what changes
//! meanwhile arrives as the next batch, coalesced again: at most 2 pushes per second per job,
//! and the last state is always sent, because every batch pushes its newest image.
//!
//! A job that had to wait is read again after the wait (one consistent GetItem): its image is
//! up to half a second old by then, and the read is what it is now. The next batch may then
//! carry images older than what was pushed: an image behind the last push (fewer URLs
//! finished, or as many but an earlier `updated_at`) is not pushed, nor one equal to it,
//! unless a new subscriber raised the watch generation and is owed the state.

use std::collections::BTreeMap;
use std::time::Duration;

use aws::connections::{Connections, PostError};
use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use domain::live::{Outgoing, wait_before_push};
use domain::time::{Millis, now_millis};
use domain::{Job, JobId, JobView};
use futures::StreamExt;
use store::dynamo::{job_from_stream_image, watch_generation};
use store::{KeyStore, Lookup, Scope, Subscriptions, Watcher};

use crate::Live;

/// What was last pushed of a job, from this container: when, and how far the job had got.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pushed {
    at: Millis,
    progress: Progress,
    generation: u64,
}

/// How far a job has got, in the order its changes happen: URLs only ever finish, and a
/// change stamps `updated_at`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Progress {
    finished: bool,
    done: u64,
    updated_at: Millis,
}

impl Progress {
    fn of(job: &Job) -> Self {
        Progress { finished: job.status.is_finished(), done: job.counters.done(), updated_at: job.updated_at }
    }
}

/// Frames in flight at once while pushing to many watchers.
const POST_PARALLELISM: usize = 32;
/// Jobs whose pace is remembered; past this, those not pushed for a while are forgotten.
const PACE_MEMORY: usize = 10_000;

/// A followed job's newest image in the batch, and where its records start (to be retried
/// from there if pushing it fails).
struct Change {
    job: Job,
    generation: u64,
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

    /// Whether the change shows watchers something they have not been sent: a job further on
    /// than its last push, or a new subscriber's.
    fn news(&self, change: &Change) -> bool {
        let last = self.last_push.lock().unwrap_or_else(|p| p.into_inner());
        match last.get(&change.job.id) {
            None => true,
            Some(pushed) => {
                let progress = Progress::of(&change.job);
                progress > pushed.progress || (progress == pushed.progress && change.generation != pushed.generation)
            }
        }
    }

    /// Sleeps until every job about to be pushed was last pushed at least half a second ago;
    /// whether it slept.
    async fn wait_for_pace<'a>(&self, jobs: impl Iterator<Item = &'a JobId>) -> bool {
        let now = now_millis();
        let wait = {
            let last = self.last_push.lock().unwrap_or_else(|p| p.into_inner());
            jobs.map(|id| wait_before_push(last.get(id).map(|pushed| pushed.at), now)).max().unwrap_or(0)
        };
        if wait > 0 {
            tokio::time::sleep(Duration::from_millis(u64::try_from(wait).unwrap_or(0))).await;
        }
        wait > 0
    }

    /// The job as it is now, after a wait, where that is further on than its image; the image
    /// when the read fails (it is still the newest the stream gave).
    async fn refresh(&self, change: &mut Change) {
        match self.store.get_job(&change.job.id).await {
            Ok(Some(now)) if Progress::of(&now) >= Progress::of(&change.job) => change.job = now,
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "a job was not read again after its wait; pushing its image"),
        }
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

    fn note_push(&self, change: &Change, finished: bool) {
        let now = now_millis();
        let mut last = self.last_push.lock().unwrap_or_else(|p| p.into_inner());
        if finished {
            last.remove(&change.job.id);
            return;
        }
        if last.len() >= PACE_MEMORY {
            last.retain(|_, pushed| wait_before_push(Some(pushed.at), now) > 0);
        }
        let pushed = Pushed { at: now, progress: Progress::of(&change.job), generation: change.generation };
        last.insert(change.job.id.clone(), pushed);
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

//! The analyzer function: consumes URL tasks from the priority queues, analyses each URL and
//! records the outcome on the URL's item, once (the tracker adds it to the job's counters from
//! the table's stream). Nothing is written when an analysis starts: one read per batch says
//! which URLs are still to analyse and which jobs are cancelling, and a URL's attempt is its
//! message's ([`TaskMessage::attempt`]). Failures are reported per message
//! (`ReportBatchItemFailures`), never for the whole batch.

mod disposition;
mod group_commit;
pub mod screenshots;
pub mod setup;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws::config::QueueUrls;
use aws::queue::TaskQueue;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use domain::ErrorKind;
use domain::places::{self, Full, Lease};
use domain::politeness;
use domain::retry::url_retry_delay;
use domain::{Analysis, TaskMessage, timeouts};
use engine::runs::{self, Plan};
use engine::{Admission, EngineError, Engines};
use futures::future::join_all;
use store::{Delivery, Outcome, OutcomeRecord, Recorded, Sighting, TaskWork, WaitLog};
use tracing::Instrument;

use crate::disposition::{Disposition, metric_line};
use crate::group_commit::GroupCommit;
use aws::metrics::MetricLine;
use domain::time::now_millis;
use domain::waits::{self, WaitReason};

/// Attempts a URL gets beyond `1 + max_retries` for analyses that never reported back (the
/// analyzer crashed or was stopped): after those it fails rather than being tried forever.
const CRASH_ALLOWANCE: u32 = 2;
/// How soon an unreadable message comes back: it will never be readable, so it should use up
/// its receives (and reach the DLQ) in seconds rather than one visibility timeout each.
const UNREADABLE_RETURN: Duration = Duration::from_secs(1);

pub struct Analyzer<S, Q, E> {
    pub store: S,
    pub queue: Q,
    pub engine: E,
    pub queues: QueueUrls,
    /// URLs of one host analysed at once, fleet-wide ([`domain::politeness`]).
    pub host_concurrency: u32,
}

/// How long the first result of an invocation waits for the others still being analysed: the
/// results of pages that finish within it give their places back together, one write per set
/// for all of them. Well inside the write margin (`timeouts::WRITE_MARGIN`), and a quarter of
/// a second of progress.
const RESULT_LINGER: Duration = Duration::from_millis(250);

/// What a URL's ask for its places came to: the places it holds, or what it found full.
type Placed = Result<Result<Vec<Lease>, Full>, domain::Error>;

/// The invocation's places and results, each written for all its messages together.
struct Writes {
    places: GroupCommit<Vec<Lease>, Placed>,
    outcomes: GroupCommit<OutcomeRecord, Result<Recorded, domain::Error>>,
}

impl Writes {
    /// The writes of an invocation of `messages` messages, each of which records a result at
    /// most once ([`Share`]).
    fn for_batch(messages: usize) -> Writes {
        Writes { places: GroupCommit::default(), outcomes: GroupCommit::expecting(messages, RESULT_LINGER) }
    }
}

/// One message's part in its invocation's writes: when it ends without recording a result
/// (it waits, retries, was a duplicate...), the result write stops waiting for it.
struct Share<'a> {
    writes: &'a Writes,
    recorded: AtomicBool,
}

impl<'a> Share<'a> {
    fn of(writes: &'a Writes) -> Self {
        Share { writes, recorded: AtomicBool::new(false) }
    }

    async fn take_places<F, Fut>(&self, leases: Vec<Lease>, write: F) -> Placed
    where
        F: Fn(Vec<Vec<Lease>>) -> Fut,
        Fut: Future<Output = Vec<Placed>>,
    {
        self.writes.places.submit(leases, write).await.unwrap_or_else(|| Err(unanswered()))
    }

    async fn record<F, Fut>(&self, record: OutcomeRecord, write: F) -> Result<Recorded, domain::Error>
    where
        F: Fn(Vec<OutcomeRecord>) -> Fut,
        Fut: Future<Output = Vec<Result<Recorded, domain::Error>>>,
    {
        self.recorded.store(true, Ordering::SeqCst);
        self.writes.outcomes.submit(record, write).await.unwrap_or_else(|| Err(unanswered()))
    }
}

impl Drop for Share<'_> {
    fn drop(&mut self) {
        if !self.recorded.load(Ordering::SeqCst) {
            self.writes.outcomes.leave();
        }
    }
}

/// The writer stopped before answering: only if its future was dropped mid-write.
fn unanswered() -> domain::Error {
    domain::Error::Conflict("a batched write ended without an answer".into())
}

/// A message's task, or why it cannot be read.
fn read_message(record: &SqsMessage) -> Result<TaskMessage, String> {
    match record.body.as_deref().map(serde_json::from_str) {
        Some(Ok(message)) => Ok(message),
        Some(Err(e)) => Err(e.to_string()),
        None => Err("no body".into()),
    }
}

/// A finished URL's message and the URL of its job that may start now.
struct Successor {
    finished: TaskMessage,
    next: u32,
}

/// Runs `analyzer` as the function `name`: one SQS batch per invocation, its AWS requests
/// counted and reported with it.
pub async fn serve<S, Q, E>(
    analyzer: Analyzer<S, Q, E>,
    requests: aws::RequestCounter,
    name: &'static str,
) -> Result<(), lambda_runtime::Error>
where
    S: TaskWork + WaitLog + Send + Sync + 'static,
    Q: TaskQueue + Send + Sync + 'static,
    E: Engines + 'static,
{
    let analyzer = std::sync::Arc::new(analyzer);
    lambda_runtime::run(lambda_runtime::service_fn(move |event: lambda_runtime::LambdaEvent<SqsEvent>| {
        let (analyzer, requests) = (std::sync::Arc::clone(&analyzer), requests.clone());
        async move {
            let (response, line) = analyzer.handle_measured(event.payload, event.context.deadline(), name).await;
            requests.emit_with(line);
            Ok::<SqsBatchResponse, lambda_runtime::Error>(response)
        }
    }))
    .await
}

impl<S, Q, E> Analyzer<S, Q, E>
where
    S: TaskWork + WaitLog,
    Q: TaskQueue,
    E: Engines,
{
    /// Handles one SQS batch; `deadline` is when Lambda ends the invocation. Writes the
    /// batch's metric line.
    pub async fn handle(&self, event: SqsEvent, deadline: std::time::SystemTime) -> SqsBatchResponse {
        let (response, line) = self.handle_measured(event, deadline, "analyzer").await;
        // EMF goes to stdout as a raw line: CloudWatch reads it from the function's log.
        println!("{}", line.render(now_millis()));
        response
    }

    /// Handles one SQS batch, and says what became of it as the metric line of `function`
    /// (for the caller to add its request counts to and write).
    pub async fn handle_measured(
        &self,
        event: SqsEvent,
        deadline: std::time::SystemTime,
        function: &'static str,
    ) -> (SqsBatchResponse, MetricLine) {
        let received = now_millis();
        let messages: Vec<Result<TaskMessage, String>> = event.records.iter().map(read_message).collect();
        let sightings = self.look_up(&messages).await;
        let writes = Writes::for_batch(event.records.len());
        let handled = event
            .records
            .iter()
            .zip(messages)
            .zip(sightings)
            .map(|((record, message), sighting)| self.handle_record(record, message, sighting, deadline, &writes));
        let results = join_all(handled).await;
        let mut response = SqsBatchResponse::default();
        let mut measured = Vec::with_capacity(results.len());
        let mut releases = Vec::new();
        for (record, (disposition, release)) in event.records.iter().zip(results) {
            if disposition.redeliver() {
                response.add_failure(record.message_id.clone().unwrap_or_default());
            }
            let sent: Option<i64> = record.attributes.get("SentTimestamp").and_then(|t| t.parse().ok());
            measured.push((disposition, sent.map(|sent| (received - sent).max(0) as f64)));
            releases.extend(release);
        }
        let released = self.release(releases).await;
        // Counted for `GET /queue/status`: one write per reason and bucket, not per URL.
        let notes = waits::notes(measured.iter().filter_map(|(disposition, _)| disposition.wait()));
        if let Err(err) = self.store.note_waits(&notes).await {
            tracing::warn!(error = %err, "could not count the waiting URLs");
        }
        (response, metric_line(&measured, released, function))
    }

    /// The batch's URLs and their jobs in one read, one answer per message (`Err` for all when
    /// the table did not answer: the messages come back), and the jobs this batch starts
    /// marked started.
    async fn look_up(&self, messages: &[Result<TaskMessage, String>]) -> Vec<Result<Option<Sighting>, ()>> {
        let keys: Vec<_> = messages.iter().flatten().map(|m| (m.job_id.clone(), m.seq)).collect();
        let found = match self.store.look_up(&keys).await {
            Ok(found) => found,
            Err(err) => {
                tracing::error!(error = %err, "could not read the batch's URLs; they will be redelivered");
                return messages.iter().map(|_| Err(())).collect();
            }
        };
        let mut found = found.into_iter();
        let sightings: Vec<Result<Option<Sighting>, ()>> =
            messages.iter().map(|m| Ok(m.as_ref().ok().and_then(|_| found.next().flatten()))).collect();
        // A job's first analyses start it (one write per job, once): the tracker moves it to
        // `processing` from that.
        let mut starting: Vec<&domain::JobId> = Vec::new();
        for (message, sighting) in messages.iter().zip(&sightings) {
            if let (Ok(message), Ok(Some(sighting))) = (message, sighting)
                && !sighting.started
                && sighting.delivery() == Delivery::Analyse
                && !starting.contains(&&message.job_id)
            {
                starting.push(&message.job_id);
            }
        }
        let now = now_millis();
        for (id, started) in
            starting.iter().zip(join_all(starting.iter().map(|id| self.store.start_job(id, now))).await)
        {
            if let Err(err) = started {
                tracing::warn!(job_id = %id, error = %err, "could not mark the job started; its next batch will");
            }
        }
        sightings
    }

    /// Sends the messages of the URLs that finished URLs let start, in one read of their
    /// addresses and one send per queue. Already marked released in the store: if this
    /// fails, the reconciler sends them later.
    async fn release(&self, releases: Vec<Successor>) -> usize {
        if releases.is_empty() {
            return 0;
        }
        let keys: Vec<_> = releases.iter().map(|r| (r.finished.job_id.clone(), r.next)).collect();
        let urls = match self.store.task_urls(&keys).await {
            Ok(urls) => urls,
            Err(err) => {
                tracing::error!(error = %err, count = keys.len(), "could not read released URLs; the reconciler will send them");
                return 0;
            }
        };
        let mut by_queue: std::collections::BTreeMap<&str, Vec<TaskMessage>> = Default::default();
        for release in &releases {
            let Some(url) = urls.get(&(release.finished.job_id.clone(), release.next)) else {
                tracing::warn!(job_id = %release.finished.job_id, seq = release.next, "released URL not found");
                continue;
            };
            by_queue
                .entry(self.queues.for_task(release.finished.priority, release.finished.engine))
                .or_default()
                .push(release.finished.for_seq(release.next, url.clone()));
        }
        let mut sent = 0;
        for (queue_url, messages) in by_queue {
            match self.queue.send(queue_url, &messages).await {
                Ok(()) => sent += messages.len(),
                Err(err) => {
                    tracing::error!(error = %err, count = messages.len(), "could not send released URLs; the reconciler will")
                }
            }
        }
        sent
    }

    async fn handle_record(
        &self,
        record: &SqsMessage,
        message: Result<TaskMessage, String>,
        sighting: Result<Option<Sighting>, ()>,
        deadline: std::time::SystemTime,
        writes: &Writes,
    ) -> (Disposition, Option<Successor>) {
        let writes = Share::of(writes);
        let message = match message {
            Ok(message) => message,
            Err(reason) => {
                // Not ours to fix: after maxReceiveCount deliveries SQS moves it to the DLQ.
                tracing::error!(message_id = ?record.message_id, %reason, "unreadable task message");
                if let Err(err) = self.come_back_later(record, UNREADABLE_RETURN).await {
                    tracing::warn!(error = %err, "could not shorten an unreadable message's visibility");
                }
                return (Disposition::Unreadable, None);
            }
        };
        let Ok(sighting) = sighting else { return (Disposition::Unavailable, None) };
        // Every line logged about this URL carries its job and position.
        let span = tracing::info_span!("url", job_id = %message.job_id, seq = message.seq);
        match self.deliver(&message, sighting, record, deadline, &writes).instrument(span.clone()).await {
            Ok(disposition) => {
                let finished = matches!(disposition, Disposition::Succeeded { .. } | Disposition::Failed { .. });
                let release = message
                    .releases()
                    .filter(|_| finished)
                    .map(|release| Successor { finished: message, next: release.next });
                (disposition, release)
            }
            Err(err) => {
                span.in_scope(|| tracing::error!(error = %err, "task failed; will be redelivered"));
                (Disposition::Unavailable, None)
            }
        }
    }

    /// What a delivery does, from its URL and job as the batch's read found them.
    async fn deliver(
        &self,
        message: &TaskMessage,
        sighting: Option<Sighting>,
        record: &SqsMessage,
        deadline: std::time::SystemTime,
        writes: &Share<'_>,
    ) -> Result<Disposition, domain::Error> {
        let Some(sighting) = sighting else {
            tracing::warn!("task for a job that no longer exists dropped");
            return Ok(Disposition::Dropped);
        };
        match sighting.delivery() {
            Delivery::Analyse => self.process(message, record, deadline, writes).await,
            Delivery::Duplicate => {
                tracing::info!(status = %sighting.task, "duplicate delivery ignored");
                Ok(Disposition::Duplicate)
            }
            Delivery::Cancel => {
                let cancelled =
                    self.store.cancel_task(&message.job_id, message.seq, sighting.task, now_millis()).await?;
                tracing::info!(cancelled, "job is cancelling: URL not started");
                Ok(if cancelled { Disposition::Cancelled } else { Disposition::Duplicate })
            }
        }
    }

    /// Puts the message back on its queue for `delay`; without a known queue it comes back
    /// after the visibility timeout.
    async fn come_back_later(&self, record: &SqsMessage, delay: Duration) -> Result<(), domain::Error> {
        let queue_url = record.event_source_arn.as_deref().and_then(|arn| self.queues.for_arn(arn));
        match (queue_url, record.receipt_handle.as_deref()) {
            (Some(url), Some(handle)) => self.queue.retry_later(url, handle, delay).await,
            _ => {
                tracing::warn!(message_id = ?record.message_id, "unknown source queue: back after the visibility timeout");
                Ok(())
            }
        }
    }

    /// Sends a delayed copy of the message (the original is then acknowledged): the URL
    /// waits without using up its receives.
    async fn defer(
        &self,
        message: &TaskMessage,
        until: domain::time::Millis,
        reason: WaitReason,
    ) -> Result<Disposition, domain::Error> {
        let wait = Duration::from_millis(u64::try_from(until - now_millis()).unwrap_or(0)).max(Duration::from_secs(1));
        tracing::info!(wait_s = wait.as_secs(), %reason, "URL waits");
        self.queue.defer(self.queues.for_task(message.priority, message.engine), message, wait).await?;
        Ok(Disposition::Waiting { reason, until: until.max(now_millis() + 1_000) })
    }

    /// The URL's tenant or host had no place for it (or the host asked for a pause): it waits,
    /// longer each time it finds its places taken, spread so that a crowd of waiters does not
    /// return at once.
    async fn wait_for_places(&self, message: &TaskMessage, full: Full) -> Result<Disposition, domain::Error> {
        // The golden ratio's fractions of successive positions are evenly spread in [0, 1).
        let jitter = ((f64::from(message.seq) + f64::from(message.waits)) * 0.618_033_988_75).fract();
        let until = places::busy_until(full, message.waits, jitter, now_millis());
        let waiting = TaskMessage { waits: message.waits.saturating_add(1), ..message.clone() };
        self.defer(&waiting, until, full.reason).await
    }

    async fn process(
        &self,
        message: &TaskMessage,
        record: &SqsMessage,
        deadline: std::time::SystemTime,
        writes: &Share<'_>,
    ) -> Result<Disposition, domain::Error> {
        let (job_id, seq) = (&message.job_id, message.seq);
        let receives: u32 = record.attributes.get("ApproximateReceiveCount").and_then(|n| n.parse().ok()).unwrap_or(1);
        let attempt = message.attempt(receives);
        // What waits is no attempt: the copy sent to wait carries the attempts made so far.
        let waiting = message.to_wait(receives);
        if attempt > 1 + message.max_retries + CRASH_ALLOWANCE {
            let outcome = Outcome::Failed {
                kind: ErrorKind::Timeout,
                reason: format!(
                    "the analysis stopped without a result {} times (the analyzer crashed or ran out of time)",
                    attempt - 1
                ),
                analysis: None,
            };
            tracing::warn!(attempt, "URL given up after repeated crashes");
            return self.record(message, outcome, attempt, 0.0, &[], writes).await;
        }
        // A reusable result is looked for first, so that reusing one costs no quota place.
        let cached = self.cached(message).await?;
        let start_at = match cached {
            Some(_) => now_millis(),
            None => {
                match runs::admit(&self.engine, message.engine, message.field, message.asker(), now_millis()).await? {
                    Admission::At(at) => at,
                    Admission::Wait { until, reason } => {
                        tracing::debug!(%reason, "the engine's quota is full");
                        return self.defer(&waiting, until, WaitReason::Quota).await;
                    }
                }
            }
        };
        // The analysis stops at the URL's timeout or early enough to write its result before
        // Lambda ends the invocation; its places are leased for both.
        let left = deadline.duration_since(std::time::SystemTime::now()).unwrap_or_default();
        let timeout = timeouts::analysis_time(message.timeout_seconds, left);
        let lease_end = now_millis() + i64::try_from(timeouts::lease(timeout).as_millis()).unwrap_or(i64::MAX);
        if let Some(analysis) = cached {
            // A reused result loads no page: it takes no place.
            tracing::info!("an earlier result reused");
            return self.record(message, Outcome::Succeeded(analysis), attempt, 0.0, &[], writes).await;
        }
        let places = match self.take_places(message.places(lease_end, self.host_concurrency), writes).await? {
            Ok(places) => places,
            Err(full) => return self.wait_for_places(&waiting, full).await,
        };
        let places = places.as_slice();
        // The engine's quota slot: at most a few seconds ahead (the engine admits no later).
        let slot = Duration::from_millis(u64::try_from(start_at - now_millis()).unwrap_or(0));
        if !slot.is_zero() {
            tokio::time::sleep(slot.min(timeout)).await;
        }
        let started = std::time::Instant::now();
        let job = message.job_id.to_string();
        let plan = Plan {
            engine: message.engine,
            job: &job,
            url: &message.url,
            strategy: message.strategy,
            runs: message.runs,
            categories: &message.categories,
            asker: message.asker(),
            field: message.field,
        };
        let result = runs::measure(&self.engine, &plan, tokio::time::Instant::now() + timeout).await;
        let analysis_ms = started.elapsed().as_secs_f64() * 1000.0;
        let outcome = match result {
            Ok(analysis) => Outcome::Succeeded(analysis),
            Err(EngineError { defer_until: Some(until), reason, .. }) => {
                // The provider's quota, not the page: not an attempt, and no receive used.
                tracing::debug!(%reason, "the provider's quota is full");
                self.store.give_places_back(places).await?;
                return self.defer(&waiting, until, WaitReason::Quota).await;
            }
            Err(EngineError { retry_after: Some(asked), reason, .. })
                if message.pauses < politeness::MAX_HOST_PAUSES =>
            {
                // The site asked for a pause: all its URLs get one, and this is no attempt.
                let until = politeness::pause_until(asked, now_millis());
                tracing::info!(%reason, pause_s = (until - now_millis()) / 1000, "the site asked for a pause");
                if let Some(host) = politeness::host_key(&message.url) {
                    self.store.pause_host(&host, until).await?;
                }
                self.store.give_places_back(places).await?;
                let paused = TaskMessage { pauses: message.pauses + 1, ..waiting };
                let full = Full { reason: WaitReason::HostPaused, paused_until: Some(until) };
                return self.wait_for_places(&paused, full).await;
            }
            Err(err) if err.is_retryable() && attempt <= message.max_retries => {
                let delay = url_retry_delay(attempt);
                tracing::info!(attempt, reason = %err.reason, delay_s = delay.as_secs(), "retryable failure");
                self.store.record_retry(job_id, seq, err.kind, &err.reason, attempt, now_millis()).await?;
                self.store.give_places_back(places).await?;
                // The same copy comes back: its next receive is the next attempt.
                self.come_back_later(record, delay).await?;
                return Ok(Disposition::RetryLater);
            }
            Err(err) => Outcome::Failed { kind: err.kind, reason: err.reason, analysis: err.analysis },
        };
        self.record(message, outcome, attempt, analysis_ms, places, writes).await
    }

    /// The tenant's fresh result for this URL, when the job reuses results.
    async fn cached(&self, message: &TaskMessage) -> Result<Option<Analysis>, domain::Error> {
        let Some(key) = message.cache_key().filter(|_| message.cache_ttl_seconds > 0) else { return Ok(None) };
        let since = now_millis() - i64::from(message.cache_ttl_seconds) * 1000;
        self.store.cached_result(&key, since).await
    }

    /// Takes the URL's places with the invocation's others (one write per set, each tenant's
    /// in one shard: [`places::one_shard_per_tenant`]), if it needs any: the places it holds.
    async fn take_places(&self, places: Vec<Lease>, writes: &Share<'_>) -> Placed {
        if places.is_empty() {
            return Ok(Ok(places));
        }
        writes
            .take_places(places, |mut asks| async move {
                places::one_shard_per_tenant(&mut asks);
                match self.store.take_places(&asks, now_millis()).await {
                    Ok(answers) => {
                        answers.into_iter().zip(asks).map(|(answer, held)| Ok(answer.map(|()| held))).collect()
                    }
                    Err(err) => {
                        let message = err.to_string();
                        let failed = || domain::Error::Store { operation: "take places", message: message.clone() };
                        asks.iter().map(|_| Err(failed())).collect()
                    }
                }
            })
            .await
    }

    /// Records a URL's terminal outcome (releasing the next URL of its window and its
    /// places), together with the invocation's other results that are ready.
    async fn record(
        &self,
        message: &TaskMessage,
        outcome: Outcome,
        attempt: u32,
        analysis_ms: f64,
        places: &[Lease],
        writes: &Share<'_>,
    ) -> Result<Disposition, domain::Error> {
        let (job_id, seq) = (&message.job_id, message.seq);
        let counted = match &outcome {
            Outcome::Succeeded(analysis) => {
                Disposition::Succeeded { analysis_ms, cached: analysis.cached_from.is_some() }
            }
            Outcome::Failed { kind, .. } => Disposition::Failed { kind: *kind, analysis_ms },
        };
        let record = OutcomeRecord {
            job_id: job_id.clone(),
            seq,
            attempt,
            outcome,
            cache_key: message.cache_key(),
            history: message.history_key(),
            places: places.to_vec(),
        };
        let recorded = writes
            .record(record, |records| async move { self.store.record_outcomes(&records, now_millis()).await })
            .await?;
        match recorded {
            Recorded::Counted => {
                let succeeded = matches!(counted, Disposition::Succeeded { .. });
                // The happy path logs nothing per URL: the invocation's metric line counts
                // outcomes, and a line per URL would cost more log bytes than its writes.
                tracing::debug!(succeeded, attempt, "task recorded");
                Ok(counted)
            }
            Recorded::Duplicate => {
                tracing::info!("result already recorded by another delivery");
                Ok(Disposition::Duplicate)
            }
        }
    }
}

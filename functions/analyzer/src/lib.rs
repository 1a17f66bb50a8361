//! The analyzer function: consumes URL tasks from the priority queues, analyses each URL and
//! records the outcome with the job's counters in one transaction. Failures are reported per
//! message (`ReportBatchItemFailures`), never for the whole batch.

use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use futures::future::join_all;
use shared::config::QueueUrls;
use shared::domain::ErrorKind;
use shared::domain::TaskMessage;
use shared::engine::Engine;
use shared::metrics::{MetricLine, Unit};
use shared::queue::TaskQueue;
use shared::retry::url_retry_delay;
use shared::store::{Claim, JobStore, Outcome, Recorded};
use shared::time::now_millis;

/// Time kept back from the invocation's deadline to record a result after an analysis.
const WRITE_MARGIN: Duration = Duration::from_secs(10);

pub struct Analyzer<S, Q, E> {
    pub store: S,
    pub queue: Q,
    pub engine: E,
    pub queues: QueueUrls,
}

/// What became of one message.
#[derive(Debug, PartialEq)]
enum Disposition {
    Succeeded {
        analysis_ms: f64,
    },
    Failed {
        kind: ErrorKind,
        analysis_ms: f64,
    },
    /// A retryable failure: back on the queue after its backoff.
    RetryLater,
    /// The job is cancelling: the URL was marked `cancelled` without starting.
    Cancelled,
    /// Another delivery already recorded this URL.
    Duplicate,
    /// The job no longer exists.
    Dropped,
    /// The message cannot be read; after enough deliveries SQS moves it to the DLQ.
    Unreadable,
    /// The table did not answer; the message is redelivered.
    Unavailable,
}

impl Disposition {
    /// Whether the message stays on the queue for another delivery.
    fn redeliver(&self) -> bool {
        matches!(self, Disposition::RetryLater | Disposition::Unreadable | Disposition::Unavailable)
    }
}

/// The invocation's EMF metrics: outcomes by kind, analysis time, and time spent queued.
fn metric_line(results: &[(Disposition, Option<f64>)]) -> MetricLine {
    let mut line = MetricLine::new("speedbatch").dimension("Function", "analyzer");
    let count = |f: &dyn Fn(&Disposition) -> bool| results.iter().filter(|(d, _)| f(d)).count() as u64;
    line.count("UrlsSucceeded", count(&|d| matches!(d, Disposition::Succeeded { .. })));
    line.count("UrlsFailed", count(&|d| matches!(d, Disposition::Failed { .. })));
    line.count("UrlsRetried", count(&|d| matches!(d, Disposition::RetryLater)));
    line.count("UrlsCancelled", count(&|d| matches!(d, Disposition::Cancelled)));
    line.count("Duplicates", count(&|d| matches!(d, Disposition::Duplicate)));
    line.count("Unprocessable", count(&|d| matches!(d, Disposition::Unreadable | Disposition::Unavailable)));
    for kind in ErrorKind::ALL {
        let failed = count(&|d| matches!(d, Disposition::Failed { kind: k, .. } if k == kind));
        if failed > 0 {
            line.count(format!("Failures.{kind}"), failed);
        }
    }
    let analysis = results
        .iter()
        .filter_map(|(d, _)| match d {
            Disposition::Succeeded { analysis_ms } | Disposition::Failed { analysis_ms, .. } => Some(*analysis_ms),
            _ => None,
        })
        .collect();
    line.values("AnalysisTime", Unit::Milliseconds, analysis);
    line.values("QueueWait", Unit::Milliseconds, results.iter().filter_map(|(_, wait)| *wait).collect());
    line
}

impl<S, Q, E> Analyzer<S, Q, E>
where
    S: JobStore,
    Q: TaskQueue,
    E: Engine,
{
    /// Handles one SQS batch; `deadline` is when Lambda ends the invocation.
    pub async fn handle(&self, event: SqsEvent, deadline: std::time::SystemTime) -> SqsBatchResponse {
        let received = now_millis();
        let results = join_all(event.records.iter().map(|record| self.handle_record(record, deadline))).await;
        let mut response = SqsBatchResponse::default();
        let mut measured = Vec::with_capacity(results.len());
        for (record, disposition) in event.records.iter().zip(results) {
            if disposition.redeliver() {
                response.add_failure(record.message_id.clone().unwrap_or_default());
            }
            let sent: Option<i64> = record.attributes.get("SentTimestamp").and_then(|t| t.parse().ok());
            measured.push((disposition, sent.map(|sent| (received - sent).max(0) as f64)));
        }
        // EMF goes to stdout as a raw line: CloudWatch reads it from the function's log.
        println!("{}", metric_line(&measured).render(now_millis()));
        response
    }

    async fn handle_record(&self, record: &SqsMessage, deadline: std::time::SystemTime) -> Disposition {
        let message: TaskMessage = match record.body.as_deref().map(serde_json::from_str) {
            Some(Ok(message)) => message,
            other => {
                // Not ours to fix: after maxReceiveCount deliveries SQS moves it to the DLQ.
                let reason = match other {
                    Some(Err(e)) => e.to_string(),
                    _ => "no body".into(),
                };
                tracing::error!(message_id = ?record.message_id, %reason, "unreadable task message");
                return Disposition::Unreadable;
            }
        };
        match self.process(&message, record, deadline).await {
            Ok(disposition) => disposition,
            Err(err) => {
                tracing::error!(job_id = %message.job_id, seq = message.seq, error = %err, "task failed; will be redelivered");
                Disposition::Unavailable
            }
        }
    }

    async fn process(
        &self,
        message: &TaskMessage,
        record: &SqsMessage,
        deadline: std::time::SystemTime,
    ) -> Result<Disposition, shared::Error> {
        let (job_id, seq) = (&message.job_id, message.seq);
        match self.store.claim_task(job_id, seq, now_millis()).await {
            Ok(Claim::Claimed | Claim::Reclaimed) => {}
            Ok(Claim::AlreadyFinished(status)) => {
                tracing::info!(%job_id, seq, %status, "duplicate delivery ignored");
                return Ok(Disposition::Duplicate);
            }
            Ok(Claim::JobCancelling) => {
                let cancelled = self.store.cancel_task(job_id, seq, now_millis()).await?;
                tracing::info!(%job_id, seq, cancelled, "job is cancelling: URL not started");
                return Ok(if cancelled { Disposition::Cancelled } else { Disposition::Duplicate });
            }
            Err(shared::Error::NotFound) => {
                tracing::warn!(%job_id, seq, "task for a job that no longer exists dropped");
                return Ok(Disposition::Dropped);
            }
            Err(err) => return Err(err),
        }
        let remaining =
            deadline.duration_since(std::time::SystemTime::now()).unwrap_or_default().saturating_sub(WRITE_MARGIN);
        let timeout = Duration::from_secs(u64::from(message.timeout_seconds)).min(remaining);
        let attempt: u32 = record.attributes.get("ApproximateReceiveCount").and_then(|n| n.parse().ok()).unwrap_or(1);
        let started = std::time::Instant::now();
        let result = self.engine.analyze(&message.url, message.strategy, timeout).await;
        let analysis_ms = started.elapsed().as_secs_f64() * 1000.0;
        let outcome = match result {
            Ok(analysis) => Outcome::Succeeded(analysis),
            Err(err) if err.is_retryable() && attempt <= message.max_retries => {
                let delay = url_retry_delay(attempt);
                tracing::info!(%job_id, seq, attempt, reason = %err.reason, delay_s = delay.as_secs(), "retryable failure");
                let queue_url = record.event_source_arn.as_deref().and_then(|arn| self.queues.for_arn(arn));
                match (queue_url, record.receipt_handle.as_deref()) {
                    (Some(url), Some(handle)) => self.queue.retry_later(url, handle, delay).await?,
                    _ => tracing::warn!(%job_id, seq, "unknown source queue: retry after the visibility timeout"),
                }
                return Ok(Disposition::RetryLater);
            }
            Err(err) => Outcome::Failed { kind: err.kind, reason: err.reason, analysis: err.analysis },
        };
        match self.store.record_outcome(job_id, seq, &outcome, now_millis()).await? {
            Recorded::Counted => {
                let succeeded = matches!(outcome, Outcome::Succeeded(_));
                tracing::info!(%job_id, seq, succeeded, attempt, "task recorded");
                Ok(match outcome {
                    Outcome::Succeeded(_) => Disposition::Succeeded { analysis_ms },
                    Outcome::Failed { kind, .. } => Disposition::Failed { kind, analysis_ms },
                })
            }
            Recorded::Duplicate => {
                tracing::info!(%job_id, seq, "result already recorded by another delivery");
                Ok(Disposition::Duplicate)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::{Duration, SystemTime};

    use serde_json::json;
    use shared::domain::{Analysis, CleanUrl, ErrorKind, Job, JobId, JobSettings, Strategy, Tenant, UrlStatus};
    use shared::engine::EngineError;
    use shared::net::AddressPolicy;
    use shared::store::MemoryStore;

    use super::*;

    /// Answers each URL with a scripted result: a path containing "retry" fails retryably,
    /// "gone" permanently, anything else succeeds.
    struct ScriptedEngine;

    impl Engine for ScriptedEngine {
        fn name(&self) -> &'static str {
            "scripted"
        }

        async fn analyze(&self, url: &str, strategy: Strategy, _: Duration) -> Result<Analysis, EngineError> {
            if url.contains("retry") {
                Err(EngineError::new(ErrorKind::Http5xx, "HTTP 503 Service Unavailable"))
            } else if url.contains("gone") {
                Err(EngineError::new(ErrorKind::Http4xx, "HTTP 410 Gone"))
            } else {
                Ok(Analysis { engine: "scripted".into(), strategy, score: Some(90.0), metrics: Default::default() })
            }
        }
    }

    #[derive(Default)]
    struct RecordingQueue {
        delays: Mutex<Vec<(String, Duration)>>,
    }

    impl TaskQueue for RecordingQueue {
        async fn depth(&self, _: &str) -> Result<shared::queue::QueueDepth, shared::Error> {
            Ok(Default::default())
        }

        async fn send(&self, _: &str, _: &[TaskMessage]) -> Result<(), shared::Error> {
            Ok(())
        }

        async fn retry_later(&self, queue_url: &str, _: &str, delay: Duration) -> Result<(), shared::Error> {
            self.delays.lock().unwrap().push((queue_url.to_owned(), delay));
            Ok(())
        }
    }

    const QUEUE_ARN: &str = "arn:aws:sqs:us-east-1:000000000000:normal";

    fn analyzer() -> Analyzer<MemoryStore, RecordingQueue, ScriptedEngine> {
        Analyzer {
            store: MemoryStore::new(),
            queue: RecordingQueue::default(),
            engine: ScriptedEngine,
            queues: QueueUrls { high: "q/high".into(), normal: "q/normal".into(), low: "q/low".into() },
        }
    }

    async fn job(a: &Analyzer<MemoryStore, RecordingQueue, ScriptedEngine>, urls: &[&str]) -> JobId {
        let settings = JobSettings { max_retries: 2, ..JobSettings::default() };
        let job = Job::new(Tenant("t".into()), "n".into(), settings, urls.len() as u64, 0);
        let clean: Vec<CleanUrl> = urls.iter().map(|u| CleanUrl::parse(u, AddressPolicy::default()).unwrap()).collect();
        a.store.create_job(&job, &clean).await.unwrap();
        job.id
    }

    fn record(id: &str, body: serde_json::Value, receive_count: u32) -> serde_json::Value {
        json!({
            "messageId": id,
            "receiptHandle": format!("handle-{id}"),
            "body": if body.is_string() { body } else { json!(body.to_string()) },
            "attributes": {"ApproximateReceiveCount": receive_count.to_string()},
            "messageAttributes": {},
            "eventSource": "aws:sqs",
            "eventSourceARN": QUEUE_ARN,
            "awsRegion": "us-east-1",
        })
    }

    fn task(job_id: &JobId, seq: u32, url: &str) -> serde_json::Value {
        json!({"job_id": job_id, "seq": seq, "url": url, "strategy": "mobile", "engine": "http",
               "timeout_seconds": 60, "max_retries": 2})
    }

    fn event(records: Vec<serde_json::Value>) -> SqsEvent {
        serde_json::from_value(json!({ "Records": records })).unwrap()
    }

    fn later() -> SystemTime {
        SystemTime::now() + Duration::from_secs(900)
    }

    fn failed_ids(response: &SqsBatchResponse) -> Vec<&str> {
        response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect()
    }

    #[tokio::test]
    async fn only_the_failed_messages_of_a_batch_are_reported() {
        let a = analyzer();
        let id = job(&a, &["https://ok.example", "https://gone.example", "https://retry.example"]).await;
        let response = a
            .handle(
                event(vec![
                    record("m0", task(&id, 0, "https://ok.example"), 1),
                    record("m1", task(&id, 1, "https://gone.example"), 1),
                    record("m2", task(&id, 2, "https://retry.example"), 1),
                    record("m3", json!("not json"), 1),
                ]),
                later(),
            )
            .await;
        assert_eq!(failed_ids(&response), ["m2", "m3"]);
        let job = a.store.get_job(&id).await.unwrap().unwrap();
        assert_eq!(
            (job.counters.succeeded, job.counters.failed, job.counters.in_progress, job.counters.queued),
            (1, 1, 1, 0)
        );
        let gone = a.store.get_task(&id, 1).await.unwrap().unwrap();
        assert_eq!((gone.status, gone.error.as_deref()), (UrlStatus::Failed, Some("HTTP 410 Gone")));
        let delays = a.queue.delays.lock().unwrap().clone();
        assert_eq!(delays.len(), 1, "the retryable URL was given a backoff");
        assert_eq!(delays[0].0, "q/normal");
        assert!(delays[0].1 <= Duration::from_secs(5));
    }

    #[tokio::test]
    async fn retries_stop_at_max_retries_with_the_reason() {
        let a = analyzer();
        let id = job(&a, &["https://retry.example"]).await;
        for receive in 1..=2 {
            let response =
                a.handle(event(vec![record("m", task(&id, 0, "https://retry.example"), receive)]), later()).await;
            assert_eq!(failed_ids(&response), ["m"], "delivery {receive} is retried");
        }
        let response = a.handle(event(vec![record("m", task(&id, 0, "https://retry.example"), 3)]), later()).await;
        assert!(response.batch_item_failures.is_empty(), "max_retries 2: the third delivery is the last");
        let task = a.store.get_task(&id, 0).await.unwrap().unwrap();
        assert_eq!(task.status, UrlStatus::Failed);
        assert_eq!(task.error.as_deref(), Some("HTTP 503 Service Unavailable"));
        assert_eq!(task.attempts, 3);
        let job = a.store.get_job(&id).await.unwrap().unwrap();
        assert_eq!((job.counters.failed, job.counters.in_progress), (1, 0));
    }

    #[tokio::test]
    async fn duplicates_and_unknown_jobs_are_acknowledged_without_counting() {
        let a = analyzer();
        let id = job(&a, &["https://ok.example"]).await;
        let message = record("m", task(&id, 0, "https://ok.example"), 1);
        for _ in 0..3 {
            let response = a.handle(event(vec![message.clone()]), later()).await;
            assert!(response.batch_item_failures.is_empty());
        }
        assert_eq!(a.store.get_job(&id).await.unwrap().unwrap().counters.succeeded, 1);
        let unknown = JobId::generate();
        let response = a.handle(event(vec![record("x", task(&unknown, 0, "https://ok.example"), 1)]), later()).await;
        assert!(response.batch_item_failures.is_empty(), "a deleted job's task is dropped, not retried forever");
    }

    #[test]
    fn metrics_count_every_outcome_by_kind() {
        let results = vec![
            (Disposition::Succeeded { analysis_ms: 10.0 }, Some(5.0)),
            (Disposition::Failed { kind: ErrorKind::Http4xx, analysis_ms: 20.0 }, Some(7.0)),
            (Disposition::Failed { kind: ErrorKind::Http4xx, analysis_ms: 30.0 }, None),
            (Disposition::RetryLater, None),
            (Disposition::Cancelled, None),
        ];
        let line: serde_json::Value = serde_json::from_str(&metric_line(&results).render(0)).unwrap();
        assert_eq!(line["UrlsSucceeded"], 1.0);
        assert_eq!(line["UrlsFailed"], 2.0);
        assert_eq!(line["Failures.http_4xx"], 2.0);
        assert_eq!(line["UrlsRetried"], 1.0);
        assert_eq!(line["UrlsCancelled"], 1.0);
        assert_eq!(line["AnalysisTime"], json!([10.0, 20.0, 30.0]));
        assert_eq!(line["QueueWait"], json!([5.0, 7.0]));
        assert_eq!(line["Function"], "analyzer");
    }

    #[tokio::test]
    async fn a_cancelling_job_starts_no_new_url() {
        let a = analyzer();
        let id = job(&a, &["https://ok.example", "https://gone.example"]).await;
        let first = a.handle(event(vec![record("m0", task(&id, 0, "https://ok.example"), 1)]), later()).await;
        assert!(first.batch_item_failures.is_empty());
        assert_eq!(a.store.request_cancel(&id, 1).await.unwrap(), shared::store::Cancel::Requested);
        let second = a.handle(event(vec![record("m1", task(&id, 1, "https://gone.example"), 1)]), later()).await;
        assert!(second.batch_item_failures.is_empty());
        let job = a.store.get_job(&id).await.unwrap().unwrap();
        assert_eq!((job.counters.succeeded, job.counters.cancelled, job.counters.failed), (1, 1, 0));
        assert_eq!(a.store.get_task(&id, 1).await.unwrap().unwrap().status, UrlStatus::Cancelled);
        assert_eq!(job.next_status(), Some(shared::domain::JobStatus::Cancelled));
    }

    #[tokio::test]
    async fn an_outage_leaves_every_message_for_redelivery() {
        let a = analyzer();
        let id = job(&a, &["https://ok.example", "https://gone.example"]).await;
        a.store.set_unavailable(true);
        let response = a
            .handle(
                event(vec![
                    record("m0", task(&id, 0, "https://ok.example"), 1),
                    record("m1", task(&id, 1, "https://gone.example"), 1),
                ]),
                later(),
            )
            .await;
        assert_eq!(failed_ids(&response), ["m0", "m1"]);
        a.store.set_unavailable(false);
        assert_eq!(a.store.get_job(&id).await.unwrap().unwrap().counters.queued, 2, "nothing was counted");
    }
}

//! The analyzer function: consumes URL tasks from the priority queues, analyses each URL and
//! records the outcome with the job's counters in one transaction. Failures are reported per
//! message (`ReportBatchItemFailures`), never for the whole batch.

use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use futures::future::join_all;
use shared::config::QueueUrls;
use shared::domain::TaskMessage;
use shared::engine::{Engine, FailureKind};
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
#[derive(Debug, PartialEq, Eq)]
enum Disposition {
    /// Done with (recorded, a duplicate, or unknown job): delete it.
    Done,
    /// Leave it on the queue for another delivery.
    Retry,
}

impl<S, Q, E> Analyzer<S, Q, E>
where
    S: JobStore,
    Q: TaskQueue,
    E: Engine,
{
    /// Handles one SQS batch; `deadline` is when Lambda ends the invocation.
    pub async fn handle(&self, event: SqsEvent, deadline: std::time::SystemTime) -> SqsBatchResponse {
        let results = join_all(event.records.iter().map(|record| self.handle_record(record, deadline))).await;
        let mut response = SqsBatchResponse::default();
        for (record, disposition) in event.records.iter().zip(results) {
            if disposition == Disposition::Retry {
                response.add_failure(record.message_id.clone().unwrap_or_default());
            }
        }
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
                return Disposition::Retry;
            }
        };
        match self.process(&message, record, deadline).await {
            Ok(disposition) => disposition,
            Err(err) => {
                tracing::error!(job_id = %message.job_id, seq = message.seq, error = %err, "task failed; will be redelivered");
                Disposition::Retry
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
                return Ok(Disposition::Done);
            }
            Err(shared::Error::NotFound) => {
                tracing::warn!(%job_id, seq, "task for a job that no longer exists dropped");
                return Ok(Disposition::Done);
            }
            Err(err) => return Err(err),
        }
        let remaining =
            deadline.duration_since(std::time::SystemTime::now()).unwrap_or_default().saturating_sub(WRITE_MARGIN);
        let timeout = Duration::from_secs(u64::from(message.timeout_seconds)).min(remaining);
        let attempt: u32 = record.attributes.get("ApproximateReceiveCount").and_then(|n| n.parse().ok()).unwrap_or(1);
        let outcome = match self.engine.analyze(&message.url, message.strategy, timeout).await {
            Ok(analysis) => Outcome::Succeeded(analysis),
            Err(err) if err.kind == FailureKind::Retryable && attempt <= message.max_retries => {
                let delay = url_retry_delay(attempt);
                tracing::info!(%job_id, seq, attempt, reason = %err.reason, delay_s = delay.as_secs(), "retryable failure");
                let queue_url = record.event_source_arn.as_deref().and_then(|arn| self.queues.for_arn(arn));
                match (queue_url, record.receipt_handle.as_deref()) {
                    (Some(url), Some(handle)) => self.queue.retry_later(url, handle, delay).await?,
                    _ => tracing::warn!(%job_id, seq, "unknown source queue: retry after the visibility timeout"),
                }
                return Ok(Disposition::Retry);
            }
            Err(err) => Outcome::Failed { reason: err.reason, analysis: err.analysis },
        };
        match self.store.record_outcome(job_id, seq, &outcome, now_millis()).await? {
            Recorded::Counted => {
                let succeeded = matches!(outcome, Outcome::Succeeded(_));
                tracing::info!(%job_id, seq, succeeded, attempt, "task recorded");
            }
            Recorded::Duplicate => tracing::info!(%job_id, seq, "result already recorded by another delivery"),
        }
        Ok(Disposition::Done)
    }
}

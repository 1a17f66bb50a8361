//! The callbacks function calls jobs' `callback_url`s back. The tracker queues one message per
//! job that ends, the exporter one per budget a monitor's run changed; each message here is
//! one signed POST, bounded by
//! `domain::callback::ATTEMPT_BUDGET`, never a redirect followed. What follows an attempt is
//! `domain::callback::after_attempt`'s call: a transient failure is tried again as a new
//! message delayed by the backoff, anything else is final. The job shows where its callback
//! stands after every attempt (`callback` in `progress`), a budget's standing where its own does
//! (`GET /monitors/{id}/budgets`).
//!
//! The messages of a batch are delivered at once, so an endpoint that never answers costs its
//! own attempt's budget and nothing of the others in the batch, and nothing of anyone's job
//! statuses (those are the tracker's, which never waits for this).

use aws::metrics::MetricLine;
use aws::notify::CallbackSender;
use aws::queue::Outbox;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use domain::Error;
use domain::callback::{CallbackRequest, DeliveryState, after_attempt};
use domain::time::{Millis, now_millis};
use store::{CallbackLog, KeyStore};
use tracing::Instrument;

pub struct Deliverer<S, Q, C> {
    pub store: S,
    pub queue: Q,
    pub sender: C,
    /// The callback queue: a retry is sent back to it.
    pub queue_url: String,
}

impl<S, Q, C> Deliverer<S, Q, C>
where
    S: KeyStore + CallbackLog,
    Q: Outbox,
    C: CallbackSender,
{
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        let outcomes = futures::future::join_all(event.records.iter().map(|record| self.handle_record(record))).await;
        let mut response = SqsBatchResponse::default();
        let mut line = MetricLine::new("speedbatch").dimension("Function", "callbacks");
        let (mut delivered, mut retrying, mut failed, mut errors) = (0, 0, 0, 0);
        for (record, outcome) in event.records.iter().zip(outcomes) {
            match outcome {
                Ok(DeliveryState::Delivered) => delivered += 1,
                Ok(DeliveryState::Retrying) => retrying += 1,
                Ok(DeliveryState::Failed | DeliveryState::Pending) => failed += 1,
                Err(err) => {
                    tracing::error!(error = %err, message_id = record.message_id.as_deref(), "callback message not handled; will be received again");
                    errors += 1;
                    response.add_failure(record.message_id.clone().unwrap_or_default());
                }
            }
        }
        line.count("CallbacksDelivered", delivered);
        line.count("CallbacksRetrying", retrying);
        line.count("CallbacksFailed", failed);
        line.count("CallbackErrors", errors);
        println!("{}", line.render(now_millis()));
        response
    }

    async fn handle_record(&self, record: &SqsMessage) -> Result<DeliveryState, Error> {
        let body = record.body.as_deref().unwrap_or_default();
        let request: CallbackRequest = serde_json::from_str(body)
            // Receiving it again cannot make it readable: it goes to the dead-letter queue to be seen.
            .map_err(|err| Error::Corrupt(format!("unreadable callback request: {err}")))?;
        let span = tracing::info_span!("callback", job_id = %request.batch_job_id, attempt = request.attempt);
        self.deliver(&request, now_millis()).instrument(span).await
    }

    /// Makes this message's attempt, records it on the job and queues the next if there is one.
    pub async fn deliver(&self, request: &CallbackRequest, now: Millis) -> Result<DeliveryState, Error> {
        let secret = self.store.callback_secret(&request.tenant).await?;
        let attempt = self.sender.attempt(request, &secret).await;
        let next = after_attempt(&request.event, request.attempt, &attempt, now);
        // Recorded before the retry is queued: if queueing fails, this message comes back and
        // makes the same attempt again, which the record already allows. A budget's change is
        // recorded on its standing: one run may change many.
        match &request.standing {
            None => self.store.record_callback(&request.batch_job_id, &next.delivery).await?,
            Some(standing) => {
                self.store
                    .record_budget_callback(&request.tenant, standing, &request.batch_job_id, &next.delivery)
                    .await?
            }
        }
        if let Some(wait) = next.retry_in {
            let retry = CallbackRequest { attempt: request.attempt.saturating_add(1), ..request.clone() };
            self.queue.post_later(&self.queue_url, &retry, wait).await?;
        }
        let state = next.delivery.state;
        match &next.delivery.last_error {
            None => tracing::info!(%state, "callback delivered"),
            Some(error) => tracing::warn!(%state, error, retry_in = ?next.retry_in, "callback not delivered"),
        }
        Ok(state)
    }
}

#[cfg(test)]
mod tests;

//! Fan-out of URL tasks to the priority queues. Handlers depend on the `TaskQueue` trait;
//! `SqsQueue` sends with SendMessageBatch, bounded in parallel, retrying failed entries.
//! `redrive` moves dead-lettered messages back to their queue (an operator's action).

mod memory;
mod redrive;

use std::future::Future;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use futures::{StreamExt, TryStreamExt};

use domain::Error;
use domain::TaskMessage;
use domain::retry::backoff;

pub use memory::MemoryQueue;
pub use redrive::{NotMoved, RedriveError, RedriveSummary};

/// SQS's limit for one SendMessageBatch.
const BATCH_MAX: usize = 10;
const SEND_PARALLELISM: usize = 8;
const FAILED_ENTRY_RETRIES: u32 = 8;
/// SQS's longest message delay.
pub const MAX_DELAY_SECONDS: u64 = 900;

/// How many messages a queue holds, by state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueueDepth {
    /// Waiting to be received.
    pub visible: u64,
    /// Received and being processed (or waiting out a retry backoff).
    pub in_flight: u64,
    /// Sent with a delay that has not passed yet.
    pub delayed: u64,
}

pub trait TaskQueue: Send + Sync {
    /// The queue's approximate message counts (SQS counts are eventually consistent).
    fn depth(&self, queue_url: &str) -> impl Future<Output = Result<QueueDepth, Error>> + Send;

    fn send(&self, queue_url: &str, messages: &[TaskMessage]) -> impl Future<Output = Result<(), Error>> + Send;

    /// Sends `message` again to become visible after `delay` (at most 15 minutes): for a URL
    /// that waits (for the quota) without it counting as a delivery of the original, so
    /// waiting never uses up the receives that lead to the dead-letter queue.
    fn defer(
        &self,
        queue_url: &str,
        message: &TaskMessage,
        delay: std::time::Duration,
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Makes a received message visible again after `delay`: the backoff before a retry.
    fn retry_later(
        &self,
        queue_url: &str,
        receipt_handle: &str,
        delay: std::time::Duration,
    ) -> impl Future<Output = Result<(), Error>> + Send;
}

/// The tenant a message is for, sent as its `MessageGroupId`. On a standard queue that makes
/// it an SQS fair queue: when one tenant's backlog takes a disproportionate share of the
/// consumers, SQS hands out the other tenants' messages first, so a noisy tenant lengthens
/// its own waits rather than everyone's. (The local emulator keeps the id and ignores it.)
pub trait MessageGroup {
    fn message_group(&self) -> Option<&str> {
        None
    }
}

impl MessageGroup for TaskMessage {
    fn message_group(&self) -> Option<&str> {
        self.tenant.as_ref().map(|tenant| tenant.0.as_str())
    }
}

impl MessageGroup for domain::callback::CallbackRequest {
    fn message_group(&self) -> Option<&str> {
        Some(&self.tenant.0)
    }
}

impl MessageGroup for domain::monitor::DueTick {
    fn message_group(&self) -> Option<&str> {
        Some(&self.tenant.0)
    }
}

/// An export is one per finished job, whoever's: nothing to share out.
impl MessageGroup for domain::report::ExportRequest {}

/// Work handed to another function through its queue (a finished job to export, a callback
/// to deliver): any serialisable message, sent as JSON.
pub trait Outbox: Send + Sync {
    fn post<M: serde::Serialize + MessageGroup + Sync>(
        &self,
        queue_url: &str,
        messages: &[M],
    ) -> impl Future<Output = Result<(), Error>> + Send;

    /// Sends `message` to become visible after `delay` (at most [`MAX_DELAY_SECONDS`]).
    fn post_later<M: serde::Serialize + MessageGroup + Sync>(
        &self,
        queue_url: &str,
        message: &M,
        delay: std::time::Duration,
    ) -> impl Future<Output = Result<(), Error>> + Send;
}

/// A wait in SQS's whole seconds, rounded up: a message that waits for a time (a quota's next
/// place, the end of a provider's minute) must not come back before it, only to wait again.
fn whole_seconds(delay: std::time::Duration) -> u64 {
    u64::try_from(delay.as_millis().div_ceil(1000)).unwrap_or(u64::MAX)
}

#[derive(Clone, Debug)]
pub struct SqsQueue {
    client: Client,
}

impl SqsQueue {
    pub fn new(client: Client) -> Self {
        SqsQueue { client }
    }

    /// Moves the messages of `source_url`'s dead-letter queue (named by its RedrivePolicy)
    /// back to it, until the dead-letter queue is empty or `max` messages were taken from it;
    /// `on_progress` hears the count moved so far. How, and what it guarantees: `redrive.rs`.
    pub async fn redrive(
        &self,
        source_url: &str,
        max: Option<u64>,
        on_progress: impl FnMut(u64),
    ) -> Result<RedriveSummary, RedriveError> {
        redrive::redrive(&self.client, source_url, max, on_progress).await
    }

    async fn send_batch(&self, queue_url: &str, mut entries: Vec<SendMessageBatchRequestEntry>) -> Result<(), Error> {
        for round in 0..=FAILED_ENTRY_RETRIES {
            let output = self
                .client
                .send_message_batch()
                .queue_url(queue_url)
                .set_entries(Some(entries.clone()))
                .send()
                .await
                .map_err(|e| Error::queue("SendMessageBatch", e))?;
            let failed = output.failed;
            if failed.is_empty() {
                return Ok(());
            }
            if let Some(permanent) = failed.iter().find(|f| f.sender_fault) {
                return Err(Error::Queue {
                    operation: "SendMessageBatch",
                    message: format!(
                        "entry {} refused: {}",
                        permanent.id,
                        permanent.message.as_deref().unwrap_or(&permanent.code)
                    ),
                });
            }
            entries.retain(|entry| failed.iter().any(|f| f.id == entry.id));
            tokio::time::sleep(backoff(round)).await;
        }
        Err(Error::Queue {
            operation: "SendMessageBatch",
            message: format!("{} entries still failing after retries", entries.len()),
        })
    }
}

impl Outbox for SqsQueue {
    async fn post<M: serde::Serialize + MessageGroup + Sync>(
        &self,
        queue_url: &str,
        messages: &[M],
    ) -> Result<(), Error> {
        let entries = messages
            .iter()
            .enumerate()
            .map(|(i, message)| {
                let body = serde_json::to_string(message).map_err(|e| Error::Corrupt(e.to_string()))?;
                // Ids only need to be unique within a batch, and one batch may carry the same
                // position of different jobs: number the entries instead.
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(body)
                    .set_message_group_id(message.message_group().map(str::to_owned))
                    .build()
                    .map_err(|e| Error::queue("SendMessageBatch", e))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let chunks: Vec<Vec<_>> = entries.chunks(BATCH_MAX).map(<[_]>::to_vec).collect();
        futures::stream::iter(chunks)
            .map(|chunk| self.send_batch(queue_url, chunk))
            .buffer_unordered(SEND_PARALLELISM)
            .try_collect::<()>()
            .await
    }

    async fn post_later<M: serde::Serialize + MessageGroup + Sync>(
        &self,
        queue_url: &str,
        message: &M,
        delay: std::time::Duration,
    ) -> Result<(), Error> {
        let body = serde_json::to_string(message).map_err(|e| Error::Corrupt(e.to_string()))?;
        self.client
            .send_message()
            .queue_url(queue_url)
            .message_body(body)
            .set_message_group_id(message.message_group().map(str::to_owned))
            .delay_seconds(whole_seconds(delay).min(MAX_DELAY_SECONDS) as i32)
            .send()
            .await
            .map_err(|e| Error::queue("SendMessage", e))?;
        Ok(())
    }
}

impl TaskQueue for SqsQueue {
    async fn depth(&self, queue_url: &str) -> Result<QueueDepth, Error> {
        use aws_sdk_sqs::types::QueueAttributeName as Name;
        let output = self
            .client
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(Name::ApproximateNumberOfMessages)
            .attribute_names(Name::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(Name::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .map_err(|e| Error::queue("GetQueueAttributes", e))?;
        let attributes = output.attributes.unwrap_or_default();
        let count = |name: Name| attributes.get(&name).and_then(|v| v.parse().ok()).unwrap_or(0);
        Ok(QueueDepth {
            visible: count(Name::ApproximateNumberOfMessages),
            in_flight: count(Name::ApproximateNumberOfMessagesNotVisible),
            delayed: count(Name::ApproximateNumberOfMessagesDelayed),
        })
    }

    async fn send(&self, queue_url: &str, messages: &[TaskMessage]) -> Result<(), Error> {
        self.post(queue_url, messages).await
    }

    async fn defer(&self, queue_url: &str, message: &TaskMessage, delay: std::time::Duration) -> Result<(), Error> {
        self.post_later(queue_url, message, delay).await
    }

    async fn retry_later(
        &self,
        queue_url: &str,
        receipt_handle: &str,
        delay: std::time::Duration,
    ) -> Result<(), Error> {
        // SQS caps a message's visibility timeout at 12 hours.
        let seconds = whole_seconds(delay).min(43_200) as i32;
        self.client
            .change_message_visibility()
            .queue_url(queue_url)
            .receipt_handle(receipt_handle)
            .visibility_timeout(seconds)
            .send()
            .await
            .map_err(|e| Error::queue("ChangeMessageVisibility", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn a_wait_is_never_cut_short_to_whole_seconds() {
        assert_eq!(super::whole_seconds(Duration::from_millis(59_001)), 60);
        assert_eq!(super::whole_seconds(Duration::from_secs(60)), 60);
        assert_eq!(super::whole_seconds(Duration::ZERO), 0);
    }
}

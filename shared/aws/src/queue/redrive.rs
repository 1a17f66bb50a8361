//! Redrive: sends the messages of a queue's dead-letter queue back to the queue, once whatever
//! sent them there is fixed. On AWS, SQS's own `StartMessageMoveTask` does the same; the local
//! emulator does not implement it, so this is the one path that works on both.
//!
//! Each round receives up to 10 messages from the dead-letter queue, sends them to the source
//! queue with one SendMessageBatch and deletes from the dead-letter queue exactly the ones that
//! were sent. Nothing is lost on the way: a message that could not be sent stays in the
//! dead-letter queue (visible again when its receive's visibility timeout ends). The worst
//! outcome of a failure half-way is a duplicate on the source queue (sent, but the delete
//! failed), which the analyzer tolerates: its claims are conditional.
//!
//! It is an operator's action on queues every tenant shares, so it runs with AWS credentials
//! (the CLI's `speedbatch redrive`), never behind a tenant's API key.

use std::collections::{BTreeMap, HashMap, HashSet};

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry, Message, MessageAttributeValue,
    MessageSystemAttributeName, MessageSystemAttributeNameForSends, MessageSystemAttributeValue, QueueAttributeName,
    SendMessageBatchRequestEntry,
};

use domain::error::error_chain;

/// SQS's most messages per ReceiveMessage and per batch.
const BATCH_MAX: u64 = 10;
/// How long a received message stays hidden in the dead-letter queue: far longer than one
/// round (a send and a delete) takes, so it is not received twice while being moved. One that
/// could not be sent comes back after it.
const VISIBILITY_SECONDS: i32 = 30;
/// A short long-poll rather than none: a short poll (0 s) asks only a sample of SQS's servers
/// and may answer empty while messages remain, which would end the redrive early.
const WAIT_SECONDS: i32 = 1;
/// The most bytes (bodies and attributes) one SendMessageBatch carries: 256 KiB, the batch
/// limit of queues before SQS raised it to 1 MiB. A batch over the limit fails as a whole, so
/// larger messages go in batches of their own (any message fits alone: it was in a queue).
const BATCH_BYTES: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum RedriveError {
    #[error("{queue} has no dead-letter queue (no RedrivePolicy)")]
    NoDeadLetterQueue { queue: String },
    #[error("{queue}: the RedrivePolicy cannot be read: {reason}")]
    BadRedrivePolicy { queue: String, reason: String },
    /// A whole call failed (after the SDK's own retries) and the redrive stopped. After a
    /// failed send, the messages sent before it were deleted from the dead-letter queue first;
    /// after a failed delete, the messages it was for are sent again by the next redrive.
    #[error("SQS {operation} on {queue}: {message}")]
    Sqs { operation: &'static str, queue: String, message: String },
}

/// What one redrive did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RedriveSummary {
    /// The queue the messages went back to.
    pub source: String,
    pub dead_letter: String,
    /// Messages sent to the source queue.
    pub moved: u64,
    /// Messages that could not be sent, with SQS's reason: they stay in the dead-letter queue.
    pub failed: Vec<NotMoved>,
    /// Messages another queue sharing the dead-letter queue sent there: left where they are,
    /// since moving them here would hand them to the wrong consumer.
    pub skipped: Vec<NotMoved>,
    /// Messages sent whose delete failed: they are on the source queue and still in the
    /// dead-letter queue, so a later redrive sends them once more (a harmless duplicate).
    pub not_deleted: Vec<NotMoved>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct NotMoved {
    pub message_id: String,
    pub reason: String,
}

/// Moves the messages of `source_url`'s dead-letter queue back to it until the dead-letter
/// queue answers empty, or `max` messages have been taken from it (moved or not).
/// `on_progress` hears the number moved so far after every round.
pub async fn redrive(
    client: &Client,
    source_url: &str,
    max: Option<u64>,
    mut on_progress: impl FnMut(u64),
) -> Result<RedriveSummary, RedriveError> {
    let (source_arn, dead_letter) = dead_letter_queue(client, source_url).await?;
    // A FIFO queue drops a message whose deduplication id it saw in the last 5 minutes, and the
    // original send may be that recent: a redriven message gets an id of its own (stable across
    // this redrive's retries), or it would be acknowledged, deleted here, and never delivered.
    let fifo = source_url.ends_with(".fifo");
    let mut run = Run { client, source_url, dead_letter: &dead_letter, source_arn, fifo, state: State::default() };
    loop {
        let room = max.map_or(BATCH_MAX, |max| max.saturating_sub(run.state.taken.len() as u64)).min(BATCH_MAX);
        if room == 0 {
            break;
        }
        let messages = run.receive(room as i32).await?;
        if messages.is_empty() {
            break;
        }
        // Only messages this run has already given up on, back after their visibility timeout:
        // trying them again would go round for ever.
        if messages.iter().all(|m| m.message_id.as_deref().is_some_and(|id| run.state.gave_up(id))) {
            break;
        }
        run.round(messages).await?;
        on_progress(run.state.moved);
    }
    run.release().await;
    let State { moved, failed, skipped, not_deleted, .. } = run.state;
    Ok(RedriveSummary {
        source: source_url.to_owned(),
        dead_letter,
        moved,
        failed: not_moved(failed),
        skipped: not_moved(skipped),
        not_deleted: not_moved(not_deleted),
    })
}

/// The source queue's ARN (when it has one) and its dead-letter queue's URL, from its
/// RedrivePolicy.
async fn dead_letter_queue(client: &Client, source_url: &str) -> Result<(Option<String>, String), RedriveError> {
    let sqs_error = |operation, err: &(dyn std::error::Error + 'static)| RedriveError::Sqs {
        operation,
        queue: source_url.to_owned(),
        message: error_chain(err),
    };
    let output = client
        .get_queue_attributes()
        .queue_url(source_url)
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| sqs_error("GetQueueAttributes", &e))?;
    let mut attributes = output.attributes.unwrap_or_default();
    let policy = attributes
        .remove(&QueueAttributeName::RedrivePolicy)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| RedriveError::NoDeadLetterQueue { queue: source_url.to_owned() })?;
    let (account, name) = dead_letter_target(&policy)
        .map_err(|reason| RedriveError::BadRedrivePolicy { queue: source_url.to_owned(), reason })?;
    let output = client
        .get_queue_url()
        .queue_name(name)
        .queue_owner_aws_account_id(account)
        .send()
        .await
        .map_err(|e| sqs_error("GetQueueUrl", &e))?;
    let url = output.queue_url.ok_or_else(|| RedriveError::Sqs {
        operation: "GetQueueUrl",
        queue: source_url.to_owned(),
        message: "the answer has no queue URL".into(),
    })?;
    Ok((attributes.remove(&QueueAttributeName::QueueArn), url))
}

/// The account and queue name of a RedrivePolicy's `deadLetterTargetArn`
/// (`arn:<partition>:sqs:<region>:<account>:<name>`). The account goes with the name because a
/// name alone is looked up in the caller's account, which need not own the queues.
fn dead_letter_target(policy: &str) -> Result<(String, String), String> {
    let policy: serde_json::Value = serde_json::from_str(policy).map_err(|e| format!("not JSON: {e}"))?;
    let arn = policy["deadLetterTargetArn"].as_str().ok_or("no deadLetterTargetArn")?;
    match arn.split(':').collect::<Vec<_>>()[..] {
        ["arn", _, "sqs", _, account, name] if !account.is_empty() && !name.is_empty() => {
            Ok((account.to_owned(), name.to_owned()))
        }
        _ => Err(format!("deadLetterTargetArn {arn:?} is not an SQS queue's ARN")),
    }
}

/// What one redrive has seen so far, by message id.
#[derive(Default)]
struct State {
    moved: u64,
    /// Every message taken from the dead-letter queue, once each, for `max`.
    taken: HashSet<String>,
    /// The latest receipt handle of each message taken.
    handles: HashMap<String, String>,
    failed: BTreeMap<String, String>,
    skipped: BTreeMap<String, String>,
    not_deleted: BTreeMap<String, String>,
}

impl State {
    fn gave_up(&self, id: &str) -> bool {
        self.failed.contains_key(id) || self.skipped.contains_key(id)
    }
}

fn not_moved(reasons: BTreeMap<String, String>) -> Vec<NotMoved> {
    reasons.into_iter().map(|(message_id, reason)| NotMoved { message_id, reason }).collect()
}

struct Run<'a> {
    client: &'a Client,
    source_url: &'a str,
    dead_letter: &'a str,
    source_arn: Option<String>,
    fifo: bool,
    state: State,
}

/// A received message on its way out of the dead-letter queue.
struct Taken {
    id: String,
    receipt_handle: String,
    /// Sent in this round (counted as moved once its delete is settled), or sent in an earlier
    /// round whose delete failed (only deleted now).
    sent_now: bool,
}

impl Run<'_> {
    fn sqs_error(&self, operation: &'static str, queue: &str, err: &(dyn std::error::Error + 'static)) -> RedriveError {
        RedriveError::Sqs { operation, queue: queue.to_owned(), message: error_chain(err) }
    }

    async fn receive(&self, count: i32) -> Result<Vec<Message>, RedriveError> {
        let output = self
            .client
            .receive_message()
            .queue_url(self.dead_letter)
            .max_number_of_messages(count)
            .visibility_timeout(VISIBILITY_SECONDS)
            .wait_time_seconds(WAIT_SECONDS)
            // Everything the message carries, so that what goes back is what came in.
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(|e| self.sqs_error("ReceiveMessage", self.dead_letter, &e))?;
        Ok(output.messages.unwrap_or_default())
    }

    /// Makes the messages this run gave up on visible in the dead-letter queue again now rather
    /// than when their receive's timeout ends, so that the dead-letter count shows them at once
    /// and a redrive of the queue that dead-lettered a skipped one finds it. Best effort: a
    /// message this misses comes back by itself within `VISIBILITY_SECONDS`.
    async fn release(&self) {
        let handles: Vec<&String> = (self.state.failed.keys().chain(self.state.skipped.keys()))
            .filter_map(|id| self.state.handles.get(id))
            .collect();
        for chunk in handles.chunks(BATCH_MAX as usize) {
            let entries = chunk
                .iter()
                .enumerate()
                .filter_map(|(i, handle)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(*handle)
                        .visibility_timeout(0)
                        .build()
                        .ok()
                })
                .collect();
            let _ = self
                .client
                .change_message_visibility_batch()
                .queue_url(self.dead_letter)
                .set_entries(Some(entries))
                .send()
                .await;
        }
    }

    /// Sends what can be sent, then deletes from the dead-letter queue what was sent.
    async fn round(&mut self, messages: Vec<Message>) -> Result<(), RedriveError> {
        let mut to_send = Vec::new();
        let mut to_delete = Vec::new();
        for message in messages {
            // SQS gives every received message both; one without them cannot be deleted, so
            // it is left alone (visible again after the timeout).
            let (Some(id), Some(receipt_handle)) = (message.message_id.clone(), message.receipt_handle.clone()) else {
                continue;
            };
            self.state.taken.insert(id.clone());
            self.state.handles.insert(id.clone(), receipt_handle.clone());
            if let Some(origin) = self.dead_lettered_elsewhere(&message) {
                self.state.skipped.insert(id, format!("dead-lettered by {origin}"));
            } else if self.state.not_deleted.contains_key(&id) {
                to_delete.push(Taken { id, receipt_handle, sent_now: false });
            } else {
                to_send.push((Taken { id, receipt_handle, sent_now: true }, message));
            }
        }
        // A whole batch refused ends the redrive, but only after the messages already sent
        // are deleted from the dead-letter queue, so that a second run does not send them again.
        let send_error = match self.send(to_send).await {
            Ok(sent) => {
                to_delete.extend(sent);
                None
            }
            Err((sent, err)) => {
                to_delete.extend(sent);
                Some(err)
            }
        };
        self.delete(to_delete).await?;
        send_error.map_or(Ok(()), Err)
    }

    /// The queue that dead-lettered `message`, when it is not this run's source: a dead-letter
    /// queue may serve several queues. Unknown when either ARN is missing (a message sent to
    /// the dead-letter queue by hand has none): then it is this queue's.
    fn dead_lettered_elsewhere(&self, message: &Message) -> Option<String> {
        let origin = message.attributes.as_ref()?.get(&MessageSystemAttributeName::DeadLetterQueueSourceArn)?;
        let source = self.source_arn.as_deref()?;
        (origin != source).then(|| origin.clone())
    }

    /// Sends `messages` to the source queue; returns the ones SQS accepted. Refused entries
    /// are recorded as failed. A whole call that fails returns the ones sent before it too.
    async fn send(&mut self, messages: Vec<(Taken, Message)>) -> Result<Vec<Taken>, (Vec<Taken>, RedriveError)> {
        let mut entries = Vec::new();
        let mut taken = Vec::new();
        for (index, (t, message)) in messages.into_iter().enumerate() {
            match self.entry(index, &t.id, message) {
                Ok(entry) => {
                    entries.push(entry);
                    taken.push(Some(t));
                }
                Err(reason) => {
                    self.state.failed.insert(t.id, reason);
                    taken.push(None);
                }
            }
        }
        let mut sent = Vec::new();
        for batch in by_size(entries, entry_bytes, BATCH_BYTES) {
            let output =
                match self.client.send_message_batch().queue_url(self.source_url).set_entries(Some(batch)).send().await
                {
                    Ok(output) => output,
                    Err(e) => return Err((sent, self.sqs_error("SendMessageBatch", self.source_url, &e))),
                };
            // Entry ids are positions in `taken`.
            let mut take = |id: &str| id.parse::<usize>().ok().and_then(|i| taken.get_mut(i)).and_then(Option::take);
            for ok in &output.successful {
                if let Some(t) = take(&ok.id) {
                    self.state.failed.remove(&t.id);
                    sent.push(t);
                }
            }
            for refused in &output.failed {
                if let Some(t) = take(&refused.id) {
                    let reason = match &refused.message {
                        Some(message) => format!("{}: {message}", refused.code),
                        None => refused.code.clone(),
                    };
                    self.state.failed.insert(t.id, reason);
                }
            }
        }
        Ok(sent)
    }

    /// The SendMessageBatch entry for `message`: its body, its message attributes, and the
    /// system attributes a send may carry (the X-Ray trace header; a FIFO queue's group).
    fn entry(&self, index: usize, id: &str, message: Message) -> Result<SendMessageBatchRequestEntry, String> {
        let body = message.body.ok_or("the message has no body")?;
        let system = message.attributes.unwrap_or_default();
        let mut entry = SendMessageBatchRequestEntry::builder()
            .id(index.to_string())
            .message_body(body)
            .set_message_attributes(message.message_attributes.filter(|a| !a.is_empty()))
            .set_message_group_id(system.get(&MessageSystemAttributeName::MessageGroupId).cloned());
        if self.fifo {
            entry = entry.message_deduplication_id(format!("redrive-{id}"));
        }
        if let Some(trace) = system.get(&MessageSystemAttributeName::AwsTraceHeader) {
            let value = MessageSystemAttributeValue::builder()
                .data_type("String")
                .string_value(trace)
                .build()
                .map_err(|e| e.to_string())?;
            entry = entry.message_system_attributes(MessageSystemAttributeNameForSends::AwsTraceHeader, value);
        }
        entry.build().map_err(|e| e.to_string())
    }

    /// Deletes `taken` from the dead-letter queue, and counts the ones sent in this round as
    /// moved whether or not their delete succeeds (they are on the source queue either way).
    async fn delete(&mut self, taken: Vec<Taken>) -> Result<(), RedriveError> {
        for chunk in taken.chunks(BATCH_MAX as usize) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(&t.receipt_handle)
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| self.sqs_error("DeleteMessageBatch", self.dead_letter, &e))?;
            let output =
                self.client.delete_message_batch().queue_url(self.dead_letter).set_entries(Some(entries)).send().await;
            let refused = output.map_err(|e| self.sqs_error("DeleteMessageBatch", self.dead_letter, &e))?.failed;
            for (i, t) in chunk.iter().enumerate() {
                let failure = refused.iter().find(|f| f.id == i.to_string()).map(|f| match &f.message {
                    Some(message) => format!("delete refused: {}: {message}", f.code),
                    None => format!("delete refused: {}", f.code),
                });
                self.settle(t, failure);
            }
        }
        Ok(())
    }

    fn settle(&mut self, taken: &Taken, delete_failure: Option<String>) {
        if taken.sent_now {
            self.state.moved += 1;
        }
        match delete_failure {
            Some(reason) => self.state.not_deleted.insert(taken.id.clone(), reason),
            None => self.state.not_deleted.remove(&taken.id),
        };
    }
}

/// What a message counts towards a batch's size: its body and its attributes' names, types and
/// values, as SQS counts them.
fn entry_bytes(entry: &SendMessageBatchRequestEntry) -> usize {
    let attributes = entry.message_attributes.iter().flatten().map(|(name, value)| name.len() + value_bytes(value));
    entry.message_body.len() + attributes.sum::<usize>()
}

fn value_bytes(value: &MessageAttributeValue) -> usize {
    value.data_type.len()
        + value.string_value.as_ref().map_or(0, String::len)
        + value.binary_value.as_ref().map_or(0, |b| b.as_ref().len())
        + value.string_list_values.iter().flatten().map(String::len).sum::<usize>()
        + value.binary_list_values.iter().flatten().map(|b| b.as_ref().len()).sum::<usize>()
}

/// Splits `items` into runs, in order, each at most `limit` in total size unless a single item
/// is larger (it then goes alone).
fn by_size<T>(items: Vec<T>, size: impl Fn(&T) -> usize, limit: usize) -> Vec<Vec<T>> {
    let mut batches: Vec<Vec<T>> = Vec::new();
    let mut current = Vec::new();
    let mut bytes = 0;
    for item in items {
        let item_bytes = size(&item);
        if !current.is_empty() && bytes + item_bytes > limit {
            batches.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += item_bytes;
        current.push(item);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dead_letter_queue_comes_from_the_redrive_policy() {
        let policy = r#"{"deadLetterTargetArn":"arn:aws:sqs:eu-west-1:123456789012:jobs-dlq","maxReceiveCount":"10"}"#;
        assert_eq!(dead_letter_target(policy), Ok(("123456789012".into(), "jobs-dlq".into())));
        let china = r#"{"deadLetterTargetArn":"arn:aws-cn:sqs:cn-north-1:123456789012:q.fifo","maxReceiveCount":3}"#;
        assert_eq!(dead_letter_target(china), Ok(("123456789012".into(), "q.fifo".into())));
        assert!(dead_letter_target("{}").unwrap_err().contains("no deadLetterTargetArn"));
        assert!(dead_letter_target("nope").unwrap_err().starts_with("not JSON"));
        let sns = r#"{"deadLetterTargetArn":"arn:aws:sns:us-east-1:123456789012:topic"}"#;
        assert!(dead_letter_target(sns).unwrap_err().contains("is not an SQS queue's ARN"));
    }

    #[test]
    fn batches_stay_under_the_size_limit_in_order() {
        let sizes = vec![100, 100, 100, 250, 10, 10, 400];
        let batches = by_size(sizes, |n| *n, 300);
        assert_eq!(batches, vec![vec![100, 100, 100], vec![250, 10, 10], vec![400]]);
        assert!(by_size(Vec::<usize>::new(), |n| *n, 300).is_empty());
    }

    #[test]
    fn a_messages_size_counts_its_attributes() {
        let entry = SendMessageBatchRequestEntry::builder()
            .id("0")
            .message_body("12345")
            .message_attributes(
                "job",
                MessageAttributeValue::builder().data_type("String").string_value("abc").build().unwrap(),
            )
            .build()
            .unwrap();
        assert_eq!(entry_bytes(&entry), 5 + "job".len() + "String".len() + 3);
    }
}

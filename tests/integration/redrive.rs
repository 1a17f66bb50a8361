//! Redrive against ministack: dead-lettered messages go back to their queue exactly once, with
//! their attributes; what cannot be sent, or belongs to another queue, stays where it is.

use std::collections::HashMap;
use std::time::Duration;

use aws::RequestCounter;
use aws::queue::{RedriveError, TaskQueue};
use aws_sdk_sqs::primitives::Blob;
use aws_sdk_sqs::types::{MessageAttributeValue, QueueAttributeName, SendMessageBatchRequestEntry};
use serde_json::json;
use store::prelude::*;
use testkit::emulator::{TestEnv, unique_name};
use testkit::site::Site;

use crate::harness::Harness;

/// Points `queue`'s RedrivePolicy at `dead_letter`.
async fn set_dead_letter(env: &TestEnv, queue: &str, dead_letter: &str, max_receives: u32) {
    env.sqs
        .set_queue_attributes()
        .queue_url(queue)
        .attributes(
            QueueAttributeName::RedrivePolicy,
            json!({"deadLetterTargetArn": env.queue_arn(dead_letter), "maxReceiveCount": max_receives}).to_string(),
        )
        .send()
        .await
        .expect("set the redrive policy");
}

fn string(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder().data_type("String").string_value(value).build().unwrap()
}

/// Attributes as comparable tuples (a received value carries empty lists a sent one lacks).
fn comparable(attributes: &HashMap<String, MessageAttributeValue>) -> Vec<(String, String, Option<String>, Vec<u8>)> {
    let mut out: Vec<_> = attributes
        .iter()
        .map(|(name, v)| {
            let binary = v.binary_value.as_ref().map(|b| b.as_ref().to_vec()).unwrap_or_default();
            (name.clone(), v.data_type.clone(), v.string_value.clone(), binary)
        })
        .collect();
    out.sort();
    out
}

/// Sends `bodies` straight to a queue, in batches, each with a `n` attribute (its position).
async fn send_all(env: &TestEnv, queue: &str, bodies: &[String]) {
    for (b, chunk) in bodies.chunks(10).enumerate() {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, body)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(body)
                    .message_attributes("n", string(&(b * 10 + i).to_string()))
                    .build()
                    .unwrap()
            })
            .collect();
        let out = env.sqs.send_message_batch().queue_url(queue).set_entries(Some(entries)).send().await.unwrap();
        assert!(out.failed.is_empty(), "{:?}", out.failed);
    }
}

/// Receives (and deletes) everything on `queue`: bodies with their message attributes.
async fn take_all(env: &TestEnv, queue: &str) -> Vec<(String, HashMap<String, MessageAttributeValue>)> {
    let mut all = Vec::new();
    loop {
        let out = env
            .sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .visibility_timeout(60)
            .wait_time_seconds(1)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap();
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            return all;
        }
        for m in messages {
            env.sqs.delete_message().queue_url(queue).receipt_handle(m.receipt_handle.unwrap()).send().await.unwrap();
            all.push((m.body.unwrap(), m.message_attributes.unwrap_or_default()));
        }
    }
}

/// Receives from `queue` with no visibility timeout until SQS has moved `expected` messages
/// (received `maxReceiveCount` times) to `dead_letter`: SQS moves them on a later receive.
async fn dead_letter_by_receiving(env: &TestEnv, queue: &str, dead_letter: &str, expected: u64) {
    let held =
        testkit::emulator::dead_letter_by_receiving(&env.sqs, queue, dead_letter, expected, Duration::from_secs(10))
            .await
            .expect("the messages reach the dead-letter queue");
    assert_eq!(held, expected);
}

async fn total(env: &TestEnv, queue: &str) -> u64 {
    let depth = env.queue().depth(queue).await.unwrap();
    depth.visible + depth.in_flight + depth.delayed
}

#[tokio::test]
async fn every_dead_letter_goes_back_once_with_its_attributes() {
    let env = TestEnv::new().await;
    let (queue, dlq) = (&env.queues.low, &env.dead_letters.low);
    set_dead_letter(&env, queue, dlq, 1).await;
    // Three dead-lettered by SQS itself (received once, with maxReceiveCount 1), carrying
    // attributes of every type; 22 more sent to the dead-letter queue directly.
    let mut expected = HashMap::new();
    for n in 0..3 {
        let body = format!("{{\"dead\": {n}}}");
        let attributes = HashMap::from([
            ("tenant".to_owned(), string("acme")),
            (
                "attempt".to_owned(),
                MessageAttributeValue::builder().data_type("Number").string_value("7").build().unwrap(),
            ),
            (
                "raw".to_owned(),
                MessageAttributeValue::builder()
                    .data_type("Binary")
                    .binary_value(Blob::new(vec![0, 1, n]))
                    .build()
                    .unwrap(),
            ),
        ]);
        env.sqs
            .send_message()
            .queue_url(queue)
            .message_body(&body)
            .set_message_attributes(Some(attributes.clone()))
            .send()
            .await
            .unwrap();
        expected.insert(body, comparable(&attributes));
    }
    dead_letter_by_receiving(&env, queue, dlq, 3).await;
    let direct: Vec<String> = (0..22).map(|n| format!("{{\"direct\": {n}}}")).collect();
    send_all(&env, dlq, &direct).await;
    for (n, body) in direct.iter().enumerate() {
        expected.insert(body.clone(), comparable(&HashMap::from([("n".to_owned(), string(&n.to_string()))])));
    }
    assert_eq!(total(&env, dlq).await, 25);

    let counter = RequestCounter::default();
    let mut progress = Vec::new();
    let summary = env.counted_queue(&counter).redrive(queue, None, |moved| progress.push(moved)).await.unwrap();
    assert_eq!(summary.moved, 25);
    assert_eq!(&summary.dead_letter, dlq);
    assert!(summary.failed.is_empty() && summary.skipped.is_empty() && summary.not_deleted.is_empty(), "{summary:?}");
    assert_eq!(progress.last(), Some(&25));
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "progress only grows: {progress:?}");
    // One send and one delete per batch received, one receive more to see it empty.
    let requests = counter.snapshot();
    let count = |operation: &str| requests.get(operation).copied().unwrap_or(0);
    assert_eq!((count("SQS.GetQueueAttributes"), count("SQS.GetQueueUrl")), (1, 1), "{requests:?}");
    assert!(count("SQS.ReceiveMessage") >= 4, "{requests:?}");
    assert_eq!(count("SQS.SendMessageBatch"), count("SQS.ReceiveMessage") - 1, "{requests:?}");
    assert_eq!(count("SQS.DeleteMessageBatch"), count("SQS.SendMessageBatch"), "{requests:?}");

    assert_eq!(total(&env, dlq).await, 0, "the dead-letter queue is empty");
    let back = take_all(&env, queue).await;
    assert_eq!(back.len(), 25, "each message exactly once");
    let back: HashMap<String, _> = back.into_iter().map(|(body, attributes)| (body, comparable(&attributes))).collect();
    assert_eq!(back, expected, "bodies and attributes as they were");
    env.cleanup().await;
}

#[tokio::test]
async fn max_bounds_a_redrive_and_the_rest_waits_for_the_next() {
    let env = TestEnv::new().await;
    let (queue, dlq) = (&env.queues.normal, &env.dead_letters.normal);
    set_dead_letter(&env, queue, dlq, 10).await;
    send_all(&env, dlq, &(0..5).map(|n| format!("m{n}")).collect::<Vec<_>>()).await;

    let summary = env.queue().redrive(queue, Some(3), |_| {}).await.unwrap();
    assert_eq!(summary.moved, 3);
    assert_eq!(env.queue().depth(dlq).await.unwrap().visible, 2, "the rest untouched and visible");
    assert_eq!(env.queue().depth(queue).await.unwrap().visible, 3);

    let summary = env.queue().redrive(queue, None, |_| {}).await.unwrap();
    assert_eq!(summary.moved, 2);
    assert_eq!(total(&env, dlq).await, 0);
    let mut bodies: Vec<String> = take_all(&env, queue).await.into_iter().map(|(body, _)| body).collect();
    bodies.sort();
    assert_eq!(bodies, ["m0", "m1", "m2", "m3", "m4"]);
    env.cleanup().await;
}

#[tokio::test]
async fn what_cannot_be_sent_stays_in_the_dead_letter_queue() {
    let env = TestEnv::new().await;
    // A FIFO queue refuses a message without a group: the two sent to its (standard)
    // dead-letter queue by hand have none. The emulator allows the odd pairing; AWS would not.
    let fifo = env
        .sqs
        .create_queue()
        .queue_name(format!("{}.fifo", unique_name("it-redrive")))
        .attributes(QueueAttributeName::FifoQueue, "true")
        .attributes(QueueAttributeName::ContentBasedDeduplication, "true")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let dlq = &env.dead_letters.high;
    set_dead_letter(&env, &fifo, dlq, 3).await;
    send_all(&env, dlq, &["a".to_owned(), "b".to_owned()]).await;

    let summary = env.queue().redrive(&fifo, None, |_| {}).await.unwrap();
    assert_eq!(summary.moved, 0);
    assert_eq!(summary.failed.len(), 2, "{summary:?}");
    assert!(summary.failed.iter().all(|f| f.reason.contains("MessageGroupId")), "SQS's reason is kept: {summary:?}");
    assert_eq!(env.queue().depth(dlq).await.unwrap().visible, 2, "still there, and visible again at once");
    assert_eq!(total(&env, &fifo).await, 0);
    let _ = env.sqs.delete_queue().queue_url(&fifo).send().await;

    let err = env.queue().redrive(&env.queues.low, None, |_| {}).await.unwrap_err();
    assert!(matches!(err, RedriveError::NoDeadLetterQueue { .. }), "{err}");
    env.cleanup().await;
}

#[tokio::test]
async fn messages_another_queue_dead_lettered_are_left_for_its_own_redrive() {
    let env = TestEnv::new().await;
    let shared_dlq = &env.dead_letters.low;
    let (a, b) = (&env.queues.low, &env.queues.normal);
    set_dead_letter(&env, a, shared_dlq, 1).await;
    set_dead_letter(&env, b, shared_dlq, 1).await;
    env.sqs.send_message().queue_url(a).message_body("from a").send().await.unwrap();
    dead_letter_by_receiving(&env, a, shared_dlq, 1).await;
    env.sqs.send_message().queue_url(b).message_body("from b").send().await.unwrap();
    dead_letter_by_receiving(&env, b, shared_dlq, 2).await;

    let summary = env.queue().redrive(b, None, |_| {}).await.unwrap();
    assert_eq!(summary.moved, 1);
    assert_eq!(summary.skipped.len(), 1, "{summary:?}");
    assert!(summary.skipped[0].reason.contains(&env.queue_arn(a)), "{summary:?}");
    assert_eq!(take_all(&env, b).await.into_iter().map(|(body, _)| body).collect::<Vec<_>>(), ["from b"]);

    let summary = env.queue().redrive(a, None, |_| {}).await.unwrap();
    assert_eq!((summary.moved, summary.skipped.len()), (1, 0), "{summary:?}");
    assert_eq!(take_all(&env, a).await.into_iter().map(|(body, _)| body).collect::<Vec<_>>(), ["from a"]);
    assert_eq!(total(&env, shared_dlq).await, 0);
    env.cleanup().await;
}

/// The whole path: a task message and a poison message die, the job's counters stay as they
/// were, `GET /queue/status` shows them as dead letters; after a redrive the task is analysed
/// and counted, and the poison fails again without counting anything.
#[tokio::test]
async fn dead_letters_show_in_queue_status_and_are_processed_after_a_redrive() {
    let h = Harness::new().await;
    let site = Site::start().await;
    let key = h.key_for("acme").await;
    let (queue, dlq) = (&h.env.queues.low, &h.env.dead_letters.low);
    set_dead_letter(&h.env, queue, dlq, 1).await;
    let id = h.start(&key, json!({"urls": [site.url("/page/1")], "priority": "low"})).await;
    h.env.sqs.send_message().queue_url(queue).message_body("{\"job_id\": 42}").send().await.unwrap();
    // Both delivered once and never finished (an analyzer outage), so SQS dead-letters them.
    dead_letter_by_receiving(&h.env, queue, dlq, 2).await;

    let status = h.request("GET", &domain::paths::endpoint("/queue/status"), Some(&key), None).await;
    let low = &status.body["queues"][2];
    assert_eq!(
        (low["priority"].as_str(), low["visible"].as_u64(), low["dead_letter"].as_u64()),
        (Some("low"), Some(0), Some(2))
    );
    let job = h.env.store().get_job(&id).await.unwrap().unwrap();
    assert_eq!((job.counters.queued, job.counters.succeeded, job.counters.failed), (1, 0, 0), "untouched");

    let summary = h.env.queue().redrive(queue, None, |_| {}).await.unwrap();
    assert_eq!(summary.moved, 2);
    let status = h.request("GET", &domain::paths::endpoint("/queue/status"), Some(&key), None).await;
    let low = &status.body["queues"][2];
    assert_eq!((low["visible"].as_u64(), low["dead_letter"].as_u64()), (Some(2), Some(0)));

    let event = h.receive(queue, 10).await;
    assert_eq!(event.records.len(), 2);
    let response = h.analyze(queue, event).await;
    assert_eq!(response.batch_item_failures.len(), 1, "the poison fails again");
    let job = h.env.store().get_job(&id).await.unwrap().unwrap();
    assert_eq!((job.counters.queued, job.counters.succeeded, job.counters.failed), (0, 1, 0));
    assert_eq!(site.hits(), 1);
    h.env.cleanup().await;
}

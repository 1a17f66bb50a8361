//! `speedbatch redrive` as an operator runs it: the binary against queues of its own on the
//! local emulator (ministack; no deployed stack needed), judged by exit code and output.

// A test fails by panicking with what it expected.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Output;

use aws_sdk_sqs::types::{QueueAttributeName, SendMessageBatchRequestEntry};
use serde_json::{Value, json};
use testkit::emulator::{endpoint, sdk_config, unique_name};

/// Everything that could point the binary elsewhere than the test says.
const AMBIENT: [&str; 12] = [
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_SQS",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "HIGH_QUEUE_URL",
    "NORMAL_QUEUE_URL",
    "LOW_QUEUE_URL",
    "SPEEDBATCH_API_URL",
];

/// Runs the CLI in `dir` with only the given variables of the ones it reads.
async fn speedbatch(dir: &Path, args: &[&str], env: &[(&str, String)]) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_speedbatch"));
    command.args(args).current_dir(dir);
    for name in AMBIENT {
        command.env_remove(name);
    }
    command.envs(env.iter().map(|(k, v)| (k, v)));
    tokio::task::spawn_blocking(move || command.output().expect("the CLI runs")).await.expect("the CLI's thread")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique_name(&format!("speedbatch-cli-{name}")));
    std::fs::create_dir_all(dir.join("nested")).unwrap();
    dir
}

struct Queues {
    sqs: aws_sdk_sqs::Client,
    urls: Vec<String>,
}

impl Queues {
    async fn new() -> Queues {
        Queues { sqs: aws_sdk_sqs::Client::new(&sdk_config().await), urls: Vec::new() }
    }

    async fn create(&mut self, name: &str, attributes: &[(QueueAttributeName, &str)]) -> String {
        let mut request = self.sqs.create_queue().queue_name(name);
        for (attribute, value) in attributes {
            request = request.attributes(attribute.clone(), *value);
        }
        let url = request.send().await.expect("create a queue").queue_url.expect("its URL");
        self.urls.push(url.clone());
        url
    }

    /// A source queue whose dead-letter queue holds `count` messages; returns both URLs.
    async fn with_dead_letters(&mut self, prefix: &str, count: usize) -> (String, String) {
        let dlq = self.create(&unique_name(&format!("{prefix}-dlq")), &[]).await;
        let arn = format!("arn:aws:sqs:us-east-1:000000000000:{}", dlq.rsplit('/').next().unwrap());
        let policy = json!({"deadLetterTargetArn": arn, "maxReceiveCount": 10}).to_string();
        let source = self.create(&unique_name(prefix), &[(QueueAttributeName::RedrivePolicy, &policy)]).await;
        self.fill(&dlq, count).await;
        (source, dlq)
    }

    async fn fill(&self, queue: &str, count: usize) {
        let bodies: Vec<String> = (0..count).map(|n| format!("message {n}")).collect();
        for chunk in bodies.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, body)| SendMessageBatchRequestEntry::builder().id(i.to_string()).message_body(body).build())
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            self.sqs.send_message_batch().queue_url(queue).set_entries(Some(entries)).send().await.unwrap();
        }
    }

    /// Messages in the queue, visible or in flight.
    async fn count(&self, queue: &str) -> u64 {
        use aws::queue::TaskQueue;
        let depth = aws::queue::SqsQueue::new(self.sqs.clone()).depth(queue).await.unwrap();
        depth.visible + depth.in_flight
    }

    async fn cleanup(self) {
        for url in &self.urls {
            let _ = self.sqs.delete_queue().queue_url(url).send().await;
        }
    }
}

#[tokio::test]
async fn the_stack_files_three_queues_go_through_its_local_emulator() {
    let mut queues = Queues::new().await;
    let (high, high_dlq) = queues.with_dead_letters("cli-high", 12).await;
    let (normal, normal_dlq) = queues.with_dead_letters("cli-normal", 0).await;
    let (low, low_dlq) = queues.with_dead_letters("cli-low", 3).await;
    let dir = temp_dir("redrive");
    std::fs::create_dir_all(dir.join(".local")).unwrap();
    // As `make up` writes it; no AWS credentials anywhere: the emulator takes dummy ones.
    std::fs::write(
        dir.join(".local/stack.env"),
        format!(
            "API_URL=http://127.0.0.1:9/unused\nHIGH_QUEUE_URL={high}\nNORMAL_QUEUE_URL={normal}\nLOW_QUEUE_URL={low}\n\
             AWS_ENDPOINT_URL={}\nAWS_REGION=us-east-1\n",
            endpoint()
        ),
    )
    .unwrap();
    let out = speedbatch(&dir.join("nested"), &["redrive"], &[]).await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert_eq!(stderr, "high: 12 moved\nnormal: 0 moved\nlow: 3 moved\n", "one line per queue");
    assert!(stdout.starts_with("queue   moved  not moved  skipped  dead-letter queue\nhigh    12     0"), "{stdout}");
    assert!(stdout.ends_with("15 messages moved back\n"), "{stdout}");
    assert_eq!((queues.count(&high).await, queues.count(&normal).await, queues.count(&low).await), (12, 0, 3));
    for dlq in [&high_dlq, &normal_dlq, &low_dlq] {
        assert_eq!(queues.count(dlq).await, 0);
    }
    std::fs::remove_dir_all(&dir).unwrap();
    queues.cleanup().await;
}

#[tokio::test]
async fn named_queues_use_the_standard_chain_and_max_and_json_work() {
    let mut queues = Queues::new().await;
    let (source, dlq) = queues.with_dead_letters("cli-named", 5).await;
    let dir = temp_dir("redrive-named");
    let aws = [
        ("AWS_ENDPOINT_URL", endpoint()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "test".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
    ];
    let out = speedbatch(&dir, &["redrive", "--queue", &source, "--max", "2", "--json"], &aws).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let answer: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(answer["moved"], 2);
    let queue = &answer["queues"][0];
    assert_eq!(queue["queue"], source.rsplit('/').next().unwrap(), "named by the queue's name");
    assert_eq!((queue["summary"]["moved"].as_u64(), queue["summary"]["dead_letter"].as_str()), (Some(2), Some(&*dlq)));
    assert_eq!((queues.count(&source).await, queues.count(&dlq).await), (2, 3));

    // A FIFO queue refuses messages without a group (its dead-letter queue here is a standard
    // one, which only the emulator allows): they stay, the reason is told, and the exit is 1.
    let dead_end = queues.create(&unique_name("cli-dead-end"), &[]).await;
    let arn = format!("arn:aws:sqs:us-east-1:000000000000:{}", dead_end.rsplit('/').next().unwrap());
    let policy = json!({"deadLetterTargetArn": arn, "maxReceiveCount": 10}).to_string();
    let fifo = queues
        .create(
            &format!("{}.fifo", unique_name("cli-fifo")),
            &[(QueueAttributeName::FifoQueue, "true"), (QueueAttributeName::RedrivePolicy, &policy)],
        )
        .await;
    queues.fill(&dead_end, 1).await;
    let out = speedbatch(&dir, &["redrive", "--queue", &fifo, "--queue", &source], &aws).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(".fifo: 0 moved, 1 not moved\n  "), "{stderr}");
    assert!(stderr.contains("MessageGroupId"), "SQS's reason: {stderr}");
    assert!(stderr.contains(": 3 moved\n"), "the next queue still goes: {stderr}");
    assert!(
        stderr.ends_with("error: 1 messages could not be moved (they stay in the dead-letter queue)\n"),
        "{stderr}"
    );
    assert_eq!(queues.count(&dead_end).await, 1);

    // A queue without a dead-letter queue is an error in words.
    let plain = queues.create(&unique_name("cli-plain"), &[]).await;
    let out = speedbatch(&dir, &["redrive", "--queue", &plain], &aws).await;
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("has no dead-letter queue (no RedrivePolicy)"), "{stderr}");
    assert!(stderr.ends_with("error: 1 of 1 queues could not be redriven\n"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
    queues.cleanup().await;
}

#[tokio::test]
async fn usage_and_missing_configuration() {
    let dir = temp_dir("redrive-usage");
    let out = speedbatch(&dir, &["redrive", "--help"], &[]).await;
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    assert!(help.contains("--queue <URL>") && help.contains("--max <N>") && help.contains("AWS credentials"), "{help}");
    // No queues anywhere (and no API URL or key needed for this command).
    let out = speedbatch(&dir, &["redrive"], &[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).starts_with("error: no HIGH_QUEUE_URL: give --queue URL"), "{}", text(&out.stderr));
    let out = speedbatch(&dir, &["redrive", "--max", "many"], &[]).await;
    assert_eq!(out.status.code(), Some(1), "a usage error is 1: {}", text(&out.stderr));
    std::fs::remove_dir_all(&dir).unwrap();
}

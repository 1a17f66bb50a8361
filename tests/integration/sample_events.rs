//! The sample events in `events/` (the shapes AWS sends, for `sam local invoke -e`) parse and
//! drive the real handlers.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use aws_sdk_dynamodb::types::AttributeValue;
use domain::AddressPolicy;
use domain::auth::hash_key;
use domain::time::now_millis;
use domain::{CleanUrl, Job, JobId, JobSettings, JobStatus, Priority, Tenant};
use serde_json::Value;
use store::prelude::*;
use testkit::site::Site;

use crate::harness::Harness;

const SAMPLE_JOB: &str = "0190c2d5-3b8a-7c4e-9f1a-2b3c4d5e6f70";
const SAMPLE_KEY: &str = "sb_0000000000000000000000000000000000000000000000000000000000000000";

fn event(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

async fn sample_job(h: &Harness, urls: &[String]) -> Job {
    let settings = JobSettings { priority: Priority::High, ..JobSettings::default() };
    let mut job = Job::new(Tenant("sample".into()), "sample".into(), settings, urls.len() as u64, now_millis());
    job.id = JobId::parse(SAMPLE_JOB).unwrap();
    let clean: Vec<CleanUrl> = urls.iter().map(|u| CleanUrl::parse(u, AddressPolicy::LOCAL).unwrap()).collect();
    h.env.store().create_job(&job, &clean).await.unwrap();
    job
}

async fn invoke_api(h: &Harness, name: &str) -> crate::harness::Response {
    let request = lambda_http::request::from_str(&event(name)).expect("an HTTP API v2 event");
    h.send(request.map(|body| axum::body::Body::from(body.to_vec()))).await
}

#[tokio::test]
async fn api_sample_events_drive_the_router() {
    let h = Harness::new().await;
    h.env.store().put_key_hash(&hash_key(SAMPLE_KEY), &Tenant("sample".into())).await.unwrap();
    let started = invoke_api(&h, "api-start.json").await;
    assert_eq!(started.status, 201, "{}", started.body);
    assert_eq!(started.body["accepted"], 2);
    assert_eq!(started.body["rejected"][0]["input"], "ftp://example.net");
    assert_eq!(h.receive(&h.env.queues.high, 10).await.records.len(), 2, "priority high uses the high queue");

    sample_job(&h, &["https://example.com".into()]).await;
    let progress = invoke_api(&h, "api-progress.json").await;
    assert_eq!(progress.status, 200, "{}", progress.body);
    assert_eq!(progress.body["batch_job_id"], SAMPLE_JOB);
    h.env.cleanup().await;
}

#[tokio::test]
async fn analyzer_sample_event_records_a_result() {
    let h = Harness::new().await;
    let site = Site::start().await;
    let job = sample_job(&h, &[site.url("/page/1")]).await;
    // The sample names example.com; the test measures its own local page instead.
    let mut raw: Value = serde_json::from_str(&event("analyzer-sqs.json")).unwrap();
    let body = raw["Records"][0]["body"].as_str().unwrap().replace("https://example.com", &site.url("/page/1"));
    raw["Records"][0]["body"] = Value::String(body);
    let sqs: SqsEvent = serde_json::from_value(raw).expect("an SQS event");
    let response = h.analyzer.handle(sqs, SystemTime::now() + Duration::from_secs(900)).await;
    assert!(response.batch_item_failures.is_empty());
    h.count_results().await;
    let stored = h.env.store().get_job(&job.id).await.unwrap().unwrap();
    assert_eq!((stored.counters.succeeded, stored.counters.queued), (1, 0));
    assert_eq!(site.hits(), 1);
    h.env.cleanup().await;
}

#[tokio::test]
async fn tracker_sample_event_completes_the_job() {
    let h = Harness::new().await;
    let job = sample_job(&h, &["https://example.com".into(), "https://example.org".into()]).await;
    assert!(
        h.env
            .store()
            .transition_job(&Job { status: JobStatus::Pending, ..job.clone() }, JobStatus::Processing, 1)
            .await
            .unwrap()
    );
    let stream: StreamEvent = serde_json::from_str(&event("tracker-stream.json")).expect("a DynamoDB stream event");
    let response = h.tracker.handle(stream).await;
    assert!(response.batch_item_failures.is_empty());
    let stored = h.env.store().get_job(&job.id).await.unwrap().unwrap();
    assert_eq!(stored.status, JobStatus::Completed);
    assert!(stored.finished_at.is_some());
    h.env.cleanup().await;
}

/// The sample job with its one URL measured and the job completed.
async fn finished_sample_job(h: &Harness) -> Job {
    let job = sample_job(h, &["https://example.com".into()]).await;
    let store = h.env.store();
    let outcome =
        domain::Outcome::Failed { kind: domain::ErrorKind::Http4xx, reason: "HTTP 404".into(), analysis: None };
    store.record_outcome(&job.id, 0, &outcome, None, now_millis()).await.unwrap();
    let status = store.get_job(&job.id).await.unwrap().unwrap().status;
    assert!(
        store
            .transition_job(&Job { status, ..job.clone() }, JobStatus::CompletedWithErrors, now_millis())
            .await
            .unwrap()
    );
    job
}

#[tokio::test]
async fn exporter_sample_event_writes_the_report() {
    let h = Harness::new().await;
    let job = finished_sample_job(&h).await;
    let sqs: SqsEvent = serde_json::from_str(&event("exporter-sqs.json")).expect("an SQS event");
    assert!(h.exporter.handle(sqs).await.batch_item_failures.is_empty());
    let report = h.env.store().get_report(&job.id).await.unwrap().expect("the report");
    assert!(report.summary.complete);
    assert_eq!(report.exports.len(), 2, "CSV and JSON Lines");
    h.env.cleanup().await;
}

#[tokio::test]
async fn callbacks_sample_event_delivers_and_records() {
    let h = Harness::new().await;
    let site = Site::start().await;
    let job = finished_sample_job(&h).await;
    // The sample names hooks.example.com; the test's own endpoint takes the call instead.
    let mut raw: Value = serde_json::from_str(&event("callbacks-sqs.json")).unwrap();
    let body =
        raw["Records"][0]["body"].as_str().unwrap().replace("https://hooks.example.com/speedbatch", &site.url("/hook"));
    raw["Records"][0]["body"] = Value::String(body);
    let sqs: SqsEvent = serde_json::from_value(raw).expect("an SQS event");
    assert!(h.callbacks.handle(sqs).await.batch_item_failures.is_empty());
    assert_eq!(site.hooks().len(), 1);
    let stored = h.env.store().get_job(&job.id).await.unwrap().unwrap();
    assert_eq!(stored.callback.map(|c| c.state), Some(domain::callback::DeliveryState::Delivered));
    h.env.cleanup().await;
}

/// The WebSocket API's three events and a followed job's stream record drive the live
/// function on the table: connect, subscribe (answered, the job marked), a push of the
/// stream's state, and disconnect (the subscription gone).
#[tokio::test]
async fn live_sample_events_subscribe_push_and_disconnect() {
    let h = Harness::new().await;
    h.env.store().put_key_hash(&hash_key(SAMPLE_KEY), &Tenant("sample".into())).await.unwrap();
    let job = sample_job(&h, &["https://example.com".into(), "https://example.org".into()]).await;
    let connections = aws::connections::MemoryConnections::default();
    let live = live::Live::new(h.env.store(), connections.clone());
    let invoke = |name: &str| live::LiveEvent::parse(serde_json::from_str(&event(name)).unwrap()).unwrap();
    const CONNECTION: &str = "L0SM9cOFvHcCIhw=";

    let answer = serde_json::to_value(live.handle(invoke("live-connect.json")).await).unwrap();
    assert_eq!(answer, serde_json::json!({"statusCode": 200}), "a connection is accepted");
    live.handle(invoke("live-subscribe.json")).await;
    assert_eq!(
        connections.frames(CONNECTION),
        vec![serde_json::json!({"type": "subscribed", "batch_job_id": SAMPLE_JOB})]
    );
    let item = h
        .env
        .dynamo
        .get_item()
        .table_name(&h.env.table)
        .key("pk", AttributeValue::S(format!("JOB#{SAMPLE_JOB}")))
        .key("sk", AttributeValue::S("JOB".into()))
        .send()
        .await
        .unwrap()
        .item
        .expect("the job's item");
    assert_eq!(item.get("live_gen"), Some(&AttributeValue::N("1".into())), "the job is marked followed");

    let response = serde_json::to_value(live.handle(invoke("live-stream.json")).await).unwrap();
    assert_eq!(response["batchItemFailures"], serde_json::json!([]), "{response}");
    let pushed = connections.frames(CONNECTION);
    assert_eq!(pushed.len(), 2, "{pushed:?}");
    assert_eq!((pushed[1]["type"].as_str(), pushed[1]["job"]["succeeded"].as_u64()), (Some("progress"), Some(2)));

    live.handle(invoke("live-disconnect.json")).await;
    assert!(live.store.watchers(&job).await.unwrap().is_empty(), "the closed connection's subscription is gone");
    h.env.cleanup().await;
}

use aws::connections::MemoryConnections;
use domain::auth::{generate_key, hash_key};
use domain::{Counters, Job, JobSettings, JobStatus, Tenant};
use serde_json::{Value, json};
use store::dynamo::items::JobItem;
use store::{Jobs, KeyStore, MemoryStore, Subscriptions};

use super::*;

type TestLive = Live<MemoryStore, MemoryConnections>;

struct Setup {
    live: TestLive,
    key: String,
    job: Job,
}

async fn setup() -> Setup {
    let live = Live::new(MemoryStore::new(), MemoryConnections::default());
    let key = generate_key();
    live.store.put_key_hash(&hash_key(&key), &Tenant("acme".into())).await.unwrap();
    let job = new_job(&live, "acme").await;
    Setup { live, key, job }
}

async fn new_job(live: &TestLive, tenant: &str) -> Job {
    let job = Job::new(Tenant(tenant.into()), "watched".into(), JobSettings::default(), 10, 1_000);
    live.store.create_job(&job, &[]).await.unwrap();
    job
}

fn route(route_key: &str, connection: &str, body: Option<String>) -> LiveEvent {
    LiveEvent::parse(json!({
        "requestContext": {"routeKey": route_key, "connectionId": connection, "eventType": "MESSAGE",
                           "stage": "live", "apiId": "abc", "requestId": "r"},
        "body": body, "isBase64Encoded": false
    }))
    .unwrap()
}

fn subscribe_message(key: &str, id: &str) -> Option<String> {
    Some(json!({"action": "subscribe", "api_key": key, "batch_job_id": id}).to_string())
}

async fn subscribe(setup: &Setup, connection: &str, id: &str) {
    setup.live.handle(route("subscribe", connection, subscribe_message(&setup.key, id))).await;
}

/// The job's stream record as the table would write it, with its watch generation.
fn record(live: &TestLive, job: &Job, event: &str, sequence: u64) -> Value {
    let mut image: serde_dynamo::Item = serde_dynamo::to_item(JobItem::from_job(job, 0)).unwrap();
    if let Some(generation) = live.store.watch_generation(&job.id) {
        image.insert("live_gen".into(), serde_dynamo::AttributeValue::N(generation.to_string()));
    }
    json!({
        "eventID": sequence.to_string(), "eventName": event, "eventVersion": "1.1", "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {"Keys": {}, "NewImage": image, "SequenceNumber": sequence.to_string(), "SizeBytes": 1,
                     "StreamViewType": "NEW_AND_OLD_IMAGES"}
    })
}

fn batch(records: Vec<Value>) -> LiveEvent {
    LiveEvent::parse(json!({ "Records": records })).unwrap()
}

fn with_progress(job: &Job, done: u64, status: JobStatus) -> Job {
    let mut job = job.clone();
    job.status = status;
    job.counters = Counters { succeeded: done, queued: job.counters.total - done, ..job.counters };
    job
}

fn progress_frames(live: &TestLive, connection: &str) -> Vec<Value> {
    live.connections.frames(connection).into_iter().filter(|f| f["type"] == "progress").collect()
}

#[tokio::test]
async fn a_subscriber_is_answered_and_its_job_is_followed() {
    let s = setup().await;
    subscribe(&s, "c1", s.job.id.as_str()).await;
    assert_eq!(s.live.connections.frames("c1"), vec![json!({"type": "subscribed", "batch_job_id": s.job.id.as_str()})]);
    assert_eq!(s.live.store.watch_generation(&s.job.id), Some(1), "its changes now reach the stream filter");
}

#[tokio::test]
async fn a_wrong_key_another_tenants_job_or_a_bad_message_gets_the_error_and_no_subscription() {
    let s = setup().await;
    let theirs = new_job(&s.live, "other").await;
    let error = |connection: &str| s.live.connections.frames(connection).last().cloned().unwrap();
    s.live.handle(route("subscribe", "c1", subscribe_message(&generate_key(), s.job.id.as_str()))).await;
    assert_eq!(error("c1")["code"], "unauthorized");
    s.live.handle(route("subscribe", "c2", subscribe_message("not-a-key", s.job.id.as_str()))).await;
    assert_eq!(error("c2")["code"], "unauthorized");
    subscribe(&s, "c3", theirs.id.as_str()).await;
    assert_eq!(
        error("c3"),
        json!({"type": "error", "code": "not_found", "message": format!("no job {:?}", theirs.id.as_str()), "batch_job_id": theirs.id.as_str()})
    );
    s.live.handle(route("$default", "c4", Some("hello".into()))).await;
    assert_eq!(error("c4")["code"], "bad_request");
    assert!(error("c4")["message"].as_str().unwrap().contains("JSON object"));
    assert!(s.live.store.watchers(&theirs).await.unwrap().is_empty());
    assert_eq!(s.live.store.watch_generation(&theirs.id), None);
}

#[tokio::test]
async fn a_batch_is_pushed_as_each_jobs_newest_state_once() {
    let s = setup().await;
    subscribe(&s, "c1", s.job.id.as_str()).await;
    let records = (1..=3)
        .map(|done| record(&s.live, &with_progress(&s.job, done, JobStatus::Processing), "MODIFY", done))
        .collect();
    let response = s.live.handle(batch(records)).await;
    assert!(matches!(response, LiveResponse::Stream(ref r) if r.batch_item_failures.is_empty()), "{response:?}");
    let pushed = progress_frames(&s.live, "c1");
    assert_eq!(pushed.len(), 1, "coalesced: {pushed:?}");
    assert_eq!(pushed[0]["job"]["succeeded"], 3);
    assert_eq!(pushed[0]["job"]["batch_job_id"], s.job.id.as_str());
}

#[tokio::test]
async fn pushes_of_one_job_are_half_a_second_apart_and_the_last_is_sent() {
    let s = setup().await;
    subscribe(&s, "c1", s.job.id.as_str()).await;
    let started = std::time::Instant::now();
    for done in 1..=3 {
        s.live
            .handle(batch(vec![record(&s.live, &with_progress(&s.job, done, JobStatus::Processing), "MODIFY", done)]))
            .await;
    }
    // Three batches, three pushes: the second and the third each waited for the pace.
    assert!(started.elapsed() >= std::time::Duration::from_millis(2 * 500 - 50), "{:?}", started.elapsed());
    let pushed: Vec<Value> = progress_frames(&s.live, "c1").iter().map(|f| f["job"]["succeeded"].clone()).collect();
    assert_eq!(pushed, vec![json!(1), json!(2), json!(3)]);
}

#[tokio::test]
async fn the_terminal_state_reaches_every_subscriber_then_the_jobs_subscriptions_go() {
    let s = setup().await;
    let connections: Vec<String> = (0..20).map(|i| format!("c{i}")).collect();
    for connection in &connections {
        subscribe(&s, connection, s.job.id.as_str()).await;
    }
    subscribe(&s, "all", "*").await;
    let done = with_progress(&s.job, 10, JobStatus::Completed);
    s.live.handle(batch(vec![record(&s.live, &done, "MODIFY", 7)])).await;
    for connection in connections.iter().chain([&"all".to_owned()]) {
        let pushed = progress_frames(&s.live, connection);
        assert_eq!(pushed.last().unwrap()["job"]["status"], "completed", "{connection}");
    }
    let left = s.live.store.watchers(&done).await.unwrap();
    assert_eq!(left.iter().map(|w| w.connection.as_str()).collect::<Vec<_>>(), ["all"], "the all-jobs one stays");
    assert_eq!(s.live.store.watch_generation(&s.job.id), None, "a finished job is no longer followed");
}

#[tokio::test]
async fn a_closed_connection_loses_its_subscriptions_and_the_others_are_served() {
    let s = setup().await;
    subscribe(&s, "open", s.job.id.as_str()).await;
    subscribe(&s, "closed", s.job.id.as_str()).await;
    s.live.connections.close("closed");
    s.live.handle(batch(vec![record(&s.live, &with_progress(&s.job, 1, JobStatus::Processing), "MODIFY", 1)])).await;
    assert_eq!(progress_frames(&s.live, "open").len(), 1);
    let left = s.live.store.watchers(&s.job).await.unwrap();
    assert_eq!(left.iter().map(|w| w.connection.as_str()).collect::<Vec<_>>(), ["open"]);
}

#[tokio::test]
async fn a_job_nobody_watches_any_more_is_unmarked_without_a_push() {
    let s = setup().await;
    subscribe(&s, "c1", s.job.id.as_str()).await;
    s.live.handle(route("$disconnect", "c1", None)).await;
    let posts = s.live.connections.posts();
    s.live.handle(batch(vec![record(&s.live, &with_progress(&s.job, 1, JobStatus::Processing), "MODIFY", 1)])).await;
    assert_eq!(s.live.connections.posts(), posts);
    assert_eq!(s.live.store.watch_generation(&s.job.id), None);
}

#[tokio::test]
async fn a_change_of_a_job_nobody_follows_is_ignored() {
    let s = setup().await;
    s.live.handle(batch(vec![record(&s.live, &with_progress(&s.job, 1, JobStatus::Processing), "MODIFY", 1)])).await;
    assert_eq!(s.live.connections.posts(), 0);
}

#[tokio::test]
async fn an_all_jobs_subscriber_follows_jobs_submitted_after_it() {
    let s = setup().await;
    subscribe(&s, "all", "*").await;
    let later = new_job(&s.live, "acme").await;
    let elsewhere = new_job(&s.live, "other").await;
    s.live.handle(batch(vec![record(&s.live, &later, "INSERT", 1), record(&s.live, &elsewhere, "INSERT", 2)])).await;
    assert_eq!(s.live.store.watch_generation(&later.id), Some(1));
    assert_eq!(s.live.store.watch_generation(&elsewhere.id), None);
    s.live.handle(batch(vec![record(&s.live, &with_progress(&later, 4, JobStatus::Processing), "MODIFY", 3)])).await;
    assert_eq!(progress_frames(&s.live, "all").last().unwrap()["job"]["batch_job_id"], later.id.as_str());
}

#[tokio::test]
async fn a_failure_is_retried_from_the_jobs_first_record_in_the_batch() {
    let s = setup().await;
    subscribe(&s, "c1", s.job.id.as_str()).await;
    s.live.store.set_unavailable(true);
    let records = vec![
        record(&s.live, &with_progress(&s.job, 1, JobStatus::Processing), "MODIFY", 98),
        record(&s.live, &with_progress(&s.job, 2, JobStatus::Processing), "MODIFY", 100),
    ];
    let LiveResponse::Stream(response) = s.live.handle(batch(records)).await else { panic!("a stream response") };
    let failed: Vec<_> = response.batch_item_failures.iter().map(|f| f.item_identifier.clone().unwrap()).collect();
    assert_eq!(failed, ["98"]);
}

#[tokio::test]
async fn connecting_is_accepted_and_disconnecting_drops_every_subscription() {
    let s = setup().await;
    let LiveResponse::Route(response) = s.live.handle(route("$connect", "c1", None)).await else { panic!() };
    assert_eq!(response.status_code, 200);
    subscribe(&s, "c1", s.job.id.as_str()).await;
    subscribe(&s, "c1", "*").await;
    s.live.handle(route("$disconnect", "c1", None)).await;
    assert!(s.live.store.watchers(&s.job).await.unwrap().is_empty());
}

#[test]
fn events_are_told_apart_by_their_required_part() {
    assert!(matches!(LiveEvent::parse(json!({"Records": []})).unwrap(), LiveEvent::Stream(_)));
    assert!(matches!(
        LiveEvent::parse(json!({"requestContext": {"routeKey": "$connect", "connectionId": "c"}})).unwrap(),
        LiveEvent::Route(_)
    ));
}

#[tokio::test]
async fn an_image_behind_the_last_push_is_not_sent_but_a_new_subscriber_gets_the_state() {
    let s = setup().await;
    subscribe(&s, "c1", s.job.id.as_str()).await;
    let push = |done: u64, sequence: u64| {
        let image = record(&s.live, &with_progress(&s.job, done, JobStatus::Processing), "MODIFY", sequence);
        s.live.handle(batch(vec![image]))
    };
    push(3, 1).await;
    push(2, 2).await;
    push(3, 3).await;
    let done = |connection: &str| -> Vec<Value> {
        progress_frames(&s.live, connection).iter().map(|f| f["job"]["succeeded"].clone()).collect()
    };
    assert_eq!(done("c1"), vec![json!(3)], "an older image and the same state again are not pushed");
    subscribe(&s, "c2", s.job.id.as_str()).await;
    push(3, 4).await;
    assert_eq!(done("c2"), vec![json!(3)], "the new subscriber is sent the state it has not seen");
}

#[tokio::test]
async fn a_job_that_waited_for_its_pace_is_pushed_as_it_is_now() {
    let s = setup().await;
    let mut ahead = Job::new(Tenant("acme".into()), "ahead".into(), JobSettings::default(), 10, 1_000);
    ahead.status = JobStatus::Processing;
    ahead.counters = Counters { succeeded: 5, queued: 5, ..ahead.counters };
    s.live.store.create_job(&ahead, &[]).await.unwrap();
    subscribe(&s, "c1", ahead.id.as_str()).await;
    for (done, sequence) in [(1, 1), (2, 2)] {
        let image = record(&s.live, &with_progress(&ahead, done, JobStatus::Processing), "MODIFY", sequence);
        s.live.handle(batch(vec![image])).await;
    }
    let pushed: Vec<Value> = progress_frames(&s.live, "c1").iter().map(|f| f["job"]["succeeded"].clone()).collect();
    // The first is pushed at once from its image; the second waited, and the job read after
    // the wait had got further than the image.
    assert_eq!(pushed, vec![json!(1), json!(5)]);
}

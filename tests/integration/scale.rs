//! The largest submission the API takes: 10 000 URLs in one POST, written with batched,
//! bounded-parallel requests, the first window queued. Prints the time and the AWS requests it made (the
//! figures BENCHMARKS.md reports); asserts only counts, never a time.

use std::time::{Duration, Instant};

use api::{ApiSettings, AppState};
use aws::RequestCounter;
use aws_sdk_sqs::types::QueueAttributeName;
use domain::AddressPolicy;
use domain::Tenant;
use domain::auth::{generate_key, hash_key};
use serde_json::json;
use store::KeyStore;
use testkit::emulator::TestEnv;
use tower::ServiceExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_10000_url_submission_is_written_whole_and_its_first_window_queued() {
    let env = TestEnv::new().await;
    let counter = RequestCounter::default();
    let router = api::app(AppState {
        store: env.counted_store(&counter),
        queue: env.counted_queue(&counter),
        exports: aws::exports::MemoryExports::default(),
        settings: ApiSettings {
            queues: env.queues.clone(),
            dead_letters: None,
            policy: AddressPolicy::LOCAL,
            max_url_timeout_seconds: 840,
            http: net::safe_client::safe_client(AddressPolicy::LOCAL).expect("client"),
            psi_available: false,
            crux_available: false,
            tenant_limits: domain::tenancy::Limits::DEFAULT,
            ws_url: None,
        },
    });
    let key = generate_key();
    env.store().put_key_hash(&hash_key(&key), &Tenant("scale".into())).await.unwrap();
    let urls: Vec<String> = (0..10_000).map(|n| format!("http://127.0.0.1:9/catalogue/item-{n}?ref=batch")).collect();
    let body = json!({"urls": urls}).to_string();
    let request = axum::http::Request::builder()
        .method("POST")
        .uri(domain::paths::endpoint("/start"))
        .header("x-api-key", &key)
        .body(axum::body::Body::from(body.clone()))
        .unwrap();
    let started = Instant::now();
    let response = router.oneshot(request).await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(response.status(), 201);
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    let created: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(created["accepted"], 10_000);
    assert_eq!(created["total_urls"], 10_000);

    let counts = counter.snapshot();
    eprintln!(
        "10 000-URL POST ({} KiB body): {:.2} s, {} AWS requests: {counts:?}",
        body.len() / 1024,
        elapsed.as_secs_f64(),
        counter.total()
    );
    assert_eq!(counts.get("DynamoDB.GetItem"), Some(&1), "one key lookup");
    assert_eq!(counts.get("DynamoDB.BatchGetItem"), Some(&1), "one read of the tenant's limits and usage");
    assert_eq!(counts.get("DynamoDB.TransactWriteItems"), Some(&1), "one job item, counted against its tenant");
    assert_eq!(counts.get("DynamoDB.PutItem"), None);
    assert!(counts["DynamoDB.BatchWriteItem"] >= 8, "fifty URLs to a list, 25 lists per write");
    assert_eq!(counts["SQS.SendMessageBatch"], 1, "only the first window (5 URLs) is queued");
    assert!(counter.total() <= 12 + 10, "only retries of unprocessed items beyond the minimum: {counts:?}");
    // A URL's own item comes with its first change: the submission writes its share of a list.
    let units = counter.counts().write_units_by.get("BatchWriteItem").copied().unwrap_or_default();
    eprintln!("the URLs' lists: {units} write units, {:.3} per URL", units / 10_000.0);
    assert!(units > 0.0 && units <= 0.1 * 10_000.0, "at most a tenth of a unit per URL: {units}");

    let attributes = env
        .sqs
        .get_queue_attributes()
        .queue_url(&env.queues.normal)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .unwrap();
    let queued = attributes.attributes().and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessages)).cloned();
    assert_eq!(queued.as_deref(), Some("5"), "the first window is on its queue; the rest wait their turn");
    env.cleanup().await;
}

async fn progress(h: &crate::harness::Harness, key: &str, id: &domain::JobId) -> serde_json::Value {
    let response = h.request("GET", &domain::paths::endpoint(&format!("/progress/{id}")), Some(key), None).await;
    assert_eq!(response.status, 200, "{}", response.body);
    response.body
}

/// A pipeline whose analyzer's every AWS request the returned counter counts, a local site,
/// and a key of tenant `acme`.
async fn counted_pipeline() -> (crate::harness::Harness, testkit::site::Site, String, RequestCounter) {
    let mut h = crate::harness::Harness::new().await;
    let site = testkit::site::Site::start().await;
    let key = h.key_for("acme").await;
    let counter = RequestCounter::default();
    h.analyzer = counted_analyzer(&h, &counter);
    (h, site, key, counter)
}

/// An analyzer whose every AWS request `counter` counts.
fn counted_analyzer(
    h: &crate::harness::Harness,
    counter: &RequestCounter,
) -> analyzer::Analyzer<store::DynamoStore, aws::queue::SqsQueue, engine::HttpEngine> {
    analyzer::Analyzer {
        store: h.env.counted_store(counter),
        queue: h.env.counted_queue(counter),
        engine: engine::HttpEngine::new(AddressPolicy::LOCAL).unwrap(),
        queues: h.env.queues.clone(),
        // Every URL of these tests is on the test's one local site: room for a whole window.
        host_concurrency: domain::politeness::HOST_CONCURRENCY.max,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invocation_reads_and_records_its_urls_together_and_batches_its_releases() {
    let (mut h, site, key, counter) = counted_pipeline().await;
    let tracker_counter = RequestCounter::default();
    h.tracker.store = h.env.counted_store(&tracker_counter);
    let urls: Vec<String> = (0..100).map(|n| site.url(&format!("/page/{n}"))).collect();
    let id = h.start(&key, json!({"urls": urls, "batch_size": 10})).await;
    h.drain(&h.env.queues.normal).await;
    h.track(id.as_str()).await;
    let counts = counter.counts();
    eprintln!("analyzer, 100 URLs: {counts:?}; tracker: {:?}", tracker_counter.snapshot());
    let job = progress(&h, &key, &id).await;
    assert_eq!((job["succeeded"].as_u64(), job["status"].as_str()), (Some(100), Some("completed")), "{job}");
    // Ten invocations of up to ten URLs (fewer if a receive brings fewer): nothing written when
    // an analysis starts, one read of the batch's URLs and jobs each; 90 URLs are released by
    // the 90 before them, a batch of releases at a time: one read of their addresses and one
    // send per invocation that released any.
    let requests = &counts.requests;
    assert_eq!(requests.get("DynamoDB.TransactWriteItems"), None, "no claims: {requests:?}");
    let (reads, sends) = (requests["DynamoDB.BatchGetItem"], requests["SQS.SendMessageBatch"]);
    let invocations = reads - sends;
    assert!((10..=15).contains(&invocations), "one read per invocation: {requests:?}");
    assert!((9..=invocations).contains(&sends), "up to 10 releases per invocation: {requests:?}");
    // Each result one update of its URL's item; the job's start once; an invocation's places
    // (the site's host, and one shard of the tenant's) taken once per set and given back once
    // per set for all its results, which mostly finish within the result's linger of each
    // other (a straggler gives its places back in a write of its own).
    let updates = requests["DynamoDB.UpdateItem"];
    assert!((101..=101 + 6 * invocations).contains(&updates), "a result one update: {requests:?}");
    assert_eq!(requests.len(), 3, "nothing else: {requests:?}");
    assert!(counts.write_units > 0.0, "DynamoDB reports the write capacity used: {counts:?}");
    let tracker = tracker_counter.snapshot();
    assert_eq!(tracker.get("DynamoDB.TransactWriteItems"), Some(&1), "one status change, freeing the tenant's place");
    // The results reach the tracker from the stream after each invocation: one read of the
    // job and one update of its counters each time, however many results it carries.
    let counted = tracker["DynamoDB.UpdateItem"];
    assert_eq!(tracker.get("DynamoDB.GetItem"), Some(&counted), "{tracker:?}");
    assert!((1..=invocations).contains(&counted), "{tracker:?}");
    h.env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_that_finish_near_each_other_give_their_places_back_together_and_a_late_one_alone() {
    let (h, site, key, counter) = counted_pipeline().await;
    // Six pages answering 0–50 ms apart, and one a second and a half after the first.
    for n in 0..6 {
        site.set_delay(n, Duration::from_millis(10 * u64::from(n)));
    }
    site.set_delay(6, Duration::from_millis(1_500));
    let urls: Vec<String> = (0..7).map(|n| site.url(&format!("/tunable/{n}"))).collect();
    let id = h.start(&key, json!({"urls": urls, "batch_size": 7})).await;
    let queue = h.env.queues.normal.clone();
    let mut received = Vec::new();
    while received.len() < 7 {
        received.extend(h.receive(&queue, 10).await.records);
    }
    let mut event = aws_lambda_events::event::sqs::SqsEvent::default();
    event.records = received;
    h.analyzer.handle(event, std::time::SystemTime::now() + Duration::from_secs(900)).await;
    h.count_results().await;
    assert_eq!(progress(&h, &key, &id).await["succeeded"], 7);
    // One read of the seven and their job, the job's start; their places taken together (the
    // host's, and one shard of the tenant's for the batch); each result an update of its
    // URL's item; the six near ones give their places back together, the late one alone (the
    // linger, 250 ms, is over long before it answers).
    let requests = counter.snapshot();
    assert_eq!(requests.get("DynamoDB.TransactWriteItems"), None, "{requests:?}");
    assert_eq!(requests["DynamoDB.BatchGetItem"], 1, "{requests:?}");
    assert_eq!(requests["DynamoDB.UpdateItem"], 1 + 2 + 7 + 2 + 2, "{requests:?}");
    h.env.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_holding_a_duplicate_and_a_finished_url_counts_each_url_once() {
    let (h, site, key, counter) = counted_pipeline().await;
    let urls: Vec<String> = (0..4).map(|n| site.url(&format!("/page/{n}"))).collect();
    let id = h.start(&key, json!({"urls": urls, "batch_size": 4})).await;
    let queue = h.env.queues.normal.clone();
    let mut received = Vec::new();
    while received.len() < 4 {
        received.extend(h.receive(&queue, 10).await.records);
    }
    received.sort_by_key(|r| r.body.clone());
    let event = |records: Vec<aws_lambda_events::event::sqs::SqsMessage>| {
        let mut event = aws_lambda_events::event::sqs::SqsEvent::default();
        event.records = records;
        event
    };
    h.analyzer.handle(event(vec![received[0].clone()]), std::time::SystemTime::now() + Duration::from_secs(900)).await;
    h.count_results().await;
    counter.reset();
    // URL 0 again (finished), URLs 1–3, and URL 2 twice: both copies of URL 2 analyse it and
    // share its places (one holder), and one result counts.
    let mut batch = received.clone();
    batch.push(received[2].clone());
    let hits = site.hits();
    let response = h.analyzer.handle(event(batch), std::time::SystemTime::now() + Duration::from_secs(900)).await;
    h.count_results().await;
    let job = progress(&h, &key, &id).await;
    assert_eq!(job["succeeded"], 4, "{job}");
    assert_eq!((job["in_progress"].as_u64(), job["queued"].as_u64()), (Some(0), Some(0)), "{job}");
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_eq!(site.hits() - hits, 4, "URL 0 was found finished: not analysed again");
    let requests = counter.snapshot();
    assert_eq!(requests.get("DynamoDB.TransactWriteItems"), None, "{requests:?}");
    h.env.cleanup().await;
}

#[tokio::test]
async fn one_send_may_carry_the_same_position_of_two_jobs() {
    use aws::queue::TaskQueue;
    let env = TestEnv::new().await;
    let job = |name: &str| domain::Job::new(Tenant("t".into()), name.into(), Default::default(), 1, 0);
    let (a, b) = (job("a"), job("b"));
    let messages = [
        domain::TaskMessage::new(&a, 0, "https://a.example".into()),
        domain::TaskMessage::new(&b, 0, "https://b.example".into()),
    ];
    env.queue().send(&env.queues.normal, &messages).await.expect("one batch, two URLs at position 0");
    let received =
        env.sqs.receive_message().queue_url(&env.queues.normal).max_number_of_messages(10).send().await.unwrap();
    assert_eq!(received.messages().len(), 2);
    env.cleanup().await;
}

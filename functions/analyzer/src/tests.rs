//! The handler on the in-memory store and queue, with scripted engines.

use std::time::{Duration, SystemTime};

use aws::queue::MemoryQueue;
use domain::AddressPolicy;
use domain::{Analysis, CleanUrl, EngineKind, ErrorKind, Job, JobId, JobSettings, Strategy, Tenant, UrlStatus};
use engine::{Engine, Request};
use serde_json::json;
use store::MemoryStore;
use store::prelude::*;

use super::*;

/// Answers each URL with a scripted result: a path containing "retry" fails retryably,
/// "gone" permanently, "pause" is a 429 asking for 5 s, anything else succeeds.
struct ScriptedEngine;

impl Engine for ScriptedEngine {
    fn name(&self) -> &'static str {
        "scripted"
    }

    async fn analyze(&self, url: &str, strategy: Strategy, _: Duration) -> Result<Analysis, EngineError> {
        if url.contains("retry") {
            Err(EngineError::new(ErrorKind::Http5xx, "HTTP 503 Service Unavailable"))
        } else if url.contains("pause") {
            let error = EngineError::new(ErrorKind::RateLimited, "HTTP 429 Too Many Requests (Retry-After: 5 s)");
            Err(EngineError { retry_after: Some(Duration::from_secs(5)), ..error })
        } else if url.contains("gone") {
            Err(EngineError::new(ErrorKind::Http4xx, "HTTP 410 Gone"))
        } else {
            Ok(Analysis {
                engine: "scripted".into(),
                strategy,
                score: Some(90.0),
                metrics: Default::default(),
                cached_from: None,
            })
        }
    }
}

const QUEUE_ARN: &str = "arn:aws:sqs:us-east-1:000000000000:normal";

/// The job as it stands once the tracker has counted the results recorded so far (the table's
/// stream, in production).
async fn counted(store: &MemoryStore, id: &JobId) -> Job {
    store.count_recorded(now_millis()).await.unwrap();
    store.get_job(id).await.unwrap().unwrap()
}

fn analyzer() -> Analyzer<MemoryStore, MemoryQueue, ScriptedEngine> {
    Analyzer {
        store: MemoryStore::new(),
        queue: MemoryQueue::new(),
        engine: ScriptedEngine,
        queues: QueueUrls { high: "q/high".into(), normal: "q/normal".into(), low: "q/low".into(), browser: None },
        host_concurrency: 4,
    }
}

async fn job(a: &TestAnalyzer, urls: &[&str]) -> JobId {
    job_with(a, urls, JobSettings { max_retries: 2, ..JobSettings::default() }).await
}

async fn job_with(a: &TestAnalyzer, urls: &[&str], settings: JobSettings) -> JobId {
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

type TestAnalyzer = Analyzer<MemoryStore, MemoryQueue, ScriptedEngine>;

/// The first delivery of URL `seq`'s message, named after it.
fn message(job_id: &JobId, seq: u32, url: &str) -> serde_json::Value {
    record(&format!("m{seq}"), task(job_id, seq, url), 1)
}

fn task(job_id: &JobId, seq: u32, url: &str) -> serde_json::Value {
    json!({"job_id": job_id, "seq": seq, "url": url, "strategy": "mobile", "engine": "http",
           "timeout_seconds": 60, "max_retries": 2, "priority": "normal", "batch_size": 5, "total_urls": 5})
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
    let job = counted(&a.store, &id).await;
    assert_eq!((job.counters.succeeded, job.counters.failed, job.counters.queued), (1, 1, 1));
    assert_eq!((job.progress().queued, job.progress().in_progress), (0, 1), "the retrying URL is in progress");
    let gone = a.store.get_task(&id, 1).await.unwrap().unwrap();
    assert_eq!((gone.status, gone.error.as_deref()), (UrlStatus::Failed, Some("HTTP 410 Gone")));
    let mut delays = a.queue.delays();
    delays.sort_by_key(|(_, delay)| *delay);
    assert_eq!(delays.len(), 2, "{delays:?}");
    assert_eq!(delays[0], ("q/normal".to_owned(), UNREADABLE_RETURN), "the unreadable message comes back at once");
    assert_eq!(delays[1].0, "q/normal");
    assert!((Duration::from_millis(2_500)..=Duration::from_secs(5)).contains(&delays[1].1), "a first backoff");
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
    assert_eq!(task.error_kind, Some(ErrorKind::Http5xx));
    assert_eq!(task.attempts, 3);
    let job = counted(&a.store, &id).await;
    assert_eq!((job.counters.failed, job.counters.queued), (1, 0));
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
    assert_eq!(counted(&a.store, &id).await.counters.succeeded, 1);
    let unknown = JobId::generate();
    let response = a.handle(event(vec![record("x", task(&unknown, 0, "https://ok.example"), 1)]), later()).await;
    assert!(response.batch_item_failures.is_empty(), "a deleted job's task is dropped, not retried forever");
}

#[test]
fn metrics_count_every_outcome_by_kind() {
    let results = vec![
        (Disposition::Succeeded { analysis_ms: 10.0, cached: false }, Some(5.0)),
        (Disposition::Succeeded { analysis_ms: 0.0, cached: true }, None),
        (Disposition::Failed { kind: ErrorKind::Http4xx, analysis_ms: 20.0 }, Some(7.0)),
        (Disposition::Failed { kind: ErrorKind::Http4xx, analysis_ms: 30.0 }, None),
        (Disposition::RetryLater, None),
        (Disposition::Cancelled, None),
    ];
    let line: serde_json::Value = serde_json::from_str(&metric_line(&results, 4, "analyzer").render(0)).unwrap();
    assert_eq!(line["UrlsSucceeded"], 2.0);
    assert_eq!(line["CacheHits"], 1.0);
    assert_eq!(line["UrlsFailed"], 2.0);
    assert_eq!(line["Failures.http_4xx"], 2.0);
    assert_eq!(line["UrlsRetried"], 1.0);
    assert_eq!(line["UrlsCancelled"], 1.0);
    assert_eq!(line["UrlsReleased"], 4.0);
    assert_eq!(line["AnalysisTime"], json!([10.0, 20.0, 30.0]));
    assert_eq!(line["QueueWait"], json!([5.0, 7.0]));
    assert_eq!(line["Function"], "analyzer");
    assert!(line.get("Duplicates").is_none() && line.get("Waits.quota").is_none(), "no zero counts: {line}");
}

#[tokio::test]
async fn a_cancelling_job_starts_no_new_url() {
    let a = analyzer();
    let id = job(&a, &["https://ok.example", "https://gone.example"]).await;
    let first = a.handle(event(vec![record("m0", task(&id, 0, "https://ok.example"), 1)]), later()).await;
    assert!(first.batch_item_failures.is_empty());
    assert_eq!(a.store.request_cancel(&id, 1).await.unwrap(), store::Cancel::Requested);
    let second = a.handle(event(vec![record("m1", task(&id, 1, "https://gone.example"), 1)]), later()).await;
    assert!(second.batch_item_failures.is_empty());
    let job = counted(&a.store, &id).await;
    assert_eq!((job.counters.succeeded, job.counters.cancelled, job.counters.failed), (1, 1, 0));
    assert_eq!(a.store.get_task(&id, 1).await.unwrap().unwrap().status, UrlStatus::Cancelled);
    assert_eq!(job.next_status(), Some(domain::JobStatus::Cancelled));
}

#[tokio::test]
async fn an_outage_leaves_every_message_for_redelivery() {
    let a = analyzer();
    let id = job(&a, &["https://ok.example", "https://gone.example"]).await;
    a.store.set_unavailable(true);
    let response = a
        .handle(event(vec![message(&id, 0, "https://ok.example"), message(&id, 1, "https://gone.example")]), later())
        .await;
    assert_eq!(failed_ids(&response), ["m0", "m1"]);
    a.store.set_unavailable(false);
    assert_eq!(counted(&a.store, &id).await.counters.queued, 2, "nothing was counted");
}

#[tokio::test]
async fn a_retry_keeps_the_last_error_and_frees_the_url_for_its_redelivery() {
    let a = analyzer();
    let id = job(&a, &["https://retry.example"]).await;
    let response = a.handle(event(vec![record("m", task(&id, 0, "https://retry.example"), 1)]), later()).await;
    assert_eq!(failed_ids(&response), ["m"]);
    let waiting = a.store.get_task(&id, 0).await.unwrap().unwrap();
    assert_eq!((waiting.status, waiting.attempts), (UrlStatus::Queued, 1));
    assert_eq!(waiting.error.as_deref(), Some("HTTP 503 Service Unavailable"), "visible while it waits");
    let job = counted(&a.store, &id).await;
    assert_eq!(job.shown_status(0, waiting.status), UrlStatus::Processing, "shown in progress: its job started");
    // The redelivery after the backoff is the next attempt: SQS counted the receive.
    a.handle(event(vec![record("m", task(&id, 0, "https://retry.example"), 2)]), later()).await;
    assert_eq!(a.store.get_task(&id, 0).await.unwrap().unwrap().attempts, 2);
}

#[tokio::test]
async fn the_first_analysis_starts_the_job_and_a_copy_analysed_at_once_counts_once() {
    let a = analyzer();
    let id = job(&a, &["https://ok.example"]).await;
    assert_eq!(a.store.get_job(&id).await.unwrap().unwrap().started_at, None);
    // SQS delivered the message twice, to one invocation: both analyse, one result counts.
    let copy = message(&id, 0, "https://ok.example");
    let response = a.handle(event(vec![copy.clone(), copy]), later()).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let job = counted(&a.store, &id).await;
    assert!(job.started_at.is_some(), "started by its first batch");
    assert_eq!(job.next_status(), Some(domain::JobStatus::Completed));
    assert_eq!((job.counters.succeeded, job.counters.queued), (1, 0), "counted once");
}

#[tokio::test]
async fn each_finished_url_releases_the_next_of_the_window_once() {
    let a = analyzer();
    let urls =
        ["https://a.example", "https://gone.example", "https://c.example", "https://d.example", "https://e.example"];
    let settings = JobSettings { batch_size: 2, priority: domain::Priority::Urgent, ..JobSettings::default() };
    let id = job_with(&a, &urls, settings).await;
    let message = |seq: u32| {
        let mut body = task(&id, seq, urls[seq as usize]);
        body["batch_size"] = json!(2);
        body["priority"] = json!("urgent");
        record(&format!("m{seq}"), body, 1)
    };
    let response = a.handle(event(vec![message(0), message(1)]), later()).await;
    assert!(response.batch_item_failures.is_empty());
    let sent = a.queue.take_sent();
    let released: Vec<(u32, &str)> = sent.iter().map(|(_, m)| (m.seq, m.url.as_str())).collect();
    assert_eq!(released, [(2, "https://c.example"), (3, "https://d.example")], "a failure releases too");
    assert!(sent.iter().all(|(queue, m)| queue == "q/high" && m.batch_size == 2 && m.total_urls == 5));
    // Both now open in the window (found by a sweep once their messages count as lost); URL
    // 4 waits for URL 2.
    let open: Vec<u32> = a
        .store
        .open_urls(&counted(&a.store, &id).await, i64::MAX, 10)
        .await
        .unwrap()
        .stalled
        .iter()
        .map(|t| t.seq)
        .collect();
    assert_eq!(open, [2, 3]);

    // A duplicate of a finished URL releases nothing more.
    a.handle(event(vec![message(0)]), later()).await;
    assert!(a.queue.take_sent().is_empty());
    a.handle(event(vec![message(2)]), later()).await;
    assert_eq!(a.queue.take_sent().iter().map(|(_, m)| m.seq).collect::<Vec<_>>(), [4]);
    a.handle(event(vec![message(4)]), later()).await;
    assert!(a.queue.take_sent().is_empty(), "the last window releases nothing");
}

#[tokio::test]
async fn a_url_whose_analyses_keep_dying_fails_instead_of_running_forever() {
    let a = analyzer();
    let id = job(&a, &["https://ok.example"]).await;
    // Received a sixth time: five analyses died without a result (each time the message came
    // back after its visibility timeout). max_retries 2 allows 3 attempts, crashes 2 more.
    let response = a.handle(event(vec![record("m", task(&id, 0, "https://ok.example"), 6)]), later()).await;
    assert!(response.batch_item_failures.is_empty());
    let task = a.store.get_task(&id, 0).await.unwrap().unwrap();
    assert_eq!((task.status, task.error_kind, task.attempts), (UrlStatus::Failed, Some(ErrorKind::Timeout), 6));
    assert_eq!(
        task.error.as_deref(),
        Some("the analysis stopped without a result 5 times (the analyzer crashed or ran out of time)")
    );
    assert_eq!(counted(&a.store, &id).await.counters.failed, 1);
}

/// An engine with a quota: full while `full` is set; a URL containing "limited" meets
/// the provider's own 429.
#[derive(Default)]
struct Gated {
    full: std::sync::atomic::AtomicBool,
}

impl Engines for Gated {
    async fn admit(
        &self,
        _: EngineKind,
        _: domain::quota::Asker<'_>,
        now: domain::time::Millis,
    ) -> Result<Admission, domain::Error> {
        if self.full.load(std::sync::atomic::Ordering::SeqCst) {
            Ok(Admission::Wait { until: now + 30_000, reason: "quota full".into() })
        } else {
            Ok(Admission::At(now))
        }
    }

    async fn analyze(&self, _: EngineKind, request: Request<'_>, _: Duration) -> Result<Analysis, EngineError> {
        let (url, strategy) = (request.url, request.strategy);
        if url.contains("limited") {
            let reason = "Quota exceeded for quota metric 'Queries'";
            return Err(EngineError::deferred(ErrorKind::RateLimited, reason, now_millis() + 60_000));
        }
        Ok(Analysis {
            engine: "gated".into(),
            strategy,
            score: Some(50.0),
            metrics: Default::default(),
            cached_from: None,
        })
    }
}

#[tokio::test]
async fn a_url_waiting_for_the_quota_is_deferred_without_an_attempt_or_a_receive() {
    let a = Analyzer {
        store: MemoryStore::new(),
        queue: MemoryQueue::new(),
        engine: Gated::default(),
        queues: QueueUrls { high: "q/high".into(), normal: "q/normal".into(), low: "q/low".into(), browser: None },
        host_concurrency: 4,
    };
    let job = Job::new(Tenant("t".into()), "n".into(), JobSettings::default(), 2, 0);
    let urls: Vec<CleanUrl> = ["https://ok.example", "https://limited.example"]
        .iter()
        .map(|u| CleanUrl::parse(u, AddressPolicy::default()).unwrap())
        .collect();
    a.store.create_job(&job, &urls).await.unwrap();
    let id = job.id;

    a.engine.full.store(true, std::sync::atomic::Ordering::SeqCst);
    let response = a.handle(event(vec![record("m0", task(&id, 0, "https://ok.example"), 3)]), later()).await;
    assert!(response.batch_item_failures.is_empty(), "acknowledged: a delayed copy carries on");
    let deferred = a.queue.deferred();
    assert_eq!(deferred.len(), 1);
    assert_eq!((deferred[0].0.as_str(), deferred[0].1.seq), ("q/normal", 0));
    assert!((Duration::from_secs(28)..=Duration::from_secs(30)).contains(&deferred[0].2), "{:?}", deferred[0].2);
    assert_eq!(deferred[0].1.attempts, 2, "received a third time: the copy carries the two before");
    let waiting = a.store.get_task(&id, 0).await.unwrap().unwrap();
    assert_eq!((waiting.status, waiting.attempts), (UrlStatus::Queued, 0), "nothing written");

    a.engine.full.store(false, std::sync::atomic::Ordering::SeqCst);
    a.handle(event(vec![record("m1", task(&id, 1, "https://limited.example"), 1)]), later()).await;
    let limited = a.store.get_task(&id, 1).await.unwrap().unwrap();
    assert_eq!((limited.status, limited.attempts), (UrlStatus::Queued, 0), "the provider's quota is no attempt");
    let deferred = a.queue.deferred();
    assert_eq!((deferred.len(), deferred[1].1.attempts), (2, 0), "its copy's next delivery is its first attempt");
    let job = counted(&a.store, &id).await;
    assert_eq!((job.counters.failed, job.counters.succeeded), (0, 0), "a wait is never a failure");
}

#[tokio::test]
async fn a_fresh_result_of_the_tenant_is_reused_without_the_engine_or_its_quota() {
    let a = Analyzer {
        store: MemoryStore::new(),
        queue: MemoryQueue::new(),
        engine: Gated::default(),
        queues: QueueUrls { high: "q/high".into(), normal: "q/normal".into(), low: "q/low".into(), browser: None },
        host_concurrency: 4,
    };
    let url = CleanUrl::parse("https://ok.example", AddressPolicy::default()).unwrap();
    let submit = |tenant: &str, cache_ttl_seconds: u32| {
        let settings = JobSettings { cache_ttl_seconds, ..JobSettings::default() };
        Job::new(Tenant(tenant.into()), "n".into(), settings, 1, 0)
    };
    let message = |job: &Job| serde_json::to_value(TaskMessage::new(job, 0, url.as_str().into())).unwrap();

    let first = submit("t", 0);
    a.store.create_job(&first, std::slice::from_ref(&url)).await.unwrap();
    a.handle(event(vec![record("m0", message(&first), 1)]), later()).await;
    assert_eq!(a.store.get_task(&first.id, 0).await.unwrap().unwrap().status, UrlStatus::Succeeded);

    // The quota is full: only a reused result can finish a URL now.
    a.engine.full.store(true, std::sync::atomic::Ordering::SeqCst);
    let again = submit("t", 3600);
    let other_tenant = submit("u", 3600);
    let no_cache = submit("t", 0);
    for job in [&again, &other_tenant, &no_cache] {
        a.store.create_job(job, std::slice::from_ref(&url)).await.unwrap();
        a.handle(event(vec![record("m", message(job), 1)]), later()).await;
    }
    let reused = a.store.get_task(&again.id, 0).await.unwrap().unwrap();
    assert_eq!(reused.status, UrlStatus::Succeeded);
    let cached = reused.analysis.unwrap().cached_from.expect("marked as reused");
    assert_eq!(cached.job_id, first.id);
    for job in [&other_tenant, &no_cache] {
        let waiting = a.store.get_task(&job.id, 0).await.unwrap().unwrap();
        assert_eq!(waiting.status, UrlStatus::Queued, "another tenant's result, or no reuse asked for");
    }
    assert_eq!(a.queue.deferred().len(), 2);
}

#[tokio::test]
async fn a_busy_host_makes_its_urls_wait_without_an_attempt_and_a_finished_one_makes_room() {
    let a = Analyzer { host_concurrency: 2, ..analyzer() };
    let urls: Vec<String> = (0..6).map(|n| format!("https://one.example/{n}")).collect();
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    let id = job_with(&a, &urls, JobSettings { batch_size: 6, ..JobSettings::default() }).await;
    let records = (0..6).map(|n| record(&format!("m{n}"), task(&id, n, urls[n as usize]), 1)).collect();
    let response = a.handle(event(records), later()).await;
    assert!(response.batch_item_failures.is_empty(), "the waiting URLs go on as delayed copies");
    let job = counted(&a.store, &id).await;
    assert_eq!(job.counters.succeeded, 2, "two at a time at one host");
    let deferred = a.queue.deferred();
    assert_eq!(deferred.len(), 4, "{deferred:?}");
    for (_, message, wait) in &deferred {
        assert_eq!(message.waits, 1, "the next wait is longer");
        assert!((Duration::from_secs(1)..=Duration::from_secs(1)).contains(wait), "at least a second: {wait:?}");
        let task = a.store.get_task(&id, message.seq).await.unwrap().unwrap();
        assert_eq!((task.status, task.attempts, message.attempts), (UrlStatus::Queued, 0, 0), "no attempt");
    }
    let waiting = a.store.waiting(domain::time::now_millis()).await.unwrap();
    assert_eq!((waiting.host_busy, waiting.quota, waiting.host_paused), (4, 0, 0), "counted for /queue/status");
    // The places came back with the results: the waiting URLs now go through.
    let again = deferred.iter().map(|(_, m, _)| record("w", serde_json::to_value(m).unwrap(), 1)).collect();
    a.handle(event(again), later()).await;
    let job = counted(&a.store, &id).await;
    assert_eq!(job.counters.succeeded, 4, "{:?}", job.counters);
    let waits: Vec<u32> = a.queue.deferred()[4..].iter().map(|(_, m, _)| m.waits).collect();
    assert_eq!(waits, [2, 2], "the last two waited twice");
}

#[tokio::test]
async fn a_site_asking_for_a_pause_gets_it_for_all_its_urls_and_no_attempt_is_used() {
    let a = analyzer();
    let id = job(&a, &["https://slow.example/pause", "https://slow.example/page"]).await;
    a.handle(event(vec![record("m0", task(&id, 0, "https://slow.example/pause"), 1)]), later()).await;
    let paused = a.store.get_task(&id, 0).await.unwrap().unwrap();
    assert_eq!(paused.attempts, 0, "a pause the site asked for is no attempt");
    let deferred = a.queue.deferred();
    assert_eq!(deferred.len(), 1);
    assert!((Duration::from_secs(4)..=Duration::from_secs(5)).contains(&deferred[0].2), "{:?}", deferred[0].2);
    // The host's other URL is not fetched during the pause either: it waits for its end.
    a.handle(event(vec![record("m1", task(&id, 1, "https://slow.example/page"), 1)]), later()).await;
    let other = a.store.get_task(&id, 1).await.unwrap().unwrap();
    assert_eq!((other.status, other.attempts), (UrlStatus::Queued, 0));
    let deferred = a.queue.deferred();
    assert_eq!(deferred.len(), 2);
    assert!((Duration::from_secs(4)..=Duration::from_secs(5)).contains(&deferred[1].2), "{:?}", deferred[1].2);
    // Another host is not held up by it.
    let elsewhere = job(&a, &["https://other.example/page"]).await;
    a.handle(event(vec![record("m2", task(&elsewhere, 0, "https://other.example/page"), 1)]), later()).await;
    assert_eq!(a.store.get_task(&elsewhere, 0).await.unwrap().unwrap().status, UrlStatus::Succeeded);
}

#[tokio::test]
async fn a_tenant_at_max_in_flight_has_its_urls_wait_across_its_jobs_and_others_go_on() {
    let a = analyzer();
    // Every URL on a host of its own: only the tenant's limit of 3 can hold one back.
    let submit = |tenant: &str, hosts: [&str; 2]| {
        let settings = JobSettings { batch_size: 2, ..JobSettings::default() };
        let job = Job::new(Tenant(tenant.into()), "n".into(), settings, 2, 0)
            .held_to(&domain::tenancy::Limits { max_in_flight: 3, ..domain::tenancy::Limits::DEFAULT });
        let urls = hosts.map(|h| CleanUrl::parse(&format!("https://{h}.example/"), AddressPolicy::default()).unwrap());
        (job, urls)
    };
    let jobs = [submit("busy", ["a", "b"]), submit("busy", ["c", "d"]), submit("quiet", ["e", "f"])];
    let mut records = Vec::new();
    for (job, urls) in &jobs {
        a.store.create_job(job, urls).await.unwrap();
        for (seq, url) in urls.iter().enumerate() {
            let message = TaskMessage::new(job, seq as u32, url.as_str().into());
            assert_eq!(message.max_in_flight, 3, "the tenant's limit travels with its URLs");
            records.push(record(&format!("m{}", records.len()), serde_json::to_value(message).unwrap(), 1));
        }
    }
    a.handle(event(records), later()).await;

    let (store, jobs) = (&a.store, &jobs);
    let succeeded = |i: usize| async move { counted(store, &jobs[i].0.id).await.counters.succeeded };
    let (first, second, quiet) = (succeeded(0).await, succeeded(1).await, succeeded(2).await);
    assert_eq!(first + second, 3, "three of the busy tenant's four URLs at once, over both its jobs");
    assert_eq!(quiet, 2, "another tenant is not held to it");
    let deferred = a.queue.deferred();
    assert_eq!(deferred.len(), 1, "{deferred:?}");
    let task = a.store.get_task(&deferred[0].1.job_id, deferred[0].1.seq).await.unwrap().unwrap();
    assert_eq!((task.status, task.attempts), (UrlStatus::Queued, 0), "waiting is no attempt");
    let waiting = a.store.waiting(domain::time::now_millis()).await.unwrap();
    assert_eq!((waiting.tenant_cap, waiting.host_busy), (1, 0), "counted as the tenant's wait");
    // The places came back with the results: it goes through when it returns.
    let again = record("w", serde_json::to_value(&deferred[0].1).unwrap(), 1);
    a.handle(event(vec![again]), later()).await;
    assert_eq!(succeeded(0).await + succeeded(1).await, 4);
}

use aws::exports::MemoryExports;
use aws::notify::MemoryPublisher;
use aws::queue::MemoryQueue;
use aws_lambda_events::event::sqs::SqsMessage;
use domain::lifecycle::Outcome;
use domain::{Analysis, CleanUrl, ErrorKind, Job, JobSettings, JobStatus, Strategy, Tenant};
use serde_json::json;
use store::MemoryStore;
use store::prelude::*;

use super::*;

type TestExporter = Exporter<MemoryStore, MemoryExports, MemoryPublisher, MemoryQueue>;

fn exporter() -> TestExporter {
    Exporter {
        store: MemoryStore::new(),
        files: MemoryExports::default(),
        events: MemoryPublisher::default(),
        queue: MemoryQueue::default(),
        callback_queue: Some("q/callback".into()),
    }
}

/// A job of `n` URLs, every third failed, the rest measured; finished when `finish` says so.
async fn job(exporter: &TestExporter, n: u32, finish: bool) -> Job {
    let urls: Vec<CleanUrl> =
        (0..n).map(|i| CleanUrl::parse(&format!("https://site.example/{i}"), Default::default()).unwrap()).collect();
    let job = Job::new(Tenant("t".into()), "n".into(), JobSettings::default(), u64::from(n), 0);
    let store = &exporter.store;
    store.create_job(&job, &urls).await.unwrap();
    for seq in 0..n {
        if !finish && seq == n - 1 {
            break;
        }
        let outcome = if seq % 3 == 2 {
            Outcome::Failed { kind: ErrorKind::Http5xx, reason: "HTTP 503".into(), analysis: None }
        } else {
            let metrics = json!({"ttfb_ms": 100 + seq, "status_code": 200});
            Outcome::Succeeded(Analysis {
                engine: "psi".into(),
                strategy: Strategy::Mobile,
                score: Some(f64::from(50 + seq)),
                metrics: metrics.as_object().unwrap().clone(),
                cached_from: None,
            })
        };
        store.record_outcome(&job.id, seq, &outcome, None, 2).await.unwrap();
    }
    store.count_recorded(2).await.unwrap();
    if finish {
        assert!(
            store
                .transition_job(&Job { status: JobStatus::Pending, ..job.clone() }, JobStatus::CompletedWithErrors, 3)
                .await
                .unwrap()
        );
    }
    store.get_job(&job.id).await.unwrap().unwrap()
}

#[tokio::test]
async fn a_finished_job_gets_its_files_and_report_once() {
    let exporter = exporter();
    let job = job(&exporter, 9, true).await;
    assert_eq!(
        exporter.export(&job.id, 10).await.unwrap(),
        Exported::Written { urls: 9, bytes: exported_bytes(&exporter, &job) }
    );

    let (csv, content_type) = exporter.files.object(&ExportFormat::Csv.object_key(&job.id)).unwrap();
    assert_eq!(content_type, "text/csv; charset=utf-8");
    let csv = String::from_utf8(csv).unwrap();
    assert_eq!(csv.split("\r\n").filter(|l| !l.is_empty()).count(), 10, "a header and 9 rows");
    assert!(csv.starts_with("url,status,"), "{csv}");
    let (jsonl, _) = exporter.files.object(&ExportFormat::Jsonl.object_key(&job.id)).unwrap();
    let rows: Vec<ResultRow> =
        String::from_utf8(jsonl).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 9);
    assert_eq!(rows[4].url, "https://site.example/4");
    assert_eq!(rows[4].score, Some(54.0));

    let report = exporter.store.get_report(&job.id).await.unwrap().unwrap();
    assert!(report.summary.complete);
    assert_eq!((report.summary.by_status["succeeded"], report.summary.by_status["failed"]), (6, 3));
    assert_eq!(report.summary.errors_by_kind["http_5xx"], 3);
    assert_eq!(report.summary.score.as_ref().map(|s| s.count), Some(6));
    assert_eq!(report.written_at, 10);
    assert_eq!(report.export(ExportFormat::Csv).map(|f| (f.rows, f.bytes)), Some((9, csv.len() as u64)));
    let digest_key = report.digest.clone().expect("a digest for comparisons");
    let (digest, _) = exporter.files.object(&digest_key).unwrap();
    let digest: Digest = serde_json::from_slice(&digest).unwrap();
    assert_eq!(digest.rows.len(), 9);
    assert!(digest.rows.windows(2).all(|w| w[0].url < w[1].url), "sorted by URL");
    let four = digest.rows.iter().find(|r| r.url == "https://site.example/4").unwrap();
    assert_eq!(four.headline.as_ref().map(|h| h.values["score"]), Some(54.0));
    // Each URL's place, so a sorted listing reads only its page's URLs.
    let seqs: Vec<Option<u32>> = digest.rows.iter().map(|r| r.seq).collect();
    let places: Vec<Option<u32>> =
        digest.rows.iter().map(|r| r.url.trim_start_matches("https://site.example/").parse().ok()).collect();
    assert_eq!(seqs, places);

    // The job's URLs (analysed at t = 2 ms) are counted on their tenant's day, once.
    let days = exporter.store.day_tallies(&job.tenant, "1970-01-01", "1970-01-01").await.unwrap();
    assert_eq!(days["1970-01-01"].succeeded + days["1970-01-01"].failed, 9);

    assert_eq!(exporter.export(&job.id, 20).await.unwrap(), Exported::AlreadyWritten);
    let again = exporter.store.day_tallies(&job.tenant, "1970-01-01", "1970-01-01").await.unwrap();
    assert_eq!(again, days, "counted once");
    assert_eq!(exporter.store.get_report(&job.id).await.unwrap().unwrap().written_at, 10, "written once");
}

fn exported_bytes(exporter: &TestExporter, job: &Job) -> u64 {
    ExportFormat::ALL
        .iter()
        .map(|f| f.object_key(&job.id))
        .chain([Digest::object_key(&job.id)])
        .filter_map(|key| exporter.files.object(&key))
        .map(|(b, _)| b.len() as u64)
        .sum()
}

#[tokio::test]
async fn a_running_or_missing_job_is_left_alone() {
    let exporter = exporter();
    let running = job(&exporter, 3, false).await;
    assert_eq!(exporter.export(&running.id, 10).await.unwrap(), Exported::Skipped("the job has not finished"));
    assert_eq!(exporter.export(&JobId::generate(), 10).await.unwrap(), Exported::Skipped("no such job"));
    assert!(exporter.files.is_empty());
    assert_eq!(exporter.store.get_report(&running.id).await.unwrap(), None);
}

fn message(id: &str, body: &str) -> SqsMessage {
    let mut message = SqsMessage::default();
    message.message_id = Some(id.into());
    message.body = Some(body.into());
    message
}

#[tokio::test]
async fn only_the_messages_that_failed_are_delivered_again() {
    let exporter = exporter();
    let job = job(&exporter, 2, true).await;
    let good = serde_json::to_string(&ExportRequest { batch_job_id: job.id.clone() }).unwrap();
    let mut event = SqsEvent::default();
    event.records = vec![message("a", &good), message("b", "{not json")];
    let response = exporter.handle(event).await;
    let failed: Vec<_> = response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect();
    assert_eq!(failed, ["b"]);
    assert!(exporter.store.get_report(&job.id).await.unwrap().is_some());

    exporter.store.set_unavailable(true);
    let mut event = SqsEvent::default();
    event.records = vec![message("c", &good)];
    assert_eq!(exporter.handle(event).await.batch_item_failures.len(), 1, "a store outage is retried");
}

/// An hourly monitor of `urls` URLs with `budgets`, calling `callback` back if given, kept.
async fn monitor_of(
    exporter: &TestExporter,
    budgets: serde_json::Value,
    urls: u32,
    callback: Option<&str>,
) -> domain::monitor::Monitor {
    let schedule = domain::schedule::Schedule::parse("rate(1 hour)").unwrap();
    let budgets = domain::budget::parse_budgets(&budgets).unwrap();
    let settings = JobSettings { callback_url: callback.map(str::to_owned), ..JobSettings::default() };
    let monitor = domain::monitor::Monitor::new(
        Tenant("t".into()),
        "m".into(),
        (&schedule, "rate(1 hour)".into()),
        settings,
        None,
        urls,
        budgets,
        true,
        0,
    );
    exporter.store.create_monitor(&monitor, &[]).await.unwrap();
    monitor
}

/// A finished run of `monitor` whose URL `i` measured `ttfb[i]`.
async fn run_of(exporter: &TestExporter, monitor: &domain::monitor::Monitor, ttfb: &[f64]) -> Job {
    let urls: Vec<CleanUrl> = (0..ttfb.len())
        .map(|i| CleanUrl::parse(&format!("https://site.example/{i}"), Default::default()).unwrap())
        .collect();
    let job = Job::new(monitor.tenant.clone(), "run".into(), monitor.settings.clone(), ttfb.len() as u64, 0)
        .of_monitor(monitor.id.clone(), JobId::generate());
    let store = &exporter.store;
    store.create_job(&job, &urls).await.unwrap();
    for (seq, ms) in (0..).zip(ttfb) {
        let analysis = Analysis {
            engine: "psi".into(),
            strategy: Strategy::Mobile,
            score: Some(90.0),
            metrics: json!({"ttfb_ms": ms}).as_object().unwrap().clone(),
            cached_from: None,
        };
        store.record_outcome(&job.id, seq, &Outcome::Succeeded(analysis), None, 2).await.unwrap();
    }
    store.count_recorded(2).await.unwrap();
    let job = store.get_job(&job.id).await.unwrap().unwrap();
    assert!(
        store
            .transition_job(&Job { status: JobStatus::Pending, ..job.clone() }, JobStatus::Completed, 3)
            .await
            .unwrap()
    );
    job
}

#[tokio::test]
async fn a_monitors_budget_is_announced_once_when_it_breaks_and_once_when_it_recovers() {
    let exporter = exporter();
    let budgets = json!([{"metric": "ttfb_ms", "max": 500}]);
    let monitor = monitor_of(&exporter, budgets, 2, Some("http://192.0.2.1/hook")).await;
    let announced = |exporter: &TestExporter| {
        exporter
            .events
            .published()
            .iter()
            .map(|n| (n.detail_type, n.detail["url"].as_str().unwrap_or("?").to_owned()))
            .collect::<Vec<_>>()
    };
    let fast = run_of(&exporter, &monitor, &[20.0, 30.0]).await;
    exporter.export(&fast.id, 10).await.unwrap();
    assert!(announced(&exporter).is_empty(), "within budget from the start: nothing to say");
    let slow = run_of(&exporter, &monitor, &[20.0, 900.0]).await;
    exporter.export(&slow.id, 20).await.unwrap();
    assert_eq!(announced(&exporter), [("Budget Breached", "https://site.example/1".to_owned())]);
    let still = run_of(&exporter, &monitor, &[20.0, 950.0]).await;
    exporter.export(&still.id, 30).await.unwrap();
    assert_eq!(announced(&exporter).len(), 1, "never again while it holds");
    let fixed = run_of(&exporter, &monitor, &[20.0, 40.0]).await;
    exporter.export(&fixed.id, 40).await.unwrap();
    assert_eq!(announced(&exporter)[1], ("Budget Recovered", "https://site.example/1".to_owned()));
    let standing = exporter.store.budget_standings(&monitor.tenant, &monitor.id).await.unwrap();
    let one = standing.iter().find(|s| s.url == "https://site.example/1").unwrap();
    assert_eq!((one.state, one.since, &one.job_id), (domain::budget::BudgetState::Within, 40, &fixed.id));
    let published = exporter.events.published();
    assert_eq!(published[0].resource, format!("speedbatch:monitor/{}", monitor.id));
    assert_eq!(published[0].detail["value"], 900.0);
    // The monitor's callback hears the same two changes, each about its standing.
    let called_back: Vec<(String, CallbackRequest)> = exporter
        .queue
        .posted()
        .into_iter()
        .map(|(queue, body)| (queue, serde_json::from_value(body).unwrap()))
        .collect();
    assert_eq!(called_back.len(), 2, "{called_back:?}");
    let (queue, breached) = &called_back[0];
    assert_eq!((queue.as_str(), breached.event.as_str()), ("q/callback", "Budget Breached"));
    assert_eq!((&breached.batch_job_id, &breached.detail), (&slow.id, &published[0].detail));
    let at = breached.standing.as_ref().unwrap();
    assert_eq!((&at.monitor_id, at.url.as_str()), (&monitor.id, "https://site.example/1"));
    assert_eq!(called_back[1].1.event, "Budget Recovered");
}

#[tokio::test]
async fn a_budget_change_whose_export_was_interrupted_is_announced_again_not_kept_again() {
    let exporter = exporter();
    let monitor = monitor_of(&exporter, json!([{"metric": "ttfb_ms", "max": 500}]), 1, None).await;
    let slow = run_of(&exporter, &monitor, &[900.0]).await;
    exporter.export(&slow.id, 20).await.unwrap();
    // As if the report had not been written: the message comes back.
    exporter.store.forget_report(&slow.id);
    exporter.export(&slow.id, 25).await.unwrap();
    let announced: Vec<_> =
        exporter.events.published().iter().map(|n| (n.detail_type, n.detail["since"].clone())).collect();
    let since = json!(domain::time::rfc3339(20));
    assert_eq!(
        announced,
        [("Budget Breached", since.clone()), ("Budget Breached", since)],
        "at least once, same state"
    );
    assert!(exporter.queue.posted().is_empty(), "no callback named: none queued");
}

#[tokio::test]
async fn a_10000_url_run_is_checked_in_one_pass_and_only_its_changes_are_kept() {
    let exporter = exporter();
    let budgets = json!([{"metric": "ttfb_ms", "max": 500}, {"metric": "score", "min": 95}]);
    let monitor = monitor_of(&exporter, budgets, 10_000, Some("http://192.0.2.1/hook")).await;
    // Every tenth page slow: 1 000 over the ttfb budget; every page's score (90) under the other.
    let slow: Vec<f64> = (0..10_000).map(|i| if i % 10 == 0 { 900.0 } else { 100.0 }).collect();
    let first = run_of(&exporter, &monitor, &slow).await;
    exporter.export(&first.id, 10).await.unwrap();
    let kept = exporter.store.budget_standings(&monitor.tenant, &monitor.id).await.unwrap();
    assert_eq!(kept.len(), 11_000, "only the URLs over a budget are kept, each once per budget");
    assert_eq!(exporter.events.published().len(), 11_000);
    assert_eq!(exporter.queue.posted().len(), 11_000, "one callback per change");
    // The same again: nothing changed, nothing said.
    let second = run_of(&exporter, &monitor, &slow).await;
    exporter.export(&second.id, 20).await.unwrap();
    assert_eq!(exporter.events.published().len(), 11_000);
    assert_eq!(exporter.store.budget_standings(&monitor.tenant, &monitor.id).await.unwrap().len(), 11_000);
}

use aws::config::QueueUrls;
use aws::queue::MemoryQueue;
use domain::monitor::{DueTick, Monitor, SkipReason};
use domain::schedule::Schedule;
use domain::tenancy::Limits;
use domain::time::parse_rfc3339;
use domain::{AddressPolicy, CleanUrl, JobSettings, JobStatus, JobUrl, Tenant};
use store::MemoryStore;
use store::prelude::*;

use super::*;

fn at(text: &str) -> Millis {
    parse_rfc3339(text).unwrap()
}

fn scheduler(max_active_jobs: u32) -> Scheduler<MemoryStore, MemoryQueue> {
    let policy = AddressPolicy::STRICT;
    Scheduler {
        store: MemoryStore::new(),
        queue: MemoryQueue::new(),
        settings: SchedulerSettings {
            deployment: Deployment {
                queues: QueueUrls {
                    high: "q/high".into(),
                    normal: "q/normal".into(),
                    low: "q/low".into(),
                    browser: None,
                },
                tenant_limits: Limits { max_active_jobs, ..Limits::DEFAULT },
                max_url_timeout_seconds: 840,
            },
            run_queue: "q/runs".into(),
            policy,
            http: reqwest::Client::new(),
        },
    }
}

/// A monitor of 3 URLs every 15 minutes from 10:00.
async fn every_15_minutes(s: &Scheduler<MemoryStore, MemoryQueue>) -> Monitor {
    let schedule = Schedule::parse("rate(15 minutes)").unwrap();
    let settings = JobSettings { batch_size: 2, ..JobSettings::default() };
    let urls: Vec<JobUrl> = (0..3)
        .map(|i| JobUrl::from(CleanUrl::parse(&format!("https://a.example/{i}"), AddressPolicy::STRICT).unwrap()))
        .collect();
    let monitor = Monitor::new(
        Tenant("acme".into()),
        "pages".into(),
        (&schedule, "rate(15 minutes)".into()),
        settings,
        None,
        3,
        Vec::new(),
        true,
        at("2026-12-04T10:00:00Z"),
    );
    s.store.create_monitor(&monitor, &urls).await.unwrap();
    monitor
}

async fn swept(s: &Scheduler<MemoryStore, MemoryQueue>, now: &str) -> Vec<DueTick> {
    let before = s.queue.posted().len();
    s.sweep(at(now)).await.unwrap();
    s.queue.posted()[before..]
        .iter()
        .map(|(q, body)| {
            assert_eq!(q, "q/runs");
            serde_json::from_value(body.clone()).unwrap()
        })
        .collect()
}

#[tokio::test]
async fn a_tick_runs_when_its_time_comes_as_one_job_however_often_it_is_delivered() {
    let s = scheduler(20);
    let monitor = every_15_minutes(&s).await;
    assert!(swept(&s, "2026-12-04T10:14:59Z").await.is_empty(), "not yet");
    let due = swept(&s, "2026-12-04T10:15:20Z").await;
    assert_eq!(due.len(), 1);
    assert_eq!((due[0].tick, due[0].swept_at), (at("2026-12-04T10:15:00Z"), Some(at("2026-12-04T10:15:20Z"))));

    // Run at the sweep's time, though the real clock is years earlier: the clock tests move.
    let ran = s.run(&due[0], 0).await.unwrap();
    let job_id = monitor.id.job_for_tick(due[0].tick);
    assert_eq!(ran, Ran::Started(job_id.clone()));
    let job = s.store.get_job(&job_id).await.unwrap().unwrap();
    assert_eq!((job.monitor_id.as_ref(), job.counters.total, job.settings.batch_size), (Some(&monitor.id), 3, 2));
    assert_eq!(s.queue.sent().len(), 2, "the first window");
    let settled = s.store.get_monitor(&monitor.tenant, &monitor.id).await.unwrap().unwrap();
    assert_eq!(
        (settled.runs, settled.next_run_at, settled.running_job),
        (1, Some(at("2026-12-04T10:30:00Z")), Some(job_id))
    );

    // The same tick again (a redelivery, a second sweep before the run settled it).
    assert_eq!(s.run(&due[0], 0).await.unwrap(), Ran::AlreadyStarted);
    assert!(swept(&s, "2026-12-04T10:16:00Z").await.is_empty(), "settled: no longer due");
    assert_eq!(s.queue.sent().len(), 2, "nothing sent twice");
}

#[tokio::test]
async fn a_run_never_overlaps_the_previous_one_and_the_skip_is_recorded() {
    let s = scheduler(20);
    let monitor = every_15_minutes(&s).await;
    let first = swept(&s, "2026-12-04T10:15:00Z").await;
    let Ran::Started(job) = s.run(&first[0], 0).await.unwrap() else { panic!("ran") };
    let second = swept(&s, "2026-12-04T10:30:05Z").await;
    assert_eq!(s.run(&second[0], 0).await.unwrap(), Ran::Skipped(SkipReason::PreviousRunning));
    let kept = s.store.get_monitor(&monitor.tenant, &monitor.id).await.unwrap().unwrap();
    assert_eq!((kept.runs, kept.skipped_runs, kept.next_run_at), (1, 1, Some(at("2026-12-04T10:45:00Z"))));
    assert_eq!(
        kept.last_skip.map(|s| (s.tick, s.reason)),
        Some((at("2026-12-04T10:30:00Z"), SkipReason::PreviousRunning))
    );

    // Once it has finished, the next tick runs.
    s.store.request_cancel(&job, 1).await.unwrap();
    let cancelling = s.store.get_job(&job).await.unwrap().unwrap();
    assert!(s.store.transition_job(&cancelling, JobStatus::Cancelled, 2).await.unwrap());
    let third = swept(&s, "2026-12-04T10:45:00Z").await;
    assert!(matches!(s.run(&third[0], 0).await.unwrap(), Ran::Started(_)));
}

#[tokio::test]
async fn after_an_outage_a_missed_tick_runs_once_then_the_grid_resumes() {
    let s = scheduler(20);
    let monitor = every_15_minutes(&s).await;
    // Nothing swept from 10:10 to 11:07: four ticks missed.
    let due = swept(&s, "2026-12-04T11:07:00Z").await;
    assert_eq!(due.len(), 1, "one tick, not four");
    assert!(matches!(s.run(&due[0], 0).await.unwrap(), Ran::Started(_)));
    let kept = s.store.get_monitor(&monitor.tenant, &monitor.id).await.unwrap().unwrap();
    assert_eq!((kept.runs, kept.next_run_at), (1, Some(at("2026-12-04T11:15:00Z"))));
}

#[tokio::test]
async fn a_tenant_over_its_limit_skips_the_tick_and_says_why() {
    let s = scheduler(0);
    let monitor = every_15_minutes(&s).await;
    let due = swept(&s, "2026-12-04T10:15:00Z").await;
    assert_eq!(s.run(&due[0], 0).await.unwrap(), Ran::Skipped(SkipReason::OverLimit));
    let kept = s.store.get_monitor(&monitor.tenant, &monitor.id).await.unwrap().unwrap();
    assert_eq!((kept.runs, kept.skipped_runs, kept.next_run_at), (0, 1, Some(at("2026-12-04T10:30:00Z"))));
    assert!(s.queue.sent().is_empty());
}

#[tokio::test]
async fn events_are_read_as_the_rule_and_the_queue_send_them() {
    let sweep: SchedulerEvent = serde_json::from_value(serde_json::json!({
        "version": "0", "id": "x", "detail-type": "Scheduled Event", "source": "aws.events",
        "time": "2026-12-04T10:15:00Z", "region": "us-east-1", "resources": [], "detail": {}
    }))
    .unwrap();
    assert!(matches!(sweep, SchedulerEvent::Sweep(ref e) if e.time == "2026-12-04T10:15:00Z"));
    let runs: SchedulerEvent = serde_json::from_value(serde_json::json!({"Records": []})).unwrap();
    assert!(matches!(runs, SchedulerEvent::Runs(_)));
}

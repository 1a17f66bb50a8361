//! The reconciler's reads are bounded by the URLs that can be stalled (each job's window), not
//! by the jobs' sizes: the same sweep over a 200-URL job and a 4 000-URL job costs the same
//! requests and about the same read capacity. Counts, never times.

use std::time::Duration;

use aws::RequestCounter;
use aws::notify::MemoryPublisher;
use domain::{CleanUrl, Job, JobSettings, Tenant};
use store::prelude::*;
use testkit::emulator::TestEnv;
use tracker::{SWEEP_BUDGET, Tracker, TrackerSettings};

fn urls(n: usize) -> Vec<CleanUrl> {
    (0..n).map(|i| CleanUrl::parse(&format!("https://site.example/{i}"), Default::default()).unwrap()).collect()
}

/// One sweep over one job of `size` URLs (window 5, every message lost), on a table of its own.
async fn sweep_one_job_of(size: usize) -> (tracker::SweepReport, aws::Counts) {
    aws::telemetry::init();
    let env = TestEnv::new().await;
    let job = Job::new(
        Tenant("sweep".into()),
        "n".into(),
        JobSettings { batch_size: 5, ..JobSettings::default() },
        size as u64,
        1_000,
    );
    env.store().create_job(&job, &urls(size)).await.unwrap();
    let counter = RequestCounter::default();
    let tracker = Tracker {
        store: env.counted_store(&counter),
        queue: env.counted_queue(&counter),
        events: MemoryPublisher::default(),
        settings: TrackerSettings {
            queues: env.queues.clone(),
            reconcile_after: Duration::from_secs(1),
            export_queue: None,
            callback_queue: None,
        },
    };
    let report = tracker.sweep(10_000, SWEEP_BUDGET).await;
    let counts = counter.counts();
    env.cleanup().await;
    (report, counts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweeps_reads_grow_with_its_jobs_windows_not_their_sizes() {
    let (small, small_counts) = sweep_one_job_of(200).await;
    let (big, big_counts) = sweep_one_job_of(4_000).await;
    eprintln!("sweep of a 200-URL job: {small_counts:?}\nsweep of a 4 000-URL job: {big_counts:?}");
    for report in [&small, &big] {
        assert_eq!((report.jobs_checked, report.urls_resent, report.errors, report.complete), (1, 5, 0, true));
    }
    // Per sweep: the cursor and the job (GetItem), the active jobs (Query), the job's
    // open URLs — its window's frontiers — with the URLs before them (one BatchGetItem), the
    // lists of those with no item yet (one more), a note per URL sent again and the cursor
    // (UpdateItem), one SendMessageBatch.
    let expected = [
        ("DynamoDB.GetItem", 2),
        ("DynamoDB.Query", 1),
        ("DynamoDB.BatchGetItem", 2),
        ("DynamoDB.UpdateItem", 6),
        ("SQS.SendMessageBatch", 1),
    ]
    .map(|(operation, n)| (operation.to_owned(), n))
    .into_iter()
    .collect();
    assert_eq!(small_counts.requests, expected);
    assert_eq!(big_counts.requests, expected, "20 times the URLs, not one request more");
    assert!(big_counts.read_units > 0.0, "DynamoDB reports the read capacity used: {big_counts:?}");
    assert!(
        big_counts.read_units <= small_counts.read_units + 1.0,
        "reads of the window only: {} against {} units",
        big_counts.read_units,
        small_counts.read_units
    );
}

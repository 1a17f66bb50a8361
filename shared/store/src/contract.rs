//! The store contract: one set of cases every store must pass, run against the in-memory
//! store by this crate's tests and against the DynamoDB store on the emulator by the
//! integration tests (`store_contract!` writes one test per case for a fixture).
//!
//! The cases drive the trait methods only and check what they return and what the store then
//! holds: duplicate results, cancel races, the sliding window, places taken per set, batches
//! with a duplicate member, and counters that add up. A store whose conditions drift
//! from `domain::lifecycle` fails here.

// A case fails by panicking with what it expected, as a test does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::time::Duration;

use domain::lifecycle::{Cancel, Delivery, Outcome, Recorded};
use domain::time::Millis;
use domain::{
    AddressPolicy, Analysis, CacheKey, CachedFrom, CleanUrl, EngineKind, Error, ErrorKind, Job, JobId, JobSettings,
    JobStatus, JobUrl, LabelFilter, Strategy, Tags, TaskFilter, Tenant, UrlStatus,
};

use domain::places::{Full, Lease, Place};
use domain::tenancy::{Limit, LimitOverrides, Limits, Usage};
use domain::waits::WaitReason;
use domain::window::Release;

use crate::prelude::*;
use crate::{JobStore, OutcomeRecord, Sighting};

/// A store to run the cases on, and what to do with it afterwards.
pub trait Fixture: Sized {
    type Store: JobStore;

    fn store(&self) -> &Self::Store;

    /// Hands the results recorded since the last call to the tracker's count
    /// ([`crate::Tracking::count_results`]), as the table's stream does in production.
    fn count_results(&self) -> impl Future<Output = ()>;

    /// Removes what the fixture created (a table, for instance).
    fn finish(self) -> impl Future<Output = ()>;
}

/// One test per case for the fixture that `$setup` (an expression awaited in each test)
/// builds: `store::store_contract!(my_fixture());`.
#[macro_export]
macro_rules! store_contract {
    ($setup:expr) => {
        $crate::store_contract!(@cases $setup;
            a_new_job_releases_only_its_first_window,
            a_urls_reference_and_labels_are_kept_and_listings_filter_by_them,
            a_long_jobs_urls_page_in_order_with_their_results,
            listings_filter_by_the_field_data_verdict,
            a_delivery_finds_its_url_and_job_and_the_first_starts_the_job,
            concurrent_results_of_one_url_count_once,
            a_result_is_counted_once_and_finishes_the_url,
            a_failure_keeps_its_reason_and_what_was_measured,
            a_result_releases_the_next_url_of_the_window,
            a_retry_keeps_its_error_and_attempt_on_the_unfinished_url,
            a_cancelling_job_starts_no_queued_url,
            bulk_cancellation_takes_every_unfinished_url_and_refuses_later_results,
            a_cancel_request_answers_for_every_status,
            job_moves_follow_the_lifecycle,
            a_batch_of_results_with_a_duplicate_writes_the_others,
            counters_add_up_through_a_whole_job,
            stalled_urls_are_found_and_sent_once_per_period,
            a_fresh_result_is_reused_within_its_tenant_only,
            reuse_finds_its_variant_among_the_urls_newest_results_only,
            a_urls_history_holds_its_new_results_oldest_first_for_its_tenant_only,
            jobs_are_listed_newest_first_for_their_tenant_only,
            a_deleted_job_takes_its_urls_with_it,
            a_report_is_kept_beside_its_job_and_goes_with_it,
            a_finished_job_adds_to_its_tenants_days_once,
            a_monitor_is_kept_with_its_urls_for_its_tenant_only,
            a_monitor_is_replaced_only_as_it_was_read,
            a_due_tick_is_settled_once,
            budget_standings_are_kept_per_url_and_budget,
            a_budget_callback_is_kept_on_the_standing_it_announces,
            keys_and_callback_secrets_are_kept_per_tenant,
            a_callback_delivery_is_kept_on_its_job_latest_attempt_first,
            the_sweep_cursor_is_kept_until_cleared,
            a_tenant_is_held_to_its_limits_and_a_finished_job_frees_its_place,
            a_host_has_at_most_its_limit_of_urls_at_once_and_every_place_comes_back,
            a_tenant_has_at_most_max_in_flight_urls_at_once_across_its_jobs,
            waiting_urls_are_counted_by_reason_until_they_are_due_back,
            a_live_subscription_reaches_its_jobs_watchers_for_its_tenant_only,
            only_the_newest_watch_generation_takes_a_jobs_mark_off,
            an_all_jobs_subscription_follows_running_and_new_jobs_of_its_tenant,
            a_connection_holds_a_bounded_number_of_subscriptions_until_it_closes,
            a_pages_urls_are_read_by_position_in_the_order_asked,
        );
    };
    (@cases $setup:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let fixture = $setup.await;
                $crate::contract::$case(&fixture).await;
                $crate::contract::Fixture::finish(fixture).await;
            }
        )+
    };
}

/// The in-memory store as a fixture.
pub struct Memory(pub crate::MemoryStore);

impl Fixture for Memory {
    type Store = crate::MemoryStore;

    fn store(&self) -> &crate::MemoryStore {
        &self.0
    }

    async fn count_results(&self) {
        self.0.count_recorded(T0).await.expect("count the results");
    }

    async fn finish(self) {}
}

pub async fn memory() -> Memory {
    Memory(crate::MemoryStore::new())
}

const T0: Millis = 1_800_000_000_000;

fn urls(n: usize) -> Vec<CleanUrl> {
    (0..n)
        .map(|i| {
            CleanUrl::parse(&format!("https://site.example/page/{i}"), AddressPolicy::STRICT).expect("a clean URL")
        })
        .collect()
}

fn job_urls(n: usize) -> Vec<JobUrl> {
    urls(n).into_iter().map(JobUrl::from).collect()
}

async fn job_of<S: JobStore>(store: &S, tenant: &str, total: usize, batch_size: u32) -> Job {
    let settings = JobSettings { batch_size, ..JobSettings::default() };
    let job = Job::new(Tenant(tenant.into()), "contract".into(), settings, total as u64, T0);
    store.create_job(&job, &urls(total)).await.expect("create the job");
    job
}

async fn job<S: JobStore>(store: &S, id: &JobId) -> Job {
    store.get_job(id).await.expect("read the job").expect("the job exists")
}

async fn status<S: JobStore>(store: &S, id: &JobId, seq: u32) -> UrlStatus {
    store.get_task(id, seq).await.expect("read the task").expect("the task exists").status
}

fn analysis(score: f64) -> Analysis {
    Analysis {
        engine: EngineKind::Psi.as_str().into(),
        strategy: Strategy::Mobile,
        score: Some(score),
        metrics: serde_json::Map::from_iter([("ttfb_ms".to_owned(), serde_json::json!(score))]),
        cached_from: None,
    }
}

fn succeeded() -> Outcome {
    Outcome::Succeeded(analysis(90.0))
}

/// The URLs of the job that the reconciler would send again at `before`, as it reads them.
async fn stalled_seqs<S: JobStore>(store: &S, id: &JobId, before: Millis) -> Vec<u32> {
    let stalled = store.open_urls(&job(store, id).await, before, 100).await.expect("stalled URLs").stalled;
    stalled.iter().map(|t| t.seq).collect()
}

/// How URL `seq` of job `id` and its job look to a delivery.
async fn sighting<S: JobStore>(store: &S, id: &JobId, seq: u32) -> Option<Sighting> {
    let mut found = store.look_up(&[(id.clone(), seq)]).await.expect("look up");
    found.pop().expect("one answer per key")
}

/// The result of URL `seq` of job `id` at attempt `attempt`, giving back `places`.
fn outcome_record(id: &JobId, seq: u32, attempt: u32, outcome: Outcome, places: Vec<Lease>) -> OutcomeRecord {
    OutcomeRecord { job_id: id.clone(), seq, attempt, outcome, cache_key: None, history: None, places }
}

/// Every URL is in exactly one counter, and each counter holds the URLs in its status.
/// The job's counters, once the tracker has counted every result, say what its URLs' statuses
/// say.
async fn assert_counters_match_tasks<F: Fixture>(fx: &F, id: &JobId) {
    fx.count_results().await;
    let store = fx.store();
    let job = job(store, id).await;
    let tasks = store.list_tasks(id, &TaskFilter::default(), 10_000, None).await.expect("list").items;
    let count = |status: UrlStatus| tasks.iter().filter(|t| t.status == status).count() as u64;
    let c = job.counters;
    assert_eq!(c.queued + c.in_progress + c.succeeded + c.failed + c.cancelled, c.total, "{c:?}");
    assert_eq!(
        (c.queued, c.in_progress, c.succeeded, c.failed, c.cancelled),
        (
            count(UrlStatus::Queued),
            count(UrlStatus::Processing),
            count(UrlStatus::Succeeded),
            count(UrlStatus::Failed),
            count(UrlStatus::Cancelled)
        ),
        "counters against the URLs' own statuses"
    );
}

pub async fn a_new_job_releases_only_its_first_window<F: Fixture>(fx: &F) {
    let store = fx.store();
    let j = job_of(store, "acme", 5, 2).await;
    let stored = job(store, &j.id).await;
    assert_eq!((stored.status, stored.counters.total, stored.counters.queued), (JobStatus::Pending, 5, 5));
    let page = store.list_tasks(&j.id, &TaskFilter::default(), 3, None).await.expect("list");
    assert_eq!(page.items.iter().map(|t| t.seq).collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!(page.next, Some(2));
    // Released at submission (T0): the first window, and only it, is open.
    assert_eq!(stalled_seqs(store, &j.id, T0 + 1).await, [0, 1]);
    assert_eq!(stalled_seqs(store, &j.id, T0).await, Vec::<u32>::new(), "not before they were");
    let rest = store.list_tasks(&j.id, &TaskFilter::default(), 3, page.next).await.expect("list");
    assert_eq!((rest.items.iter().map(|t| t.seq).collect::<Vec<_>>(), rest.next), (vec![3, 4], None));
    assert_eq!(rest.items[0].url, "https://site.example/page/3");
}

pub async fn a_urls_reference_and_labels_are_kept_and_listings_filter_by_them<F: Fixture>(fx: &F) {
    let store = fx.store();
    let job = Job::new(Tenant("acme".into()), "labels".into(), JobSettings::default(), 3, T0);
    let tags = |reference: &str, city: Option<&str>| Tags {
        reference: Some(reference.into()),
        labels: city.map(|city| [("city".to_owned(), city.to_owned())].into()).unwrap_or_default(),
    };
    let given = [tags("r0", Some("Lyon")), tags("r1", Some("Paris")), tags("r2", None)];
    let submitted: Vec<JobUrl> =
        urls(3).into_iter().zip(given.clone()).map(|(url, tags)| JobUrl { url, tags }).collect();
    store.create_job_within(&job, &submitted, &Limits::UNLIMITED).await.expect("write").expect("fits");
    let all = store.list_tasks(&job.id, &TaskFilter::default(), 10, None).await.expect("list").items;
    assert_eq!(all.into_iter().map(|t| t.tags).collect::<Vec<_>>(), given);
    for (label, status, expected) in [
        ("city", None, vec![0, 1]),
        ("city:Paris", None, vec![1]),
        ("city:Rome", None, vec![]),
        ("country", None, vec![]),
        ("city:Lyon", Some(UrlStatus::Queued), vec![0]),
        ("city:Lyon", Some(UrlStatus::Succeeded), vec![]),
    ] {
        let filter = TaskFilter { status, label: Some(LabelFilter::parse(label).expect("a filter")), field: None };
        let page = store.list_tasks(&job.id, &filter, 10, None).await.expect("list");
        assert_eq!(page.items.iter().map(|t| t.seq).collect::<Vec<_>>(), expected, "{label} {status:?}");
    }
    // A URL's changes keep what was submitted with it.
    store.record_outcome(&job.id, 1, &Outcome::Succeeded(analysis(80.0)), None, T0 + 1).await.expect("record");
    store.record_retry(&job.id, 0, ErrorKind::Timeout, "slow", 1, T0 + 2).await.expect("retry");
    let all = store.list_tasks(&job.id, &TaskFilter::default(), 10, None).await.expect("list").items;
    assert_eq!(
        all.iter().map(|t| (t.tags.clone(), t.url.as_str())).collect::<Vec<_>>(),
        given
            .iter()
            .cloned()
            .zip(["https://site.example/page/0", "https://site.example/page/1", "https://site.example/page/2"])
            .collect::<Vec<_>>()
    );
    let paris = TaskFilter {
        status: Some(UrlStatus::Succeeded),
        label: Some(LabelFilter::parse("city:Paris").expect("a filter")),
        field: None,
    };
    let page = store.list_tasks(&job.id, &paris, 10, None).await.expect("list");
    assert_eq!(page.items.iter().map(|t| (t.seq, t.tags.reference.as_deref())).collect::<Vec<_>>(), [(1, Some("r1"))]);
}

pub async fn a_long_jobs_urls_page_in_order_with_their_results<F: Fixture>(fx: &F) {
    let store = fx.store();
    let j = job_of(store, "acme", 120, 10).await;
    for seq in [49, 50, 119] {
        store.record_outcome(&j.id, seq, &Outcome::Succeeded(analysis(70.0)), None, T0 + 1).await.expect("record");
    }
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.list_tasks(&j.id, &TaskFilter::default(), 50, after).await.expect("list");
        assert!(page.items.len() <= 50);
        seen.extend(page.items.iter().map(|t| (t.seq, t.status, t.url.clone())));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let expected: Vec<(u32, UrlStatus, String)> = (0..120)
        .map(|seq| {
            let status = if [49, 50, 119].contains(&seq) { UrlStatus::Succeeded } else { UrlStatus::Queued };
            (seq, status, format!("https://site.example/page/{seq}"))
        })
        .collect();
    assert_eq!(seen, expected, "every URL once, in order, each as it stands");
    let done = TaskFilter::status(UrlStatus::Succeeded);
    let first = store.list_tasks(&j.id, &done, 2, None).await.expect("list");
    assert_eq!((first.items.iter().map(|t| t.seq).collect::<Vec<_>>(), first.next), (vec![49, 50], Some(50)));
    let rest = store.list_tasks(&j.id, &done, 2, first.next).await.expect("list");
    assert_eq!((rest.items.iter().map(|t| t.seq).collect::<Vec<_>>(), rest.next), (vec![119], None));
    let queued = store.list_tasks(&j.id, &TaskFilter::status(UrlStatus::Queued), 1_000, None).await.expect("list");
    assert_eq!((queued.items.len(), queued.next), (117, None));
    let statuses = store.task_statuses(&job(store, &j.id).await).await.expect("statuses");
    assert_eq!(statuses.len(), 120, "every URL, with an item or not");
    assert_eq!(statuses.iter().filter(|(_, s)| *s == UrlStatus::Succeeded).count(), 3);
}

pub async fn listings_filter_by_the_field_data_verdict<F: Fixture>(fx: &F) {
    let store = fx.store();
    let j = job_of(store, "acme", 5, 5).await;
    let field = |pairs: &[(&str, &str)]| {
        let mut analysis = analysis(50.0);
        analysis.metrics.extend(pairs.iter().map(|(k, v)| ((*k).to_owned(), serde_json::json!(v))));
        Outcome::Succeeded(analysis)
    };
    let outcomes = [
        field(&[("field_status", "available"), ("field_overall_category", "poor")]),
        field(&[("field_status", "available"), ("field_overall_category", "good")]),
        field(&[("field_status", "unavailable")]),
        // Field data without a verdict (no CLS), and a lab result whose job asked for none.
        field(&[("field_status", "available")]),
        succeeded(),
    ];
    for (seq, outcome) in (0..).zip(outcomes) {
        store.record_outcome(&j.id, seq, &outcome, None, T0 + 1).await.expect("record");
    }
    for (filter, expected) in
        [("poor", vec![0]), ("good", vec![1]), ("needs_improvement", vec![]), ("unavailable", vec![2, 3])]
    {
        let filter = TaskFilter { field: Some(filter.parse().expect("a filter")), ..TaskFilter::default() };
        let page = store.list_tasks(&j.id, &filter, 10, None).await.expect("list");
        assert_eq!(page.items.iter().map(|t| t.seq).collect::<Vec<_>>(), expected, "{filter:?}");
        let with_status = TaskFilter { status: Some(UrlStatus::Failed), ..filter };
        assert!(store.list_tasks(&j.id, &with_status, 10, None).await.expect("list").items.is_empty());
    }
}

pub async fn a_delivery_finds_its_url_and_job_and_the_first_starts_the_job<F: Fixture>(fx: &F) {
    let store = fx.store();
    let j = job_of(store, "acme", 3, 3).await;
    let other = job_of(store, "acme", 1, 1).await;
    // URL 0 twice: two copies of one message in a batch.
    let keys = [
        (j.id.clone(), 0),
        (j.id.clone(), 9),
        (other.id.clone(), 0),
        (JobId::generate(), 0),
        (j.id.clone(), 1),
        (j.id.clone(), 0),
    ];
    let found = store.look_up(&keys).await.expect("look up");
    let queued = Sighting { task: UrlStatus::Queued, job: JobStatus::Pending, started: false };
    assert_eq!(found, [Some(queued), None, Some(queued), None, Some(queued), Some(queued)], "one per key, in order");
    assert_eq!(queued.delivery(), Delivery::Analyse);
    store.start_job(&j.id, T0 + 10).await.expect("start");
    store.start_job(&j.id, T0 + 20).await.expect("start again");
    let started = job(store, &j.id).await;
    assert_eq!((started.status, started.started_at), (JobStatus::Pending, Some(T0 + 10)), "the first start stays");
    assert_eq!(sighting(store, &j.id, 0).await.map(|s| s.started), Some(true));
    assert_eq!(
        (started.progress().queued, started.progress().in_progress),
        (0, 3),
        "its window is in progress once it has started"
    );
    assert_eq!(job(store, &other.id).await.started_at, None, "another job is not started");
    assert_eq!(
        store.get_task(&j.id, 0).await.expect("read").expect("exists").status,
        UrlStatus::Queued,
        "nothing written"
    );
}

pub async fn concurrent_results_of_one_url_count_once<F: Fixture>(fx: &F) {
    let store = fx.store();
    let j = job_of(store, "acme", 1, 1).await;
    // Two deliveries of one message analyse it at once: the first result written counts.
    let outcome = succeeded();
    let results = futures::future::join_all((0..10).map(|_| store.record_outcome(&j.id, 0, &outcome, None, T0))).await;
    let results: Vec<Recorded> = results.into_iter().map(|r| r.expect("record")).collect();
    assert_eq!(results.iter().filter(|r| **r == Recorded::Counted).count(), 1, "{results:?}");
    fx.count_results().await;
    let c = job(store, &j.id).await.counters;
    assert_eq!((c.queued, c.succeeded), (0, 1));
    assert_counters_match_tasks(fx, &j.id).await;
}

pub async fn a_result_is_counted_once_and_finishes_the_url<F: Fixture>(fx: &F) {
    let store = fx.store();
    let j = job_of(store, "acme", 2, 2).await;
    let first = store.record(&outcome_record(&j.id, 0, 2, succeeded(), Vec::new()), T0 + 100).await.expect("record");
    let second = store.record_outcome(&j.id, 0, &succeeded(), None, T0 + 200).await.expect("record");
    assert_eq!((first, second), (Recorded::Counted, Recorded::Duplicate));
    let task = store.get_task(&j.id, 0).await.expect("read").expect("exists");
    assert_eq!((task.status, task.analyzed_at, task.attempts), (UrlStatus::Succeeded, Some(T0 + 100), 2));
    assert_eq!(task.analysis.and_then(|a| a.score), Some(90.0));
    assert_eq!(job(store, &j.id).await.counters.queued, 2, "counted by the tracker, from the stream");
    fx.count_results().await;
    fx.count_results().await;
    let job = job(store, &j.id).await;
    assert_eq!((job.counters.succeeded, job.counters.queued), (1, 1), "once");
    let late = sighting(store, &j.id, 0).await.expect("there");
    assert_eq!(
        (late.task, late.delivery()),
        (UrlStatus::Succeeded, Delivery::Duplicate),
        "a late delivery does nothing"
    );
    assert_counters_match_tasks(fx, &j.id).await;
}

pub async fn a_failure_keeps_its_reason_and_what_was_measured<F: Fixture>(fx: &F) {
    let store = fx.store();
    let j = job_of(store, "acme", 1, 1).await;
    let outcome = Outcome::Failed {
        kind: ErrorKind::Http4xx,
        reason: "HTTP 404 Not Found".into(),
        analysis: Some(analysis(12.0)),
    };
    assert_eq!(store.record_outcome(&j.id, 0, &outcome, None, T0 + 1).await.expect("record"), Recorded::Counted);
    let task = store.get_task(&j.id, 0).await.expect("read").expect("exists");
    assert_eq!((task.status, task.error_kind), (UrlStatus::Failed, Some(ErrorKind::Http4xx)));
    assert_eq!(task.error.as_deref(), Some("HTTP 404 Not Found"));
    assert_eq!(task.analysis.and_then(|a| a.score), Some(12.0));
    fx.count_results().await;
    assert_eq!(job(store, &j.id).await.counters.failed, 1);
}

pub async fn a_result_releases_the_next_url_of_the_window<F: Fixture>(fx: &F) {
    let store = fx.store();
    let j = job_of(store, "acme", 4, 2).await;
    let release = j.window().release_after(0);
    assert_eq!(release, Some(Release { next: 2, chain: 0 }));
    store.record_outcome(&j.id, 0, &succeeded(), None, T0 + 50).await.expect("record");
    fx.count_results().await;
    // URL 1 was released at submission, URL 2 when URL 0 finished; URL 3 waits for URL 1.
    assert_eq!(stalled_seqs(store, &j.id, T0 + 50).await, [1], "URL 2 entered the window at T0 + 50");
    assert_eq!(stalled_seqs(store, &j.id, T0 + 51).await, [1, 2], "one release each: URL 3 still waits");
    assert_eq!(store.get_task(&j.id, 2).await.expect("read").expect("exists").status, UrlStatus::Queued);
    let urls = store.task_urls(&[(j.id.clone(), 2), (j.id.clone(), 3), (j.id.clone(), 9)]).await.expect("urls");
    assert_eq!(urls.len(), 2, "what exists");
    assert_eq!(urls[&(j.id.clone(), 2)], "https://site.example/page/2");
}

pub async fn a_retry_keeps_its_error_and_attempt_on_the_unfinished_url<F: Fixture>(fx: &F) {
    let store = fx.store();
    let j = job_of(store, "acme", 1, 1).await;
    store.record_retry(&j.id, 0, ErrorKind::Http5xx, "HTTP 503 Service Unavailable", 1, T0 + 10).await.expect("retry");
    let task = store.get_task(&j.id, 0).await.expect("read").expect("exists");
    assert_eq!((task.status, task.attempts), (UrlStatus::Queued, 1));
    assert_eq!(
        (task.error.as_deref(), task.error_kind),
        (Some("HTTP 503 Service Unavailable"), Some(ErrorKind::Http5xx))
    );
    assert_eq!(sighting(store, &j.id, 0).await.map(|s| s.delivery()), Some(Delivery::Analyse), "tried again");
    store.record(&outcome_record(&j.id, 0, 2, succeeded(), Vec::new()), T0 + 20).await.expect("record");
    store.record_retry(&j.id, 0, ErrorKind::Timeout, "late", 3, T0 + 30).await.expect("a retry after the end");
    let task = store.get_task(&j.id, 0).await.expect("read").expect("exists");
    assert_eq!(
        (task.status, task.error_kind, task.attempts),
        (UrlStatus::Succeeded, Some(ErrorKind::Http5xx), 2),
        "a finished URL keeps what it had"
    );
}

pub async fn a_cancelling_job_starts_no_queued_url<F: Fixture>(fx: &F) {
    let store = fx.store();
    let j = job_of(store, "acme", 3, 3).await;
    store.record_outcome(&j.id, 0, &succeeded(), None, T0 + 1).await.expect("record");
    assert_eq!(store.request_cancel(&j.id, T0 + 2).await.expect("cancel"), Cancel::Requested);
    assert_eq!(sighting(store, &j.id, 1).await.map(|s| s.delivery()), Some(Delivery::Cancel));
    assert_eq!(sighting(store, &j.id, 0).await.map(|s| s.delivery()), Some(Delivery::Duplicate));
    assert!(store.cancel_task(&j.id, 1, UrlStatus::Queued, T0 + 4).await.expect("cancel a URL"));
    assert!(!store.cancel_task(&j.id, 1, UrlStatus::Queued, T0 + 5).await.expect("cancel a URL"), "once");
    assert!(
        !store.cancel_task(&j.id, 0, UrlStatus::Queued, T0 + 5).await.expect("cancel a URL"),
        "not from another status"
    );
    let task = store.get_task(&j.id, 1).await.expect("read").expect("exists");
    assert_eq!((task.status, task.analyzed_at, task.attempts), (UrlStatus::Cancelled, Some(T0 + 4), 0));
    fx.count_results().await;
    let c = job(store, &j.id).await.counters;
    assert_eq!((c.queued, c.succeeded, c.cancelled), (1, 1, 1));
    assert_counters_match_tasks(fx, &j.id).await;
}

pub async fn bulk_cancellation_takes_every_unfinished_url_and_refuses_later_results<F: Fixture>(fx: &F) {
    let store = fx.store();
    let j = job_of(store, "acme", 60, 20).await;
    store.record_outcome(&j.id, 0, &succeeded(), None, T0).await.expect("record");
    store.request_cancel(&j.id, T0 + 1).await.expect("cancel");
    let cancelled = store.cancel_queued(&j.id, T0 + 2, Duration::from_secs(20)).await.expect("cancel in bulk");
    assert_eq!(cancelled, 59, "more than one transaction's worth, the window's URLs too");
    assert_eq!(store.cancel_queued(&j.id, T0 + 3, Duration::from_secs(20)).await.expect("again"), 0);
    let late = store.record_outcome(&j.id, 1, &succeeded(), None, T0 + 4).await.expect("a result after the cancel");
    assert_eq!(late, Recorded::Duplicate, "a URL being analysed when its job was cancelled stays cancelled");
    fx.count_results().await;
    let stored = job(store, &j.id).await;
    assert_eq!((stored.counters.queued, stored.counters.succeeded, stored.counters.cancelled), (0, 1, 59));
    assert_eq!(stored.next_status(), Some(JobStatus::Cancelled));
    assert!(
        store
            .transition_job(&Job { status: JobStatus::Cancelling, ..j.clone() }, JobStatus::Cancelled, T0 + 5)
            .await
            .expect("move")
    );
    let finished = job(store, &j.id).await;
    assert_eq!((finished.status, finished.finished_at), (JobStatus::Cancelled, Some(T0 + 5)));
    assert_counters_match_tasks(fx, &j.id).await;
}

pub async fn a_cancel_request_answers_for_every_status<F: Fixture>(fx: &F) {
    let store = fx.store();
    let j = job_of(store, "acme", 1, 1).await;
    assert_eq!(store.request_cancel(&j.id, T0 + 1).await.expect("cancel"), Cancel::Requested);
    let cancelling = job(store, &j.id).await;
    assert_eq!((cancelling.status, cancelling.updated_at), (JobStatus::Cancelling, T0 + 1));
    assert_eq!(store.request_cancel(&j.id, T0 + 2).await.expect("again"), Cancel::Requested, "already cancelling");
    let done = job_of(store, "acme", 1, 1).await;
    store.record_outcome(&done.id, 0, &succeeded(), None, T0 + 1).await.expect("record");
    store
        .transition_job(&Job { status: JobStatus::Pending, ..done.clone() }, JobStatus::Completed, T0 + 2)
        .await
        .expect("move");
    assert_eq!(
        store.request_cancel(&done.id, T0 + 3).await.expect("cancel"),
        Cancel::AlreadyFinished(JobStatus::Completed)
    );
    assert!(matches!(store.request_cancel(&JobId::generate(), T0).await, Err(Error::NotFound)));
}

pub async fn job_moves_follow_the_lifecycle<F: Fixture>(fx: &F) {
    let store = fx.store();
    let j = job_of(store, "acme", 1, 1).await;
    let active = store.list_active_jobs(100, None).await.expect("active").items;
    assert!(active.contains(&j.id));
    assert!(
        store
            .transition_job(&Job { status: JobStatus::Pending, ..j.clone() }, JobStatus::Processing, T0 + 1)
            .await
            .expect("move")
    );
    assert!(
        !store
            .transition_job(&Job { status: JobStatus::Pending, ..j.clone() }, JobStatus::Processing, T0 + 2)
            .await
            .expect("stale"),
        "moved already"
    );
    let illegal =
        store.transition_job(&Job { status: JobStatus::Processing, ..j.clone() }, JobStatus::Cancelled, T0 + 3).await;
    assert!(matches!(illegal, Err(Error::Conflict(_))), "{illegal:?}");
    let started = job(store, &j.id).await;
    assert_eq!((started.status, started.started_at, started.finished_at), (JobStatus::Processing, Some(T0 + 1), None));
    assert!(
        store
            .transition_job(&Job { status: JobStatus::Processing, ..j.clone() }, JobStatus::Failed, T0 + 4)
            .await
            .expect("move")
    );
    let finished = job(store, &j.id).await;
    assert_eq!(
        (finished.status, finished.started_at, finished.finished_at),
        (JobStatus::Failed, Some(T0 + 1), Some(T0 + 4))
    );
    assert!(
        !store.list_active_jobs(100, None).await.expect("active").items.contains(&j.id),
        "finished jobs leave the sweep"
    );
}

pub async fn a_batch_of_results_with_a_duplicate_writes_the_others<F: Fixture>(fx: &F) {
    let store = fx.store();
    let j = job_of(store, "acme", 4, 4).await;
    store.record_outcome(&j.id, 1, &succeeded(), None, T0 + 1).await.expect("record");
    let records: Vec<OutcomeRecord> =
        [0, 1, 2].into_iter().map(|seq| outcome_record(&j.id, seq, 1, succeeded(), Vec::new())).collect();
    let recorded: Vec<Recorded> =
        store.record_outcomes(&records, T0 + 3).await.into_iter().map(|r| r.expect("record")).collect();
    assert_eq!(recorded, [Recorded::Counted, Recorded::Duplicate, Recorded::Counted]);
    fx.count_results().await;
    let c = job(store, &j.id).await.counters;
    assert_eq!((c.queued, c.in_progress, c.succeeded), (1, 0, 3));
    assert_counters_match_tasks(fx, &j.id).await;
}

pub async fn counters_add_up_through_a_whole_job<F: Fixture>(fx: &F) {
    let store = fx.store();
    let total = 30;
    let j = job_of(store, "acme", total, total as u32).await;
    let seqs: Vec<u32> = (0..total as u32).collect();
    // Each URL's fate by its number: success, failure, a retry that succeeds, a duplicate
    // result, or a cancellation of a URL that never started.
    let mut records = Vec::new();
    for &seq in &seqs {
        let (attempt, outcome) = match seq % 5 {
            0 | 3 => (1, succeeded()),
            1 => (1, Outcome::Failed { kind: ErrorKind::Dns, reason: "no such host".into(), analysis: None }),
            2 => {
                store.record_retry(&j.id, seq, ErrorKind::Timeout, "timed out", 1, T0 + 1).await.expect("retry");
                (2, succeeded())
            }
            _ => {
                assert!(store.cancel_task(&j.id, seq, UrlStatus::Queued, T0 + 3).await.expect("cancel"));
                continue;
            }
        };
        records.push(outcome_record(&j.id, seq, attempt, outcome, Vec::new()));
    }
    // Every fourth record is delivered twice, in the same batch and again later.
    let duplicates: Vec<OutcomeRecord> = records.iter().filter(|r| r.seq % 5 == 3).cloned().collect();
    for result in store.record_outcomes(&records, T0 + 4).await {
        assert_eq!(result.expect("record"), Recorded::Counted);
    }
    for result in store.record_outcomes(&duplicates, T0 + 5).await {
        assert_eq!(result.expect("record"), Recorded::Duplicate);
    }
    fx.count_results().await;
    let c = job(store, &j.id).await.counters;
    assert_eq!((c.succeeded, c.failed, c.cancelled, c.in_progress, c.queued), (18, 6, 6, 0, 0));
    assert_counters_match_tasks(fx, &j.id).await;
}

pub async fn stalled_urls_are_found_and_sent_once_per_period<F: Fixture>(fx: &F) {
    let store = fx.store();
    let j = job_of(store, "acme", 4, 2).await;
    // URLs 0 and 1 were released at submission and have not finished (being analysed, or
    // their messages lost: the same to the store); URLs 2 and 3 wait for their turn. A retry
    // written on URL 0 changes nothing of that.
    store.record_retry(&j.id, 0, ErrorKind::Timeout, "timed out", 1, T0 + 5).await.expect("retry");
    let stalled = |before| stalled_seqs(store, &j.id, before);
    assert_eq!(stalled(T0).await, Vec::<u32>::new(), "released at T0 is not stalled before T0");
    assert_eq!(stalled(T0 + 1).await, [0, 1]);
    store.note_resent(&j.id, 1, T0 + 60_001).await.expect("note");
    assert_eq!(stalled(T0 + 60_001).await, [0], "sent again: not again in the same period");
    assert_eq!(stalled(T0 + 60_002).await, [0, 1], "still lost a period later");
    assert_eq!(
        store.open_urls(&job(store, &j.id).await, T0 + 60_002, 1).await.expect("stalled").stalled.len(),
        1,
        "at most the limit"
    );
}

pub async fn a_fresh_result_is_reused_within_its_tenant_only<F: Fixture>(fx: &F) {
    let store = fx.store();
    let j = job_of(store, "acme", 2, 2).await;
    let url = "https://site.example/page/0";
    let key = CacheKey::new(&j.tenant, EngineKind::Psi, Strategy::Mobile, &[], domain::field::FieldAsk::NONE, url);
    store.record_outcome(&j.id, 0, &succeeded(), Some(&key), T0 + 100).await.expect("record");
    let reused = store.cached_result(&key, T0 + 50).await.expect("look up").expect("found");
    assert_eq!(reused.cached_from, Some(CachedFrom { job_id: j.id.clone(), analyzed_at: T0 + 100 }));
    assert_eq!(reused.score, Some(90.0));
    assert_eq!(store.cached_result(&key, T0 + 101).await.expect("look up"), None, "older than asked for");
    let other = CacheKey::new(
        &Tenant("other".into()),
        EngineKind::Psi,
        Strategy::Mobile,
        &[],
        domain::field::FieldAsk::NONE,
        url,
    );
    assert_eq!(store.cached_result(&other, 0).await.expect("look up"), None, "another tenant's");
    // A reused result is recorded but not indexed again: its age stays its analysis's.
    store.record_outcome(&j.id, 1, &Outcome::Succeeded(reused), Some(&key), T0 + 300).await.expect("record");
    let newest = store.cached_result(&key, 0).await.expect("look up").expect("found");
    assert_eq!(newest.cached_from.map(|c| (c.job_id, c.analyzed_at)), Some((j.id.clone(), T0 + 100)));
}

pub async fn reuse_finds_its_variant_among_the_urls_newest_results_only<F: Fixture>(fx: &F) {
    let store = fx.store();
    let newer = crate::REUSE_LOOKS_AT as u32 + 1;
    let j = job_of(store, "acme", newer as usize + 1, newer + 1).await;
    let url = "https://site.example/page/0";
    let variant = |engine| CacheKey::new(&j.tenant, engine, Strategy::Mobile, &[], domain::field::FieldAsk::NONE, url);
    let (psi, http) = (variant(EngineKind::Psi), variant(EngineKind::Http));
    store.record_outcome(&j.id, 0, &succeeded(), Some(&psi), T0 + 1).await.expect("record");
    assert!(store.cached_result(&psi, T0).await.expect("look up").is_some());
    assert_eq!(store.cached_result(&http, T0).await.expect("look up"), None, "another variant's is not reused");
    for seq in 1..=newer {
        let at = T0 + 10 * Millis::from(seq);
        store.record_outcome(&j.id, seq, &succeeded(), Some(&http), at + 1).await.expect("record");
    }
    let newest = store.cached_result(&http, T0).await.expect("look up").expect("found");
    assert_eq!(newest.cached_from.map(|c| c.analyzed_at), Some(T0 + 10 * Millis::from(newer) + 1));
    assert_eq!(
        store.cached_result(&psi, T0).await.expect("look up"),
        None,
        "the variant's result is older than the URL's newest {} results: not read",
        crate::REUSE_LOOKS_AT
    );
}

pub async fn a_urls_history_holds_its_new_results_oldest_first_for_its_tenant_only<F: Fixture>(fx: &F) {
    let store = fx.store();
    use domain::history::{HistoryKey, Span};
    let url = "https://site.example/page/0";
    let record = |job: &Job, outcome: Outcome| OutcomeRecord {
        history: Some(HistoryKey::new(&job.tenant, url)),
        ..outcome_record(&job.id, 0, 1, outcome, Vec::new())
    };
    let mut jobs = Vec::new();
    for (i, score) in [50.0, 60.0, 70.0].into_iter().enumerate() {
        let j = job_of(store, "acme", 1, 1).await;
        let at = T0 + 100 * (i as i64 + 1);
        store.record(&record(&j, Outcome::Succeeded(analysis(score))), at).await.expect("record");
        jobs.push(j);
    }
    // Neither a reused result nor a failure is a new measurement of the URL.
    let reused = job_of(store, "acme", 1, 1).await;
    let copy = Analysis {
        cached_from: Some(CachedFrom { job_id: jobs[0].id.clone(), analyzed_at: T0 + 100 }),
        ..analysis(50.0)
    };
    store.record(&record(&reused, Outcome::Succeeded(copy)), T0 + 410).await.expect("record");
    let failed = job_of(store, "acme", 1, 1).await;
    let failure = Outcome::Failed { kind: ErrorKind::Dns, reason: "no such host".into(), analysis: None };
    store.record(&record(&failed, failure), T0 + 510).await.expect("record");
    let theirs = job_of(store, "other", 1, 1).await;
    store.record(&record(&theirs, succeeded()), T0 + 610).await.expect("record");

    let key = HistoryKey::new(&Tenant("acme".into()), url);
    let first = store.url_history(&key, Span::ALL, 2, None).await.expect("history");
    let points = |page: &crate::Page<domain::history::HistoryEntry, _>| {
        page.items.iter().map(|e| (e.job_id.clone(), e.analyzed_at, e.headline.values["score"])).collect::<Vec<_>>()
    };
    assert_eq!(points(&first), [(jobs[0].id.clone(), T0 + 100, 50.0), (jobs[1].id.clone(), T0 + 200, 60.0)]);
    assert_eq!(first.items[0].headline.values["ttfb_ms"], 50.0, "the headline holds the metrics too");
    let rest = store.url_history(&key, Span::ALL, 2, first.next.as_ref()).await.expect("history");
    assert_eq!(points(&rest), [(jobs[2].id.clone(), T0 + 300, 70.0)]);
    assert_eq!(rest.next, None, "nothing else");
    let middle = store.url_history(&key, Span { from: T0 + 150, to: T0 + 250 }, 10, None).await.expect("history");
    assert_eq!(points(&middle), [(jobs[1].id.clone(), T0 + 200, 60.0)], "from and to are both included");
    store.delete_job(&jobs[1].id).await.expect("delete");
    let after = store.url_history(&key, Span::ALL, 10, None).await.expect("history");
    assert_eq!(after.items.len(), 2, "a deleted job's results leave the history: {after:?}");
}

pub async fn jobs_are_listed_newest_first_for_their_tenant_only<F: Fixture>(fx: &F) {
    let store = fx.store();
    let mut mine = Vec::new();
    for _ in 0..3 {
        mine.push(job_of(store, "lister", 1, 1).await.id);
    }
    job_of(store, "someone-else", 1, 1).await;
    let tenant = Tenant("lister".into());
    let page = store.list_jobs(&tenant, None, 2, None).await.expect("list");
    let ids: Vec<JobId> = page.items.iter().map(|j| j.id.clone()).collect();
    assert_eq!(ids, [mine[2].clone(), mine[1].clone()], "newest first");
    let rest = store.list_jobs(&tenant, None, 2, page.next.as_ref()).await.expect("list");
    assert_eq!((rest.items.iter().map(|j| j.id.clone()).collect::<Vec<_>>(), rest.next), (vec![mine[0].clone()], None));
    store.request_cancel(&mine[1], T0).await.expect("cancel");
    let cancelling = store.list_jobs(&tenant, Some(JobStatus::Cancelling), 10, None).await.expect("list");
    assert_eq!(cancelling.items.iter().map(|j| j.id.clone()).collect::<Vec<_>>(), [mine[1].clone()]);
    // Many at once, in the order asked, those that exist.
    let mut many = vec![mine[2].clone(), JobId::generate(), mine[0].clone()];
    for _ in 0..110 {
        many.push(job_of(store, "lister", 1, 1).await.id);
    }
    let found: Vec<JobId> = store.get_jobs(&many).await.expect("read").into_iter().map(|j| j.id).collect();
    assert_eq!(found.len(), 112, "more than one request's worth, the unknown id left out");
    assert_eq!(found, many.iter().filter(|id| **id != many[1]).cloned().collect::<Vec<_>>());
}

pub async fn a_deleted_job_takes_its_urls_with_it<F: Fixture>(fx: &F) {
    let store = fx.store();
    let j = job_of(store, "acme", 30, 5).await;
    let kept = job_of(store, "acme", 1, 1).await;
    // Counted in the store's own items: one per URL in memory, fifty to a list in DynamoDB.
    let deleted = store.delete_job(&j.id).await.expect("delete");
    assert!(deleted > 1, "the job and its 30 URLs: {deleted} items");
    assert_eq!(store.get_job(&j.id).await.expect("read"), None);
    assert_eq!(store.get_task(&j.id, 7).await.expect("read"), None);
    assert!(store.get_job(&kept.id).await.expect("read").is_some(), "only that job");
    store.ping().await.expect("the store answers");
}

pub async fn a_report_is_kept_beside_its_job_and_goes_with_it<F: Fixture>(fx: &F) {
    let store = fx.store();
    use domain::report::{ExportFile, ExportFormat, JobReport, Summary};
    let j = job_of(store, "acme", 3, 3).await;
    let other = job_of(store, "acme", 1, 1).await;
    assert_eq!(store.get_report(&j.id).await.expect("read"), None, "nothing before the job finishes");
    let mut summary = Summary { complete: true, ..Summary::default() };
    summary.by_status.insert("succeeded".into(), 3);
    let report = JobReport {
        summary,
        exports: vec![ExportFile {
            format: ExportFormat::Csv,
            key: ExportFormat::Csv.object_key(&j.id),
            bytes: 10,
            rows: 3,
        }],
        digest: Some(domain::compare::Digest::object_key(&j.id)),
        written_at: T0,
    };
    assert!(store.put_report(&j.id, &report, None).await.expect("write"));
    let again = JobReport { written_at: T0 + 1, ..report.clone() };
    assert!(!store.put_report(&j.id, &again, None).await.expect("a second export"), "written once");
    assert_eq!(store.get_report(&j.id).await.expect("read"), Some(report));
    assert_eq!(store.get_report(&other.id).await.expect("read"), None, "only that job's");
    let tasks = store.list_tasks(&j.id, &TaskFilter::default(), 10, None).await.expect("list");
    assert_eq!(tasks.items.len(), 3, "the report is not one of the job's URLs");
    let deleted = store.delete_job(&j.id).await.expect("delete");
    assert!(deleted > 2, "the job, its 3 URLs and its report: {deleted} items");
    assert_eq!(store.get_report(&j.id).await.expect("read"), None);
}

pub async fn a_finished_job_adds_to_its_tenants_days_once<F: Fixture>(fx: &F) {
    let store = fx.store();
    use domain::analytics::DayTally;
    use domain::report::{JobReport, Summary};
    use std::collections::BTreeMap;
    let report = JobReport { summary: Summary::default(), exports: Vec::new(), digest: None, written_at: T0 };
    let tally = |succeeded: u64, failed: u64, score: f64| {
        let mut tally = DayTally { succeeded, failed, ..DayTally::default() };
        tally.failures_by_kind.insert("dns".into(), failed);
        tally.histograms.entry("score".into()).or_default().add("score", score);
        tally
    };
    let tallies = |tenant: &str, days: &[(&str, DayTally)]| crate::JobTallies {
        tenant: Tenant(tenant.into()),
        days: days.iter().map(|(d, t)| ((*d).to_owned(), t.clone())).collect(),
    };
    // Jobs of one tenant finishing at once, some on two days; a job exported twice; another tenant.
    let mut writes = Vec::new();
    for i in 0..6u64 {
        let id = JobId::generate();
        let days = tallies("acme", &[("2026-12-03", tally(1, i % 2, 50.0)), ("2026-12-04", tally(2, 0, 90.0))]);
        writes.push((id, days));
    }
    let results =
        futures::future::join_all(writes.iter().map(|(id, days)| store.put_report(id, &report, Some(days)))).await;
    assert!(results.into_iter().all(|r| r.expect("write")), "every job counted");
    let (again, days) = &writes[0];
    assert!(!store.put_report(again, &report, Some(days)).await.expect("write"), "an export that runs twice");
    let theirs = tallies("other", &[("2026-12-04", tally(100, 100, 10.0))]);
    assert!(store.put_report(&JobId::generate(), &report, Some(&theirs)).await.expect("write"));

    let acme = Tenant("acme".into());
    let days: BTreeMap<String, DayTally> = store.day_tallies(&acme, "2026-12-01", "2026-12-31").await.expect("read");
    assert_eq!(days.keys().map(String::as_str).collect::<Vec<_>>(), ["2026-12-03", "2026-12-04"]);
    let (third, fourth) = (&days["2026-12-03"], &days["2026-12-04"]);
    assert_eq!((third.succeeded, third.failed, third.failures_by_kind["dns"]), (6, 3, 3), "each job once: {third:?}");
    assert_eq!((fourth.succeeded, fourth.failed, fourth.histograms["score"].count()), (12, 0, 6));
    let one = store.day_tallies(&acme, "2026-12-04", "2026-12-04").await.expect("read");
    assert_eq!(one.keys().map(String::as_str).collect::<Vec<_>>(), ["2026-12-04"], "from and to are both included");
    assert!(store.day_tallies(&acme, "2026-12-05", "2026-12-31").await.expect("read").is_empty());
}

fn monitor(tenant: &str, schedule: &str, url_count: u32, now: Millis) -> domain::monitor::Monitor {
    let parsed = domain::schedule::Schedule::parse(schedule).expect("a schedule");
    domain::monitor::Monitor::new(
        Tenant(tenant.into()),
        format!("{tenant} monitor"),
        (&parsed, schedule.to_owned()),
        JobSettings::default(),
        None,
        url_count,
        Vec::new(),
        true,
        now,
    )
}

pub async fn a_monitor_is_kept_with_its_urls_for_its_tenant_only<F: Fixture>(fx: &F) {
    let store = fx.store();
    // More URLs than one item holds.
    let many: Vec<JobUrl> = job_urls(1_200)
        .into_iter()
        .enumerate()
        .map(|(i, mut url)| {
            url.tags = Tags { reference: Some(format!("r{i}")), ..Tags::default() };
            url
        })
        .collect();
    let big = monitor("acme", "rate(1 hour)", 1_200, T0);
    store.create_monitor(&big, &many).await.expect("create");
    let mut small = monitor("acme", "rate(15 minutes)", 2, T0);
    // Its runs ask for field data: kept with the monitor's settings.
    small.settings.field = domain::field::FieldAsk { data: true, history: true };
    store.create_monitor(&small, &job_urls(2)).await.expect("create");
    assert_eq!(store.get_monitor(&Tenant("acme".into()), &small.id).await.expect("read"), Some(small.clone()));
    let theirs = monitor("other", "rate(1 day)", 1, T0);
    store.create_monitor(&theirs, &job_urls(1)).await.expect("create");

    let acme = Tenant("acme".into());
    assert_eq!(store.get_monitor(&acme, &big.id).await.expect("read"), Some(big.clone()));
    assert_eq!(store.monitor_urls(&acme, &big.id).await.expect("read"), many, "every URL, in order, with its tags");
    assert_eq!(store.get_monitor(&acme, &theirs.id).await.expect("read"), None, "another tenant's monitor is none");
    let first = store.list_monitors(&acme, 1, None).await.expect("list");
    assert_eq!(first.items.iter().map(|m| &m.id).collect::<Vec<_>>(), [&small.id], "newest first");
    let rest = store.list_monitors(&acme, 1, first.next.as_ref()).await.expect("list");
    assert_eq!(rest.items.iter().map(|m| &m.id).collect::<Vec<_>>(), [&big.id]);
    if let Some(next) = rest.next {
        // A store may only learn that nothing follows by asking again.
        let after = store.list_monitors(&acme, 1, Some(&next)).await.expect("list");
        assert!(after.items.is_empty() && after.next.is_none(), "{after:?}");
    }

    assert!(store.delete_monitor(&acme, &big.id).await.expect("delete"));
    assert_eq!(store.get_monitor(&acme, &big.id).await.expect("read"), None);
    assert!(store.monitor_urls(&acme, &big.id).await.expect("read").is_empty(), "its URLs went with it");
    assert!(!store.delete_monitor(&acme, &big.id).await.expect("delete"), "already gone");
}

pub async fn a_monitor_is_replaced_only_as_it_was_read<F: Fixture>(fx: &F) {
    let store = fx.store();
    let kept = monitor("acme", "rate(1 hour)", 700, T0);
    store.create_monitor(&kept, &job_urls(700)).await.expect("create");
    let renamed = domain::monitor::Monitor { name: "renamed".into(), url_count: 3, ..kept.clone() };
    assert!(store.replace_monitor(&renamed, 0, Some(&job_urls(3))).await.expect("replace"));
    let stale = domain::monitor::Monitor { name: "stale".into(), ..kept.clone() };
    assert!(!store.replace_monitor(&stale, 0, None).await.expect("replace"), "changed since version 0");
    let now = store.get_monitor(&kept.tenant, &kept.id).await.expect("read").expect("there");
    assert_eq!((now.name.as_str(), now.version, now.url_count), ("renamed", 1, 3));
    assert_eq!(store.monitor_urls(&kept.tenant, &kept.id).await.expect("read"), job_urls(3), "the old URLs are gone");
    let gone = monitor("acme", "rate(1 hour)", 1, T0);
    assert!(!store.replace_monitor(&gone, 0, None).await.expect("replace"), "no such monitor");

    // A run by hand: on the version read, the schedule untouched, listed with the runs.
    let job = JobId::generate();
    assert!(!store.record_run_now(&kept, &job, T0 + 9).await.expect("run"), "read at version 0, now 1");
    assert!(store.record_run_now(&now, &job, T0 + 9).await.expect("run"));
    let ran = store.get_monitor(&kept.tenant, &kept.id).await.expect("read").expect("there");
    assert_eq!((ran.running_job, ran.runs, ran.next_run_at, ran.version), (Some(job.clone()), 1, now.next_run_at, 2));
    assert_eq!(store.monitor_runs(&kept.tenant, &kept.id, 5, None).await.expect("runs").items, [job]);
}

pub async fn a_due_tick_is_settled_once<F: Fixture>(fx: &F) {
    let store = fx.store();
    use domain::monitor::{SkipReason, Skipped, TickRecord};
    let soon = monitor("acme", "rate(15 minutes)", 1, T0);
    let later = monitor("acme", "rate(1 hour)", 1, T0);
    let off = domain::monitor::Monitor { enabled: false, ..monitor("acme", "rate(15 minutes)", 1, T0) };
    for m in [&soon, &later, &off] {
        store.create_monitor(m, &job_urls(1)).await.expect("create");
    }
    let tick = T0 + 15 * 60_000;
    let due = store.due_monitors(tick + 1, 10).await.expect("due");
    assert_eq!(due.iter().map(|d| (d.monitor_id.clone(), d.tick)).collect::<Vec<_>>(), [(soon.id.clone(), tick)]);
    let job = soon.id.job_for_tick(tick);
    let next = Some(tick + 15 * 60_000);
    assert!(store.settle_tick(&due[0], next, &TickRecord::Ran(job.clone()), tick + 5).await.expect("settle"));
    assert!(!store.settle_tick(&due[0], next, &TickRecord::Ran(job.clone()), tick + 6).await.expect("settle"), "once");
    assert!(store.due_monitors(tick + 1, 10).await.expect("due").is_empty());
    let runs = store.monitor_runs(&soon.tenant, &soon.id, 10, None).await.expect("runs");
    assert_eq!((runs.items, runs.next), (vec![job.clone()], None), "the run is listed once");
    let ran = store.get_monitor(&soon.tenant, &soon.id).await.expect("read").expect("there");
    assert_eq!(
        (ran.next_run_at, ran.running_job.clone(), ran.runs, ran.last_run_at, ran.version),
        (next, Some(job), 1, Some(tick + 5), 1)
    );

    let due = store.due_monitors(tick + 15 * 60_000, 10).await.expect("due");
    assert_eq!(due.len(), 1);
    let skipped = Skipped { tick: due[0].tick, at: due[0].tick + 2, reason: SkipReason::PreviousRunning };
    let after = Some(due[0].tick + 15 * 60_000);
    assert!(
        store
            .settle_tick(&due[0], after, &TickRecord::Skipped(skipped.clone()), due[0].tick + 2)
            .await
            .expect("settle")
    );
    let now = store.get_monitor(&soon.tenant, &soon.id).await.expect("read").expect("there");
    assert_eq!((now.skipped_runs, now.last_skip, now.runs, now.next_run_at), (1, Some(skipped), 1, after));
    // Disabled: never due; settled to no next run, it leaves the due list.
    let far = store.due_monitors(T0 + 86_400_000, 10).await.expect("due");
    assert!(far.iter().all(|d| d.monitor_id != off.id), "{far:?}");
    let last = far.iter().find(|d| d.monitor_id == later.id).expect("later is due by then").clone();
    assert!(
        store
            .settle_tick(&last, None, &TickRecord::Ran(later.id.job_for_tick(last.tick)), last.tick)
            .await
            .expect("settle")
    );
    assert!(store.due_monitors(T0 + 86_400_000, 10).await.expect("due").iter().all(|d| d.monitor_id != later.id));
}

pub async fn budget_standings_are_kept_per_url_and_budget<F: Fixture>(fx: &F) {
    let store = fx.store();
    use domain::budget::{Budget, BudgetState, Standing, budget_id};
    let lcp = Budget { metric: "lcp_ms".into(), max: Some(2_500.0), min: None, labels: None };
    let score = Budget { metric: "score".into(), max: None, min: Some(90.0), labels: None };
    let mut m = monitor("acme", "rate(1 hour)", 1, T0);
    m.budgets = vec![lcp.clone(), score.clone()];
    store.create_monitor(&m, &job_urls(1)).await.expect("create");
    let standing = |budget: &Budget, url: &str, state, since| Standing {
        url: url.into(),
        budget_id: budget_id(budget),
        budget: budget.clone(),
        state,
        since,
        value: 3_000.0,
        job_id: JobId::generate(),
        callback: None,
    };
    let long = format!("https://site.example/{}", "x".repeat(1_500));
    let urls: Vec<String> = (0..7).map(|i| format!("https://site.example/{i}")).collect();
    let mut first: Vec<Standing> = urls.iter().map(|u| standing(&lcp, u, BudgetState::Breached, T0)).collect();
    first.push(standing(&score, &long, BudgetState::Breached, T0));
    store.put_budget_standings(&m.tenant, &m.id, &first).await.expect("put");
    let back = standing(&lcp, &urls[0], BudgetState::Within, T0 + 5);
    store.put_budget_standings(&m.tenant, &m.id, std::slice::from_ref(&back)).await.expect("put");
    let kept = store.budget_standings(&m.tenant, &m.id).await.expect("read");
    assert_eq!(kept.len(), 8, "one per URL and budget");
    assert_eq!(kept.iter().find(|s| s.url == urls[0]).map(|s| (s.state, s.since)), Some((BudgetState::Within, T0 + 5)));

    // The breached ones, a page at a time, each once.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page =
            store.budget_page(&m.tenant, &m.id, Some(BudgetState::Breached), 3, after.as_ref()).await.expect("page");
        assert!(page.items.len() <= 3);
        seen.extend(page.items.iter().map(|s| (s.budget_id.clone(), s.url.clone())));
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len(), 7, "six lcp URLs and the long one: {seen:?}");
    let mut sorted = seen.clone();
    sorted.sort_by_key(|(budget, url)| (budget.clone(), domain::history::url_hash(url)));
    assert_eq!(seen, sorted, "by budget, then URL hash");
    let all = store.budget_page(&m.tenant, &m.id, None, 100, None).await.expect("page");
    assert_eq!((all.items.len(), all.next), (8, None));
    let within = store.budget_page(&m.tenant, &m.id, Some(BudgetState::Within), 100, None).await.expect("page");
    assert_eq!(within.items.iter().map(|s| s.url.as_str()).collect::<Vec<_>>(), [urls[0].as_str()]);

    assert!(store.budget_standings(&Tenant("other".into()), &m.id).await.expect("read").is_empty());
    // A budget taken off the monitor takes its standings with it.
    let kept_version = store.get_monitor(&m.tenant, &m.id).await.expect("read").expect("monitor").version;
    let fewer = domain::monitor::Monitor { budgets: vec![score.clone()], ..m.clone() };
    assert!(store.replace_monitor(&fewer, kept_version, None).await.expect("replace"));
    let kept = store.budget_standings(&m.tenant, &m.id).await.expect("read");
    assert_eq!(kept.iter().map(|s| s.url.as_str()).collect::<Vec<_>>(), [long.as_str()]);
    store.delete_monitor(&m.tenant, &m.id).await.expect("delete");
    assert!(store.budget_standings(&m.tenant, &m.id).await.expect("read").is_empty(), "they go with the monitor");
}

pub async fn a_budget_callback_is_kept_on_the_standing_it_announces<F: Fixture>(fx: &F) {
    let store = fx.store();
    use domain::budget::{Budget, BudgetState, Standing, StandingRef, budget_id};
    use domain::callback::{CallbackDelivery, DeliveryState};
    let lcp = Budget { metric: "lcp_ms".into(), max: Some(2_500.0), min: None, labels: None };
    let mut m = monitor("acme", "rate(1 hour)", 1, T0);
    m.budgets = vec![lcp.clone()];
    store.create_monitor(&m, &job_urls(1)).await.expect("create");
    let (run, later) = (JobId::generate(), JobId::generate());
    let standing = |state, job: &JobId| Standing {
        url: "https://site.example/a".into(),
        budget_id: budget_id(&lcp),
        budget: lcp.clone(),
        state,
        since: T0,
        value: 3_000.0,
        job_id: job.clone(),
        callback: None,
    };
    store.put_budget_standings(&m.tenant, &m.id, &[standing(BudgetState::Breached, &run)]).await.expect("put");
    let at = StandingRef { monitor_id: m.id.clone(), budget_id: budget_id(&lcp), url: "https://site.example/a".into() };
    let attempt = |attempts, state| CallbackDelivery {
        event: "Budget Breached".into(),
        state,
        attempts,
        last_error: None,
        next_attempt_at: None,
        updated_at: T0 + i64::from(attempts),
    };
    store.record_budget_callback(&m.tenant, &at, &run, &attempt(2, DeliveryState::Delivered)).await.expect("record");
    store.record_budget_callback(&m.tenant, &at, &run, &attempt(1, DeliveryState::Retrying)).await.expect("late");
    let other = Tenant("other".into());
    store.record_budget_callback(&other, &at, &run, &attempt(3, DeliveryState::Failed)).await.expect("other tenant");
    let kept = store.budget_standings(&m.tenant, &m.id).await.expect("read");
    assert_eq!(kept[0].callback, Some(attempt(2, DeliveryState::Delivered)), "the later attempt stays");
    // A later run changed it: the first run's delivery no longer speaks of it.
    store.put_budget_standings(&m.tenant, &m.id, &[standing(BudgetState::Within, &later)]).await.expect("put");
    store.record_budget_callback(&m.tenant, &at, &run, &attempt(3, DeliveryState::Failed)).await.expect("stale");
    let kept = store.budget_standings(&m.tenant, &m.id).await.expect("read");
    assert_eq!((kept[0].state, kept[0].callback.as_ref()), (BudgetState::Within, None));
    store.delete_monitor(&m.tenant, &m.id).await.expect("delete");
    store.record_budget_callback(&m.tenant, &at, &later, &attempt(1, DeliveryState::Delivered)).await.expect("gone");
    assert!(store.budget_standings(&m.tenant, &m.id).await.expect("read").is_empty(), "not brought back");
}

pub async fn keys_and_callback_secrets_are_kept_per_tenant<F: Fixture>(fx: &F) {
    let store = fx.store();
    let (acme, other) = (Tenant("acme".into()), Tenant("other".into()));
    let hash = domain::auth::hash_key("sb_contract");
    store.put_key_hash(&hash, &acme).await.expect("put");
    assert_eq!(store.tenant_for_key_hash(&hash).await.expect("read"), Some(acme.clone()));
    assert_eq!(store.tenant_for_key_hash(&domain::auth::hash_key("sb_unknown")).await.expect("read"), None);
    let key = domain::auth::generate_key();
    store.put_key_hash(&domain::auth::hash_key(&key), &acme).await.expect("put");
    assert_eq!(store.tenant_for_key(&key).await.expect("read"), Some(acme.clone()), "a key as a client presents it");
    assert_eq!(store.tenant_for_key("sb_contract").await.expect("no read"), None, "not a key: nothing to look up");
    let secret = store.callback_secret(&acme).await.expect("secret");
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert_eq!(store.callback_secret(&acme).await.expect("secret"), secret, "created once");
    assert_ne!(store.callback_secret(&other).await.expect("secret"), secret);
}

pub async fn a_callback_delivery_is_kept_on_its_job_latest_attempt_first<F: Fixture>(fx: &F) {
    let store = fx.store();
    use domain::callback::{CallbackDelivery, DeliveryState};
    let j = job_of(store, "acme", 1, 1).await;
    let attempt = |attempts, state| CallbackDelivery {
        event: "Job Completed".into(),
        state,
        attempts,
        last_error: (state != DeliveryState::Delivered).then(|| "timed out".to_owned()),
        next_attempt_at: (state == DeliveryState::Retrying).then_some(T0 + 30_000),
        updated_at: T0 + i64::from(attempts),
    };
    let before = job(store, &j.id).await;
    store.record_callback(&j.id, &attempt(1, DeliveryState::Retrying)).await.expect("record");
    store.record_callback(&j.id, &attempt(2, DeliveryState::Delivered)).await.expect("record");
    store.record_callback(&j.id, &attempt(1, DeliveryState::Retrying)).await.expect("a late duplicate");
    let after = job(store, &j.id).await;
    assert_eq!(after.callback, Some(attempt(2, DeliveryState::Delivered)), "the later attempt stays");
    assert_eq!((after.updated_at, after.status, after.counters), (before.updated_at, before.status, before.counters));
    store.delete_job(&j.id).await.expect("delete");
    store.record_callback(&j.id, &attempt(3, DeliveryState::Failed)).await.expect("a deleted job: nothing to do");
    assert_eq!(store.get_job(&j.id).await.expect("read"), None, "not brought back");
}

pub async fn the_sweep_cursor_is_kept_until_cleared<F: Fixture>(fx: &F) {
    let store = fx.store();
    let j = job_of(store, "acme", 1, 1).await;
    assert_eq!(store.sweep_cursor().await.expect("read"), None, "no sweep stopped yet");
    store.save_sweep_cursor(Some(&j.id)).await.expect("save");
    assert_eq!(store.sweep_cursor().await.expect("read"), Some(j.id.clone()));
    store.save_sweep_cursor(None).await.expect("clear");
    assert_eq!(store.sweep_cursor().await.expect("read"), None);
    store.save_sweep_cursor(None).await.expect("clearing twice is harmless");
}

pub async fn a_tenant_is_held_to_its_limits_and_a_finished_job_frees_its_place<F: Fixture>(fx: &F) {
    let store = fx.store();
    // A tenant of its own: the store may be shared with other cases.
    let tenant = Tenant(format!("limits-{}", JobId::generate()));
    let limits = Limits { max_active_jobs: 2, max_urls_per_day: 10, max_in_flight: 5, quota_weight: 1 };
    let new_job = |urls: u64, strategy: Strategy| {
        let settings = JobSettings { strategy, batch_size: 1, ..JobSettings::default() };
        Job::new(tenant.clone(), "limits".into(), settings, urls, T0)
    };
    let usage = |active_jobs: u32, urls_today: u64| Usage { active_jobs, urls_today };
    assert_eq!(store.tenant_usage(&tenant, T0).await.expect("read").usage, Usage::default(), "nothing yet");

    let first = new_job(2, Strategy::Both);
    store.create_job_within(&first, &job_urls(2), &limits).await.expect("write").expect("fits");
    assert_eq!(store.tenant_usage(&tenant, T0).await.expect("read").usage, usage(1, 4), "2 URLs x 2 form factors");
    let second = new_job(6, Strategy::Mobile);
    store.create_job_within(&second, &job_urls(6), &limits).await.expect("write").expect("fits exactly");

    let third = new_job(1, Strategy::Mobile);
    let over = store.create_job_within(&third, &job_urls(1), &limits).await.expect("write").expect_err("over");
    assert_eq!((over.limit, over.allowed, over.used), (Limit::ActiveJobs, 2, 2), "{over:?}");
    assert_eq!(store.get_job(&third.id).await.expect("read"), None, "nothing created");
    assert_eq!(store.tenant_usage(&tenant, T0).await.expect("read").usage, usage(2, 10), "nothing counted");

    // Finishing a job frees its place, once; the day's count stays.
    let stored = job(store, &first.id).await;
    assert!(store.transition_job(&stored, JobStatus::Processing, T0 + 1).await.expect("move"));
    assert_eq!(store.tenant_usage(&tenant, T0).await.expect("read").usage, usage(2, 10), "still running");
    store.request_cancel(&first.id, T0 + 2).await.expect("cancel");
    let cancelling = job(store, &first.id).await;
    store.cancel_queued(&first.id, T0 + 3, Duration::from_secs(20)).await.expect("cancel queued");
    store.record_outcome(&first.id, 0, &succeeded(), None, T0 + 4).await.expect("record");
    assert!(store.transition_job(&cancelling, JobStatus::Cancelled, T0 + 5).await.expect("finish"));
    assert!(!store.transition_job(&cancelling, JobStatus::Cancelled, T0 + 6).await.expect("again"), "moved once");
    assert_eq!(store.tenant_usage(&tenant, T0).await.expect("read").usage, usage(1, 10));

    // A place for a job again, but not for its URLs today; tomorrow they fit.
    let over = store.create_job_within(&third, &job_urls(1), &limits).await.expect("write").expect_err("over");
    assert_eq!((over.limit, over.allowed, over.used, over.requested), (Limit::UrlsPerDay, 10, 10, 1), "{over:?}");
    let tomorrow = Job { created_at: T0 + 86_400_000, ..third.clone() };
    store.create_job_within(&tomorrow, &job_urls(1), &limits).await.expect("write").expect("a new day");
    assert_eq!(store.tenant_usage(&tenant, T0 + 86_400_000).await.expect("read").usage, usage(2, 1));

    // The tenant's own limits are kept for it alone.
    assert_eq!(store.tenant_usage(&tenant, T0).await.expect("read").overrides, LimitOverrides::default());
    let own = LimitOverrides {
        max_active_jobs: Some(7),
        max_urls_per_day: None,
        max_in_flight: Some(3),
        quota_weight: Some(4),
    };
    store.set_limit_overrides(&tenant, &own).await.expect("set");
    assert_eq!(store.tenant_usage(&tenant, T0).await.expect("read").overrides, own);
    let other = Tenant(format!("other-{}", JobId::generate()));
    assert_eq!(store.tenant_usage(&other, T0).await.expect("read").overrides, LimitOverrides::default());
}

pub async fn a_host_has_at_most_its_limit_of_urls_at_once_and_every_place_comes_back<F: Fixture>(fx: &F) {
    let store = fx.store();
    let j = job_of(store, "acme", 7, 7).await;
    // A host of its own: the store may be shared with other cases.
    let host = format!("host-{}.example:8080", JobId::generate());
    let end = T0 + 60_000;
    let lease = |seq: u32| Lease::new(Place::Host(host.clone()), j.id.as_str(), seq, end, 2);
    let take = |seqs: &[u32], now: Millis| {
        let asks: Vec<Vec<Lease>> = seqs.iter().map(|seq| vec![lease(*seq)]).collect();
        async move { store.take_places(&asks, now).await.expect("take places") }
    };
    let busy = Err(Full { reason: WaitReason::HostBusy, paused_until: None });

    // Three at once where two may be: the first two have theirs, the third waits.
    assert_eq!(take(&[0, 1, 2], T0).await, [Ok(()), Ok(()), busy]);
    // A result gives its place back; so does a delivery that did not analyse.
    let record = outcome_record(&j.id, 0, 1, succeeded(), vec![lease(0)]);
    assert_eq!(store.record(&record, T0 + 1).await.expect("record"), Recorded::Counted);
    assert_eq!(take(&[2], T0 + 2).await, [Ok(())]);
    assert_eq!(take(&[3], T0 + 3).await, [busy]);
    store.give_places_back(&[lease(1)]).await.expect("give back");
    assert_eq!(take(&[3, 4], T0 + 5).await, [Ok(()), busy], "as many as there is room for");

    // A holder that never gives its place back (its analyzer crashed) loses it when its lease
    // ends: then the host has room again.
    assert_eq!(take(&[4, 5], end).await, [Ok(()), Ok(())], "both leases ended");
    store.give_places_back(&[lease(4), lease(5)]).await.expect("give back");

    // A host that asked for a pause gets it, and a shorter pause asked later does not end it.
    store.pause_host(&host, end + 10_000).await.expect("pause");
    store.pause_host(&host, end + 5_000).await.expect("a shorter pause");
    let paused = Err(Full { reason: WaitReason::HostPaused, paused_until: Some(end + 10_000) });
    assert_eq!(take(&[5], end + 6_000).await, [paused]);
    assert_eq!(take(&[5, 6], end + 10_000).await, [Ok(()), Ok(())], "the pause is over");
    assert_eq!(status(store, &j.id, 5).await, UrlStatus::Queued, "taking a place writes nothing on the URL");
    assert_counters_match_tasks(fx, &j.id).await;
}

pub async fn a_tenant_has_at_most_max_in_flight_urls_at_once_across_its_jobs<F: Fixture>(fx: &F) {
    let store = fx.store();
    // A tenant of its own: the store may be shared with other cases.
    let name = format!("busy-{}", JobId::generate());
    let tenant = Tenant(name.clone());
    let (a, b) = (job_of(store, &name, 4, 4).await, job_of(store, &name, 4, 4).await);
    let end = T0 + 60_000;
    // Each URL on a host of its own with one place: only the tenant's limit of 3 holds them
    // back, and a URL that waits must not keep its host's place (it could not start later).
    let places = |j: &Job, seq: u32| {
        let host = Place::Host(format!("{}-{seq}.example", j.id));
        vec![Lease::tenant(&tenant, 3, j.id.as_str(), seq, 0, end), Lease::new(host, j.id.as_str(), seq, end, 1)]
    };
    let full = Err(Full { reason: WaitReason::TenantCap, paused_until: None });

    let asks = [places(&a, 0), places(&a, 1), places(&b, 0), places(&b, 1)];
    let taken = store.take_places(&asks, T0).await.expect("take places");
    assert_eq!(taken.iter().filter(|t| t.is_ok()).count(), 3, "{taken:?}");
    let waiting = taken.iter().position(|t| *t == full).expect("one waits, across both jobs");
    let (wj, wseq) = if waiting < 2 { (&a, waiting as u32) } else { (&b, waiting as u32 - 2) };
    let wait_host = places(wj, wseq).remove(1);
    let host_free = store.take_places(&[vec![wait_host.clone()]], T0 + 1).await.expect("take places");
    assert_eq!(host_free, [Ok(())], "the waiting URL's host place was given back");
    store.give_places_back(&[wait_host]).await.expect("give back");

    // A result of either job gives the tenant's place back: the waiting URL starts then.
    let (done, done_seq) = if waiting == 0 { (&a, 1) } else { (&a, 0) };
    let record = outcome_record(&done.id, done_seq, 1, succeeded(), places(done, done_seq));
    assert_eq!(store.record(&record, T0 + 1).await.expect("record"), Recorded::Counted);
    assert_eq!(store.take_places(&[places(wj, wseq)], T0 + 2).await.expect("take"), [Ok(())]);
    assert_eq!(store.take_places(&[places(&b, 2)], T0 + 3).await.expect("take"), [full]);
    // Places of analyses that died come back when their leases end.
    assert_eq!(store.take_places(&[places(&b, 2)], end).await.expect("take"), [Ok(())]);
    assert_counters_match_tasks(fx, &a.id).await;
    assert_counters_match_tasks(fx, &b.id).await;
}

pub async fn waiting_urls_are_counted_by_reason_until_they_are_due_back<F: Fixture>(fx: &F) {
    let store = fx.store();
    use domain::waits::{WaitReason, Waiting, notes};
    let waits = [
        (WaitReason::HostBusy, T0 + 5_000),
        (WaitReason::HostBusy, T0 + 5_000),
        (WaitReason::Quota, T0 + 15_000),
        (WaitReason::HostPaused, T0 + 300_000),
    ];
    store.note_waits(&notes(waits)).await.expect("note");
    store.note_waits(&notes([(WaitReason::HostBusy, T0 + 4_000)])).await.expect("note another invocation's");
    let at = |quota, host_busy, host_paused| Waiting { quota, tenant_cap: 0, host_busy, host_paused };
    assert_eq!(store.waiting(T0).await.expect("read"), at(1, 3, 1));
    assert_eq!(store.waiting(T0 + 10_000).await.expect("read"), at(1, 0, 1), "the host's waiters are back");
    assert_eq!(store.waiting(T0 + 20_000).await.expect("read"), at(0, 0, 1));
    assert_eq!(store.waiting(T0 + 300_000).await.expect("read"), at(0, 0, 0));
}

fn watcher(connection: &str, scope: crate::Scope) -> crate::Watcher {
    crate::Watcher { connection: connection.into(), scope }
}

async fn watchers<S: JobStore>(store: &S, job: &Job) -> Vec<crate::Watcher> {
    let mut found = store.watchers(job).await.expect("watchers");
    found.sort();
    found
}

pub async fn a_live_subscription_reaches_its_jobs_watchers_for_its_tenant_only<F: Fixture>(fx: &F) {
    let store = fx.store();
    use crate::{Refused, Scope};
    use domain::live::Watch;
    let (mine, theirs) = (job_of(store, "acme", 2, 1).await, job_of(store, "other", 2, 1).await);
    let acme = Tenant("acme".into());
    assert_eq!(store.subscribe("c1", &acme, &Watch::Job(mine.id.clone()), T0).await.unwrap(), Ok(()));
    assert_eq!(
        store.subscribe("c2", &acme, &Watch::Job(theirs.id.clone()), T0).await.unwrap(),
        Err(Refused::NotFound),
        "another tenant's job is not found"
    );
    assert_eq!(store.subscribe("c3", &acme, &Watch::Job(JobId::generate()), T0).await.unwrap(), Err(Refused::NotFound));
    assert_eq!(watchers(store, &mine).await, vec![watcher("c1", Scope::Job(mine.id.clone()))]);
    assert_eq!(watchers(store, &theirs).await, vec![], "a refused subscription leaves nothing behind");
    // The same connection twice is one subscription.
    store.subscribe("c1", &acme, &Watch::Job(mine.id.clone()), T0).await.unwrap().unwrap();
    store.subscribe("c4", &acme, &Watch::AllJobs, T0).await.unwrap().unwrap();
    assert_eq!(
        watchers(store, &mine).await,
        vec![watcher("c1", Scope::Job(mine.id.clone())), watcher("c4", Scope::Tenant(acme.clone()))]
    );
    assert_eq!(watchers(store, &theirs).await, vec![]);
    store.drop_subscriptions(&[watcher("c1", Scope::Job(mine.id.clone()))]).await.unwrap();
    assert_eq!(watchers(store, &mine).await, vec![watcher("c4", Scope::Tenant(acme))]);
}

pub async fn only_the_newest_watch_generation_takes_a_jobs_mark_off<F: Fixture>(fx: &F) {
    let store = fx.store();
    use domain::live::Watch;
    let j = job_of(store, "acme", 1, 1).await;
    let acme = Tenant("acme".into());
    assert!(!store.unfollow_job(&j.id, 1).await.unwrap(), "nobody followed it");
    store.subscribe("c1", &acme, &Watch::Job(j.id.clone()), T0).await.unwrap().unwrap();
    store.subscribe("c2", &acme, &Watch::Job(j.id.clone()), T0).await.unwrap().unwrap();
    // What found no watcher at generation 1 must not unmark the job a later subscriber marked.
    assert!(!store.unfollow_job(&j.id, 1).await.unwrap());
    assert!(store.unfollow_job(&j.id, 2).await.unwrap());
    assert!(!store.unfollow_job(&j.id, 2).await.unwrap(), "the mark is gone");
    store.subscribe("c3", &acme, &Watch::Job(j.id.clone()), T0).await.unwrap().unwrap();
    assert!(store.unfollow_job(&j.id, 1).await.unwrap(), "a new mark starts again from 1");
}

pub async fn an_all_jobs_subscription_follows_running_and_new_jobs_of_its_tenant<F: Fixture>(fx: &F) {
    let store = fx.store();
    use domain::live::Watch;
    let running = job_of(store, "acme", 1, 1).await;
    let acme = Tenant("acme".into());
    let fresh = job_of(store, "acme", 1, 1).await;
    assert!(!store.follow_new_job(&fresh, T0).await.unwrap(), "nobody follows the tenant yet");
    store.subscribe("c1", &acme, &Watch::AllJobs, T0).await.unwrap().unwrap();
    assert!(store.unfollow_job(&running.id, 1).await.unwrap(), "a running job was marked");
    let later = job_of(store, "acme", 1, 1).await;
    let elsewhere = job_of(store, "other", 1, 1).await;
    assert!(store.follow_new_job(&later, T0).await.unwrap());
    assert!(store.unfollow_job(&later.id, 1).await.unwrap(), "a new job was marked");
    assert!(!store.follow_new_job(&elsewhere, T0).await.unwrap(), "another tenant's job is not");
    assert!(!store.unfollow_job(&elsewhere.id, 1).await.unwrap());
}

pub async fn a_connection_holds_a_bounded_number_of_subscriptions_until_it_closes<F: Fixture>(fx: &F) {
    let store = fx.store();
    use crate::{Refused, Scope};
    use domain::live::{MAX_SUBSCRIPTIONS_PER_CONNECTION, Watch};
    let acme = Tenant("acme".into());
    let mut jobs = Vec::new();
    for _ in 0..=MAX_SUBSCRIPTIONS_PER_CONNECTION {
        jobs.push(job_of(store, "acme", 1, 1).await);
    }
    for j in &jobs[..MAX_SUBSCRIPTIONS_PER_CONNECTION] {
        store.subscribe("c1", &acme, &Watch::Job(j.id.clone()), T0).await.unwrap().unwrap();
    }
    let last = &jobs[MAX_SUBSCRIPTIONS_PER_CONNECTION];
    assert_eq!(store.subscribe("c1", &acme, &Watch::Job(last.id.clone()), T0).await.unwrap(), Err(Refused::TooMany));
    assert_eq!(watchers(store, last).await, vec![]);
    assert_eq!(
        store.subscribe("c1", &acme, &Watch::Job(jobs[0].id.clone()), T0).await.unwrap(),
        Ok(()),
        "held already"
    );
    assert_eq!(store.subscribe("c2", &acme, &Watch::Job(last.id.clone()), T0).await.unwrap(), Ok(()), "per connection");
    // A finished job's subscription dropped gives its connection the room back.
    store.drop_subscriptions(&[watcher("c1", Scope::Job(jobs[0].id.clone()))]).await.unwrap();
    assert_eq!(store.subscribe("c1", &acme, &Watch::Job(last.id.clone()), T0).await.unwrap(), Ok(()));
    assert_eq!(store.disconnect("c1").await.unwrap(), MAX_SUBSCRIPTIONS_PER_CONNECTION);
    assert_eq!(watchers(store, &jobs[1]).await, vec![]);
    assert_eq!(watchers(store, last).await, vec![watcher("c2", Scope::Job(last.id.clone()))]);
    assert_eq!(store.disconnect("c1").await.unwrap(), 0, "a second close finds nothing");
}

pub async fn a_pages_urls_are_read_by_position_in_the_order_asked<F: Fixture>(fx: &F) {
    let store = fx.store();
    // Over 100 URLs: more than one BatchGetItem's worth of keys.
    let j = job_of(store, "acme", 250, 10).await;
    let other = job_of(store, "acme", 3, 1).await;
    store.record_outcome(&j.id, 7, &Outcome::Succeeded(analysis(42.0)), None, T0 + 1).await.expect("record");
    let seqs_of = |tasks: Vec<domain::UrlTask>| tasks.into_iter().map(|t| (t.job_id, t.seq)).collect::<Vec<_>>();
    let wanted: Vec<u32> = (0..250).rev().step_by(2).chain([7, 7, 300]).collect();
    let tasks = store.get_tasks(&j.id, &wanted).await.expect("read");
    let expected: Vec<(JobId, u32)> = (0..250).rev().step_by(2).map(|seq| (j.id.clone(), seq)).collect();
    assert_eq!(seqs_of(tasks.clone()), expected, "in the order asked, each once, a missing one left out");
    let seven = tasks.iter().find(|t| t.seq == 7).expect("URL 7");
    assert_eq!((seven.status, seven.url.as_str()), (UrlStatus::Succeeded, "https://site.example/page/7"));
    assert_eq!(seven.analysis.as_ref().and_then(|a| a.score), Some(42.0), "the whole URL, its result too");
    assert_eq!(seqs_of(store.get_tasks(&other.id, &[2, 5]).await.expect("read")), [(other.id.clone(), 2)]);
    assert!(store.get_tasks(&j.id, &[]).await.expect("read").is_empty());
    assert!(store.get_tasks(&JobId::generate(), &[0]).await.expect("read").is_empty(), "no such job");
}

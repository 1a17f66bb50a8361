//! Sorted listings cover the whole job, page after page, from the digest of a finished job and
//! from the URLs themselves otherwise, at the cost the module states.

use std::sync::atomic::{AtomicUsize, Ordering as Atomic};

use aws::exports::{ExportFiles, MemoryExports};
use axum::Router;
use axum::http::StatusCode;
use domain::compare::Digest;
use domain::lifecycle::Outcome;
use domain::report::{JobReport, Summary};
use domain::tenancy::{Limits, OverLimit};
use domain::time::Millis;
use domain::{
    Analysis, Cancel, CleanUrl, EngineKind, Error, ErrorKind, Job, JobId, JobSettings, JobStatus, JobUrl, Strategy,
    Tags, TaskFilter, Tenant, UrlStatus, UrlTask,
};
use serde_json::{Value, json};
use store::prelude::*;
use store::{MemoryStore, Page};

use super::{PageAt, Sort, SortKey, SortOrder, sorted_page};
use crate::test_app::{app_with_exports, every_page, get, store, tenant};

/// One URL of a fixture job, in submission order.
#[derive(Clone, Copy, Debug)]
enum Url {
    /// Succeeded with this LCP (and a score of `100 - lcp / 100`).
    Lcp(f64),
    /// Succeeded, but its engine measured no LCP.
    NoLcp,
    Failed,
    /// Not analysed yet (a running job's).
    Queued,
}

impl Url {
    fn lcp(self) -> Option<f64> {
        match self {
            Url::Lcp(ms) => Some(ms),
            _ => None,
        }
    }
}

/// How a fixture job is left.
#[derive(Clone, Copy, PartialEq)]
enum Left {
    Running,
    /// Finished, with its digest and report as the exporter writes them.
    Exported,
    /// Finished, with a digest written before digests kept each URL's place.
    ExportedWithoutPlaces,
}

fn address(i: usize) -> String {
    format!("https://site.example/{i:05}")
}

/// A psi job over `urls`, URL `i` labelled `city` = `cities(i)` where that is `Some`.
async fn job_of(
    store: &MemoryStore,
    files: &MemoryExports,
    urls: &[Url],
    cities: impl Fn(usize) -> Option<&'static str>,
    left: Left,
) -> Job {
    let settings = JobSettings { engine: EngineKind::Psi, ..JobSettings::default() };
    let job = Job::new(tenant(), "sorted".into(), settings, urls.len() as u64, 0);
    let job_urls: Vec<JobUrl> = (0..urls.len())
        .map(|i| {
            let mut tags = Tags::default();
            if let Some(city) = cities(i) {
                tags.labels.insert("city".into(), city.into());
            }
            JobUrl { url: CleanUrl::parse(&address(i), Default::default()).unwrap(), tags }
        })
        .collect();
    store.create_job_within(&job, &job_urls, &Limits::UNLIMITED).await.unwrap().unwrap();
    for (seq, url) in (0..).zip(urls) {
        let outcome = match *url {
            Url::Queued => continue,
            Url::Lcp(ms) => measured(Some(ms)),
            Url::NoLcp => measured(None),
            Url::Failed => Outcome::Failed { kind: ErrorKind::Timeout, reason: "slow".into(), analysis: None },
        };
        store.record_outcome(&job.id, seq, &outcome, None, 2).await.unwrap();
    }
    store.count_recorded(2).await.unwrap();
    let job = store.get_job(&job.id).await.unwrap().unwrap();
    if left == Left::Running {
        return job;
    }
    assert!(store.transition_job(&job, JobStatus::Completed, 3).await.unwrap());
    let tasks = store.list_tasks(&job.id, &TaskFilter::default(), 10_000, None).await.unwrap().items;
    let mut digest = Digest::of(&tasks);
    if left == Left::ExportedWithoutPlaces {
        digest.rows.iter_mut().for_each(|row| row.seq = None);
    }
    let key = Digest::object_key(&job.id);
    files.put(&key, serde_json::to_vec(&digest).unwrap(), "application/json").await.unwrap();
    let report = JobReport { summary: Summary::default(), exports: Vec::new(), digest: Some(key), written_at: 4 };
    store.put_report(&job.id, &report, None).await.unwrap();
    store.get_job(&job.id).await.unwrap().unwrap()
}

fn measured(lcp: Option<f64>) -> Outcome {
    let mut metrics = json!({"ttfb_ms": 10.0, "field_source": "origin"}).as_object().unwrap().clone();
    if let Some(ms) = lcp {
        metrics.insert("lcp_ms".into(), json!(ms));
    }
    Outcome::Succeeded(Analysis {
        engine: "psi".into(),
        strategy: Strategy::Mobile,
        score: lcp.map(|ms| 100.0 - ms / 100.0),
        metrics,
        cached_from: None,
    })
}

/// What a sort by LCP must give, worked out on its own: measured URLs by LCP (equal ones in
/// submission order), then the rest in submission order.
fn by_lcp(urls: &[Url], keep: impl Fn(usize) -> bool, order: SortOrder) -> Vec<usize> {
    let mut measured: Vec<(f64, usize)> =
        (0..urls.len()).filter(|i| keep(*i)).filter_map(|i| Some((urls[i].lcp()?, i))).collect();
    // A stable sort of URLs already in submission order keeps equal ones in it.
    measured.sort_by(|a, b| match order {
        SortOrder::Asc => a.0.total_cmp(&b.0),
        SortOrder::Desc => b.0.total_cmp(&a.0),
    });
    let rest = (0..urls.len()).filter(|i| keep(*i) && urls[*i].lcp().is_none());
    measured.into_iter().map(|(_, i)| i).chain(rest).collect()
}

fn indexes(body: &Value) -> Vec<usize> {
    body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["url"].as_str().unwrap().trim_start_matches("https://site.example/").parse().unwrap())
        .collect()
}

/// Every page of `/results/{job}?{query}&limit={limit}`, in order: each page's URLs.
async fn pages(app: &Router, job: &Job, query: &str, limit: usize) -> Vec<Vec<usize>> {
    let answers = every_page(app, "GET", &format!("/results/{}?{query}&limit={limit}", job.id)).await;
    let pages: Vec<Vec<usize>> = answers.iter().map(|answer| indexes(&answer.json())).collect();
    for page in &pages {
        assert!(page.len() <= limit, "{query}: {page:?}");
    }
    pages
}

/// 23 URLs in no order of LCP, with ties, failures, URLs not analysed and one without LCP.
fn mixed() -> Vec<Url> {
    (0..23)
        .map(|i| match i % 6 {
            0 => Url::Failed,
            3 if i > 10 => Url::NoLcp,
            _ => Url::Lcp(f64::from((i * 7 % 5) as u32) * 500.0 + 1_000.0),
        })
        .collect()
}

fn with_queued(mut urls: Vec<Url>) -> Vec<Url> {
    urls[4] = Url::Queued;
    urls[17] = Url::Queued;
    urls
}

#[tokio::test]
async fn a_sort_covers_the_whole_job_page_after_page_in_either_order() {
    let (store, files) = (store().await, MemoryExports::default());
    let running = with_queued(mixed());
    let jobs = [
        (job_of(&store, &files, &running, |_| None, Left::Running).await, running.clone()),
        (job_of(&store, &files, &mixed(), |_| None, Left::Exported).await, mixed()),
        (job_of(&store, &files, &mixed(), |_| None, Left::ExportedWithoutPlaces).await, mixed()),
    ];
    let app = app_with_exports(store, files);
    for (job, urls) in &jobs {
        for (query, order) in [("sort=lcp_ms", SortOrder::Asc), ("sort=lcp_ms&order=desc", SortOrder::Desc)] {
            let expected = by_lcp(urls, |_| true, order);
            for limit in [4, 1_000] {
                let pages = pages(&app, job, query, limit).await;
                assert_eq!(pages.concat(), expected, "{query}, {limit} a page: every URL once, in order");
                assert_eq!(pages.len(), urls.len().div_ceil(limit), "{query}, {limit} a page: full pages");
            }
        }
    }
}

#[tokio::test]
async fn urls_without_the_number_come_last_in_both_orders_then_in_submission_order() {
    let (store, files) = (store().await, MemoryExports::default());
    let urls = [Url::Lcp(300.0), Url::Failed, Url::Lcp(100.0), Url::NoLcp, Url::Lcp(100.0), Url::Lcp(200.0)];
    let exported = job_of(&store, &files, &urls, |_| None, Left::Exported).await;
    let mut running = urls.to_vec();
    running[3] = Url::Queued;
    let running = job_of(&store, &files, &running, |_| None, Left::Running).await;
    let app = app_with_exports(store, files);
    for job in [&exported, &running] {
        let order = |query: &str| {
            let app = app.clone();
            let uri = format!("/results/{}?{query}", job.id);
            async move { indexes(&get(&app, &uri).await.json()) }
        };
        assert_eq!(order("sort=lcp_ms").await, [2, 4, 5, 0, 1, 3]);
        assert_eq!(order("sort=lcp_ms&order=desc").await, [0, 5, 2, 4, 1, 3], "ties stay in submission order");
        assert_eq!(order("sort=score&order=desc").await, [2, 4, 5, 0, 1, 3], "the best score first");
        assert_eq!(order("sort=fcp_ms").await, [0, 1, 2, 3, 4, 5], "nobody has it: submission order");
    }
    let order = |query: &str| {
        let app = app.clone();
        let uri = format!("/results/{}?{query}", exported.id);
        async move { indexes(&get(&app, &uri).await.json()) }
    };
    assert_eq!(order("sort=status").await, [0, 2, 3, 4, 5, 1], "succeeded before failed");
    assert_eq!(order("sort=url&order=desc").await, [5, 4, 3, 2, 1, 0]);
}

#[tokio::test]
async fn filters_choose_the_urls_and_the_sort_orders_them() {
    let (store, files) = (store().await, MemoryExports::default());
    let urls = mixed();
    let city = |i: usize| [Some("Lyon"), Some("Paris"), None][i % 3];
    let exported = job_of(&store, &files, &urls, city, Left::Exported).await;
    let running = job_of(&store, &files, &with_queued(mixed()), city, Left::Running).await;
    let app = app_with_exports(store, files);
    let lyon = |i: usize| city(i) == Some("Lyon");
    for (job, urls) in [(&exported, mixed()), (&running, with_queued(mixed()))] {
        let ok = |i: usize| matches!(urls[i], Url::Lcp(_) | Url::NoLcp);
        assert_eq!(
            pages(&app, job, "sort=lcp_ms&order=desc&status=succeeded", 3).await.concat(),
            by_lcp(&urls, ok, SortOrder::Desc)
        );
        assert_eq!(
            pages(&app, job, "sort=lcp_ms&label=city:Lyon", 2).await.concat(),
            by_lcp(&urls, lyon, SortOrder::Asc)
        );
        assert_eq!(
            pages(&app, job, "sort=lcp_ms&label=city:Lyon&status=succeeded", 2).await.concat(),
            by_lcp(&urls, |i| lyon(i) && ok(i), SortOrder::Asc)
        );
    }

    // CSV and JSON Lines pages are sorted the same, and continue from x-next-cursor.
    let csv = get(&app, &format!("/results/{}?format=csv&limit=3&sort=lcp_ms", exported.id)).await;
    assert_eq!(csv.status, StatusCode::OK);
    let lines: Vec<String> = csv.text().lines().skip(1).map(|l| l.split(',').next().unwrap().to_owned()).collect();
    let expected = by_lcp(&urls, |_| true, SortOrder::Asc);
    assert_eq!(lines, expected[..3].iter().map(|i| address(*i)).collect::<Vec<_>>());
    let next = csv.headers["x-next-cursor"].to_str().unwrap();
    let rest = get(&app, &format!("/results/{}?format=jsonl&limit=3&sort=lcp_ms&cursor={next}", exported.id)).await;
    let rest: Vec<String> = rest
        .text()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["url"].as_str().unwrap().into())
        .collect();
    assert_eq!(rest, expected[3..6].iter().map(|i| address(*i)).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_sort_that_cannot_be_is_refused_saying_what_can() {
    let (store, files) = (store().await, MemoryExports::default());
    let psi = job_of(&store, &files, &mixed(), |_| None, Left::Exported).await;
    let http = Job::new(tenant(), "h".into(), JobSettings::default(), 1, 0);
    store.create_job(&http, &[CleanUrl::parse("https://site.example/a", Default::default()).unwrap()]).await.unwrap();
    let app = app_with_exports(store, files);
    let refused = |job: &Job, query: &str| {
        let (app, uri) = (app.clone(), format!("/results/{}?{query}", job.id));
        async move {
            let answer = get(&app, &uri).await;
            assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{uri}: {}", answer.text());
            let detail = answer.json()["error"]["details"][0].clone();
            (detail["field"].as_str().unwrap().to_owned(), detail["message"].as_str().unwrap().to_owned())
        }
    };
    let (field, message) = refused(&psi, "sort=lcp").await;
    let keys = "url, status, position, score, desktop_score, delivery_score, desktop_delivery_score, fcp_ms, lcp_ms, \
                speed_index_ms, tbt_ms, cls, ttfb_ms, total_ms, page_bytes, field_lcp_ms, field_inp_ms, field_cls, \
                field_fcp_ms, field_ttfb_ms";
    assert_eq!((field.as_str(), message.as_str()), ("sort", format!("\"lcp\" is not one of {keys}").as_str()));
    assert_eq!(refused(&psi, "sort=lcp_ms&order=up").await.0, "order");
    // An order without a key is of the URLs' places: desc lists the last submitted first.
    let newest_first: Vec<Vec<usize>> = pages(&app, &psi, "order=desc", 10).await;
    assert_eq!(newest_first.concat(), (0..23).rev().collect::<Vec<_>>());
    assert_eq!(pages(&app, &psi, "order=asc", 10).await.concat(), (0..23).collect::<Vec<_>>());
    assert_eq!(pages(&app, &psi, "sort=position&order=desc", 23).await.concat(), newest_first.concat());
    let (field, message) = refused(&http, "sort=score").await;
    assert_eq!(field, "sort");
    assert!(message.contains("http engine, which gives no score: sort by delivery_score"), "{message}");
    assert!(refused(&psi, "sort=delivery_score").await.1.contains("sort by score"));
    // A sorted file without a limit is a page of the most rows a page holds, not the
    // whole-job export (which is in submission order).
    let file = get(&app, &format!("/results/{}?sort=position&order=desc&format=jsonl", psi.id)).await;
    assert_eq!(file.status, StatusCode::OK, "{}", file.text());
    let urls: Vec<String> = file
        .text()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["url"].as_str().unwrap().into())
        .collect();
    assert_eq!(urls, (0..23).rev().map(address).collect::<Vec<_>>());
    assert!(file.headers.get("x-next-cursor").is_none(), "all 23 on one page of up to 1000");
    // The parameters are checked before the job is looked for, as the others are.
    let answer = get(&app, "/results/missing?sort=nope").await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    // A key the engine gives is taken.
    assert_eq!(get(&app, &format!("/results/{}?sort=delivery_score", http.id)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_cursor_continues_only_the_listing_it_came_from() {
    let (store, files) = (store().await, MemoryExports::default());
    let job = job_of(&store, &files, &mixed(), |_| None, Left::Exported).await;
    let app = app_with_exports(store, files);
    let cursor = |query: &str| {
        let uri = format!("/results/{}?{query}&limit=2", job.id);
        let app = app.clone();
        async move { get(&app, &uri).await.json()["next_cursor"].as_str().unwrap().to_owned() }
    };
    let sorted = cursor("sort=score").await;
    let unsorted = cursor("status=succeeded").await;
    for (query, mentions) in [
        (format!("sort=lcp_ms&cursor={sorted}"), "sorted by score asc"),
        (format!("sort=score&order=desc&cursor={sorted}"), "sorted by score asc"),
        (format!("cursor={sorted}"), "pass sort=score&order=asc"),
        (format!("sort=score&cursor={unsorted}"), "submission order"),
        (format!("sort=score&cursor={}", &sorted[..sorted.len() - 2]), "not valid"),
        (format!("sort=score&cursor={}", crate::cursor::encode("score:asc:x")), "not valid"),
        (format!("sort=score&cursor={}", crate::cursor::encode("nope:asc:2")), "not valid"),
    ] {
        let answer = get(&app, &format!("/results/{}?{query}", job.id)).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{query}");
        let message = answer.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.contains(mentions), "{query}: {message}");
    }
    let answer = get(&app, &format!("/results/{}?sort=score&order=asc&cursor={sorted}", job.id)).await;
    assert_eq!(answer.status, StatusCode::OK, "asc spelled out is the default");
    let past = crate::cursor::encode("score:asc:99999");
    let answer = get(&app, &format!("/results/{}?sort=score&cursor={past}", job.id)).await.json();
    assert_eq!((answer["results"].as_array().unwrap().len(), &answer["next_cursor"]), (0, &Value::Null));
}

/// A store that counts what listings read: the calls, and the URLs they return.
#[derive(Default)]
struct Reads {
    list_calls: AtomicUsize,
    listed: AtomicUsize,
    get_calls: AtomicUsize,
    got: AtomicUsize,
}

struct Counted<'a> {
    store: &'a MemoryStore,
    reads: Reads,
}

impl Counted<'_> {
    fn take(&self) -> [usize; 4] {
        let r = &self.reads;
        [&r.list_calls, &r.listed, &r.get_calls, &r.got].map(|n| n.swap(0, Atomic::SeqCst))
    }
}

impl Lookup for Counted<'_> {
    async fn get_job(&self, id: &JobId) -> Result<Option<Job>, Error> {
        self.store.get_job(id).await
    }

    async fn get_task(&self, id: &JobId, seq: u32) -> Result<Option<UrlTask>, Error> {
        self.store.get_task(id, seq).await
    }
}

impl Jobs for Counted<'_> {
    async fn create_job_within(
        &self,
        job: &Job,
        urls: &[JobUrl],
        limits: &Limits,
    ) -> Result<Result<(), OverLimit>, Error> {
        self.store.create_job_within(job, urls, limits).await
    }

    async fn get_jobs(&self, ids: &[JobId]) -> Result<Vec<Job>, Error> {
        self.store.get_jobs(ids).await
    }

    async fn list_jobs(
        &self,
        tenant: &Tenant,
        status: Option<JobStatus>,
        limit: usize,
        after: Option<&JobId>,
    ) -> Result<Page<Job, JobId>, Error> {
        self.store.list_jobs(tenant, status, limit, after).await
    }

    async fn list_tasks(
        &self,
        id: &JobId,
        filter: &TaskFilter,
        limit: usize,
        after: Option<u32>,
    ) -> Result<Page<UrlTask, u32>, Error> {
        let page = self.store.list_tasks(id, filter, limit, after).await?;
        self.reads.list_calls.fetch_add(1, Atomic::SeqCst);
        self.reads.listed.fetch_add(page.items.len(), Atomic::SeqCst);
        Ok(page)
    }

    async fn get_tasks(&self, id: &JobId, seqs: &[u32]) -> Result<Vec<UrlTask>, Error> {
        let tasks = self.store.get_tasks(id, seqs).await?;
        self.reads.get_calls.fetch_add(1, Atomic::SeqCst);
        self.reads.got.fetch_add(tasks.len(), Atomic::SeqCst);
        Ok(tasks)
    }

    async fn request_cancel(&self, id: &JobId, now: Millis) -> Result<Cancel, Error> {
        self.store.request_cancel(id, now).await
    }

    async fn delete_job(&self, id: &JobId) -> Result<usize, Error> {
        self.store.delete_job(id).await
    }

    async fn ping(&self) -> Result<(), Error> {
        self.store.ping().await
    }
}

#[tokio::test]
async fn a_finished_jobs_page_reads_its_digest_and_the_pages_urls_alone() {
    let (store, files) = (MemoryStore::new(), MemoryExports::default());
    let urls: Vec<Url> =
        (0..2_500).map(|i| if i % 10 == 0 { Url::Failed } else { Url::Lcp(f64::from(i % 97)) }).collect();
    let exported = job_of(&store, &files, &urls, |i| (i % 2 == 0).then_some("Lyon"), Left::Exported).await;
    let old = job_of(&store, &files, &urls, |_| None, Left::ExportedWithoutPlaces).await;
    let running = job_of(&store, &files, &with_queued(urls.clone()), |_| None, Left::Running).await;
    let counted = Counted { store: &store, reads: Reads::default() };
    let sort = Sort { key: SortKey::LcpMs, order: SortOrder::Desc };
    let everything = TaskFilter::default();
    let page = |job: &Job, filter: TaskFilter, offset: usize| {
        let (counted, files, job) = (&counted, &files, job.clone());
        async move {
            let report = counted.store.get_report(&job.id).await.unwrap();
            let page = sorted_page(counted, files, &job, report.as_ref(), &filter, sort, PageAt { offset, limit: 100 })
                .await
                .unwrap();
            let seqs: Vec<usize> =
                page.rows.iter().map(|r| r.url.trim_start_matches("https://site.example/").parse().unwrap()).collect();
            (seqs, counted.take())
        }
    };
    let expected = by_lcp(&urls, |_| true, SortOrder::Desc);

    let (seqs, [list_calls, listed, get_calls, got]) = page(&exported, everything.clone(), 200).await;
    assert_eq!(seqs, expected[200..300]);
    assert_eq!((list_calls, listed, get_calls, got), (0, 0, 1, 100), "the digest, then the page's 100 URLs");
    let (seqs, reads) = page(&exported, TaskFilter::status(UrlStatus::Failed), 0).await;
    assert_eq!((seqs.len(), reads), (100, [0, 0, 1, 100]), "a filter by status is the digest's too");

    // What the digest cannot answer is read from the job's URLs, a page of 1000 at a time.
    let (seqs, reads) = page(&old, everything.clone(), 200).await;
    assert_eq!((seqs, reads), (expected[200..300].to_vec(), [3, 2_500, 1, 100]), "a digest without places");
    let (_, reads) = page(&running, everything.clone(), 0).await;
    assert_eq!(reads, [3, 2_500, 1, 100], "a running job");
    let expired = job_of(&store, &files, &urls, |_| None, Left::Exported).await;
    files.delete(&[Digest::object_key(&expired.id)]).await.unwrap();
    let (seqs, reads) = page(&expired, everything.clone(), 200).await;
    assert_eq!((seqs, reads), (expected[200..300].to_vec(), [3, 2_500, 1, 100]), "a digest gone with the exports");
    let lyon = TaskFilter { label: Some(domain::LabelFilter::parse("city:Lyon").unwrap()), ..TaskFilter::default() };
    let (seqs, reads) = page(&exported, lyon, 0).await;
    assert!(seqs.iter().all(|i| i % 2 == 0), "{seqs:?}");
    assert_eq!(reads, [2, 1_250, 1, 100], "a filter by label, which the digest does not keep");
}

#[test]
fn every_number_comparisons_judge_is_a_sort_key_by_its_own_name() {
    let keys: Vec<&str> = SortKey::ALL.iter().map(|k| k.as_str()).collect();
    for (metric, _) in domain::compare::NOISE {
        assert!(keys.contains(&metric), "{metric}");
    }
    for key in SortKey::ALL {
        assert_eq!(serde_json::to_value(key).unwrap(), json!(key.as_str()), "the document's name is the handler's");
        assert_eq!(key.as_str().parse::<SortKey>(), Ok(key));
    }
    assert_eq!(keys.len(), domain::compare::NOISE.len() + 3, "url, status, position and those numbers");
}

#[test]
fn the_document_lists_the_keys_and_orders() {
    use utoipa::OpenApi;
    let doc = serde_json::to_value(crate::openapi::ApiDoc::openapi()).unwrap();
    let path = domain::paths::endpoint("/results/{id}");
    let parameters = doc["paths"][path]["get"]["parameters"].as_array().unwrap().clone();
    let enum_of = |name: &str| {
        let parameter = parameters.iter().find(|p| p["name"] == name).unwrap_or_else(|| panic!("{name}"));
        let mut found: Vec<Value> = Vec::new();
        collect_enums(&parameter["schema"], &mut found);
        found.into_iter().filter(|v| !v.is_null()).collect::<Vec<_>>()
    };
    let keys: Vec<Value> = SortKey::ALL.iter().map(|k| json!(k.as_str())).collect();
    assert_eq!(enum_of("sort"), keys);
    assert_eq!(enum_of("order"), [json!("asc"), json!("desc")]);
}

fn collect_enums(schema: &Value, found: &mut Vec<Value>) {
    match schema {
        Value::Object(map) => {
            if let Some(Value::Array(values)) = map.get("enum") {
                found.extend(values.iter().cloned());
            }
            map.values().for_each(|v| collect_enums(v, found));
        }
        Value::Array(list) => list.iter().for_each(|v| collect_enums(v, found)),
        _ => {}
    }
}

//! Field data against the fake Chrome UX Report API, through the engine the analyzer uses
//! (client + shared quota): the URL's record in one request, else its origin's, no data as
//! "none", both form factors, the weekly history from whichever had the record, the limiter
//! keeping the API's quota so no request meets a 429, the API's own 429 as a wait, and a
//! refused key as the deployment's problem.

use std::time::Duration;

use domain::field::{FieldCategory, FieldMetric, FieldSource, FormFactorField, MAX_HISTORY_WEEKS};
use domain::quota::{Asker, QuotaLimits};
use domain::{ErrorKind, Priority, Strategy};
use engine::crux::{CruxClient, FieldEngine, FormFactor, Target};
use engine::psi::{ApiKey, KeyProvider};
use engine::{Admission, FieldRequest};
use store::MemoryQuota;
use testkit::fake_crux::{CruxQuota, Endpoint, FakeCrux, FakeCruxConfig};

const KEY: &str = "crux-test-key";
const ASKER: Asker<'static> = Asker { tenant: "acme", weight: 1, priority: Priority::Normal };
/// Google's quota, 150 a minute, with time running 60 times faster: 150 a second.
const FAST: QuotaLimits =
    QuotaLimits { per_window: 150, window: Duration::from_secs(1), per_day: u32::MAX, utilisation: 0.98 };

fn fake(quota: Option<CruxQuota>) -> FakeCrux {
    FakeCrux::start(FakeCruxConfig { api_key: Some(KEY.into()), quota, ..FakeCruxConfig::new() })
}

fn client(fake: &FakeCrux, key: &str) -> CruxClient {
    CruxClient::new(&fake.api_url(), KeyProvider::Fixed(ApiKey::new(key))).unwrap()
}

fn engine(fake: &FakeCrux) -> FieldEngine<MemoryQuota> {
    FieldEngine::new(client(fake, KEY), MemoryQuota::new(FAST))
}

fn request(url: &str, strategy: Strategy, history: bool) -> FieldRequest<'_> {
    FieldRequest { url, strategy, history, asker: ASKER, prepaid: false }
}

async fn one(engine: &FieldEngine<MemoryQuota>, url: &str, history: bool) -> FormFactorField {
    let [found] = engine.measure(request(url, Strategy::Mobile, history)).await.unwrap().try_into().unwrap();
    found
}

#[tokio::test]
async fn a_urls_own_record_is_read_in_one_request() {
    let fake = fake(None);
    let found = one(&engine(&fake), "https://shop.example/item/7", false).await;
    let record = found.record.unwrap();
    assert_eq!(record.source, FieldSource::Url);
    for metric in FieldMetric::ALL {
        assert!(record.p75.contains_key(&metric), "{metric:?} in {record:?}");
    }
    assert!(record.period.as_ref().is_some_and(|(first, last)| first < last && last == "2026-11-28"), "{record:?}");
    assert_eq!((fake.stats().requests, found.history), (1, None));
}

#[tokio::test]
async fn a_url_without_its_own_record_falls_back_to_its_origin_and_its_history_too() {
    let fake = fake(None);
    let found = one(&engine(&fake), "https://shop.example/origin-only/1", true).await;
    assert_eq!(found.record.unwrap().source, FieldSource::Origin);
    assert_eq!(found.history.unwrap().source, FieldSource::Origin);
    let stats = fake.stats();
    assert_eq!((stats.status(404), stats.status(200)), (1, 2), "the URL's 404, then the origin's record and history");
    assert_eq!((stats.endpoint(Endpoint::QueryRecord), stats.endpoint(Endpoint::QueryHistoryRecord)), (2, 1));
    assert_eq!(stats.for_origin("https://shop.example"), 2, "no history asked of the URL that had no record");
}

#[tokio::test]
async fn no_record_for_the_url_or_its_origin_is_unavailable_not_a_failure() {
    let fake = fake(None);
    fake.add_origin_without_data("https://quiet.example");
    let found = one(&engine(&fake), "https://quiet.example/a", true).await;
    assert_eq!((found.record, found.history), (None, None));
    assert_eq!(fake.stats().requests, 2, "the URL and its origin; no history of nothing");
    let client = client(&fake, KEY);
    let origin = Target::origin_of("https://quiet.example/a").unwrap();
    assert_eq!(client.history(&origin, FormFactor::Desktop).await.unwrap(), None);
}

#[tokio::test]
async fn both_reads_each_form_factor_and_desktop_is_judged_on_its_own() {
    let fake = fake(None);
    let found = engine(&fake).measure(request("https://shop.example/", Strategy::Both, false)).await.unwrap();
    let [phone, desktop] = found.try_into().unwrap();
    assert_eq!((phone.strategy, desktop.strategy), (Strategy::Mobile, Strategy::Desktop));
    let (phone, desktop) = (phone.record.unwrap(), desktop.record.unwrap());
    assert!(desktop.p75[&FieldMetric::Lcp] < phone.p75[&FieldMetric::Lcp], "{phone:?} {desktop:?}");
    assert_eq!(fake.stats().requests, 2, "one request per form factor");
    let slow = one(&engine(&fake), "https://shop.example/slow-field", false).await.record.unwrap();
    assert_eq!(slow.metrics("")["field_overall_category"], serde_json::json!(FieldCategory::Poor));
}

#[tokio::test]
async fn the_history_is_forty_weeks_ending_with_the_record() {
    let fake = fake(None);
    let found = one(&engine(&fake), "https://shop.example/sparse-history", true).await;
    let (history, record) = (found.history.unwrap(), found.record.unwrap());
    assert_eq!((history.weeks.len(), history.source), (MAX_HISTORY_WEEKS, FieldSource::Url));
    assert_eq!(history.weeks.last().map(String::as_str), Some("2026-11-28"));
    let lcp = &history.p75s[&FieldMetric::Lcp];
    assert!(lcp.first().is_some_and(Option::is_none), "early weeks without data are gaps: {lcp:?}");
    assert_eq!(*lcp.last().unwrap(), Some(record.p75[&FieldMetric::Lcp]), "the last week is the record");
}

/// 150 a minute at sixty times the speed: every request waits for its place in the limiter,
/// and the API, holding the same quota in fixed windows, never answers 429.
#[tokio::test]
async fn the_limiter_keeps_every_request_inside_the_apis_quota() {
    let fake = fake(Some(CruxQuota::per_minute(150).time_scaled(60)));
    let engine = std::sync::Arc::new(engine(&fake));
    let urls: Vec<String> = (0..120).map(|i| format!("https://site{i}.example/origin-only/{i}")).collect();
    let tasks = urls.iter().cloned().map(|url| {
        let engine = std::sync::Arc::clone(&engine);
        tokio::spawn(async move { engine.measure(request(&url, Strategy::Mobile, true)).await })
    });
    for found in futures::future::join_all(tasks).await {
        assert_eq!(found.unwrap().unwrap()[0].record.as_ref().unwrap().source, FieldSource::Origin);
    }
    let stats = fake.stats();
    assert_eq!((stats.requests, stats.status(429)), (360, 0), "3 requests per URL, none refused");
    assert!(stats.max_in_window <= 150, "{}", stats.max_in_window);
}

#[tokio::test]
async fn the_apis_own_429_is_a_wait_and_a_refused_key_the_deployments_problem() {
    let fake = fake(Some(CruxQuota::per_minute(1)));
    let engine = engine(&fake);
    assert!(matches!(engine.admit(ASKER, domain::time::now_millis()).await.unwrap(), Admission::At(_)));
    one(&engine, "https://shop.example/1", false).await;
    let waited = engine.measure(request("https://shop.example/2", Strategy::Mobile, false)).await.unwrap_err();
    assert_eq!(waited.kind, ErrorKind::RateLimited);
    assert!(waited.defer_until.is_some(), "not an attempt: {waited:?}");
    assert!(waited.reason.contains("Queries per minute"), "Google's words: {}", waited.reason);
    let refused = client(&fake, "not-the-key").record(&Target::url("https://shop.example/3"), FormFactor::Phone).await;
    assert_eq!(refused.unwrap_err().kind, ErrorKind::EngineUnavailable);
}

#[tokio::test]
async fn a_full_quota_defers_the_url_before_any_request() {
    let fake = fake(None);
    let slow = QuotaLimits { per_window: 1, window: Duration::from_secs(3600), per_day: u32::MAX, utilisation: 1.0 };
    let engine = FieldEngine::new(client(&fake, KEY), MemoryQuota::new(slow));
    let now = domain::time::now_millis();
    assert!(matches!(engine.admit(ASKER, now).await.unwrap(), Admission::At(_)), "the hour's one place");
    let Admission::Wait { until, reason } = engine.admit(ASKER, now).await.unwrap() else {
        panic!("the quota is full")
    };
    assert!(until > now + 60_000 && reason.contains("Chrome UX Report"), "{until} {reason}");
    assert_eq!(fake.stats().requests, 0);
}

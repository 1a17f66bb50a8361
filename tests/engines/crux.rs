//! The CrUX client against the fake Chrome UX Report API: the URL's record, else its origin's,
//! no data as "none", both form factors, the weekly history, the quota's 429 as a wait, and a
//! refused key as the deployment's problem.

use domain::ErrorKind;
use domain::field::{FieldCategory, FieldMetric, FieldSource, MAX_HISTORY_WEEKS};
use engine::crux::{CruxClient, FormFactor};
use engine::psi::{ApiKey, KeyProvider};
use testkit::fake_crux::{CruxQuota, Endpoint, FakeCrux, FakeCruxConfig};

const KEY: &str = "crux-test-key";

fn fake(quota: Option<CruxQuota>) -> FakeCrux {
    FakeCrux::start(FakeCruxConfig { api_key: Some(KEY.into()), quota, ..FakeCruxConfig::new() })
}

fn client(fake: &FakeCrux, key: &str) -> CruxClient {
    CruxClient::new(&fake.api_url(), KeyProvider::Fixed(ApiKey::new(key))).unwrap()
}

#[tokio::test]
async fn a_urls_own_record_is_read_in_one_request() {
    let fake = fake(None);
    let record = client(&fake, KEY).record("https://shop.example/item/7", FormFactor::Phone).await.unwrap().unwrap();
    assert_eq!(record.source, FieldSource::Url);
    for metric in FieldMetric::ALL {
        assert!(record.p75.contains_key(&metric), "{metric:?} in {record:?}");
    }
    assert!(record.period.as_ref().is_some_and(|(first, last)| first < last && last == "2026-11-28"), "{record:?}");
    assert_eq!(fake.stats().endpoint(Endpoint::QueryRecord), 1);
}

#[tokio::test]
async fn a_url_without_its_own_record_falls_back_to_its_origin() {
    let fake = fake(None);
    let record =
        client(&fake, KEY).record("https://shop.example/origin-only/1", FormFactor::Phone).await.unwrap().unwrap();
    assert_eq!(record.source, FieldSource::Origin);
    let stats = fake.stats();
    assert_eq!((stats.status(404), stats.status(200)), (1, 1), "the URL's 404, then the origin's record");
    assert_eq!(stats.for_origin("https://shop.example"), 1);
}

#[tokio::test]
async fn no_record_for_the_url_or_its_origin_is_none_not_a_failure() {
    let fake = fake(None);
    fake.add_origin_without_data("https://quiet.example");
    let crux = client(&fake, KEY);
    assert_eq!(crux.record("https://quiet.example/a", FormFactor::Desktop).await.unwrap(), None);
    assert_eq!(crux.history("https://quiet.example/a", FormFactor::Desktop).await.unwrap(), None);
}

#[tokio::test]
async fn each_form_factor_has_its_record_and_desktop_is_judged_on_its_own() {
    let fake = fake(None);
    let crux = client(&fake, KEY);
    let phone = crux.record("https://shop.example/", FormFactor::Phone).await.unwrap().unwrap();
    let desktop = crux.record("https://shop.example/", FormFactor::Desktop).await.unwrap().unwrap();
    assert!(desktop.p75[&FieldMetric::Lcp] < phone.p75[&FieldMetric::Lcp], "{phone:?} {desktop:?}");
    let slow = crux.record("https://shop.example/slow-field", FormFactor::Desktop).await.unwrap().unwrap();
    assert_eq!(slow.metrics("desktop_")["desktop_field_overall_category"], serde_json::json!(FieldCategory::Poor));
}

#[tokio::test]
async fn the_history_is_forty_weeks_ending_with_the_record() {
    let fake = fake(None);
    let crux = client(&fake, KEY);
    let history = crux.history("https://shop.example/sparse-history", FormFactor::Phone).await.unwrap().unwrap();
    assert_eq!(history.weeks.len(), MAX_HISTORY_WEEKS);
    assert_eq!(history.weeks.last().map(String::as_str), Some("2026-11-28"));
    let lcp = &history.p75s[&FieldMetric::Lcp];
    assert!(lcp.first().is_some_and(Option::is_none), "early weeks without data are gaps: {lcp:?}");
    let record = crux.record("https://shop.example/sparse-history", FormFactor::Phone).await.unwrap().unwrap();
    assert_eq!(*lcp.last().unwrap(), Some(record.p75[&FieldMetric::Lcp]), "the last week is the record");
}

#[tokio::test]
async fn the_quotas_429_is_a_wait_and_a_refused_key_the_deployments_problem() {
    let fake = fake(Some(CruxQuota::per_minute(1)));
    let crux = client(&fake, KEY);
    crux.record("https://shop.example/1", FormFactor::Phone).await.unwrap();
    let waited = crux.record("https://shop.example/2", FormFactor::Phone).await.unwrap_err();
    assert_eq!(waited.kind, ErrorKind::RateLimited);
    assert!(waited.defer_until.is_some(), "not an attempt: {waited:?}");
    assert!(waited.reason.contains("Queries per minute"), "Google's words: {}", waited.reason);
    let refused = client(&fake, "not-the-key").record("https://shop.example/3", FormFactor::Phone).await.unwrap_err();
    assert_eq!(refused.kind, ErrorKind::EngineUnavailable, "{refused:?}");
}

//! The `psi` engine against the local fake of PageSpeed Insights: results, every error class,
//! and the key kept out of every message.

use std::time::Duration;

use domain::quota::QuotaLimits;
use domain::{ErrorKind, Strategy};
use engine::psi::{ApiKey, KeyProvider};
use engine::{Engine, PsiEngine};
use store::MemoryQuota;
use testkit::fake_psi::{FakePsi, FakePsiConfig, QuotaKind, QuotaWindow, lighthouse_fixture};

const KEY: &str = "AIzaSy-test-key-0123456789";

const PLENTY: QuotaLimits =
    QuotaLimits { per_window: 10_000, window: Duration::from_secs(1), per_day: 1_000_000, utilisation: 1.0 };

#[tokio::test]
async fn results_are_read_and_every_failure_is_classified_without_the_key() {
    let fake = FakePsi::start(FakePsiConfig {
        api_key: Some(KEY.into()),
        quota: vec![QuotaWindow { limit: 6, window: Duration::from_secs(60), kind: QuotaKind::PerMinute }],
        ..FakePsiConfig::new(lighthouse_fixture())
    });
    let engine =
        PsiEngine::new(&fake.endpoint(), KeyProvider::Fixed(ApiKey::new(KEY)), MemoryQuota::new(PLENTY)).unwrap();
    let timeout = Duration::from_secs(30);
    let analysis = engine.analyze("https://example.com/", Strategy::Desktop, timeout).await.unwrap();
    assert_eq!((analysis.engine.as_str(), analysis.score), ("psi", Some(32.0)));
    assert_eq!(analysis.metrics["final_url"], "https://example.com/");
    assert_eq!(analysis.metrics["lcp_ms"], 10884.7);
    assert!(analysis.metrics["field_lcp_ms"].is_number(), "{:?}", analysis.metrics);

    let cases = [
        ("https://dns-failure.example/", ErrorKind::Dns, false),
        ("https://example.com/errored-document-404", ErrorKind::Http4xx, false),
        ("https://example.com/errored-document-503", ErrorKind::Http5xx, true),
        ("https://example.com/failed-document", ErrorKind::Http5xx, true),
        ("https://example.com/server-error", ErrorKind::Http5xx, true),
    ];
    for (url, kind, retryable) in cases {
        let err = engine.analyze(url, Strategy::Mobile, timeout).await.unwrap_err();
        assert_eq!((err.kind, err.is_retryable(), err.defer_until), (kind, retryable, None), "{url}: {}", err.reason);
        assert!(!err.reason.contains(KEY), "{url}: the key leaked into {}", err.reason);
    }
    // The fake's per-minute quota (6) is now used up: a 429 is a wait, not a failure.
    let limited = engine.analyze("https://example.com/more", Strategy::Mobile, timeout).await.unwrap_err();
    assert_eq!(limited.kind, ErrorKind::RateLimited);
    assert!(limited.defer_until.is_some(), "{}", limited.reason);
    assert!(limited.reason.contains("Queries per minute"), "Google's words are kept: {}", limited.reason);

    let wrong_key =
        PsiEngine::new(&fake.endpoint(), KeyProvider::Fixed(ApiKey::new("AIza-wrong")), MemoryQuota::new(PLENTY))
            .unwrap();
    let refused = wrong_key.analyze("https://example.com/", Strategy::Mobile, timeout).await.unwrap_err();
    assert_eq!((refused.kind, refused.is_retryable()), (ErrorKind::EngineUnavailable, false), "{}", refused.reason);
    assert!(!refused.reason.contains("AIza-wrong"));
}

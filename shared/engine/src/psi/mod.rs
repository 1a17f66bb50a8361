//! The `psi` engine: Google PageSpeed Insights API v5, within a quota every analyzer
//! instance shares.

pub mod key;
pub mod report;

use std::time::Duration;

use serde_json::json;
use tokio::sync::OnceCell;

use crate::{Admission, Engine, EngineError};
use domain::Error;
use domain::quota::{Asker, Grant, QuotaGate, next_daily_reset};
use domain::time::{Millis, now_millis};
use domain::{Analysis, Category, ErrorKind, Strategy};
pub use key::{ApiKey, KeyProvider};
use report::FailureClass;

/// The longest a URL waits in the analyzer for its quota slot; beyond that it waits on the
/// queue instead (a delayed copy), which costs no Lambda time. It is also how far ahead places
/// are booked (`domain::quota::fair::reach`), which every newcomer waits behind: short.
const MAX_SLOT_WAIT: Duration = Duration::from_secs(5);
/// How long a URL waits after PSI's own per-minute 429 (someone else uses the key too).
const RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);
/// How long a URL waits when the key cannot be read (a deployment problem, not the page's).
const KEY_WAIT: Duration = Duration::from_secs(120);

/// How far ahead a URL of `priority` books its tenant's places in the quota: what a tenant that
/// starts waiting finds booked by the others already waiting.
pub fn booking_ahead(priority: domain::Priority) -> Duration {
    let max_wait = i64::try_from(MAX_SLOT_WAIT.as_millis()).unwrap_or(i64::MAX);
    Duration::from_millis(u64::try_from(domain::quota::fair::reach(priority, max_wait)).unwrap_or(0))
}

pub struct PsiEngine<G> {
    http: reqwest::Client,
    endpoint: url::Url,
    key: KeyProvider,
    cached: OnceCell<ApiKey>,
    quota: G,
}

impl<G: QuotaGate> PsiEngine<G> {
    /// An engine calling `endpoint` (Google's `runPagespeed`, or a fake in tests) with the
    /// key `key` provides, within `quota`.
    pub fn new(endpoint: &str, key: KeyProvider, quota: G) -> Result<Self, Error> {
        let endpoint =
            url::Url::parse(endpoint).map_err(|e| Error::Config(format!("PSI_ENDPOINT {endpoint:?}: {e}")))?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        Ok(PsiEngine { http, endpoint, key, cached: OnceCell::new(), quota })
    }

    async fn key(&self) -> Result<&ApiKey, Error> {
        self.cached.get_or_try_init(|| self.key.get()).await
    }

    /// Takes a place in the shared quota for `asker`'s URL.
    pub async fn admit(&self, asker: Asker<'_>, now: Millis) -> Result<Admission, Error> {
        Ok(match self.quota.acquire(asker, now, MAX_SLOT_WAIT).await? {
            Grant::Go { at } => Admission::At(at),
            Grant::Wait { until, daily: true } => {
                Admission::Wait { until, reason: "the PageSpeed Insights key's requests for today are used up".into() }
            }
            Grant::Wait { until, daily: false } => {
                Admission::Wait { until, reason: "the PageSpeed Insights quota is fully booked".into() }
            }
        })
    }

    fn request_url(&self, page: &str, strategy: Strategy, categories: &[Category], key: &ApiKey) -> url::Url {
        let mut url = self.endpoint.clone();
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("url", page);
            query.append_pair("strategy", if strategy == Strategy::Desktop { "desktop" } else { "mobile" });
            for category in categories {
                query.append_pair("category", category.as_str());
            }
            query.append_pair("key", key.expose());
        }
        url
    }

    async fn run(&self, page: &str, strategy: Strategy, categories: &[Category]) -> Result<Analysis, EngineError> {
        let key = match self.key().await {
            Ok(key) => key,
            Err(err) => {
                tracing::error!(error = %err, "PageSpeed Insights key unavailable");
                return Err(EngineError::deferred(
                    ErrorKind::EngineUnavailable,
                    "the PageSpeed Insights key could not be read",
                    now_millis() + KEY_WAIT.as_millis() as i64,
                ));
            }
        };
        // The request URL carries the key: errors are reported without it.
        let response = self
            .http
            .get(self.request_url(page, strategy, categories, key))
            .send()
            .await
            .map_err(|e| EngineError::from_request(e.without_url()))?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(|e| EngineError::from_request(e.without_url()))?;
        let failure = if status == 200 {
            let json: serde_json::Value = serde_json::from_str(&body).map_err(|e| {
                EngineError::new(ErrorKind::Http5xx, format!("PageSpeed Insights sent unreadable JSON: {e}"))
            })?;
            match report::parse(&json) {
                Ok(report) => {
                    return Ok(Analysis {
                        engine: "psi".into(),
                        strategy,
                        score: report.score,
                        metrics: report.metrics,
                        cached_from: None,
                    });
                }
                Err(report::ReportError::Runtime { code, message }) => report::runtime_failure(&code, &message),
                Err(other) => return Err(EngineError::new(ErrorKind::Http5xx, other.to_string())),
            }
        } else {
            report::classify(status, &body)
        };
        let mut err = match failure.class {
            FailureClass::RateLimited => EngineError::deferred(
                ErrorKind::RateLimited,
                failure.reason,
                now_millis() + RATE_LIMIT_WAIT.as_millis() as i64,
            ),
            FailureClass::DailyQuota => {
                EngineError::deferred(ErrorKind::RateLimited, failure.reason, next_daily_reset(now_millis()))
            }
            FailureClass::Transient => EngineError::new(ErrorKind::Http5xx, failure.reason),
            FailureClass::Permanent(kind) => EngineError::new(kind, failure.reason),
        };
        err.analysis = Some(Analysis {
            engine: "psi".into(),
            strategy,
            score: None,
            metrics: json!({"psi_status": status}).as_object().cloned().unwrap_or_default(),
            cached_from: None,
        });
        Err(err)
    }
}

impl<G: QuotaGate> Engine for PsiEngine<G> {
    fn name(&self) -> &'static str {
        "psi"
    }

    async fn analyze(&self, url: &str, strategy: Strategy, timeout: Duration) -> Result<Analysis, EngineError> {
        self.analyze_categories(url, strategy, &[Category::Performance], timeout).await
    }
}

impl<G: QuotaGate> PsiEngine<G> {
    /// An analysis that scores `categories` (performance is always among Lighthouse's).
    pub async fn analyze_categories(
        &self,
        url: &str,
        strategy: Strategy,
        categories: &[Category],
        timeout: Duration,
    ) -> Result<Analysis, EngineError> {
        match tokio::time::timeout(timeout, self.run(url, strategy, categories)).await {
            Ok(result) => result,
            Err(_) => Err(EngineError::new(
                ErrorKind::Timeout,
                format!("PageSpeed Insights took over {} s", timeout.as_secs()),
            )),
        }
    }
}

//! Field data from the Chrome UX Report API (SPEC §6.6): `records:queryRecord` for the URL,
//! else its origin, per form factor; `records:queryHistoryRecord` for the weekly series. The
//! API answers in milliseconds; its quota (150 requests a minute per project) is shared by
//! every analyzer through the fleet-wide limiter, which the caller asks first.
//!
//! A URL CrUX has no record of (404 for the URL and for its origin) is `None`: unavailable,
//! never zero and never a failure. A 429 waits a minute; other errors are classified as
//! PageSpeed Insights' are (a refused key is the deployment's problem, another 400 the URL's).

pub mod field_engine;
mod record;

use std::time::Duration;

use domain::field::{FieldHistory, FieldRecord, FieldSource, MAX_HISTORY_WEEKS};
use domain::time::now_millis;
use domain::{ErrorKind, Strategy};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use crate::EngineError;
use crate::psi::key::{ApiKey, KeyProvider};
use crate::psi::report::{FailureClass, classify_google};

pub use field_engine::FieldEngine;
pub use record::{parse_history, parse_record};

/// How long a URL waits after CrUX's own 429 (someone else uses the key's project too).
const RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);
/// How long a URL waits when the key cannot be read.
const KEY_WAIT: Duration = Duration::from_secs(120);
/// One CrUX request: it answers in milliseconds, so a slow one is a problem of the path.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
const SERVICE: &str = "the Chrome UX Report";
/// Why a deployment without a key has no field data.
pub const NO_KEY: &str = "this deployment has no Chrome UX Report key";

/// CrUX's device classes a job's strategy asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormFactor {
    Phone,
    Desktop,
}

impl FormFactor {
    pub fn of(strategy: Strategy) -> FormFactor {
        if strategy == Strategy::Desktop { FormFactor::Desktop } else { FormFactor::Phone }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            FormFactor::Phone => "PHONE",
            FormFactor::Desktop => "DESKTOP",
        }
    }
}

/// Which of the two APIs a request goes to.
#[derive(Clone, Copy)]
enum Api {
    Record,
    History,
}

pub struct CruxClient {
    http: reqwest::Client,
    endpoint: String,
    key: KeyProvider,
    cached: OnceCell<ApiKey>,
}

impl CruxClient {
    /// A client of `endpoint` (Google's, or a fake in tests) with the key `key` provides.
    pub fn new(endpoint: &str, key: KeyProvider) -> Result<Self, domain::Error> {
        url::Url::parse(endpoint).map_err(|e| domain::Error::Config(format!("CRUX_ENDPOINT {endpoint:?}: {e}")))?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| domain::Error::Config(format!("HTTP client: {e}")))?;
        Ok(CruxClient { http, endpoint: endpoint.trim_end_matches('/').to_owned(), key, cached: OnceCell::new() })
    }

    /// `target`'s record for `form_factor`: one request; `None` when CrUX has no data of it.
    pub async fn record(&self, target: &Target, form_factor: FormFactor) -> Result<Option<FieldRecord>, EngineError> {
        self.read(target, form_factor, Api::Record, parse_record).await
    }

    /// `target`'s weekly p75s (up to 40 weeks): one request; `None` without data.
    pub async fn history(&self, target: &Target, form_factor: FormFactor) -> Result<Option<FieldHistory>, EngineError> {
        self.read(target, form_factor, Api::History, parse_history).await
    }

    async fn read<T>(
        &self,
        target: &Target,
        form_factor: FormFactor,
        api: Api,
        parse: impl Fn(&Value, FieldSource) -> Result<T, String>,
    ) -> Result<Option<T>, EngineError> {
        let Some(body) = self.query(api, target.source, &target.identifier, form_factor).await? else {
            return Ok(None);
        };
        parse(&body, target.source)
            .map(Some)
            .map_err(|e| EngineError::new(ErrorKind::Http5xx, format!("{SERVICE} sent an unreadable record: {e}")))
    }

    /// One request; `None` for CrUX's 404 (no data).
    async fn query(
        &self,
        api: Api,
        source: FieldSource,
        identifier: &str,
        form_factor: FormFactor,
    ) -> Result<Option<Value>, EngineError> {
        let key = self.cached.get_or_try_init(|| self.key.get()).await.map_err(|err| {
            tracing::error!(error = %err, "Chrome UX Report key unavailable");
            EngineError::deferred(
                ErrorKind::EngineUnavailable,
                "the Chrome UX Report key could not be read",
                now_millis() + KEY_WAIT.as_millis() as i64,
            )
        })?;
        let (path, mut body) = match api {
            Api::Record => ("records:queryRecord", json!({})),
            Api::History => ("records:queryHistoryRecord", json!({"collectionPeriodCount": MAX_HISTORY_WEEKS})),
        };
        let field = if source == FieldSource::Url { "url" } else { "origin" };
        body[field] = json!(identifier);
        body["formFactor"] = json!(form_factor.as_str());
        // The key goes in the query string, as Google asks; errors are reported without the URL.
        let mut url = url::Url::parse(&format!("{}/{path}", self.endpoint))
            .map_err(|e| EngineError::new(ErrorKind::EngineUnavailable, format!("CRUX_ENDPOINT: {e}")))?;
        url.query_pairs_mut().append_pair("key", key.expose());
        let response = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| EngineError::from_request(e.without_url()))?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(|e| EngineError::from_request(e.without_url()))?;
        match status {
            200 => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| EngineError::new(ErrorKind::Http5xx, format!("{SERVICE} sent unreadable JSON: {e}"))),
            404 => Ok(None),
            _ => Err(failure(status, &text)),
        }
    }
}

fn failure(status: u16, body: &str) -> EngineError {
    let failure = classify_google(SERVICE, status, body);
    match failure.class {
        // CrUX's quota is per minute only.
        FailureClass::RateLimited | FailureClass::DailyQuota => EngineError::deferred(
            ErrorKind::RateLimited,
            failure.reason,
            now_millis() + RATE_LIMIT_WAIT.as_millis() as i64,
        ),
        FailureClass::Transient => EngineError::new(ErrorKind::Http5xx, failure.reason),
        FailureClass::Permanent(kind) => EngineError::new(kind, failure.reason),
    }
}

/// What a CrUX request is about: a page, or an origin (`scheme://host[:port]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub source: FieldSource,
    pub identifier: String,
}

impl Target {
    pub fn url(url: &str) -> Target {
        Target { source: FieldSource::Url, identifier: url.to_owned() }
    }

    /// The origin of `url`, which CrUX keys an origin's record by.
    pub fn origin_of(url: &str) -> Result<Target, Box<EngineError>> {
        let parsed = url::Url::parse(url)
            .map_err(|e| Box::new(EngineError::new(ErrorKind::InvalidUrl, format!("{url}: {e}"))))?;
        Ok(Target { source: FieldSource::Origin, identifier: parsed.origin().ascii_serialization() })
    }
}

#[cfg(test)]
mod tests;

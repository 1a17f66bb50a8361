//! The browserless engine: fetches the document the way a browser's first request would and
//! measures it, through the policy-enforcing client of `net::safe_client`.

use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use url::Url;

use super::{Engine, EngineError};
use crate::domain::{Analysis, ErrorKind, Strategy};
use crate::net::AddressPolicy;
use crate::net::safe_client::{check_literal_host, safe_client};

/// Bytes of a document read before the download stops (it is then marked truncated).
const MAX_DOCUMENT_BYTES: u64 = 20 * 1024 * 1024;
const USER_AGENT: &str = concat!("speedbatch/", env!("CARGO_PKG_VERSION"), " (page speed analysis)");
const MOBILE_USER_AGENT: &str = concat!(
    "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Mobile speedbatch/",
    env!("CARGO_PKG_VERSION")
);

#[derive(Clone, Debug)]
pub struct HttpEngine {
    client: reqwest::Client,
    policy: AddressPolicy,
}

impl HttpEngine {
    pub fn new(policy: AddressPolicy) -> Result<Self, reqwest::Error> {
        Ok(HttpEngine { client: safe_client(policy)?, policy })
    }

    async fn fetch(&self, url: Url, strategy: Strategy) -> Result<Analysis, EngineError> {
        let user_agent = match strategy {
            Strategy::Desktop => USER_AGENT,
            Strategy::Mobile | Strategy::Both => MOBILE_USER_AGENT,
        };
        let started = Instant::now();
        let mut response = self
            .client
            .get(url.clone())
            .header(reqwest::header::USER_AGENT, user_agent)
            .send()
            .await
            .map_err(EngineError::from_request)?;
        let ttfb = started.elapsed();
        let status = response.status();
        let mut bytes: u64 = 0;
        let mut truncated = false;
        while let Some(chunk) = response.chunk().await.map_err(EngineError::from_request)? {
            bytes += chunk.len() as u64;
            if bytes >= MAX_DOCUMENT_BYTES {
                truncated = true;
                break;
            }
        }
        let total = started.elapsed();
        let header = |name: reqwest::header::HeaderName| {
            response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
        };
        let mut metrics = Map::new();
        metrics.insert("status_code".into(), json!(status.as_u16()));
        metrics.insert("ttfb_ms".into(), json!(millis(ttfb)));
        metrics.insert("download_ms".into(), json!(millis(total - ttfb)));
        metrics.insert("total_ms".into(), json!(millis(total)));
        metrics.insert("bytes".into(), json!(bytes));
        metrics.insert("truncated".into(), json!(truncated));
        metrics.insert("http_version".into(), json!(format!("{:?}", response.version())));
        metrics.insert("final_url".into(), json!(response.url().as_str()));
        metrics.insert("redirected".into(), json!(response.url() != &url));
        for (key, name) in [
            ("content_type", reqwest::header::CONTENT_TYPE),
            ("content_encoding", reqwest::header::CONTENT_ENCODING),
            ("cache_control", reqwest::header::CACHE_CONTROL),
        ] {
            if let Some(value) = header(name) {
                metrics.insert(key.into(), Value::String(value));
            }
        }
        let analysis = Analysis { engine: self.name().into(), strategy, score: None, metrics };
        let reason =
            || format!("HTTP {} {}", status.as_u16(), status.canonical_reason().unwrap_or("")).trim_end().to_owned();
        if status.is_redirection() {
            // The client follows every http(s) redirect it may; one left standing points
            // elsewhere (another scheme) or nowhere.
            let location = header(reqwest::header::LOCATION).unwrap_or_default();
            let target = response.url().join(&location).ok();
            let (kind, reason) = match target {
                Some(target) if !matches!(target.scheme(), "http" | "https") => (
                    ErrorKind::Blocked,
                    format!(
                        "redirect to a {}: URL blocked by policy: only http and https are followed",
                        target.scheme()
                    ),
                ),
                _ => (ErrorKind::Redirect, format!("{} without a usable Location ({location:?})", reason())),
            };
            return Err(EngineError::with_analysis(kind, reason, analysis));
        }
        let kind = if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            ErrorKind::RateLimited
        } else if status.is_server_error() {
            ErrorKind::Http5xx
        } else if status.is_client_error() {
            ErrorKind::Http4xx
        } else {
            return Ok(analysis);
        };
        Err(EngineError::with_analysis(kind, reason(), analysis))
    }
}

fn millis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 10_000.0).round() / 10.0
}

impl Engine for HttpEngine {
    fn name(&self) -> &'static str {
        "http"
    }

    async fn analyze(&self, url: &str, strategy: Strategy, timeout: Duration) -> Result<Analysis, EngineError> {
        let url =
            Url::parse(url).map_err(|e| EngineError::new(ErrorKind::InvalidUrl, format!("not a valid URL: {e}")))?;
        // Submissions are cleaned to http(s), but the engine is the last line: nothing else
        // (file:, gopher:, data:) is ever fetched, whoever calls it.
        if !matches!(url.scheme(), "http" | "https") {
            return Err(EngineError::new(
                ErrorKind::Blocked,
                format!("{}: URLs blocked by policy: only http and https are analysed", url.scheme()),
            ));
        }
        check_literal_host(&url, self.policy)
            .map_err(|blocked| EngineError::new(ErrorKind::Blocked, blocked.to_string()))?;
        match tokio::time::timeout(timeout, self.fetch(url, strategy)).await {
            Ok(result) => result,
            Err(_) => Err(EngineError::new(ErrorKind::Timeout, format!("timed out after {} s", timeout.as_secs()))),
        }
    }
}

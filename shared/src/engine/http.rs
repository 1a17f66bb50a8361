//! The browserless engine: fetches the document the way a browser's first request would and
//! measures it. Every connection goes through `PolicyResolver` and every redirect through the
//! same address policy, so no URL can reach a private or metadata address.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect;
use serde_json::{Map, Value, json};
use url::{Host, Url};

use super::{Engine, EngineError};
use crate::domain::{Analysis, ErrorKind, Strategy};
use crate::error::error_chain;
use crate::net::{AddressPolicy, BlockedAddress};

const MAX_REDIRECTS: usize = 10;
/// Bytes of a document read before the download stops (it is then marked truncated).
const MAX_DOCUMENT_BYTES: u64 = 20 * 1024 * 1024;
const USER_AGENT: &str = concat!("speedbatch/", env!("CARGO_PKG_VERSION"), " (page speed analysis)");
const MOBILE_USER_AGENT: &str = concat!(
    "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Mobile speedbatch/",
    env!("CARGO_PKG_VERSION")
);

#[derive(Debug, thiserror::Error)]
#[error("{host}: {blocked}")]
struct Blocked {
    host: String,
    blocked: BlockedAddress,
}

#[derive(Debug, thiserror::Error)]
#[error("DNS lookup of {host} failed: {reason}")]
struct DnsFailure {
    host: String,
    reason: String,
}

/// Resolves names and refuses the whole answer if any address is outside the policy, so a
/// name with one public and one private record cannot be used to reach the private one.
#[derive(Clone, Copy, Debug)]
struct PolicyResolver {
    policy: AddressPolicy,
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| DnsFailure { host: host.clone(), reason: e.to_string() })?
                .collect();
            if addrs.is_empty() {
                return Err(DnsFailure { host, reason: "no addresses".into() }.into());
            }
            for addr in &addrs {
                policy.check(addr.ip()).map_err(|blocked| Blocked { host: host.clone(), blocked })?;
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// IP-literal hosts never reach the resolver, so they are checked here: on the submitted URL
/// and on every redirect target.
fn check_literal_host(url: &Url, policy: AddressPolicy) -> Result<(), Blocked> {
    let ip = match url.host() {
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip),
        _ => return Ok(()),
    };
    policy.check(ip).map_err(|blocked| Blocked { host: ip.to_string(), blocked })
}

#[derive(Debug, thiserror::Error)]
#[error("redirect to a {0} URL refused: only http and https are followed")]
struct BadRedirectScheme(String);

#[derive(Clone, Debug)]
pub struct HttpEngine {
    client: reqwest::Client,
    policy: AddressPolicy,
}

impl HttpEngine {
    pub fn new(policy: AddressPolicy) -> Result<Self, reqwest::Error> {
        let redirects = redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > MAX_REDIRECTS {
                return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
            }
            let url = attempt.url();
            if !matches!(url.scheme(), "http" | "https") {
                let scheme = url.scheme().to_owned();
                return attempt.error(BadRedirectScheme(scheme));
            }
            match check_literal_host(url, policy) {
                Ok(()) => attempt.follow(),
                Err(blocked) => attempt.error(blocked),
            }
        });
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(PolicyResolver { policy }))
            .redirect(redirects)
            .no_proxy()
            .connect_timeout(Duration::from_secs(15))
            .pool_max_idle_per_host(2)
            .build()?;
        Ok(HttpEngine { client, policy })
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
            .map_err(classify)?;
        let ttfb = started.elapsed();
        let status = response.status();
        let mut bytes: u64 = 0;
        let mut truncated = false;
        while let Some(chunk) = response.chunk().await.map_err(classify)? {
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
        let kind = if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            ErrorKind::RateLimited
        } else if status.is_server_error() {
            ErrorKind::Http5xx
        } else if status.is_client_error() {
            ErrorKind::Http4xx
        } else {
            return Ok(analysis);
        };
        Err(EngineError { kind, reason: reason(), analysis: Some(analysis) })
    }
}

fn millis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 10_000.0).round() / 10.0
}

/// Turns a client error into a user-facing reason and whether a retry can help.
fn classify(err: reqwest::Error) -> EngineError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    while let Some(cause) = source {
        if let Some(blocked) = cause.downcast_ref::<Blocked>() {
            return EngineError::new(ErrorKind::Blocked, blocked.to_string());
        }
        if let Some(dns) = cause.downcast_ref::<DnsFailure>() {
            return EngineError::new(ErrorKind::Dns, dns.to_string());
        }
        if let Some(scheme) = cause.downcast_ref::<BadRedirectScheme>() {
            return EngineError::new(ErrorKind::Redirect, scheme.to_string());
        }
        source = cause.source();
    }
    if err.is_redirect() {
        EngineError::new(ErrorKind::Redirect, format!("redirect failed: {}", error_chain(&err)))
    } else if err.is_timeout() {
        EngineError::new(ErrorKind::Timeout, "timed out")
    } else if err.is_connect() {
        EngineError::new(ErrorKind::Connection, format!("could not connect: {}", error_chain(&err)))
    } else {
        EngineError::new(ErrorKind::Transfer, format!("transfer failed: {}", error_chain(&err)))
    }
}

impl Engine for HttpEngine {
    fn name(&self) -> &'static str {
        "http"
    }

    async fn analyze(&self, url: &str, strategy: Strategy, timeout: Duration) -> Result<Analysis, EngineError> {
        let url =
            Url::parse(url).map_err(|e| EngineError::new(ErrorKind::InvalidUrl, format!("not a valid URL: {e}")))?;
        check_literal_host(&url, self.policy)
            .map_err(|blocked| EngineError::new(ErrorKind::Blocked, blocked.to_string()))?;
        match tokio::time::timeout(timeout, self.fetch(url, strategy)).await {
            Ok(result) => result,
            Err(_) => Err(EngineError::new(ErrorKind::Timeout, format!("timed out after {} s", timeout.as_secs()))),
        }
    }
}

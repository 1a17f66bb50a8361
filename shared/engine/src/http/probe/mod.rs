//! One page fetch, hop by hop, timed the way a browser's network panel would show it.
//!
//! The probe resolves, connects, negotiates TLS and speaks HTTP itself (hyper's connection-level
//! API) so that every phase can be timed and so that the only addresses ever connected to are
//! the ones that passed the [`AddressCheck`]: no name is ever handed to another resolver, which
//! closes the DNS-rebinding gap an SSRF guard in front of a high-level client would leave.
//!
//! By concern: `resolve` (origins, DNS and the address check), `connect` (TCP, the pool of
//! connections a probe reuses across hops), `tls`, `exchange` (the request and its response
//! head), `body` (reading a body within its caps) and `decode` (content decoding while
//! streaming).

mod body;
mod connect;
mod decode;
mod exchange;
mod resolve;
#[cfg(test)]
mod tests;
mod tls;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use http::header::{self, HeaderMap};
use http::{StatusCode, Version};
use rustls::pki_types::CertificateDer;
use serde::Serialize;
use url::Url;

use self::body::{BodyMode, content_encoding_label, content_encodings, read_body};
use self::connect::Pool;
use self::exchange::{build_request, send};
use self::resolve::Origin;

/// Decides whether the probe may connect to an address. `Err` carries the reason shown to the
/// user, e.g. "loopback address blocked by policy".
pub trait AddressCheck: Send + Sync {
    fn check(&self, ip: IpAddr) -> Result<(), String>;
}

/// Lets a closure serve as a check, which keeps tests and one-off policies short.
impl<F> AddressCheck for F
where
    F: Fn(IpAddr) -> Result<(), String> + Send + Sync,
{
    fn check(&self, ip: IpAddr) -> Result<(), String> {
        self(ip)
    }
}

#[derive(Debug, Clone)]
pub struct ProbeConfig {
    pub user_agent: String,
    pub accept: String,
    pub accept_language: String,
    /// Redirects followed before giving up; one more is [`ProbeError::TooManyRedirects`].
    pub max_redirects: usize,
    /// Bytes read off the wire for one response body (after de-chunking, before decoding).
    pub max_wire_bytes: u64,
    /// Decoded bytes kept from the document; the guard against decompression bombs.
    pub max_decoded_bytes: u64,
    pub dns_timeout: Duration,
    /// Per address tried.
    pub connect_timeout: Duration,
    pub tls_timeout: Duration,
    /// From sending the request to the response head.
    pub response_timeout: Duration,
    /// Longest silence tolerated while reading a body. A body that stalls this long is reported
    /// as it stands, marked incomplete, rather than failing the whole probe.
    pub body_idle_timeout: Duration,
    /// Trusted in addition to the platform's roots (tests use a generated CA).
    pub extra_root_certs: Vec<CertificateDer<'static>>,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        Self {
            user_agent: "Mozilla/5.0 (compatible; speedbatch/0.1)".to_owned(),
            accept: "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8".to_owned(),
            accept_language: "en-US,en;q=0.9".to_owned(),
            max_redirects: 10,
            max_wire_bytes: 10 * 1024 * 1024,
            max_decoded_bytes: 20 * 1024 * 1024,
            dns_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            tls_timeout: Duration::from_secs(10),
            response_timeout: Duration::from_secs(30),
            body_idle_timeout: Duration::from_secs(15),
            extra_root_certs: Vec::new(),
        }
    }
}

#[derive(Debug)]
pub struct Probe {
    /// Every response, redirects included; the last one is the document.
    pub hops: Vec<Hop>,
    /// The document body, decoded and capped at `max_decoded_bytes`.
    pub body: Vec<u8>,
    /// Document body bytes as transferred (after de-chunking, before content decoding), like
    /// Resource Timing's `encodedBodySize`. Headers are not counted.
    pub wire_bytes: u64,
    pub decoded_bytes: u64,
    /// Reading stopped at `max_wire_bytes` or `max_decoded_bytes`.
    pub truncated: bool,
    /// The body ended early: the connection closed before the declared length, or it stalled
    /// past `body_idle_timeout`. What arrived is reported.
    pub incomplete: bool,
    /// The document's `Content-Encoding`, lower-cased. An encoding the probe cannot decode is
    /// named here and the body is kept as received.
    pub content_encoding: Option<String>,
    /// Headers of the final response.
    pub headers: HeaderMap,
}

impl Probe {
    /// The URL the document was finally served from.
    pub fn final_url(&self) -> Option<&Url> {
        self.hops.last().map(|hop| &hop.url)
    }
}

#[derive(Debug, Clone)]
pub struct Hop {
    pub url: Url,
    pub status: u16,
    /// "HTTP/1.0", "HTTP/1.1" or "HTTP/2".
    pub http_version: &'static str,
    pub remote_addr: SocketAddr,
    pub reused_connection: bool,
    /// None for an IP literal or a reused connection.
    pub dns_ms: Option<f64>,
    /// None for a reused connection.
    pub connect_ms: Option<f64>,
    /// None for http or a reused connection.
    pub tls_ms: Option<f64>,
    /// Request sent to response head.
    pub ttfb_ms: f64,
    /// Response head to the end of the body.
    pub download_ms: f64,
    /// Start of the hop (before DNS) to the end of its body.
    pub total_ms: f64,
    /// The raw `Location` header, when present.
    pub location: Option<String>,
    /// Body bytes of this response as transferred.
    pub wire_bytes: u64,
}

/// A phase of a hop, named in timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Dns,
    Connect,
    Tls,
    Response,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Dns => "while resolving the host name",
            Phase::Connect => "while connecting to the server",
            Phase::Tls => "during the TLS handshake",
            Phase::Response => "waiting for the server's response",
        })
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProbeError {
    /// Refused by policy before any connection was made. For a scheme refusal `host` is the
    /// scheme (so the message reads "file: URLs blocked by policy: …").
    #[error("{host}: {reason}")]
    Blocked { host: String, reason: String },
    #[error("could not resolve {host}: {reason}")]
    Dns { host: String, reason: String },
    #[error("could not connect to {addr}: {reason}")]
    Connect { addr: SocketAddr, reason: String },
    #[error("secure connection to {host} failed: {reason}")]
    Tls { host: String, reason: String },
    #[error("timed out {phase}")]
    Timeout { phase: Phase },
    #[error("the server's HTTP response could not be read: {reason}")]
    Protocol { reason: String },
    #[error("more than {limit} redirects")]
    TooManyRedirects { limit: usize },
    #[error("the response body could not be read: {reason}")]
    Body { reason: String },
    #[error("invalid URL: {reason}")]
    InvalidUrl { reason: String },
}

/// The addresses `url`'s host may be reached at: resolved once and every one checked, as a
/// probe does before it connects (the browser engine's proxy connects only to these).
pub(crate) async fn checked_addresses(url: &Url, check: &dyn AddressCheck) -> Result<Vec<SocketAddr>, ProbeError> {
    let origin = Origin::of(url)?;
    let (addrs, _) = resolve::resolve(url, origin.port, &ProbeConfig::default(), check).await?;
    Ok(addrs)
}

/// Connects to the first of `addrs` that answers within `timeout` each.
pub(crate) async fn connect_checked(
    addrs: &[SocketAddr],
    timeout: Duration,
) -> Result<tokio::net::TcpStream, ProbeError> {
    connect::connect_tcp(addrs, timeout).await.map(|(stream, _)| stream)
}

pub(super) const SCHEME_REFUSED: &str = "URLs blocked by policy: only http and https are followed";

pub async fn probe(url: &Url, config: &ProbeConfig, check: &dyn AddressCheck) -> Result<Probe, ProbeError> {
    let mut pool = Pool::default();
    let mut hops = Vec::new();
    let mut current = url.clone();
    let mut redirects = 0usize;

    loop {
        let origin = Origin::of(&current)?;
        let hop_start = Instant::now();

        let (mut conn, setup) = pool.checkout(&origin, &current, config, check).await?;
        let request = build_request(&current, conn.sender.is_http2(), config)?;
        let (response, ttfb, conn_after, setup) = match send(&mut conn, request, config).await {
            Ok((response, ttfb)) => (response, ttfb, conn, setup),
            // A kept-alive connection can be closed by the server just as it is reused;
            // browsers retry an idempotent GET on a fresh connection, and so do we. A timeout
            // is the server being slow, not the connection being gone: no retry.
            Err(ProbeError::Protocol { .. }) if setup.reused => {
                let (mut fresh, setup) = pool.connect(&origin, &current, config, check).await?;
                let request = build_request(&current, fresh.sender.is_http2(), config)?;
                let (response, ttfb) = send(&mut fresh, request, config).await?;
                (response, ttfb, fresh, setup)
            }
            Err(error) => return Err(error),
        };
        let head_at = Instant::now();

        let (parts, body) = response.into_parts();
        let location =
            parts.headers.get(header::LOCATION).map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
        let next = redirect_target(parts.status, location.as_deref(), &current);

        let outcome = if next.is_some() {
            read_body(body, &[], config, BodyMode::Discard).await?
        } else {
            let encodings = content_encodings(&parts.headers);
            read_body(body, &encodings, config, BodyMode::Keep).await?
        };
        let finished = Instant::now();

        let remote_addr = conn_after.remote;
        // HTTP/1.1 can carry the next request only after this body was read to its end.
        if conn_after.sender.is_http2() || !(outcome.truncated || outcome.incomplete) {
            pool.put(origin, conn_after);
        }

        hops.push(Hop {
            url: current.clone(),
            status: parts.status.as_u16(),
            http_version: version_name(parts.version),
            remote_addr,
            reused_connection: setup.reused,
            dns_ms: setup.dns_ms,
            connect_ms: setup.connect_ms,
            tls_ms: setup.tls_ms,
            ttfb_ms: millis(ttfb),
            download_ms: millis(finished - head_at),
            total_ms: millis(finished - hop_start),
            location,
            wire_bytes: outcome.wire_bytes,
        });

        match next {
            Some(target) => {
                if redirects >= config.max_redirects {
                    return Err(ProbeError::TooManyRedirects { limit: config.max_redirects });
                }
                redirects += 1;
                current = target;
            }
            None => {
                let content_encoding = content_encoding_label(&parts.headers);
                return Ok(Probe {
                    hops,
                    decoded_bytes: outcome.body.len() as u64,
                    body: outcome.body,
                    wire_bytes: outcome.wire_bytes,
                    truncated: outcome.truncated,
                    incomplete: outcome.incomplete,
                    content_encoding,
                    headers: parts.headers,
                });
            }
        }
    }
}

pub(super) fn redirect_target(status: StatusCode, location: Option<&str>, current: &Url) -> Option<Url> {
    if !matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    let location = location?.trim();
    if location.is_empty() {
        return None;
    }
    current.join(location).ok()
}

pub(super) fn version_name(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/?",
    }
}

pub(super) fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

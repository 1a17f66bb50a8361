//! One page fetch, hop by hop, timed the way a browser's network panel would show it.
//!
//! The probe resolves, connects, negotiates TLS and speaks HTTP itself (hyper's connection-level
//! API) so that every phase can be timed and so that the only addresses ever connected to are
//! the ones that passed the [`AddressCheck`]: no name is ever handed to another resolver, which
//! closes the DNS-rebinding gap an SSRF guard in front of a high-level client would leave.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, Response, StatusCode, Version};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::ClientConfig;
use rustls::pki_types::{CertificateDer, ServerName};
use serde::Serialize;
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio_rustls::TlsConnector;
use url::{Host, Position, Url};

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

const SCHEME_REFUSED: &str = "URLs blocked by policy: only http and https are followed";

/// How long a pooled HTTP/1.1 connection may take to become idle again before a fresh one is
/// opened instead. A fully read response makes it idle almost at once.
const REUSE_WAIT: Duration = Duration::from_millis(500);

/// Content-Encoding layers decoded before giving up; real servers use one.
const MAX_ENCODING_LAYERS: usize = 3;

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

fn redirect_target(status: StatusCode, location: Option<&str>, current: &Url) -> Option<Url> {
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

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

// ---------------------------------------------------------------------------------------------
// Origins, resolution and the address check

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Scheme {
    Http,
    Https,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Origin {
    scheme: Scheme,
    host: String,
    port: u16,
}

impl Origin {
    fn of(url: &Url) -> Result<Self, ProbeError> {
        let scheme = match url.scheme() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            other => {
                return Err(ProbeError::Blocked { host: other.to_owned(), reason: SCHEME_REFUSED.to_owned() });
            }
        };
        let host = url.host_str().ok_or_else(|| ProbeError::InvalidUrl { reason: format!("{url} has no host") })?;
        let port = url
            .port_or_known_default()
            .ok_or_else(|| ProbeError::InvalidUrl { reason: format!("{url} has no port") })?;
        Ok(Self { scheme, host: host.to_owned(), port })
    }
}

/// Checks one address. The IPv4-mapped IPv6 form is checked as IPv4 too, so a policy written
/// for IPv4 ranges cannot be sidestepped with `::ffff:127.0.0.1`.
fn check_ip(check: &dyn AddressCheck, ip: IpAddr) -> Result<(), String> {
    check.check(ip)?;
    let canonical = ip.to_canonical();
    if canonical != ip {
        check.check(canonical)?;
    }
    Ok(())
}

/// Every address of an answer must pass: if one record is refused the name is refused, since
/// which record a later connection would use is not ours to promise.
fn check_all(host: &str, addrs: &[SocketAddr], check: &dyn AddressCheck) -> Result<(), ProbeError> {
    for addr in addrs {
        check_ip(check, addr.ip()).map_err(|reason| ProbeError::Blocked {
            host: host.to_owned(),
            reason: format!("resolves to {}, {reason}", addr.ip()),
        })?;
    }
    Ok(())
}

/// Resolves and checks; returns the checked addresses and the DNS time (None for a literal).
async fn resolve(
    url: &Url,
    port: u16,
    config: &ProbeConfig,
    check: &dyn AddressCheck,
) -> Result<(Vec<SocketAddr>, Option<f64>), ProbeError> {
    let host = url.host().ok_or_else(|| ProbeError::InvalidUrl { reason: format!("{url} has no host") })?;
    let name = match host {
        Host::Ipv4(ip) => return literal(IpAddr::V4(ip), port, check),
        Host::Ipv6(ip) => return literal(IpAddr::V6(ip), port, check),
        Host::Domain(name) => name,
    };
    // The root label's dot changes nothing about the name but some resolvers reject it.
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() {
        return Err(ProbeError::InvalidUrl { reason: format!("{url} has an empty host") });
    }

    let started = Instant::now();
    let answer = tokio::time::timeout(config.dns_timeout, tokio::net::lookup_host((name, port)))
        .await
        .map_err(|_| ProbeError::Timeout { phase: Phase::Dns })?
        .map_err(|error| ProbeError::Dns { host: name.to_owned(), reason: dns_reason(&error) })?;
    let dns_ms = millis(started.elapsed());

    let mut addrs: Vec<SocketAddr> = Vec::new();
    for addr in answer {
        if !addrs.contains(&addr) {
            addrs.push(addr);
        }
    }
    if addrs.is_empty() {
        return Err(ProbeError::Dns { host: name.to_owned(), reason: "no addresses found".to_owned() });
    }
    check_all(name, &addrs, check)?;
    Ok((addrs, Some(dns_ms)))
}

fn literal(ip: IpAddr, port: u16, check: &dyn AddressCheck) -> Result<(Vec<SocketAddr>, Option<f64>), ProbeError> {
    check_ip(check, ip).map_err(|reason| ProbeError::Blocked { host: ip.to_string(), reason })?;
    Ok((vec![SocketAddr::new(ip, port)], None))
}

fn dns_reason(error: &io::Error) -> String {
    // getaddrinfo's messages ("failed to lookup address information: Name or service not
    // known") are the clearest we get; trim the prefix tokio adds.
    let text = error.to_string();
    text.strip_prefix("failed to lookup address information: ").unwrap_or(&text).to_owned()
}

fn io_reason(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        io::ErrorKind::ConnectionReset => "connection reset by the server".to_owned(),
        io::ErrorKind::TimedOut => "timed out".to_owned(),
        io::ErrorKind::HostUnreachable => "host unreachable".to_owned(),
        io::ErrorKind::NetworkUnreachable => "network unreachable".to_owned(),
        io::ErrorKind::UnexpectedEof => "the connection was closed".to_owned(),
        _ => error.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Connections

enum Sender {
    H1(http1::SendRequest<Empty<Bytes>>),
    H2(http2::SendRequest<Empty<Bytes>>),
}

impl Sender {
    fn is_http2(&self) -> bool {
        matches!(self, Sender::H2(_))
    }
}

struct Conn {
    sender: Sender,
    remote: SocketAddr,
}

#[derive(Debug, Clone, Copy, Default)]
struct Setup {
    reused: bool,
    dns_ms: Option<f64>,
    connect_ms: Option<f64>,
    tls_ms: Option<f64>,
}

/// Connections kept for later hops of the same probe. Dropping the pool aborts every
/// connection task, so nothing outlives the probe, even when the caller's timeout cancels it.
#[derive(Default)]
struct Pool {
    idle: HashMap<Origin, Conn>,
    tasks: JoinSet<()>,
}

impl Pool {
    fn put(&mut self, origin: Origin, conn: Conn) {
        self.idle.insert(origin, conn);
    }

    async fn checkout(
        &mut self,
        origin: &Origin,
        url: &Url,
        config: &ProbeConfig,
        check: &dyn AddressCheck,
    ) -> Result<(Conn, Setup), ProbeError> {
        if let Some(mut conn) = self.idle.remove(origin) {
            let ready = match &mut conn.sender {
                Sender::H1(sender) => {
                    matches!(tokio::time::timeout(REUSE_WAIT, sender.ready()).await, Ok(Ok(())))
                }
                Sender::H2(sender) => !sender.is_closed(),
            };
            if ready {
                return Ok((conn, Setup { reused: true, ..Setup::default() }));
            }
        }
        self.connect(origin, url, config, check).await
    }

    async fn connect(
        &mut self,
        origin: &Origin,
        url: &Url,
        config: &ProbeConfig,
        check: &dyn AddressCheck,
    ) -> Result<(Conn, Setup), ProbeError> {
        let (addrs, dns_ms) = resolve(url, origin.port, config, check).await?;

        let started = Instant::now();
        let (tcp, remote) = connect_tcp(&addrs, config.connect_timeout).await?;
        let connect_ms = Some(millis(started.elapsed()));
        // Small requests and heads should not wait on Nagle; browsers disable it too.
        let _ = tcp.set_nodelay(true);

        match origin.scheme {
            Scheme::Http => {
                let sender = self.http1(TokioIo::new(tcp)).await?;
                Ok((Conn { sender, remote }, Setup { reused: false, dns_ms, connect_ms, tls_ms: None }))
            }
            Scheme::Https => {
                let tls_config =
                    tls_config(config).map_err(|reason| ProbeError::Tls { host: origin.host.clone(), reason })?;
                let server_name = server_name(url)?;
                let started = Instant::now();
                let tls =
                    tokio::time::timeout(config.tls_timeout, TlsConnector::from(tls_config).connect(server_name, tcp))
                        .await
                        .map_err(|_| ProbeError::Timeout { phase: Phase::Tls })?
                        .map_err(|error| ProbeError::Tls { host: origin.host.clone(), reason: tls_reason(&error) })?;
                let tls_ms = Some(millis(started.elapsed()));
                let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
                let io = TokioIo::new(tls);
                let sender = if h2 { self.http2(io).await? } else { self.http1(io).await? };
                Ok((Conn { sender, remote }, Setup { reused: false, dns_ms, connect_ms, tls_ms }))
            }
        }
    }

    async fn http1<T>(&mut self, io: T) -> Result<Sender, ProbeError>
    where
        T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        // Browsers accept these header quirks; refusing them would fail pages that load fine.
        let (sender, connection) = http1::Builder::new()
            .allow_spaces_after_header_name_in_responses(true)
            .allow_obsolete_multiline_headers_in_responses(true)
            .handshake::<T, Empty<Bytes>>(io)
            .await
            .map_err(protocol_error)?;
        self.tasks.spawn(async move {
            let _ = connection.await;
        });
        Ok(Sender::H1(sender))
    }

    async fn http2<T>(&mut self, io: T) -> Result<Sender, ProbeError>
    where
        T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let (sender, connection) =
            http2::Builder::new(TokioExecutor::new()).handshake::<T, Empty<Bytes>>(io).await.map_err(protocol_error)?;
        self.tasks.spawn(async move {
            let _ = connection.await;
        });
        Ok(Sender::H2(sender))
    }
}

/// Tries the checked addresses in order, as browsers fall back from one record to the next.
async fn connect_tcp(addrs: &[SocketAddr], timeout: Duration) -> Result<(TcpStream, SocketAddr), ProbeError> {
    let mut last_error = None;
    let mut all_timed_out = true;
    for &addr in addrs {
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => return Ok((stream, addr)),
            Ok(Err(error)) => {
                all_timed_out = false;
                last_error = Some(ProbeError::Connect { addr, reason: io_reason(&error) });
            }
            Err(_) => {
                last_error = Some(ProbeError::Connect { addr, reason: "timed out".to_owned() });
            }
        }
    }
    if all_timed_out {
        return Err(ProbeError::Timeout { phase: Phase::Connect });
    }
    Err(last_error.unwrap_or(ProbeError::Timeout { phase: Phase::Connect }))
}

fn server_name(url: &Url) -> Result<ServerName<'static>, ProbeError> {
    let name = match url.host() {
        Some(Host::Ipv4(ip)) => return Ok(ServerName::from(IpAddr::V4(ip))),
        Some(Host::Ipv6(ip)) => return Ok(ServerName::from(IpAddr::V6(ip))),
        Some(Host::Domain(name)) => name.strip_suffix('.').unwrap_or(name).to_owned(),
        None => return Err(ProbeError::InvalidUrl { reason: format!("{url} has no host") }),
    };
    ServerName::try_from(name.clone())
        .map_err(|_| ProbeError::InvalidUrl { reason: format!("{name} is not a valid TLS name") })
}

fn tls_reason(error: &io::Error) -> String {
    // rustls errors arrive wrapped in io::Error; their own text is the informative part.
    match error.get_ref() {
        Some(inner) => inner.to_string(),
        None => io_reason(error),
    }
}

/// The platform's roots are read once per process: loading them costs tens of milliseconds,
/// which would otherwise land on every probe.
fn tls_config(config: &ProbeConfig) -> Result<Arc<ClientConfig>, String> {
    static PLATFORM: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    if config.extra_root_certs.is_empty() {
        PLATFORM.get_or_init(|| build_tls_config(Vec::new())).clone()
    } else {
        build_tls_config(config.extra_root_certs.clone())
    }
}

fn build_tls_config(extra_roots: Vec<CertificateDer<'static>>) -> Result<Arc<ClientConfig>, String> {
    // Explicit provider: no dependence on which crate installed a process default.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = rustls_platform_verifier::Verifier::new_with_extra_roots(extra_roots, provider.clone())
        .map_err(|error| format!("certificate roots could not be loaded: {error}"))?;
    let mut tls = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| error.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(tls))
}

fn protocol_error(error: hyper::Error) -> ProbeError {
    ProbeError::Protocol { reason: hyper_reason(&error) }
}

fn hyper_reason(error: &hyper::Error) -> String {
    use std::error::Error as _;
    // hyper's top-level text is generic ("connection error"); the source names the cause.
    match error.source() {
        Some(source) => format!("{error}: {source}"),
        None => error.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Requests

fn build_request(url: &Url, http2: bool, config: &ProbeConfig) -> Result<Request<Empty<Bytes>>, ProbeError> {
    let invalid = |reason: String| ProbeError::InvalidUrl { reason };
    // HTTP/2 carries scheme and authority as pseudo-headers taken from an absolute URI;
    // HTTP/1.1 wants the origin form plus a Host header.
    let target = if http2 { &url[..Position::AfterQuery] } else { &url[Position::BeforePath..Position::AfterQuery] };
    let mut builder = Request::get(target);
    if !http2 {
        let host = url.host_str().unwrap_or_default();
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        builder = builder.header(header::HOST, authority);
    }
    let mut request = builder.body(Empty::new()).map_err(|error| invalid(error.to_string()))?;
    let headers = request.headers_mut();
    let value = |text: &str| HeaderValue::from_str(text).map_err(|_| invalid(format!("invalid header value {text:?}")));
    headers.insert(header::USER_AGENT, value(&config.user_agent)?);
    headers.insert(header::ACCEPT, value(&config.accept)?);
    headers.insert(header::ACCEPT_LANGUAGE, value(&config.accept_language)?);
    headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip, deflate, br"));
    Ok(request)
}

async fn send(
    conn: &mut Conn,
    request: Request<Empty<Bytes>>,
    config: &ProbeConfig,
) -> Result<(Response<Incoming>, Duration), ProbeError> {
    let started = Instant::now();
    let response = match &mut conn.sender {
        Sender::H1(sender) => tokio::time::timeout(config.response_timeout, sender.send_request(request)).await,
        Sender::H2(sender) => tokio::time::timeout(config.response_timeout, sender.send_request(request)).await,
    }
    .map_err(|_| ProbeError::Timeout { phase: Phase::Response })?
    .map_err(protocol_error)?;
    Ok((response, started.elapsed()))
}

// ---------------------------------------------------------------------------------------------
// Bodies and content decoding

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyMode {
    /// Redirect bodies are read (so the connection can be reused) and counted, not kept.
    Discard,
    Keep,
}

#[derive(Debug, Default)]
struct BodyOutcome {
    body: Vec<u8>,
    wire_bytes: u64,
    truncated: bool,
    incomplete: bool,
}

/// `Content-Encoding` values in the order they were applied, `identity` left out.
fn content_encodings(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONTENT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|token| token.trim().to_ascii_lowercase())
        .filter(|token| !token.is_empty() && token != "identity")
        .collect()
}

fn content_encoding_label(headers: &HeaderMap) -> Option<String> {
    let encodings = content_encodings(headers);
    (!encodings.is_empty()).then(|| encodings.join(", "))
}

async fn read_body(
    mut body: Incoming,
    encodings: &[String],
    config: &ProbeConfig,
    mode: BodyMode,
) -> Result<BodyOutcome, ProbeError> {
    let cap = match mode {
        BodyMode::Keep => config.max_decoded_bytes,
        BodyMode::Discard => 0,
    };
    let mut sink = Sink::new(cap, mode == BodyMode::Keep);
    let mut outcome = BodyOutcome::default();
    let mut decode_error = None;
    {
        let mut decoder = build_decoder(encodings, &mut sink);
        loop {
            let frame = match tokio::time::timeout(config.body_idle_timeout, body.frame()).await {
                Ok(Some(Ok(frame))) => frame,
                Ok(None) => break,
                // A closed connection or reset stream before the declared end: keep what came.
                Ok(Some(Err(_))) | Err(_) => {
                    outcome.incomplete = true;
                    break;
                }
            };
            let Ok(data) = frame.into_data() else { continue };
            let room = config.max_wire_bytes.saturating_sub(outcome.wire_bytes);
            let take = data.len().min(usize::try_from(room).unwrap_or(usize::MAX));
            outcome.wire_bytes += take as u64;
            if let Err(error) = decoder.write_all(&data[..take]) {
                if decoder.sink_capped() {
                    outcome.truncated = true;
                } else {
                    decode_error = Some(error);
                }
                break;
            }
            if take < data.len() {
                outcome.truncated = true;
                break;
            }
        }
        let cut_short = outcome.truncated || outcome.incomplete;
        if decode_error.is_none() {
            // A cut-short stream cannot end cleanly; flush what decodes and stop there.
            if let Err(error) = decoder.finish() {
                if !cut_short && !decoder.sink_capped() {
                    decode_error = Some(error);
                }
                if decoder.sink_capped() {
                    outcome.truncated = true;
                }
            }
        }
    }
    if let Some(error) = decode_error {
        return Err(ProbeError::Body {
            reason: format!("{} content could not be decoded: {error}", encodings.join(", ")),
        });
    }
    outcome.body = sink.into_bytes();
    Ok(outcome)
}

/// The end of the decoding chain: keeps up to `cap` bytes and then refuses more, which stops
/// an inflating decoder mid-stream instead of letting it expand a bomb.
struct Sink {
    bytes: Vec<u8>,
    cap: u64,
    keep: bool,
    capped: bool,
}

impl Sink {
    fn new(cap: u64, keep: bool) -> Self {
        Self { bytes: Vec::new(), cap, keep, capped: false }
    }

    fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

impl Write for &mut Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if !self.keep {
            return Ok(buf.len());
        }
        let room = self.cap.saturating_sub(self.bytes.len() as u64);
        if room == 0 {
            self.capped = true;
            return Err(io::Error::other("decoded size limit reached"));
        }
        let take = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        self.bytes.extend_from_slice(&buf[..take]);
        Ok(take)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// One layer of the decoding chain.
trait Stage: Write + Send {
    /// Drains buffered input and reports a stream that ended badly.
    fn finish(&mut self) -> io::Result<()>;
    /// Whether the sink at the end of the chain refused bytes.
    fn sink_capped(&self) -> bool;
}

impl Stage for &mut Sink {
    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn sink_capped(&self) -> bool {
        self.capped
    }
}

type Chain<'a> = Box<dyn Stage + 'a>;

impl Stage for Chain<'_> {
    fn finish(&mut self) -> io::Result<()> {
        (**self).finish()
    }
    fn sink_capped(&self) -> bool {
        (**self).sink_capped()
    }
}

struct Gzip<W: Stage>(flate2::write::GzDecoder<W>);
struct Zlib<W: Stage>(flate2::write::ZlibDecoder<W>);
struct RawDeflate<W: Stage>(flate2::write::DeflateDecoder<W>);
struct Brotli<W: Stage>(brotli_decompressor::DecompressorWriter<W>);

/// `deflate` is meant to be zlib-wrapped, but some servers send a raw deflate stream (as
/// browsers tolerate); the first two bytes tell which.
enum Deflate<W: Stage> {
    Pending(Vec<u8>, Option<W>),
    Zlib(Zlib<W>),
    Raw(RawDeflate<W>),
}

/// An encoding the probe does not decode: bytes pass through as received.
struct Passthrough<W: Stage>(W);

macro_rules! flate_stage {
    ($name:ident) => {
        impl<W: Stage> Write for $name<W> {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.0.write(buf)
            }
            fn flush(&mut self) -> io::Result<()> {
                self.0.flush()
            }
        }
        impl<W: Stage> Stage for $name<W> {
            fn finish(&mut self) -> io::Result<()> {
                self.0.try_finish()?;
                self.0.get_mut().finish()
            }
            fn sink_capped(&self) -> bool {
                self.0.get_ref().sink_capped()
            }
        }
    };
}
flate_stage!(Gzip);
flate_stage!(Zlib);
flate_stage!(RawDeflate);

/// Stages that only wrap one writer pass writes straight through.
macro_rules! write_through {
    ($($stage:ident),+) => {$(
        impl<W: Stage> Write for $stage<W> {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.0.write(buf)
            }
            fn flush(&mut self) -> io::Result<()> {
                self.0.flush()
            }
        }
    )+};
}
write_through!(Brotli, Passthrough);

impl<W: Stage> Stage for Brotli<W> {
    fn finish(&mut self) -> io::Result<()> {
        self.0.close()?;
        self.0.get_mut().finish()
    }
    fn sink_capped(&self) -> bool {
        self.0.get_ref().sink_capped()
    }
}

fn looks_like_zlib(header: &[u8]) -> bool {
    let [cmf, flg, ..] = *header else { return false };
    cmf & 0x0f == 8 && (u16::from(cmf) * 256 + u16::from(flg)) % 31 == 0
}

impl<W: Stage> Write for Deflate<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Deflate::Pending(header, inner) = self {
            let take = buf.len().min(2usize.saturating_sub(header.len()));
            header.extend_from_slice(&buf[..take]);
            if header.len() < 2 {
                return Ok(take);
            }
            let header = std::mem::take(header);
            let inner = inner.take().ok_or_else(|| io::Error::other("deflate decoder reused"))?;
            *self = if looks_like_zlib(&header) {
                Deflate::Zlib(Zlib(flate2::write::ZlibDecoder::new(inner)))
            } else {
                Deflate::Raw(RawDeflate(flate2::write::DeflateDecoder::new(inner)))
            };
            self.write_all(&header)?;
            return Ok(take);
        }
        match self {
            Deflate::Zlib(z) => z.write(buf),
            Deflate::Raw(r) => r.write(buf),
            Deflate::Pending(..) => Ok(0),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Deflate::Zlib(z) => z.flush(),
            Deflate::Raw(r) => r.flush(),
            Deflate::Pending(..) => Ok(()),
        }
    }
}

impl<W: Stage> Stage for Deflate<W> {
    fn finish(&mut self) -> io::Result<()> {
        match self {
            Deflate::Zlib(z) => z.finish(),
            Deflate::Raw(r) => r.finish(),
            Deflate::Pending(header, _) if header.is_empty() => Ok(()),
            Deflate::Pending(..) => Err(io::Error::other("deflate stream too short")),
        }
    }
    fn sink_capped(&self) -> bool {
        match self {
            Deflate::Zlib(z) => z.sink_capped(),
            Deflate::Raw(r) => r.sink_capped(),
            Deflate::Pending(_, inner) => inner.as_ref().is_some_and(|w| w.sink_capped()),
        }
    }
}

impl<W: Stage> Stage for Passthrough<W> {
    fn finish(&mut self) -> io::Result<()> {
        self.0.finish()
    }
    fn sink_capped(&self) -> bool {
        self.0.sink_capped()
    }
}

/// Builds the chain so that wire bytes meet the last-applied encoding first.
fn build_decoder<'a>(encodings: &[String], sink: &'a mut Sink) -> Chain<'a> {
    let known = encodings.len() <= MAX_ENCODING_LAYERS
        && encodings.iter().all(|e| matches!(e.as_str(), "gzip" | "x-gzip" | "deflate" | "br"));
    let mut chain: Chain<'a> = Box::new(sink);
    if !known {
        return Box::new(Passthrough(chain));
    }
    for encoding in encodings {
        chain = match encoding.as_str() {
            "gzip" | "x-gzip" => Box::new(Gzip(flate2::write::GzDecoder::new(chain))),
            "deflate" => Box::new(Deflate::Pending(Vec::new(), Some(chain))),
            _ => Box::new(Brotli(brotli_decompressor::DecompressorWriter::new(chain, 16 * 1024))),
        };
    }
    chain
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn refuse_private(ip: IpAddr) -> Result<(), String> {
        match ip {
            IpAddr::V4(v4) if v4.is_loopback() => Err("loopback address blocked by policy".into()),
            IpAddr::V4(v4) if v4.is_private() => Err("private address blocked by policy".into()),
            _ => Ok(()),
        }
    }

    #[test]
    fn one_refused_record_refuses_the_whole_answer() {
        let addrs = [
            SocketAddr::new(IpAddr::V4(Ipv4Addr::new(93, 184, 215, 14)), 80),
            SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7)), 80),
        ];
        let error = check_all("mixed.example", &addrs, &refuse_private).unwrap_err();
        assert_eq!(
            error,
            ProbeError::Blocked {
                host: "mixed.example".into(),
                reason: "resolves to 10.0.0.7, private address blocked by policy".into(),
            }
        );
        assert!(check_all("public.example", &addrs[..1], &refuse_private).is_ok());
    }

    #[test]
    fn mapped_ipv6_is_checked_as_ipv4() {
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert!(check_ip(&refuse_private, mapped).is_err());
    }

    #[test]
    fn non_http_schemes_are_blocked_with_a_plain_message() {
        for raw in ["file:///etc/passwd", "ftp://example.com/", "gopher://x/"] {
            let url = Url::parse(raw).unwrap();
            let error = Origin::of(&url).unwrap_err();
            let scheme = url.scheme().to_owned();
            assert_eq!(error.to_string(), format!("{scheme}: {SCHEME_REFUSED}"));
        }
    }

    #[test]
    fn redirect_targets_need_a_redirect_status_and_a_usable_location() {
        let base = Url::parse("http://a.test/dir/page").unwrap();
        let found = StatusCode::FOUND;
        assert_eq!(redirect_target(found, Some("../x?y=1"), &base).unwrap().as_str(), "http://a.test/x?y=1");
        assert_eq!(
            redirect_target(StatusCode::PERMANENT_REDIRECT, Some("//b.test/"), &base).unwrap().as_str(),
            "http://b.test/"
        );
        assert!(redirect_target(found, None, &base).is_none());
        assert!(redirect_target(found, Some("  "), &base).is_none());
        assert!(redirect_target(found, Some("http://[::1"), &base).is_none());
        assert!(redirect_target(StatusCode::NOT_MODIFIED, Some("/x"), &base).is_none());
        assert!(redirect_target(StatusCode::OK, Some("/x"), &base).is_none());
    }

    #[test]
    fn requests_carry_browser_headers_and_the_right_target_form() {
        let config = ProbeConfig::default();
        let url = Url::parse("http://a.test:8080/p?q=1#frag").unwrap();
        let h1 = build_request(&url, false, &config).unwrap();
        assert_eq!(h1.uri(), "/p?q=1");
        assert_eq!(h1.headers()[header::HOST], "a.test:8080");
        assert_eq!(h1.headers()[header::ACCEPT_ENCODING], "gzip, deflate, br");
        assert_eq!(h1.headers()[header::USER_AGENT], config.user_agent.as_str());
        assert!(h1.headers()[header::ACCEPT].to_str().unwrap().starts_with("text/html"));
        let h2 = build_request(&url, true, &config).unwrap();
        assert_eq!(h2.uri(), "http://a.test:8080/p?q=1");
        assert!(h2.headers().get(header::HOST).is_none());
        let default_port = Url::parse("https://a.test/").unwrap();
        let h1 = build_request(&default_port, false, &config).unwrap();
        assert_eq!(h1.headers()[header::HOST], "a.test");
    }

    #[test]
    fn content_encodings_are_split_lowered_and_identity_free() {
        let mut headers = HeaderMap::new();
        headers.append(header::CONTENT_ENCODING, HeaderValue::from_static("GZIP, identity"));
        headers.append(header::CONTENT_ENCODING, HeaderValue::from_static("br"));
        assert_eq!(content_encodings(&headers), ["gzip", "br"]);
        assert_eq!(content_encoding_label(&headers).as_deref(), Some("gzip, br"));
        assert_eq!(content_encoding_label(&HeaderMap::new()), None);
    }

    fn decode(encodings: &[&str], input: &[u8], cap: u64, chunk: usize) -> (Vec<u8>, bool, io::Result<()>) {
        let encodings: Vec<String> = encodings.iter().map(|e| e.to_string()).collect();
        let mut sink = Sink::new(cap, true);
        let result = {
            let mut decoder = build_decoder(&encodings, &mut sink);
            let mut result = Ok(());
            for piece in input.chunks(chunk.max(1)) {
                if let Err(error) = decoder.write_all(piece) {
                    result = Err(error);
                    break;
                }
            }
            if result.is_ok() {
                result = decoder.finish();
            }
            result
        };
        let capped = sink.capped;
        (sink.into_bytes(), capped, result)
    }

    fn compress(kind: &str, data: &[u8]) -> Vec<u8> {
        use flate2::Compression;
        match kind {
            "gzip" => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), Compression::default());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            "zlib" => {
                let mut e = flate2::write::ZlibEncoder::new(Vec::new(), Compression::default());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            _ => {
                let mut e = flate2::write::DeflateEncoder::new(Vec::new(), Compression::default());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
        }
    }

    #[test]
    fn gzip_and_both_deflate_flavours_decode_in_small_chunks() {
        let text = b"<p>hello hello hello hello</p>".repeat(200);
        for (encoding, wire) in [
            ("gzip", compress("gzip", &text)),
            ("deflate", compress("zlib", &text)),
            ("deflate", compress("raw", &text)),
        ] {
            for chunk in [1, 7, 4096] {
                let (out, capped, result) = decode(&[encoding], &wire, u64::MAX, chunk);
                assert!(result.is_ok(), "{encoding} chunk {chunk}: {result:?}");
                assert!(!capped);
                assert_eq!(out, text, "{encoding} chunk {chunk}");
            }
        }
    }

    #[test]
    fn stacked_encodings_decode_in_reverse_order() {
        let text = b"layered ".repeat(100);
        let wire = compress("gzip", &compress("zlib", &text));
        let (out, _, result) = decode(&["deflate", "gzip"], &wire, u64::MAX, 100);
        assert!(result.is_ok());
        assert_eq!(out, text);
    }

    #[test]
    fn the_decoded_cap_stops_a_bomb_early() {
        let wire = compress("gzip", &vec![0u8; 8 * 1024 * 1024]);
        assert!(wire.len() < 16 * 1024, "bomb should be small: {}", wire.len());
        let (out, capped, result) = decode(&["gzip"], &wire, 64 * 1024, 1024);
        assert!(capped);
        assert!(result.is_err());
        assert_eq!(out.len(), 64 * 1024);
    }

    #[test]
    fn corrupt_and_unknown_encodings() {
        let (_, capped, result) = decode(&["gzip"], b"definitely not gzip", u64::MAX, 5);
        assert!(!capped);
        assert!(result.is_err());
        let (out, _, result) = decode(&["zstd"], b"opaque", u64::MAX, 5);
        assert!(result.is_ok());
        assert_eq!(out, b"opaque");
    }
}

//! Connections: TCP to the checked addresses (one after another), TLS where the origin needs
//! it, HTTP/1.1 or HTTP/2 as ALPN says, and the pool that lets a later hop of the same probe
//! reuse them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Empty;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio_rustls::TlsConnector;
use url::Url;

use super::resolve::{Origin, Scheme, io_reason, resolve};
use super::tls::{server_name, tls_config, tls_reason};
use super::{AddressCheck, Phase, ProbeConfig, ProbeError, millis};

/// How long a pooled HTTP/1.1 connection may take to become idle again before a fresh one is
/// opened instead. A fully read response makes it idle almost at once.
const REUSE_WAIT: Duration = Duration::from_millis(500);

pub(super) enum Sender {
    H1(http1::SendRequest<Empty<Bytes>>),
    H2(http2::SendRequest<Empty<Bytes>>),
}

impl Sender {
    pub(super) fn is_http2(&self) -> bool {
        matches!(self, Sender::H2(_))
    }
}

pub(super) struct Conn {
    pub(super) sender: Sender,
    pub(super) remote: SocketAddr,
}

#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Setup {
    pub(super) reused: bool,
    pub(super) dns_ms: Option<f64>,
    pub(super) connect_ms: Option<f64>,
    pub(super) tls_ms: Option<f64>,
}

/// Connections kept for later hops of the same probe. Dropping the pool aborts every
/// connection task, so nothing outlives the probe, even when the caller's timeout cancels it.
#[derive(Default)]
pub(super) struct Pool {
    pub(super) idle: HashMap<Origin, Conn>,
    pub(super) tasks: JoinSet<()>,
}

impl Pool {
    pub(super) fn put(&mut self, origin: Origin, conn: Conn) {
        self.idle.insert(origin, conn);
    }

    pub(super) async fn checkout(
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

    pub(super) async fn connect(
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

    pub(super) async fn http1<T>(&mut self, io: T) -> Result<Sender, ProbeError>
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

    pub(super) async fn http2<T>(&mut self, io: T) -> Result<Sender, ProbeError>
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
pub(super) async fn connect_tcp(
    addrs: &[SocketAddr],
    timeout: Duration,
) -> Result<(TcpStream, SocketAddr), ProbeError> {
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

pub(super) fn protocol_error(error: hyper::Error) -> ProbeError {
    ProbeError::Protocol { reason: hyper_reason(&error) }
}

pub(super) fn hyper_reason(error: &hyper::Error) -> String {
    use std::error::Error as _;
    // hyper's top-level text is generic ("connection error"); the source names the cause.
    match error.source() {
        Some(source) => format!("{error}: {source}"),
        None => error.to_string(),
    }
}

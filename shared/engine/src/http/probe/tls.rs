//! TLS: the server name to verify, the client configuration (the platform's roots, read once
//! per process, plus a test's own), and readable handshake failures.

use std::io;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use rustls::ClientConfig;
use rustls::pki_types::{CertificateDer, ServerName};
use url::{Host, Url};

use super::resolve::io_reason;
use super::{ProbeConfig, ProbeError};

pub(super) fn server_name(url: &Url) -> Result<ServerName<'static>, ProbeError> {
    let name = match url.host() {
        Some(Host::Ipv4(ip)) => return Ok(ServerName::from(IpAddr::V4(ip))),
        Some(Host::Ipv6(ip)) => return Ok(ServerName::from(IpAddr::V6(ip))),
        Some(Host::Domain(name)) => name.strip_suffix('.').unwrap_or(name).to_owned(),
        None => return Err(ProbeError::InvalidUrl { reason: format!("{url} has no host") }),
    };
    ServerName::try_from(name.clone())
        .map_err(|_| ProbeError::InvalidUrl { reason: format!("{name} is not a valid TLS name") })
}

pub(super) fn tls_reason(error: &io::Error) -> String {
    // rustls errors arrive wrapped in io::Error; their own text is the informative part.
    match error.get_ref() {
        Some(inner) => inner.to_string(),
        None => io_reason(error),
    }
}

/// The platform's roots are read once per process: loading them costs tens of milliseconds,
/// which would otherwise land on every probe.
pub(super) fn tls_config(config: &ProbeConfig) -> Result<Arc<ClientConfig>, String> {
    static PLATFORM: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    if config.extra_root_certs.is_empty() {
        PLATFORM.get_or_init(|| build_tls_config(Vec::new())).clone()
    } else {
        build_tls_config(config.extra_root_certs.clone())
    }
}

pub(super) fn build_tls_config(extra_roots: Vec<CertificateDer<'static>>) -> Result<Arc<ClientConfig>, String> {
    net::tls::client_config(extra_roots, &[b"h2", b"http/1.1"])
}

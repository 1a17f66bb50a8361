//! Where a URL points: its origin, its addresses (resolved with a timeout), and every address
//! checked before any connection, so a name with one private record is refused outright.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use url::{Host, Url};

use super::{AddressCheck, Phase, ProbeConfig, ProbeError, SCHEME_REFUSED, millis};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Scheme {
    Http,
    Https,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct Origin {
    pub(super) scheme: Scheme,
    pub(super) host: String,
    pub(super) port: u16,
}

impl Origin {
    pub(super) fn of(url: &Url) -> Result<Self, ProbeError> {
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
pub(super) fn check_ip(check: &dyn AddressCheck, ip: IpAddr) -> Result<(), String> {
    check.check(ip)?;
    let canonical = ip.to_canonical();
    if canonical != ip {
        check.check(canonical)?;
    }
    Ok(())
}

/// Every address of an answer must pass: if one record is refused the name is refused, since
/// which record a later connection would use is not ours to promise.
pub(super) fn check_all(host: &str, addrs: &[SocketAddr], check: &dyn AddressCheck) -> Result<(), ProbeError> {
    for addr in addrs {
        check_ip(check, addr.ip()).map_err(|reason| ProbeError::Blocked {
            host: host.to_owned(),
            reason: format!("resolves to {}, {reason}", addr.ip()),
        })?;
    }
    Ok(())
}

/// Resolves and checks; returns the checked addresses and the DNS time (None for a literal).
pub(super) async fn resolve(
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

pub(super) fn literal(
    ip: IpAddr,
    port: u16,
    check: &dyn AddressCheck,
) -> Result<(Vec<SocketAddr>, Option<f64>), ProbeError> {
    check_ip(check, ip).map_err(|reason| ProbeError::Blocked { host: ip.to_string(), reason })?;
    Ok((vec![SocketAddr::new(ip, port)], None))
}

pub(super) fn dns_reason(error: &io::Error) -> String {
    // getaddrinfo's messages ("failed to lookup address information: Name or service not
    // known") are the clearest we get; trim the prefix tokio adds.
    let text = error.to_string();
    text.strip_prefix("failed to lookup address information: ").unwrap_or(&text).to_owned()
}

pub(super) fn io_reason(error: &io::Error) -> String {
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

//! The HTTP client for every fetch made on a user's behalf (pages, sitemaps). Every connection
//! goes through `PolicyResolver` and every redirect through the same address policy, so no
//! URL can reach a private or metadata address, DNS rebinding included.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect;
use url::{Host, Url};

use domain::ErrorKind;
use domain::error::error_chain;
use domain::{AddressPolicy, BlockedAddress};

pub const MAX_REDIRECTS: usize = 10;

#[derive(Debug, thiserror::Error)]
#[error("{host}: {blocked}")]
pub struct Blocked {
    host: String,
    blocked: BlockedAddress,
}

#[derive(Debug, thiserror::Error)]
#[error("DNS lookup of {host} failed: {reason}")]
pub struct DnsFailure {
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
        // A fully qualified name ("localhost.") is the same host: look it up without the
        // root's dot, which some resolvers (hosts files) do not know.
        let host = name.as_str().trim_end_matches('.').to_owned();
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
pub fn check_literal_host(url: &Url, policy: AddressPolicy) -> Result<(), Blocked> {
    let ip = match url.host() {
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip),
        _ => return Ok(()),
    };
    policy.check(ip).map_err(|blocked| Blocked { host: ip.to_string(), blocked })
}

#[derive(Debug, thiserror::Error)]
#[error("redirect to a {0} URL blocked by policy: only http and https are followed")]
pub struct BadRedirectScheme(String);

/// A client that enforces `policy` on every connection and redirect, follows at most
/// `MAX_REDIRECTS` redirects and ignores proxy settings (a proxy would resolve names for us).
pub fn safe_client(policy: AddressPolicy) -> Result<reqwest::Client, reqwest::Error> {
    safe_client_trusting(policy, &[])
}

/// `safe_client` that also trusts `extra_roots` (the tests' own certificate authority).
pub fn safe_client_trusting(
    policy: AddressPolicy,
    extra_roots: &[rustls::pki_types::CertificateDer<'static>],
) -> Result<reqwest::Client, reqwest::Error> {
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
    build(policy, extra_roots, redirects)
}

/// `safe_client` that follows no redirect: for requests that carry something meant for the
/// URL given alone (a signed callback body), a redirect is the answer, not a new target.
pub fn safe_client_without_redirects(policy: AddressPolicy) -> Result<reqwest::Client, reqwest::Error> {
    build(policy, &[], redirect::Policy::none())
}

fn build(
    policy: AddressPolicy,
    extra_roots: &[rustls::pki_types::CertificateDer<'static>],
    redirects: redirect::Policy,
) -> Result<reqwest::Client, reqwest::Error> {
    let mut builder = reqwest::Client::builder();
    for root in extra_roots {
        builder = builder.add_root_certificate(reqwest::Certificate::from_der(root)?);
    }
    builder
        .dns_resolver(Arc::new(PolicyResolver { policy }))
        .redirect(redirects)
        .no_proxy()
        .connect_timeout(Duration::from_secs(15))
        .pool_max_idle_per_host(2)
        .build()
}

/// What went wrong with a request, as a cause and a reason a user can act on.
pub fn describe(err: &reqwest::Error) -> (ErrorKind, String) {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(cause) = source {
        if let Some(blocked) = cause.downcast_ref::<Blocked>() {
            return (ErrorKind::Blocked, blocked.to_string());
        }
        if let Some(dns) = cause.downcast_ref::<DnsFailure>() {
            return (ErrorKind::Dns, dns.to_string());
        }
        if let Some(scheme) = cause.downcast_ref::<BadRedirectScheme>() {
            return (ErrorKind::Blocked, scheme.to_string());
        }
        source = cause.source();
    }
    if err.is_redirect() {
        (ErrorKind::Redirect, format!("redirect failed: {}", error_chain(err)))
    } else if err.is_timeout() {
        (ErrorKind::Timeout, "timed out".into())
    } else if err.is_connect() {
        (ErrorKind::Connection, format!("could not connect: {}", error_chain(err)))
    } else {
        (ErrorKind::Transfer, format!("transfer failed: {}", error_chain(err)))
    }
}

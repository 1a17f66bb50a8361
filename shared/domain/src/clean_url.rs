//! URL cleaning and validation (SPEC §2): a `CleanUrl` exists only if the input passed every
//! rule, so nothing downstream re-checks.

use std::collections::HashSet;
use std::net::IpAddr;

use serde::Serialize;
use url::{Host, Url};

use crate::address_policy::AddressPolicy;
use crate::labels::{JobUrl, Tags};

pub const MAX_URL_LEN: usize = 2048;

/// A URL in the one canonical form the service stores, queues and analyses.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CleanUrl(String);

/// Why an input was refused, in words a user can act on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UrlRejection {
    #[error("empty")]
    Empty,
    #[error("longer than {MAX_URL_LEN} characters")]
    TooLong,
    #[error("only http and https URLs can be analysed, not {0}:")]
    UnsupportedScheme(String),
    #[error("not a valid URL: {0}")]
    Invalid(String),
    #[error("no host")]
    NoHost,
    #[error("credentials in the URL are not allowed")]
    Credentials,
    #[error("{0}")]
    BlockedHost(String),
    #[error("contains U+FFFD, the mark left where text was not valid UTF-8: send the URL as UTF-8")]
    NotUtf8,
}

impl CleanUrl {
    pub fn parse(input: &str, policy: AddressPolicy) -> Result<CleanUrl, UrlRejection> {
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return Err(UrlRejection::Empty);
        }
        // A gateway that received bytes that were not UTF-8 hands them on replaced by U+FFFD;
        // such a URL would name a different page than the one meant.
        if trimmed.contains('\u{FFFD}') {
            return Err(UrlRejection::NotUtf8);
        }
        // Cheap bound before parsing: cleaning never lengthens a URL by more than the
        // `https://` it may add and the punycode of its host.
        if trimmed.len() > MAX_URL_LEN * 4 {
            return Err(UrlRejection::TooLong);
        }
        let with_scheme = match explicit_scheme(trimmed) {
            Some(scheme) if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") => {
                trimmed.to_owned()
            }
            Some(scheme) => return Err(UrlRejection::UnsupportedScheme(scheme.to_ascii_lowercase())),
            None => format!("https://{trimmed}"),
        };
        let mut url = Url::parse(&with_scheme).map_err(|e| UrlRejection::Invalid(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(UrlRejection::UnsupportedScheme(url.scheme().to_owned()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(UrlRejection::Credentials);
        }
        match url.host() {
            None => return Err(UrlRejection::NoHost),
            Some(Host::Domain("")) => return Err(UrlRejection::NoHost),
            Some(Host::Domain(domain)) => {
                let domain = domain.trim_end_matches('.');
                // `http:./x` and `http://../` parse with the host "." or "..": dots alone
                // name nothing a request could reach.
                if domain.is_empty() {
                    return Err(UrlRejection::NoHost);
                }
                // RFC 6761: every name under localhost is loopback, whatever DNS says.
                if !policy.allow_private && (domain == "localhost" || domain.ends_with(".localhost")) {
                    return Err(UrlRejection::BlockedHost("loopback address blocked by policy".into()));
                }
            }
            Some(Host::Ipv4(ip)) => {
                policy.check(IpAddr::V4(ip)).map_err(|blocked| UrlRejection::BlockedHost(blocked.to_string()))?
            }
            Some(Host::Ipv6(ip)) => {
                policy.check(IpAddr::V6(ip)).map_err(|blocked| UrlRejection::BlockedHost(blocked.to_string()))?
            }
        }
        url.set_fragment(None);
        let path = url.path().trim_end_matches('/').to_owned();
        url.set_path(&path);
        let mut text = url.to_string();
        // The url crate always writes the root path as "/"; the canonical form drops it.
        if path.is_empty() {
            let root = url.origin().ascii_serialization().len();
            if text[root..].starts_with('/') {
                text.remove(root);
            }
        }
        if text.len() > MAX_URL_LEN {
            return Err(UrlRejection::TooLong);
        }
        Ok(CleanUrl(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A URL read back from where it was kept after `parse` cleaned it (a monitor's URLs):
    /// not cleaned again. The analyzer still holds every connection to the address policy.
    pub fn from_stored(text: String) -> CleanUrl {
        CleanUrl(text)
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl std::fmt::Display for CleanUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The scheme the user wrote, if any. `example.com:8080/x` has none (that is a port), while
/// `ftp://x`, `mailto:a@b` and `javascript:alert(1)` do.
fn explicit_scheme(input: &str) -> Option<&str> {
    let (candidate, rest) = input.split_once(':')?;
    let is_scheme = candidate.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && candidate.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !is_scheme {
        return None;
    }
    if rest.starts_with("//") {
        return Some(candidate);
    }
    let port: &str = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let looks_like_port = !port.is_empty() && port.chars().all(|c| c.is_ascii_digit());
    (!looks_like_port).then_some(candidate)
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Rejected {
    pub input: String,
    pub reason: String,
}

/// A submitted list after cleaning: accepted URLs in submission order, without duplicates,
/// each with its tags (a duplicate's are those of its first occurrence).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CleanedBatch {
    pub accepted: Vec<JobUrl>,
    pub rejected: Vec<Rejected>,
    pub duplicates_removed: usize,
}

pub fn clean_batch<'a>(inputs: impl IntoIterator<Item = (&'a str, Tags)>, policy: AddressPolicy) -> CleanedBatch {
    let mut batch = CleanedBatch::default();
    let mut seen = HashSet::new();
    for (input, tags) in inputs {
        match CleanUrl::parse(input, policy) {
            Ok(url) if seen.insert(url.clone()) => batch.accepted.push(JobUrl { url, tags }),
            Ok(_) => batch.duplicates_removed += 1,
            Err(reason) => batch.rejected.push(Rejected {
                // A rejected input is echoed back, but bounded: it may be megabytes.
                input: input.chars().take(MAX_URL_LEN + 16).collect(),
                reason: reason.to_string(),
            }),
        }
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(input: &str) -> Result<String, UrlRejection> {
        CleanUrl::parse(input, AddressPolicy::STRICT).map(CleanUrl::into_string)
    }

    #[test]
    fn a_url_mangled_from_invalid_utf8_is_refused_with_the_reason() {
        let err = CleanUrl::parse("https://example.com/\u{FFFD}\u{FFFD}", AddressPolicy::STRICT).unwrap_err();
        assert_eq!(err, UrlRejection::NotUtf8);
        assert!(err.to_string().contains("not valid UTF-8"), "{err}");
        assert!(
            CleanUrl::parse("https://example.com/caf\u{e9}", AddressPolicy::STRICT).is_ok(),
            "other non-ASCII is fine"
        );
    }

    #[test]
    fn cleans_into_the_canonical_form() {
        let cases = [
            ("https://example.com", "https://example.com"),
            ("https://example.com/", "https://example.com"),
            ("example.com", "https://example.com"),
            ("  example.com/a  ", "https://example.com/a"),
            ("\texample.com\n", "https://example.com"),
            ("HTTPS://EXAMPLE.COM/Path", "https://example.com/Path"),
            ("HtTp://Example.COM", "http://example.com"),
            ("https://example.com/a/b/", "https://example.com/a/b"),
            ("https://example.com/a#section", "https://example.com/a"),
            ("https://example.com/#top", "https://example.com"),
            ("https://example.com/?q=1&b=2", "https://example.com?q=1&b=2"),
            ("https://example.com/a/?q=1#x", "https://example.com/a?q=1"),
            ("https://example.com:443/", "https://example.com"),
            ("http://example.com:80/x", "http://example.com/x"),
            ("https://example.com:8443/x", "https://example.com:8443/x"),
            ("example.com:8080/x", "https://example.com:8080/x"),
            ("https://bücher.example/", "https://xn--bcher-kva.example"),
            ("https://ÉXAMPLE.com", "https://xn--xample-9ua.com"),
            ("http://8.8.8.8/dns", "http://8.8.8.8/dns"),
            ("http://[2606:4700::1111]/", "http://[2606:4700::1111]"),
            ("https://example.com/a%20b", "https://example.com/a%20b"),
        ];
        for (input, expected) in cases {
            assert_eq!(clean(input).as_deref(), Ok(expected), "{input:?}");
        }
    }

    #[test]
    fn rejects_with_a_reason() {
        let long = format!("https://example.com/{}", "a".repeat(2030));
        assert_eq!(long.len(), 2050);
        let cases: Vec<(&str, UrlRejection)> = vec![
            ("", UrlRejection::Empty),
            ("   ", UrlRejection::Empty),
            ("ftp://example.com/file", UrlRejection::UnsupportedScheme("ftp".into())),
            ("FTP://example.com", UrlRejection::UnsupportedScheme("ftp".into())),
            ("mailto:a@example.com", UrlRejection::UnsupportedScheme("mailto".into())),
            ("javascript:alert(1)", UrlRejection::UnsupportedScheme("javascript".into())),
            ("file:///etc/passwd", UrlRejection::UnsupportedScheme("file".into())),
            ("https://user:pw@example.com", UrlRejection::Credentials),
            ("https://user@example.com", UrlRejection::Credentials),
            (&long, UrlRejection::TooLong),
        ];
        for (input, expected) in cases {
            assert_eq!(clean(input), Err(expected), "{input:?}");
        }
        assert!(matches!(clean("https://"), Err(UrlRejection::Invalid(_))));
        assert!(matches!(clean("https://exa mple.com"), Err(UrlRejection::Invalid(_))));
        assert!(matches!(clean("http://[::1"), Err(UrlRejection::Invalid(_))));
    }

    #[test]
    fn a_host_of_dots_alone_is_no_host() {
        // Found by the clean_url fuzz target: accepted as `http://./8./b.co/dns` before.
        for input in ["http:./8./b.co/dns", "http://./", "https://../a", "http://.../"] {
            assert_eq!(clean(input), Err(UrlRejection::NoHost), "{input:?}");
            assert_eq!(CleanUrl::parse(input, AddressPolicy::LOCAL), Err(UrlRejection::NoHost), "{input:?}");
        }
        assert_eq!(
            clean("https://example.com./a").as_deref(),
            Ok("https://example.com./a"),
            "a trailing dot is a name"
        );
    }

    #[test]
    fn length_limit_is_inclusive_of_2048() {
        let exact = format!("https://example.com/{}", "a".repeat(2048 - 20));
        assert_eq!(exact.len(), 2048);
        assert!(clean(&exact).is_ok());
        let over = format!("{exact}b");
        assert_eq!(over.len(), 2049);
        assert_eq!(clean(&over), Err(UrlRejection::TooLong));
    }

    #[test]
    fn refuses_private_ip_literals_in_every_spelling() {
        let hostile = [
            "http://127.0.0.1",
            "http://127.1/",
            "http://2130706433/",
            "http://0x7f000001/",
            "http://0177.0.0.1/",
            "http://10.0.0.1",
            "http://172.16.5.4",
            "http://192.168.0.1:8080/admin",
            "http://169.254.169.254/latest/meta-data",
            "http://0.0.0.0",
            "http://100.64.1.1",
            "http://[::1]/",
            "http://[::]/",
            "http://[fd00::1]",
            "http://[fe80::1]",
            "http://[::ffff:127.0.0.1]",
            "http://[::ffff:a9fe:a9fe]",
            "http://localhost:3000",
            "http://LOCALHOST",
            "http://app.localhost",
            "localhost",
        ];
        for input in hostile {
            match clean(input) {
                Err(UrlRejection::BlockedHost(reason)) => {
                    assert!(reason.ends_with("blocked by policy"), "{input}: {reason}")
                }
                other => panic!("{input} was not blocked: {other:?}"),
            }
        }
    }

    #[test]
    fn local_development_accepts_private_targets() {
        let url = CleanUrl::parse("http://127.0.0.1:8080/page/", AddressPolicy::LOCAL).unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:8080/page");
        assert!(CleanUrl::parse("localhost:3000", AddressPolicy::LOCAL).is_ok());
    }

    #[test]
    fn batch_counts_duplicates_after_cleaning_and_keeps_order() {
        let inputs =
            ["https://b.com", "b.com/", "HTTPS://B.COM#frag", "ftp://x", "https://a.com", "", "https://a.com/"];
        let tagged = |n: usize| Tags { reference: Some(n.to_string()), ..Tags::default() };
        let batch =
            clean_batch(inputs.into_iter().enumerate().map(|(n, input)| (input, tagged(n))), AddressPolicy::STRICT);
        let accepted: Vec<_> = batch.accepted.iter().map(|u| (u.url.as_str(), u.tags.reference.as_deref())).collect();
        assert_eq!(
            accepted,
            [("https://b.com", Some("0")), ("https://a.com", Some("4"))],
            "the first occurrence's tags"
        );
        assert_eq!(batch.duplicates_removed, 3);
        assert_eq!(
            batch.rejected,
            vec![
                Rejected {
                    input: "ftp://x".into(),
                    reason: "only http and https URLs can be analysed, not ftp:".into()
                },
                Rejected { input: "".into(), reason: "empty".into() },
            ]
        );
    }
}

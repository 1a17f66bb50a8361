//! URL cleaning (SPEC §2) on arbitrary text, under both address policies.
//!
//! Properties, beyond "never panics":
//! - an accepted URL is http(s), at most `MAX_URL_LEN` long, has no credentials or fragment,
//!   and cleaning it again gives it back unchanged (cleaning is idempotent);
//! - STRICT never accepts an IP literal in a special range, nor a name under `localhost`;
//! - LOCAL is STRICT minus the address checks: whatever STRICT accepts, LOCAL accepts as the
//!   same URL, and STRICT refuses what LOCAL takes only as a blocked host;
//! - `clean_batch` accounts for every input once and keeps no duplicates.

#![no_main]

use std::collections::HashSet;
use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use domain::clean_url::MAX_URL_LEN;
use domain::{CleanUrl, Tags, UrlRejection, clean_batch};
use domain::AddressPolicy;
use domain::address_policy::special_range;
use url::{Host, Url};

fuzz_target!(|data: &[u8]| {
    // Lossy rather than skipping invalid UTF-8: every input then reaches the cleaner, and the
    // API only ever hands it strings.
    let input = String::from_utf8_lossy(data);
    let strict = check(&input, AddressPolicy::STRICT);
    let local = check(&input, AddressPolicy::LOCAL);
    match (&strict, &local) {
        (Ok(s), Ok(l)) => assert_eq!(s, l, "the policies cleaned {input:?} differently"),
        (Ok(s), Err(e)) => panic!("STRICT accepted {input:?} as {s} but LOCAL refused it: {e}"),
        // A host STRICT blocks is checked no further there; LOCAL goes on and may take it or
        // refuse it for a later reason (length).
        (Err(UrlRejection::BlockedHost(_)), _) => {}
        (Err(s), Ok(l)) => {
            panic!("only the address policy may differ: STRICT refused {input:?} ({s:?}), LOCAL took {l}")
        }
        (Err(s), Err(l)) => assert_eq!(s, l, "the policies refused {input:?} for different reasons"),
    }

    // The API cleans a list: one URL a line here.
    let lines: Vec<&str> = input.split('\n').collect();
    let batch = clean_batch(lines.iter().map(|line| (*line, Tags::default())), AddressPolicy::STRICT);
    assert_eq!(batch.accepted.len() + batch.rejected.len() + batch.duplicates_removed, lines.len());
    let distinct: HashSet<&str> = batch.accepted.iter().map(|u| u.url.as_str()).collect();
    assert_eq!(distinct.len(), batch.accepted.len(), "duplicates kept");
    for rejected in &batch.rejected {
        assert!(!rejected.reason.is_empty());
        assert!(rejected.input.chars().count() <= MAX_URL_LEN + 16, "the echoed input is bounded");
    }
});

fn check(input: &str, policy: AddressPolicy) -> Result<CleanUrl, UrlRejection> {
    let result = CleanUrl::parse(input, policy);
    match &result {
        Ok(clean) => accepted(input, clean, policy),
        Err(reason) => assert!(!reason.to_string().is_empty(), "a rejection says why"),
    }
    result
}

fn accepted(input: &str, clean: &CleanUrl, policy: AddressPolicy) {
    let text = clean.as_str();
    assert!(text.starts_with("http://") || text.starts_with("https://"), "{input:?} -> {text}");
    assert!(text.len() <= MAX_URL_LEN, "{input:?} -> {} bytes", text.len());
    assert_eq!(CleanUrl::parse(text, policy).as_ref(), Ok(clean), "cleaning {input:?} is not idempotent");

    let url = Url::parse(text).unwrap_or_else(|e| panic!("{input:?} -> {text}, which does not parse: {e}"));
    assert!(matches!(url.scheme(), "http" | "https"));
    assert!(url.username().is_empty() && url.password().is_none(), "credentials kept: {text}");
    assert!(url.fragment().is_none(), "fragment kept: {text}");
    if policy.allow_private {
        return;
    }
    match url.host() {
        Some(Host::Ipv4(ip)) => strict_ip(input, IpAddr::V4(ip)),
        Some(Host::Ipv6(ip)) => strict_ip(input, IpAddr::V6(ip)),
        Some(Host::Domain(domain)) => {
            let name = domain.trim_end_matches('.').to_ascii_lowercase();
            assert!(!name.is_empty(), "STRICT accepted {input:?} without a host");
            assert!(name != "localhost" && !name.ends_with(".localhost"), "STRICT accepted {input:?} as {text}");
        }
        None => panic!("STRICT accepted {input:?} without a host"),
    }
}

fn strict_ip(input: &str, ip: IpAddr) {
    if let Some(range) = special_range(ip) {
        panic!("STRICT accepted {input:?}: {ip} is {range}");
    }
}

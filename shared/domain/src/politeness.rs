//! Sites are fetched politely: at most `host_concurrency` URLs of one host are analysed at
//! once across the whole fleet, every job and tenant together, and a host that asks for a
//! pause (429 or 503 with `Retry-After`) gets one.
//!
//! A URL's place at its host is a lease in the host's set ([`crate::places`]).

use std::time::Duration;

use crate::settings::Bounds;
use crate::time::Millis;

/// URLs of one host analysed at once, fleet-wide: the deployment's default and most; a job
/// may ask for fewer.
pub const HOST_CONCURRENCY: Bounds = Bounds { field: "host_concurrency", min: 1, max: 20, default: 4 };
/// The longest pause a host's `Retry-After` gets: a site cannot park a job for a day.
pub const MAX_PAUSE: Duration = Duration::from_secs(600);
/// Pauses a URL waits out (its host answering 429 or 503 with `Retry-After` each time)
/// before such an answer is taken as an ordinary retryable failure: a site that always asks
/// for a pause cannot keep a URL waiting forever.
pub const MAX_HOST_PAUSES: u32 = 20;

/// Where a URL's place is taken: its host, with the port when the URL names one (two servers
/// on one machine are two sites; `https://a.com` and `http://a.com` are one).
pub fn host_key(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    // Credentials never reach a task (cleaning refuses them); stripped here all the same.
    let authority = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    (!authority.is_empty()).then(|| authority.to_ascii_lowercase())
}

/// The pause a host's `Retry-After` of `asked` buys it, from `now`: capped at [`MAX_PAUSE`],
/// and at least a second (a `Retry-After: 0` on a 429 still means "not this instant").
pub fn pause_until(asked: Duration, now: Millis) -> Millis {
    let pause = asked.clamp(Duration::from_secs(1), MAX_PAUSE);
    now + i64::try_from(pause.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_is_its_name_with_the_port_it_was_given() {
        assert_eq!(host_key("https://example.com/a?b#c").as_deref(), Some("example.com"));
        assert_eq!(host_key("http://127.0.0.1:8080/page/1").as_deref(), Some("127.0.0.1:8080"));
        assert_eq!(host_key("https://Shop.Example.com?q=1").as_deref(), Some("shop.example.com"));
        assert_eq!(host_key("https://[::1]:9/x").as_deref(), Some("[::1]:9"));
        assert_eq!(host_key("https://u:p@example.com/").as_deref(), Some("example.com"));
        assert_eq!(host_key("no scheme"), None);
        assert_eq!(host_key("https:///path"), None);
    }

    #[test]
    fn a_pause_is_what_the_site_asked_for_within_bounds() {
        assert_eq!(pause_until(Duration::from_secs(5), 1_000), 6_000);
        assert_eq!(pause_until(Duration::ZERO, 0), 1_000);
        assert_eq!(pause_until(Duration::from_secs(86_400), 0), 600_000, "capped");
    }
}

//! Sites are fetched politely: at most `host_concurrency` URLs of one host are analysed at
//! once across the whole fleet, every job and tenant together, and a host that asks for a
//! pause (429 or 503 with `Retry-After`) gets one.
//!
//! A place is a lease, not a count: each URL being analysed is one holder in its host's set,
//! named with when its lease ends. The analysis gives its place back when it records what
//! became of the URL; a place whose holder crashed is taken back by the next claim that finds
//! the host full once that lease has ended. Nothing leaks for longer than one lease.

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
pub const MAX_HOST_WAITS: u32 = 20;
/// The longest a URL of a busy host waits before looking again: a crowd of waiters looks
/// about this often, so longer leaves a free host idle and shorter costs more requests.
pub const MAX_BUSY_WAIT: Duration = Duration::from_secs(10);

/// Where a URL's place is taken: its host, with the port when the URL names one (two servers
/// on one machine are two sites; `https://a.com` and `http://a.com` are one).
pub fn host_key(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    // Credentials never reach a task (cleaning refuses them); stripped here all the same.
    let authority = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    (!authority.is_empty()).then(|| authority.to_ascii_lowercase())
}

/// One URL's place at its host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostLease {
    /// The host's key ([`host_key`]).
    pub host: String,
    /// This URL's name in the host's set: `<job>#<seq>@<lease end>`.
    pub holder: String,
    /// The most holders the host may have for this URL to take a place.
    pub limit: u32,
}

impl HostLease {
    /// The place URL `seq` of `job` asks for at `host` until `until`.
    pub fn new(host: String, job: &str, seq: u32, until: Millis, limit: u32) -> Self {
        HostLease { host, holder: format!("{job}#{seq}@{until}"), limit: limit.max(1) }
    }
}

/// When a holder's lease ends, from its name; `None` for a name this service did not write
/// (it is then kept until something says otherwise).
pub fn lease_end(holder: &str) -> Option<Millis> {
    holder.rsplit_once('@')?.1.parse().ok()
}

/// The holders whose lease has ended at `now`: places to take back.
pub fn ended<'a>(holders: impl IntoIterator<Item = &'a String>, now: Millis) -> Vec<String> {
    holders.into_iter().filter(|h| lease_end(h).is_some_and(|end| end <= now)).cloned().collect()
}

/// Whether a host with `holders` (and perhaps paused until `paused_until`) has a place for
/// `wanted` more URLs under `limit` at `now`.
pub fn has_room(holders: usize, paused_until: Option<Millis>, limit: u32, wanted: usize, now: Millis) -> bool {
    paused_until.is_none_or(|until| until <= now) && holders + wanted <= limit as usize
}

/// What a claim found at a busy host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostBusy {
    /// The host asked for a pause until then; `None`: its places are all taken.
    pub paused_until: Option<Millis>,
}

/// When a URL that found its host busy looks again, its `waits`th time: from 1 s, doubling to
/// [`MAX_BUSY_WAIT`], spread by `jitter` (0 to 1) so that a crowd of waiters does not come
/// back at one moment; a pause is waited out exactly.
pub fn busy_until(busy: HostBusy, waits: u32, jitter: f64, now: Millis) -> Millis {
    if let Some(until) = busy.paused_until.filter(|until| *until > now) {
        return until;
    }
    let base = Duration::from_secs(1u64 << waits.min(5)).min(MAX_BUSY_WAIT);
    let spread = base.mul_f64(0.5 + jitter.clamp(0.0, 1.0) * 0.5);
    now + i64::try_from(spread.as_millis()).unwrap_or(i64::MAX)
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
    fn a_holder_names_its_lease_end_and_ended_ones_are_taken_back() {
        let lease = HostLease::new("a.com".into(), "j1", 7, 5_000, 4);
        assert_eq!(lease.holder, "j1#7@5000");
        assert_eq!(lease_end(&lease.holder), Some(5_000));
        let holders = vec![lease.holder.clone(), "j2#1@9000".to_owned(), "odd".to_owned()];
        assert_eq!(ended(&holders, 4_999), Vec::<String>::new());
        assert_eq!(ended(&holders, 5_000), ["j1#7@5000"], "a lease ends at its end; unknown names stay");
    }

    #[test]
    fn room_counts_the_places_wanted_and_a_pause() {
        assert!(has_room(3, None, 4, 1, 0));
        assert!(!has_room(4, None, 4, 1, 0));
        assert!(!has_room(2, None, 4, 3, 0), "three more do not fit beside two");
        assert!(!has_room(0, Some(10), 4, 1, 9), "paused");
        assert!(has_room(0, Some(10), 4, 1, 10), "the pause is over");
    }

    #[test]
    fn a_busy_host_is_looked_at_again_sooner_than_a_paused_one_is_left_alone() {
        let busy = HostBusy { paused_until: None };
        assert_eq!(busy_until(busy, 0, 1.0, 0), 1_000);
        assert_eq!(busy_until(busy, 0, 0.0, 0), 500, "spread down to half");
        assert_eq!(busy_until(busy, 3, 1.0, 0), 8_000);
        assert_eq!(busy_until(busy, 40, 1.0, 0), 10_000, "at most MAX_BUSY_WAIT");
        let paused = HostBusy { paused_until: Some(5_000) };
        assert_eq!(busy_until(paused, 0, 0.3, 1_000), 5_000, "a pause exactly");
        assert_eq!(busy_until(paused, 0, 1.0, 6_000), 7_000, "a pause already over is a busy host");
        assert_eq!(pause_until(Duration::from_secs(5), 1_000), 6_000);
        assert_eq!(pause_until(Duration::ZERO, 0), 1_000);
        assert_eq!(pause_until(Duration::from_secs(86_400), 0), 600_000, "capped");
    }
}

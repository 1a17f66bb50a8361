//! Places: a URL being analysed holds a place at its host (at most `host_concurrency` there,
//! [`crate::politeness`]) and one of its tenant's (at most `max_in_flight` across all the
//! tenant's jobs, [`crate::tenancy`]). A URL starts only when it gets every place it needs.
//!
//! A place is a lease, not a count: each URL being analysed is one holder in a set, named
//! with when its lease ends. The analysis gives its places back when it records what became
//! of the URL; a place whose holder crashed is taken back by the next batch that finds the
//! set full once that lease has ended. Nothing leaks for longer than one lease.
//!
//! A tenant's places are split into shards of at most [`SHARD_PLACES`]: a set is written
//! whole on every change and DynamoDB charges a write by the item's size, so one set of
//! thousands of holders would make every place taken cost kilobytes of writes and every
//! analyzer contend for one item. A URL looks in one shard, another each time it finds one
//! full; each job starts at a shard of its own, and the URLs of one batch look in one shard
//! per tenant ([`one_shard_per_tenant`]), so a batch writes few items.

use std::time::Duration;

use crate::job::Tenant;
use crate::time::Millis;
use crate::waits::WaitReason;

/// The most holders in one set of a tenant's places (about 1 KB of names).
pub const SHARD_PLACES: u32 = 16;
/// Neighbouring URLs of a job that look in one shard first: few enough that a job's window
/// spreads over several shards (a window of 20 in one shard of 15 would wait on itself).
const NEIGHBOURS: u32 = 4;
/// The longest a URL that found its places taken waits before looking again: a crowd of
/// waiters looks about this often, so longer leaves free places idle and shorter costs more
/// requests.
pub const MAX_BUSY_WAIT: Duration = Duration::from_secs(10);

/// A set of places.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Place {
    /// A host's ([`crate::politeness::host_key`]).
    Host(String),
    /// One shard of a tenant's.
    Tenant { tenant: String, shard: u32 },
}

impl Place {
    /// Why a URL waits that found this place full (or, for a host, paused).
    pub fn wait_reason(&self, paused: bool) -> WaitReason {
        match (self, paused) {
            (Place::Tenant { .. }, _) => WaitReason::TenantCap,
            (Place::Host(_), true) => WaitReason::HostPaused,
            (Place::Host(_), false) => WaitReason::HostBusy,
        }
    }
}

/// One URL's place in a set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub place: Place,
    /// This URL's name in the set: `<job>#<seq>@<lease end>`.
    pub holder: String,
    /// The most holders the set may have for this URL to take a place (at least one).
    pub limit: u32,
}

impl Lease {
    /// The place URL `seq` of `job` asks for at `place` until `until`.
    pub fn new(place: Place, job: &str, seq: u32, until: Millis, limit: u32) -> Self {
        Lease { place, holder: format!("{job}#{seq}@{until}"), limit: limit.max(1) }
    }

    /// URL `seq`'s place among `tenant`'s `max_in_flight`, in the shard it looks in on its
    /// `waits`th try: by job and position, moved on by each wait so that a URL that found
    /// one shard full looks in another next.
    pub fn tenant(tenant: &Tenant, max_in_flight: u32, job: &str, seq: u32, waits: u32, until: Millis) -> Self {
        let max = max_in_flight.max(1);
        let shards = max.div_ceil(SHARD_PLACES);
        let shard =
            ((u64::from(fnv1a(job)) + u64::from(seq / NEIGHBOURS) + u64::from(waits)) % u64::from(shards)) as u32;
        // Shards share the limit evenly: the first ones take the remainder.
        let limit = max / shards + u32::from(shard < max % shards);
        Lease::new(Place::Tenant { tenant: tenant.0.clone(), shard }, job, seq, until, limit)
    }
}

/// A stable hash of a name (FNV-1a): the same job starts at the same shard everywhere.
fn fnv1a(name: &str) -> u32 {
    name.bytes().fold(0x811c_9dc5, |hash: u32, byte| (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193))
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

/// Whether a set with `holders` (and perhaps paused until `paused_until`) has a place for
/// `wanted` more URLs under `limit` at `now`.
pub fn has_room(holders: usize, paused_until: Option<Millis>, limit: u32, wanted: usize, now: Millis) -> bool {
    paused_until.is_none_or(|until| until <= now) && holders + wanted <= limit as usize
}

/// Of several URLs asking for their places at once (each its leases, in order), the ones that
/// could not have them even if every set were empty: those beyond the first `limit` asking
/// for one set. What each of those finds, by position; `None` for the others.
pub fn beyond_limits<'a>(asks: impl IntoIterator<Item = &'a [Lease]>) -> Vec<Option<Full>> {
    let mut taken: std::collections::HashMap<&Place, u32> = std::collections::HashMap::new();
    asks.into_iter()
        .map(|leases| {
            let over = leases.iter().find(|lease| taken.get(&lease.place).copied().unwrap_or(0) >= lease.limit);
            if let Some(lease) = over {
                return Some(Full { reason: lease.place.wait_reason(false), paused_until: None });
            }
            for lease in leases {
                *taken.entry(&lease.place).or_default() += 1;
            }
            None
        })
        .collect()
}

/// Each tenant's places of a batch in one shard: every URL of a tenant looks where the
/// batch's first URL of that tenant looks, so a batch writes one shard item per tenant, each
/// way, not one per neighbourhood of URLs. A shard holds more places than a batch has URLs; a
/// URL that finds the batch's shard full comes back with its wait counted, in another batch
/// and so, most likely, in another shard.
pub fn one_shard_per_tenant(asks: &mut [Vec<Lease>]) {
    let mut chosen: Vec<(String, Place, u32)> = Vec::new();
    for lease in asks.iter_mut().flatten() {
        let Place::Tenant { tenant, .. } = &lease.place else { continue };
        match chosen.iter().find(|(name, ..)| name == tenant) {
            Some((_, place, limit)) => {
                lease.place = place.clone();
                lease.limit = *limit;
            }
            None => chosen.push((tenant.clone(), lease.place.clone(), lease.limit)),
        }
    }
}

/// What a URL found at a set with no place for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Full {
    /// Whose places: the host's (all taken, or paused) or the tenant's.
    pub reason: WaitReason,
    /// The host asked for a pause until then.
    pub paused_until: Option<Millis>,
}

/// When a URL that found its places taken looks again, its `waits`th time: from 1 s,
/// doubling to [`MAX_BUSY_WAIT`], spread by `jitter` (0 to 1) so that a crowd of waiters does
/// not come back at one moment; a pause is waited out exactly.
pub fn busy_until(full: Full, waits: u32, jitter: f64, now: Millis) -> Millis {
    if let Some(until) = full.paused_until.filter(|until| *until > now) {
        return until;
    }
    let base = Duration::from_secs(1u64 << waits.min(5)).min(MAX_BUSY_WAIT);
    let spread = base.mul_f64(0.5 + jitter.clamp(0.0, 1.0) * 0.5);
    now + i64::try_from(spread.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str) -> Place {
        Place::Host(name.to_owned())
    }

    #[test]
    fn a_batch_looks_for_each_tenants_places_in_one_shard() {
        let (acme, other) = (Tenant("acme".into()), Tenant("other".into()));
        let ask = |tenant: &Tenant, seq: u32| {
            vec![Lease::tenant(tenant, 100, "job", seq, 0, 9), Lease::new(Place::Host("h".into()), "job", seq, 9, 4)]
        };
        let mut asks = vec![ask(&acme, 0), ask(&acme, 40), ask(&other, 8), ask(&acme, 80)];
        assert_ne!(asks[0][0].place, asks[1][0].place, "neighbourhoods apart: shards apart");
        let hosts: Vec<Lease> = asks.iter().map(|a| a[1].clone()).collect();
        one_shard_per_tenant(&mut asks);
        assert!(asks.iter().filter(|a| a[0].place == asks[0][0].place).count() == 3, "{asks:?}");
        assert!(matches!(&asks[2][0].place, Place::Tenant { tenant, .. } if tenant == "other"));
        assert!(asks.iter().all(|a| a[0].limit == asks[0][0].limit || a[0].place != asks[0][0].place));
        assert_eq!(asks.iter().map(|a| a[1].clone()).collect::<Vec<_>>(), hosts, "hosts untouched");
        assert_eq!(asks[1][0].holder, "job#40@9", "each URL keeps its own name");
    }

    #[test]
    fn a_holder_names_its_lease_end_and_ended_ones_are_taken_back() {
        let lease = Lease::new(host("a.com"), "j1", 7, 5_000, 4);
        assert_eq!(lease.holder, "j1#7@5000");
        assert_eq!(lease_end(&lease.holder), Some(5_000));
        let holders = vec![lease.holder.clone(), "j2#1@9000".to_owned(), "odd".to_owned()];
        assert_eq!(ended(&holders, 4_999), Vec::<String>::new());
        assert_eq!(ended(&holders, 5_000), ["j1#7@5000"], "a lease ends at its end; unknown names stay");
        assert_eq!(Lease::new(host("a.com"), "j", 1, 0, 0).limit, 1, "a limit below one is one");
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
    fn a_tenants_places_are_shards_that_add_up_to_its_limit() {
        let acme = Tenant("acme".into());
        let shards_of = |max: u32| {
            let mut limits = std::collections::BTreeMap::new();
            for seq in 0..NEIGHBOURS * 700 {
                let lease = Lease::tenant(&acme, max, "j", seq, 0, 0);
                let Place::Tenant { tenant, shard } = lease.place else { panic!("a tenant's place") };
                assert_eq!(tenant, "acme");
                assert!(lease.limit <= SHARD_PLACES, "{max}: a shard of {} places", lease.limit);
                limits.insert(shard, lease.limit);
            }
            limits
        };
        assert_eq!(shards_of(2).into_iter().collect::<Vec<_>>(), [(0, 2)], "small limits are one set");
        assert_eq!(shards_of(16).len(), 1);
        let hundred = shards_of(100);
        assert_eq!(hundred.len(), 7);
        assert_eq!(hundred.values().sum::<u32>(), 100, "{hundred:?}");
        assert_eq!(shards_of(10_000).values().sum::<u32>(), 10_000);
        let first = Lease::tenant(&acme, 100, "j", 3, 0, 0).place;
        assert_ne!(Lease::tenant(&acme, 100, "j", 3, 1, 0).place, first, "another shard after a wait");
        assert_eq!(Lease::tenant(&acme, 100, "j", 1, 0, 0).place, first, "neighbours share one");
        let window = (0..20).map(|seq| Lease::tenant(&acme, 100, "j", seq, 0, 0).place);
        assert_eq!(window.collect::<std::collections::HashSet<_>>().len(), 5, "a window of 20 over five shards");
        let starts = (0..20).map(|n| Lease::tenant(&acme, 100, &format!("job-{n}"), 0, 0, 0).place);
        assert!(starts.collect::<std::collections::HashSet<_>>().len() > 3, "jobs start at different shards");
    }

    #[test]
    fn urls_beyond_a_sets_limit_in_one_batch_wait_without_asking() {
        let tenant = Place::Tenant { tenant: "t".into(), shard: 0 };
        let ask = |seq: u32, host_name: &str| {
            vec![Lease::new(tenant.clone(), "j", seq, 9, 3), Lease::new(host(host_name), "j", seq, 9, 1)]
        };
        let asks = [ask(0, "a"), ask(1, "a"), ask(2, "b"), ask(3, "c"), ask(4, "d")];
        let found = beyond_limits(asks.iter().map(Vec::as_slice));
        let busy = Some(Full { reason: WaitReason::HostBusy, paused_until: None });
        let capped = Some(Full { reason: WaitReason::TenantCap, paused_until: None });
        assert_eq!(found, [None, busy, None, None, capped], "host a has one place; the tenant three");
    }

    #[test]
    fn a_place_full_says_why_the_url_waits() {
        assert_eq!(host("a").wait_reason(false), WaitReason::HostBusy);
        assert_eq!(host("a").wait_reason(true), WaitReason::HostPaused);
        let tenant = Place::Tenant { tenant: "t".into(), shard: 0 };
        assert_eq!(tenant.wait_reason(false), WaitReason::TenantCap);
    }

    #[test]
    fn a_full_place_is_looked_at_again_sooner_than_a_paused_one_is_left_alone() {
        let busy = Full { reason: WaitReason::HostBusy, paused_until: None };
        assert_eq!(busy_until(busy, 0, 1.0, 0), 1_000);
        assert_eq!(busy_until(busy, 0, 0.0, 0), 500, "spread down to half");
        assert_eq!(busy_until(busy, 3, 1.0, 0), 8_000);
        assert_eq!(busy_until(busy, 40, 1.0, 0), 10_000, "at most MAX_BUSY_WAIT");
        let paused = Full { reason: WaitReason::HostPaused, paused_until: Some(5_000) };
        assert_eq!(busy_until(paused, 0, 0.3, 1_000), 5_000, "a pause exactly");
        assert_eq!(busy_until(paused, 0, 1.0, 6_000), 7_000, "a pause already over is a busy host");
    }
}

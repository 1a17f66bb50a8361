//! URLs that wait rather than fail (no attempt used, no receive used), counted by why and by
//! when they come back, so that `GET /queue/status` can say how many wait for what.
//!
//! A URL sent back to wait until `t` is added to the bucket that ends at or after `t`; the
//! number waiting at `now` is the sum of the buckets that end after `now`. Nothing is taken
//! out: a URL that comes back is either analysed or waits again, at least a second later, so
//! in a later bucket (a bucket is one second wide). The count is of URLs waiting now or back
//! within the last second.

use crate::time::Millis;

use super::named_enum;

named_enum!(
    /// Why a URL waits: the engine's shared quota has no slot soon enough (`quota`), its
    /// tenant has `max_in_flight` URLs being analysed already (`tenant_cap`), its host has
    /// `host_concurrency` (`host_busy`), or its host asked for a pause with `Retry-After`
    /// (`host_paused`).
    WaitReason {
        Quota => "quota",
        TenantCap => "tenant_cap",
        HostBusy => "host_busy",
        HostPaused => "host_paused",
    }
);

/// The width of a bucket: no wider than the shortest wait (a second), or a URL that waits
/// again would be counted twice in one bucket.
pub const BUCKET_MS: Millis = 1_000;

/// The end of the bucket a URL waiting until `until` is counted in.
pub fn bucket_end(until: Millis) -> Millis {
    (until + BUCKET_MS - 1).div_euclid(BUCKET_MS) * BUCKET_MS
}

/// URLs sent back to wait in one invocation, for one reason and bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WaitNote {
    pub reason: WaitReason,
    pub bucket_end: Millis,
    pub urls: u32,
}

/// The notes for a set of waits (`reason`, `until`): one per reason and bucket.
pub fn notes(waits: impl IntoIterator<Item = (WaitReason, Millis)>) -> Vec<WaitNote> {
    let mut counted: std::collections::BTreeMap<(&'static str, Millis), (WaitReason, u32)> = Default::default();
    for (reason, until) in waits {
        counted.entry((reason.as_str(), bucket_end(until))).or_insert((reason, 0)).1 += 1;
    }
    counted.into_iter().map(|((_, bucket_end), (reason, urls))| WaitNote { reason, bucket_end, urls }).collect()
}

/// How many URLs wait now, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Waiting {
    /// For the engine's quota.
    pub quota: u64,
    /// For a place among their tenant's `max_in_flight`.
    pub tenant_cap: u64,
    /// For a place at their host.
    pub host_busy: u64,
    /// For the end of their host's pause.
    pub host_paused: u64,
}

impl Waiting {
    pub fn add(&mut self, reason: WaitReason, urls: u64) {
        let slot = match reason {
            WaitReason::Quota => &mut self.quota,
            WaitReason::TenantCap => &mut self.tenant_cap,
            WaitReason::HostBusy => &mut self.host_busy,
            WaitReason::HostPaused => &mut self.host_paused,
        };
        *slot += urls;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_is_counted_in_the_bucket_it_ends_in() {
        assert_eq!(bucket_end(10_000), 10_000);
        assert_eq!(bucket_end(10_001), 11_000);
        assert_eq!(bucket_end(10_999), 11_000);
        let notes = notes([
            (WaitReason::HostBusy, 11_500),
            (WaitReason::HostBusy, 11_900),
            (WaitReason::HostPaused, 11_900),
            (WaitReason::HostBusy, 15_000),
        ]);
        assert_eq!(
            notes,
            [
                WaitNote { reason: WaitReason::HostBusy, bucket_end: 12_000, urls: 2 },
                WaitNote { reason: WaitReason::HostBusy, bucket_end: 15_000, urls: 1 },
                WaitNote { reason: WaitReason::HostPaused, bucket_end: 12_000, urls: 1 },
            ]
        );
        // A URL due back at 11 500 returns then or later; its next wait, a second at least,
        // lands in a later bucket.
        for returned in [11_500, 11_999, 12_000] {
            assert!(bucket_end(returned + 1_000) > bucket_end(11_500));
        }
    }
}

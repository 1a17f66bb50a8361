//! The quota contract: the cases every home of the quota passes, the memory one in this
//! crate's tests and the DynamoDB one on the emulator (`quota_contract!` writes one test per
//! case for a fixture). Time is the cases' own (`now` is an argument), so they run a minute of
//! a busy quota in a moment.

// A case fails by panicking with what it expected, as a test does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::time::Duration;

use domain::Priority;
use domain::quota::{Asker, Grant, QuotaGate, QuotaLimits, next_daily_reset};
use domain::time::Millis;

/// Quotas to run the cases on.
pub trait QuotaFixture: Sized {
    type Gate: QuotaGate;

    /// A quota of its own with `limits`, empty.
    fn gate(&self, limits: QuotaLimits) -> Self::Gate;

    fn finish(self) -> impl Future<Output = ()>;
}

/// One test per case for the fixture `$setup` (an expression awaited in each test) builds.
#[macro_export]
macro_rules! quota_contract {
    ($setup:expr) => {
        $crate::quota_contract!(@cases $setup;
            grants_are_spaced_and_far_ones_wait_without_a_slot,
            the_days_requests_run_out_until_the_reset,
            a_tenant_alone_uses_the_whole_quota,
            tenants_waiting_together_share_evenly_whatever_their_backlog,
            tenants_waiting_together_share_by_weight,
            within_a_tenant_urgent_urls_go_first,
        );
    };
    (@cases $setup:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let fixture = $setup.await;
                $crate::quota::contract::$case(&fixture).await;
                $crate::quota::contract::QuotaFixture::finish(fixture).await;
            }
        )+
    };
}

const T0: Millis = 1_800_000_000_000;
/// The analyzer's: a URL waits in the instance for a slot at most this long.
const MAX_WAIT: Duration = Duration::from_secs(5);

fn asker(tenant: &str, weight: u32, priority: Priority) -> Asker<'_> {
    Asker { tenant, weight, priority }
}

pub async fn grants_are_spaced_and_far_ones_wait_without_a_slot<F: QuotaFixture>(fixture: &F) {
    let limits = QuotaLimits { per_window: 10, window: Duration::from_secs(10), per_day: 25, utilisation: 1.0 };
    let quota = fixture.gate(limits);
    let wait = Duration::from_secs(3);
    let a = asker("a", 1, Priority::Urgent);
    let mut grants = Vec::new();
    for _ in 0..6 {
        grants.push(quota.acquire(a, T0, wait).await.unwrap());
    }
    assert_eq!(
        grants,
        [
            Grant::Go { at: T0 },
            Grant::Go { at: T0 + 1_000 },
            Grant::Go { at: T0 + 2_000 },
            Grant::Go { at: T0 + 3_000 },
            Grant::Wait { until: T0 + 1_000, daily: false },
            Grant::Wait { until: T0 + 1_000, daily: false },
        ]
    );
    // Idle for a while: the next request goes at once, no burst owed.
    assert_eq!(quota.acquire(a, T0 + 60_000, wait).await.unwrap(), Grant::Go { at: T0 + 60_000 });
    assert_eq!(quota.acquire(a, T0 + 60_000, wait).await.unwrap(), Grant::Go { at: T0 + 61_000 });
}

pub async fn the_days_requests_run_out_until_the_reset<F: QuotaFixture>(fixture: &F) {
    let limits = QuotaLimits { per_window: 1_000, window: Duration::from_secs(1), per_day: 5, utilisation: 1.0 };
    let quota = fixture.gate(limits);
    let a = asker("a", 1, Priority::Normal);
    let mut now = T0;
    for _ in 0..5 {
        assert!(matches!(quota.acquire(a, now, Duration::ZERO).await.unwrap(), Grant::Go { .. }));
        now += 1_000;
    }
    let reset = next_daily_reset(now);
    assert_eq!(quota.acquire(a, now, Duration::ZERO).await.unwrap(), Grant::Wait { until: reset, daily: true });
    // Another tenant finds the day used up too: the key's day is everyone's.
    let b = asker("b", 1, Priority::Normal);
    assert_eq!(quota.acquire(b, now, Duration::ZERO).await.unwrap(), Grant::Wait { until: reset, daily: true });
    assert_eq!(quota.acquire(a, reset, Duration::ZERO).await.unwrap(), Grant::Go { at: reset });
}

/// Five requests a second.
const BUSY: QuotaLimits =
    QuotaLimits { per_window: 5, window: Duration::from_secs(1), per_day: 1_000_000, utilisation: 1.0 };

/// `streams` URLs of each asker asking on the cases' clock as analyzer instances do (a job's
/// window of URLs in flight): one granted a slot is followed by the next URL of its job when
/// the slot comes; one told to wait comes back on the whole second after (an SQS delay).
/// Returns the places each asker's URLs got with a slot from `counted` until `end`.
async fn simulate<G: QuotaGate>(quota: &G, streams: &[(Asker<'_>, usize)], counted: Millis, end: Millis) -> Vec<u32> {
    let mut queue = BinaryHeap::new();
    for (n, (_, count)) in streams.iter().enumerate() {
        for _ in 0..*count {
            queue.push(Reverse((T0, n)));
        }
    }
    let mut got = vec![0; streams.len()];
    while let Some(Reverse((now, n))) = queue.pop() {
        if now >= end {
            break;
        }
        let next = match quota.acquire(streams[n].0, now, MAX_WAIT).await.unwrap() {
            Grant::Go { at } => {
                got[n] += u32::from((counted..end).contains(&at));
                at.max(now + 1)
            }
            Grant::Wait { until, .. } => (until.max(now + 1) + 999) / 1_000 * 1_000,
        };
        queue.push(Reverse((next, n)));
    }
    got
}

fn slots_between(from: Millis, to: Millis) -> f64 {
    (to - from) as f64 / BUSY.spacing_ms() as f64
}

pub async fn a_tenant_alone_uses_the_whole_quota<F: QuotaFixture>(fixture: &F) {
    let quota = fixture.gate(BUSY);
    let got = simulate(&quota, &[(asker("a", 1, Priority::Normal), 20)], T0 + 10_000, T0 + 40_000).await;
    let capacity = slots_between(T0 + 10_000, T0 + 40_000);
    assert!(f64::from(got[0]) >= 0.95 * capacity, "{got:?} of {capacity}");
}

pub async fn tenants_waiting_together_share_evenly_whatever_their_backlog<F: QuotaFixture>(fixture: &F) {
    let quota = fixture.gate(BUSY);
    // `a` has four times `b`'s URLs waiting, and a head start.
    let streams = [(asker("a", 1, Priority::Normal), 40), (asker("b", 1, Priority::Normal), 10)];
    let got = simulate(&quota, &streams, T0 + 10_000, T0 + 70_000).await;
    let total = f64::from(got[0] + got[1]);
    let share = f64::from(got[1]) / total;
    eprintln!("a (40 URLs waiting) and b (10): {got:?} places, b's share {share:.3}");
    assert!((share - 0.5).abs() <= 0.05, "b's share {share:.3}: {got:?}");
    let capacity = slots_between(T0 + 10_000, T0 + 70_000);
    assert!(total >= 0.9 * capacity, "the two use the quota: {total} of {capacity}");
}

pub async fn tenants_waiting_together_share_by_weight<F: QuotaFixture>(fixture: &F) {
    let quota = fixture.gate(BUSY);
    let streams = [(asker("a", 1, Priority::Normal), 15), (asker("b", 3, Priority::Normal), 15)];
    let got = simulate(&quota, &streams, T0 + 10_000, T0 + 70_000).await;
    let share = f64::from(got[1]) / f64::from(got[0] + got[1]);
    eprintln!("a (weight 1) and b (weight 3): {got:?} places, b's share {share:.3}");
    assert!((share - 0.75).abs() <= 0.05, "b (weight 3) has {share:.3}: {got:?}");
}

pub async fn within_a_tenant_urgent_urls_go_first<F: QuotaFixture>(fixture: &F) {
    let quota = fixture.gate(BUSY);
    // Enough urgent URLs to take every place: the low ones wait behind them.
    let streams = [(asker("a", 1, Priority::Low), 30), (asker("a", 1, Priority::Urgent), 30)];
    let got = simulate(&quota, &streams, T0 + 10_000, T0 + 40_000).await;
    eprintln!("low and urgent URLs of one tenant: {got:?} places");
    assert!(got[1] >= 9 * got[0], "urgent before low while both wait: {got:?}");
}

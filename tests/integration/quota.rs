//! The fleet-wide quota on a real table: concurrent instances get distinct, evenly spaced
//! slots, those out of reach wait without taking one, and the day's count holds.

use std::time::Duration;

use domain::quota::{Grant, QuotaGate, QuotaLimits, next_daily_reset};
use store::DynamoQuota;
use testkit::emulator::TestEnv;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_concurrent_instances_get_evenly_spaced_slots_and_the_rest_wait() {
    let env = TestEnv::new().await;
    let limits = QuotaLimits { per_window: 10, window: Duration::from_secs(1), per_day: 1_000, utilisation: 1.0 };
    let quota = DynamoQuota::new(env.dynamo.clone(), &env.table, "psi", limits);
    let now = 1_800_000_000_000;
    let grants = futures::future::join_all((0..40).map(|_| quota.acquire(now, Duration::from_secs(2)))).await;
    let mut slots: Vec<i64> = Vec::new();
    let mut waits = 0;
    for grant in grants {
        match grant.expect("the quota answers") {
            Grant::Go { at } => slots.push(at),
            Grant::Wait { daily: false, until } => {
                assert!(until > now, "{until}");
                waits += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    slots.sort_unstable();
    let expected: Vec<i64> = (0..=20).map(|n| now + n * 100).collect();
    assert_eq!(slots, expected, "one slot per 100 ms up to the 2 s a request may wait");
    assert_eq!(waits, 40 - 21);
    env.cleanup().await;
}

#[tokio::test]
async fn the_days_requests_run_out_until_the_reset() {
    let env = TestEnv::new().await;
    let limits = QuotaLimits { per_window: 1_000, window: Duration::from_secs(1), per_day: 5, utilisation: 1.0 };
    let quota = DynamoQuota::new(env.dynamo.clone(), &env.table, "psi", limits);
    let now = 1_800_000_000_000;
    for n in 0..5 {
        assert!(matches!(quota.acquire(now + n * 10, Duration::ZERO).await.unwrap(), Grant::Go { .. }));
    }
    let reset = next_daily_reset(now);
    assert_eq!(quota.acquire(now + 60, Duration::ZERO).await.unwrap(), Grant::Wait { until: reset, daily: true });
    assert_eq!(quota.acquire(reset + 1, Duration::ZERO).await.unwrap(), Grant::Go { at: reset + 1 });
    env.cleanup().await;
}

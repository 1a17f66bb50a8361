//! The quota contract (`store::quota::contract`) on the DynamoDB quota, each case on a table
//! of its own; and concurrent instances racing for one item.

use std::time::Duration;

use domain::Priority;
use domain::quota::{Asker, Grant, QuotaGate, QuotaLimits};
use store::DynamoQuota;
use store::quota::contract::QuotaFixture;
use testkit::emulator::TestTable;

pub struct Dynamo(TestTable);

impl QuotaFixture for Dynamo {
    type Gate = DynamoQuota;

    fn gate(&self, limits: QuotaLimits) -> DynamoQuota {
        DynamoQuota::new(self.0.dynamo.clone(), &self.0.name, "psi", limits)
    }

    async fn finish(self) {
        self.0.delete().await;
    }
}

store::quota_contract!(async { Dynamo(TestTable::new().await) });

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_concurrent_instances_get_evenly_spaced_slots_and_the_rest_wait() {
    let fixture = Dynamo(TestTable::new().await);
    let limits = QuotaLimits { per_window: 10, window: Duration::from_secs(1), per_day: 1_000, utilisation: 1.0 };
    let now = 1_800_000_000_000;
    // Forty instances, each with its own view of the item, two tenants.
    let instances: Vec<DynamoQuota> = (0..40).map(|_| fixture.gate(limits)).collect();
    let tenants = ["a", "b"];
    let grants = futures::future::join_all(instances.iter().enumerate().map(|(n, quota)| {
        let asker = Asker { tenant: tenants[n % 2], weight: 1, priority: Priority::Urgent };
        quota.acquire(asker, now, Duration::from_secs(2))
    }))
    .await;
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
    slots.dedup();
    assert_eq!(slots.len() + waits, 40, "no slot given twice");
    assert!(slots.iter().all(|&at| (now..=now + 2_000).contains(&at)), "{slots:?}");
    assert!(slots.windows(2).all(|w| (w[1] - w[0]) % 100 == 0), "on the 100 ms grid: {slots:?}");
    // Each tenant steps 200 ms while the other's share runs: ~10 each within the 2 s.
    assert!((18..=21).contains(&slots.len()), "{} slots: {slots:?}", slots.len());
    fixture.finish().await;
}

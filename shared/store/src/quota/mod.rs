//! The shared request quota's two homes: one DynamoDB item every analyzer instance shares,
//! and memory for the handler tests. Both apply `domain::quota::decide`.

mod dynamo;
mod memory;

pub use dynamo::DynamoQuota;
pub use memory::MemoryQuota;

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use domain::quota::{Grant, QuotaGate, QuotaLimits, next_daily_reset};

    use super::MemoryQuota;

    const LIMITS: QuotaLimits =
        QuotaLimits { per_window: 10, window: Duration::from_secs(10), per_day: 25, utilisation: 1.0 };

    #[tokio::test]
    async fn grants_are_spaced_and_far_ones_wait_without_a_slot() {
        let quota = MemoryQuota::new(LIMITS);
        let now = 1_800_000_000_000;
        let wait = Duration::from_secs(3);
        let grants: Vec<Grant> = futures::future::join_all((0..6).map(|_| quota.acquire(now, wait)))
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            grants,
            [
                Grant::Go { at: now },
                Grant::Go { at: now + 1_000 },
                Grant::Go { at: now + 2_000 },
                Grant::Go { at: now + 3_000 },
                Grant::Wait { until: now + 1_000, daily: false },
                Grant::Wait { until: now + 1_000, daily: false },
            ]
        );
        // Idle for a while: the next request goes at once, no burst owed.
        assert_eq!(quota.acquire(now + 60_000, wait).await.unwrap(), Grant::Go { at: now + 60_000 });
        assert_eq!(quota.acquire(now + 60_000, wait).await.unwrap(), Grant::Go { at: now + 61_000 });
    }

    #[tokio::test]
    async fn the_day_runs_out_and_resets_at_midnight_pacific() {
        let quota = MemoryQuota::new(LIMITS);
        let mut now = 1_800_000_000_000;
        for _ in 0..25 {
            assert!(matches!(quota.acquire(now, Duration::ZERO).await.unwrap(), Grant::Go { .. }));
            now += 1_000;
        }
        let reset = next_daily_reset(now);
        assert_eq!(quota.acquire(now, Duration::ZERO).await.unwrap(), Grant::Wait { until: reset, daily: true });
        assert_eq!(quota.acquire(reset, Duration::ZERO).await.unwrap(), Grant::Go { at: reset });
    }
}

//! Backoff for retrying AWS calls that partly failed (unprocessed items, failed entries).

use std::time::Duration;

/// Exponential backoff with full jitter: a random wait up to 50 ms × 2^round, capped at 2 s,
/// so instances retrying together do not retry in lockstep.
pub fn backoff(round: u32) -> Duration {
    let cap_ms = (50u64 << round.min(10)).min(2_000);
    let jitter = (uuid::Uuid::new_v4().as_u128() % u128::from(cap_ms + 1)) as u64;
    Duration::from_millis(jitter.max(10))
}

/// How long a URL waits before its next analysis attempt after a retryable failure:
/// 5 s × 2^(attempt − 1), capped at 5 minutes, with jitter of up to half the wait so a burst
/// of failures from one target does not come back as a burst.
pub fn url_retry_delay(attempt: u32) -> Duration {
    let base = (5u64 << attempt.saturating_sub(1).min(10)).min(300);
    let jitter_ms = (uuid::Uuid::new_v4().as_u128() % u128::from(base * 500 + 1)) as u64;
    Duration::from_millis(base * 1000 - jitter_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_retries_back_off_exponentially() {
        for (attempt, base) in [(1u32, 5u64), (2, 10), (3, 20), (6, 160), (7, 300), (30, 300)] {
            let wait = url_retry_delay(attempt).as_millis() as u64;
            assert!((base * 500..=base * 1000).contains(&wait), "attempt {attempt}: {wait} ms");
        }
    }

    #[test]
    fn grows_then_caps() {
        for round in 0..20 {
            let cap = (50u64 << round.min(10)).min(2_000);
            for _ in 0..50 {
                let wait = backoff(round).as_millis() as u64;
                assert!((10..=cap.max(10)).contains(&wait), "round {round}: {wait} ms");
            }
        }
    }
}

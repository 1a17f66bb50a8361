//! The quota in memory, with the DynamoDB one's decisions: for unit tests of the handlers.

use std::sync::Mutex;
use std::time::Duration;

use domain::Error;
use domain::quota::{Asker, Decision, Grant, QuotaGate, QuotaLimits, State, decide};
use domain::time::Millis;

pub struct MemoryQuota {
    limits: QuotaLimits,
    state: Mutex<State>,
}

impl MemoryQuota {
    pub fn new(limits: QuotaLimits) -> Self {
        MemoryQuota { limits, state: Mutex::new(State::default()) }
    }
}

impl QuotaGate for MemoryQuota {
    async fn acquire(&self, asker: Asker<'_>, now: Millis, max_wait: Duration) -> Result<Grant, Error> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        Ok(match decide(&state, &self.limits, &asker, now, max_wait) {
            Decision::Wait(grant) => grant,
            Decision::Take(take) => {
                state.apply(&take);
                Grant::Go { at: take.at }
            }
        })
    }
}

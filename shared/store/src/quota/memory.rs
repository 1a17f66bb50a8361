//! The quota in memory, with the DynamoDB one's decisions: for unit tests of the handlers.

use std::sync::Mutex;
use std::time::Duration;

use domain::Error;
use domain::quota::{Decision, Grant, QuotaGate, QuotaLimits, State, decide};
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
    async fn acquire(&self, now: Millis, max_wait: Duration) -> Result<Grant, Error> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match decide(&state, &self.limits, now, max_wait) {
            Decision::Wait(grant) => Ok(grant),
            Decision::Queue => {
                let at = state.tat;
                state.tat += self.limits.spacing_ms();
                state.used += 1;
                Ok(Grant::Go { at })
            }
            Decision::Restart(next) => {
                let at = next.tat - self.limits.spacing_ms();
                *state = next;
                Ok(Grant::Go { at })
            }
        }
    }
}

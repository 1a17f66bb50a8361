//! A request quota shared by every analyzer instance: the PageSpeed Insights key's. Grants
//! are spaced evenly across the window (the generic cell rate algorithm: a "theoretical
//! arrival time" that each grant moves one spacing on) and counted per quota day, all in one
//! DynamoDB item, with one conditional UpdateItem per grant under load.
//!
//! Even spacing, rather than counting per fixed window, is what keeps every window of the
//! provider's own (whatever its alignment) under the limit: no burst at a window's edge.
//!
//! When several tenants wait for places, each gets its share of them by its weight, and a
//! tenant alone may use them all ([`fair`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use crate::error::Error;
use crate::settings::Priority;
use crate::time::Millis;

/// The limits of one quota.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QuotaLimits {
    /// Requests allowed per `window`.
    pub per_window: u32,
    pub window: Duration,
    /// Requests allowed per quota day.
    pub per_day: u32,
    /// The share of `per_window` to use: a little below 1 leaves room for clock skew
    /// between instances and for the provider's own rounding.
    pub utilisation: f64,
}

impl QuotaLimits {
    /// PageSpeed Insights' defaults: 400 requests per 100 s, 25 000 per day.
    pub const PSI_DEFAULT: QuotaLimits =
        QuotaLimits { per_window: 400, window: Duration::from_secs(100), per_day: 25_000, utilisation: 0.98 };

    /// Milliseconds between two grants.
    pub fn spacing_ms(&self) -> i64 {
        let per_window = f64::from(self.per_window.max(1)) * self.utilisation.clamp(0.01, 1.0);
        (self.window.as_secs_f64() * 1000.0 / per_window).ceil() as i64
    }
}

/// What asking for a request found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grant {
    /// Send the request at `at` (now, or within the caller's `max_wait`).
    Go { at: Millis },
    /// The quota is taken until `until`: the URL waits, it does not fail. `daily` when the
    /// day's requests are used up (the wait then lasts until the quota day's reset).
    Wait { until: Millis, daily: bool },
}

/// Who asks for a request: the quota is shared between tenants by weight, and within a
/// tenant the more urgent URLs go first ([`fair`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Asker<'a> {
    pub tenant: &'a str,
    /// The tenant's `quota_weight` (1 to 100): its share against the others' while they wait.
    pub weight: u32,
    pub priority: Priority,
}

pub trait QuotaGate: Send + Sync {
    /// Takes one request's place for `asker`, no later than `max_wait` from `now`.
    fn acquire(
        &self,
        asker: Asker<'_>,
        now: Millis,
        max_wait: Duration,
    ) -> impl Future<Output = Result<Grant, Error>> + Send;
}

/// When a quota day ends. PageSpeed Insights' (Google Cloud's) daily quotas reset at midnight
/// Pacific time.
pub fn next_daily_reset(now: Millis) -> Millis {
    pacific::next_midnight(now / 1000) * 1000
}

/// The quota state every implementation keeps: the theoretical arrival time and the day's
/// count, and the shares of the tenants taking places.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    /// When the next grant's slot starts.
    pub tat: Millis,
    /// The end of the quota day `used` counts (its reset time).
    pub day: Millis,
    pub used: u32,
    /// By tenant; only tenants whose share has not ended matter.
    pub shares: BTreeMap<String, Share>,
}

/// What a request finds in `state`.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    Take(Take),
    Wait(Grant),
}

/// A place taken, and what the state must still hold for the taking to be right: the
/// DynamoDB home turns each move into one conditional update of the quota's item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Take {
    /// When the request may go.
    pub at: Millis,
    pub slot: SlotMove,
    pub tenant: String,
    pub share: ShareMove,
    /// The tenant's weight, kept with its share for the other tenants' steps.
    pub weight: u32,
    /// Shares that ended: taken out so the state holds only tenants taking places.
    pub forget: Vec<String>,
}

/// How the shared slot moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotMove {
    /// The common case under load, one increment: the slot is `tat`, which moves `spacing`
    /// on and `used` one up; right while `tat` is in `now..=latest`, the day is still `day`
    /// and has room.
    Advance { now: Millis, latest: Millis, day: Millis, spacing: i64 },
    /// The quota was idle or the day turned: the new values, written outright while the
    /// old ones are still there.
    Restart { tat: Millis, day: Millis, used: u32 },
}

pub fn decide(state: &State, limits: &QuotaLimits, asker: &Asker<'_>, now: Millis, max_wait: Duration) -> Decision {
    let day = next_daily_reset(now);
    let used_today = if state.day == day { state.used } else { 0 };
    if used_today >= limits.per_day {
        return Decision::Wait(Grant::Wait { until: day, daily: true });
    }
    let max_wait_ms = i64::try_from(max_wait.as_millis()).unwrap_or(i64::MAX);
    let latest = now.saturating_add(max_wait_ms);
    let spacing = limits.spacing_ms();
    let slot = state.tat.max(now);
    let share = fair::share_move(state, asker, spacing, now, max_wait_ms);
    // Come back when the slot ahead, and the tenant's own turn, are within reach.
    let slot_free_at = if slot > latest { Some(slot - max_wait_ms) } else { None };
    let share = match (share, slot_free_at) {
        (Ok(share), None) => share,
        (Ok(_), Some(until)) | (Err(until), None) => return Decision::Wait(Grant::Wait { until, daily: false }),
        (Err(turn), Some(slot)) => return Decision::Wait(Grant::Wait { until: turn.max(slot), daily: false }),
    };
    let slot_move = if state.day == day && state.tat >= now {
        SlotMove::Advance { now, latest, day, spacing }
    } else {
        SlotMove::Restart { tat: slot + spacing, day, used: used_today + 1 }
    };
    Decision::Take(Take {
        at: slot,
        slot: slot_move,
        tenant: asker.tenant.to_owned(),
        share,
        weight: fair::weight(asker),
        forget: fair::ended(state, asker.tenant, now),
    })
}

impl State {
    /// The state after `take`: what the memory home does under its lock, and what the
    /// DynamoDB update does to the item.
    pub fn apply(&mut self, take: &Take) {
        match take.slot {
            SlotMove::Advance { spacing, .. } => {
                self.tat += spacing;
                self.used += 1;
            }
            SlotMove::Restart { tat, day, used } => (self.tat, self.day, self.used) = (tat, day, used),
        }
        let due = match take.share {
            ShareMove::Advance { step, .. } => self.shares.get(&take.tenant).map_or(0, |s| s.due) + step,
            ShareMove::Start { due, .. } => due,
        };
        self.shares.insert(take.tenant.clone(), Share { due, weight: take.weight });
        for gone in &take.forget {
            self.shares.remove(gone);
        }
    }
}

pub mod fair;
mod pacific;

pub use fair::{Share, ShareMove};

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: QuotaLimits =
        QuotaLimits { per_window: 10, window: Duration::from_secs(10), per_day: 25, utilisation: 1.0 };

    #[test]
    fn spacing_spreads_the_window_evenly_with_headroom() {
        assert_eq!(LIMITS.spacing_ms(), 1_000);
        assert_eq!(QuotaLimits::PSI_DEFAULT.spacing_ms(), 256, "400 per 100 s at 98 %");
    }
}

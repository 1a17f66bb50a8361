//! Fair shares of a quota between tenants, weighted, with the more urgent URLs first within a
//! tenant.
//!
//! Each tenant taking places has its own arrival time, `due`, beside the quota's: every place
//! it takes moves its `due` on by its **step**, the quota's spacing × the weights of all
//! tenants with a running share (its own included) ÷ its own weight. A share runs while its
//! `due` is ahead of now. A tenant gets a place only while its `due` is within its reach of
//! now, so while several tenants wait each is held to its weight's part of the rate, and
//! what one leaves unused falls to the others: a tenant that stops asking sees its share end
//! once its booked turn has passed, and the rest step shorter. A tenant alone steps one
//! spacing: the whole quota. A tenant that starts asking may book up to its reach at once,
//! as the tenants already waiting did before it came: no tenant gets further ahead of its
//! share than that.
//!
//! Priority works inside a tenant's share: a more urgent URL reaches further ahead, so when
//! the tenant's places are booked its `urgent` and `high` URLs take the next ones and its
//! `normal` and `low` URLs wait.

use crate::settings::Priority;
use crate::time::Millis;

use super::{Asker, State};

/// The weights a tenant may have.
pub const WEIGHT: std::ops::RangeInclusive<u32> = 1..=100;

/// At most this many ended shares are taken out per place taken: the item stays small and
/// one write stays one write.
const FORGET_PER_TAKE: usize = 2;

/// One tenant's share.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Share {
    /// When the tenant's next place is due: its own arrival time.
    pub due: Millis,
    pub weight: u32,
}

/// How the asking tenant's share moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShareMove {
    /// The share runs: `due` moves `step` on; right while `due` is in `now..=reach_end`.
    Advance { step: i64, now: Millis, reach_end: Millis },
    /// The tenant had no running share: it starts at `due`; right while it still has none
    /// (no share, or one that ended before `now`).
    Start { due: Millis, now: Millis },
}

pub(super) fn weight(asker: &Asker<'_>) -> u32 {
    asker.weight.clamp(*WEIGHT.start(), *WEIGHT.end())
}

/// How far ahead of now a URL of `priority` may book its tenant's places, of the `max_wait`
/// a request may wait for its slot.
pub fn reach(priority: Priority, max_wait_ms: i64) -> i64 {
    let tenths = match priority {
        Priority::Urgent => 10,
        Priority::High => 8,
        Priority::Normal => 6,
        Priority::Low => 4,
    };
    max_wait_ms / 10 * tenths
}

/// The asking tenant's step: the spacing stretched by the running shares' weights over its own.
fn step(state: &State, asker: &Asker<'_>, spacing: i64, now: Millis) -> i64 {
    let own = weight(asker);
    let others: u64 = state
        .shares
        .iter()
        .filter(|(tenant, share)| tenant.as_str() != asker.tenant && share.due > now)
        .map(|(_, share)| u64::from(share.weight.max(1)))
        .sum();
    let total = u64::from(own) + others;
    let step = (u128::from(spacing.max(1).unsigned_abs()) * u128::from(total)).div_ceil(u128::from(own));
    i64::try_from(step).unwrap_or(i64::MAX)
}

/// The move of the asking tenant's share, or when its turn is within reach again.
pub(super) fn share_move(
    state: &State,
    asker: &Asker<'_>,
    spacing: i64,
    now: Millis,
    max_wait_ms: i64,
) -> Result<ShareMove, Millis> {
    let step = step(state, asker, spacing, now);
    let reach = reach(asker.priority, max_wait_ms);
    match state.shares.get(asker.tenant) {
        Some(share) if share.due >= now => {
            let reach_end = now.saturating_add(reach);
            if share.due > reach_end {
                return Err(share.due - reach);
            }
            Ok(ShareMove::Advance { step, now, reach_end })
        }
        _ => Ok(ShareMove::Start { due: now.saturating_add(step), now }),
    }
}

/// Other tenants' shares that ended, a few at a time.
pub(super) fn ended(state: &State, asking: &str, now: Millis) -> Vec<String> {
    state
        .shares
        .iter()
        .filter(|(tenant, share)| tenant.as_str() != asking && share.due < now)
        .map(|(tenant, _)| tenant.clone())
        .take(FORGET_PER_TAKE)
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::{Decision, Grant, QuotaLimits, decide};
    use super::*;

    /// One request per 100 ms.
    const LIMITS: QuotaLimits =
        QuotaLimits { per_window: 10, window: Duration::from_secs(1), per_day: 1_000_000, utilisation: 1.0 };
    const MAX_WAIT: Duration = Duration::from_secs(10);
    const T0: Millis = 1_800_000_000_000;

    fn asker(tenant: &str, weight: u32, priority: Priority) -> Asker<'_> {
        Asker { tenant, weight, priority }
    }

    /// Asks for a place as `asker` at `now`: the slot, or when to come back.
    fn ask(state: &mut State, asker: &Asker<'_>, now: Millis) -> Result<Millis, Millis> {
        match decide(state, &LIMITS, asker, now, MAX_WAIT) {
            Decision::Take(take) => {
                state.apply(&take);
                Ok(take.at)
            }
            Decision::Wait(Grant::Wait { until, .. }) => Err(until),
            Decision::Wait(other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_tenant_alone_steps_one_spacing_and_books_up_to_its_reach() {
        let mut state = State::default();
        let a = asker("a", 1, Priority::Normal);
        let slots: Vec<_> = (0..70).map_while(|_| ask(&mut state, &a, T0).ok()).collect();
        // Normal reaches 6 of the 10 s: 61 places booked, 100 ms apart.
        assert_eq!(slots.len(), 61);
        assert!(slots.windows(2).all(|w| w[1] - w[0] == 100), "{slots:?}");
        assert_eq!(ask(&mut state, &a, T0), Err(T0 + 100), "the next one is due when its turn is 6 s ahead");
        // The same tenant's urgent URL reaches the whole 10 s: it goes before the normal ones.
        assert_eq!(ask(&mut state, &asker("a", 1, Priority::Urgent), T0), Ok(T0 + 6_100));
    }

    #[test]
    fn two_tenants_waiting_alternate_and_the_newcomer_is_not_shut_out() {
        let mut state = State::default();
        let (a, b) = (asker("a", 1, Priority::Normal), asker("b", 1, Priority::Normal));
        for _ in 0..61 {
            ask(&mut state, &a, T0).unwrap();
        }
        // b arrives while a has booked 6 s: b starts its own share and gets the next slot.
        assert_eq!(ask(&mut state, &b, T0), Ok(T0 + 6_100));
        // From now on a steps 200 ms (two running shares): a waits for its turn.
        assert!(ask(&mut state, &a, T0).is_err());
        let due_a = state.shares["a"].due;
        let due_b = state.shares["b"].due;
        assert_eq!((due_a, due_b), (T0 + 6_100, T0 + 200));
    }

    #[test]
    fn shares_while_several_tenants_wait_follow_their_weights() {
        for (weights, expected) in [([1, 1], [0.5, 0.5]), ([3, 1], [0.75, 0.25])] {
            let tenants = [asker("a", weights[0], Priority::Normal), asker("b", weights[1], Priority::Normal)];
            let mut state = State::default();
            let mut got = [0u32; 2];
            // Both ask every 50 ms for a minute; count places from 10 s on.
            let mut now = T0;
            while now < T0 + 60_000 {
                for (n, tenant) in tenants.iter().enumerate() {
                    let granted = ask(&mut state, tenant, now);
                    got[n] += u32::from(granted.is_ok_and(|at| at >= T0 + 10_000));
                }
                now += 50;
            }
            let total = f64::from(got[0] + got[1]);
            for n in 0..2 {
                let share = f64::from(got[n]) / total;
                assert!((share - expected[n]).abs() < 0.02, "weights {weights:?}: {got:?}");
            }
        }
    }

    #[test]
    fn a_tenant_that_stops_asking_leaves_the_whole_quota_to_the_other() {
        let mut state = State::default();
        let (a, b) = (asker("a", 1, Priority::Normal), asker("b", 1, Priority::Normal));
        ask(&mut state, &a, T0).unwrap();
        ask(&mut state, &b, T0).unwrap();
        // b is gone; once its share ends a steps one spacing again, and b's share is forgotten.
        let later = T0 + 1_000;
        let before = state.shares["a"].due.max(later);
        ask(&mut state, &a, later).unwrap();
        assert_eq!(state.shares["a"].due - before, 100);
        assert!(!state.shares.contains_key("b"), "{:?}", state.shares);
    }

    #[test]
    fn reach_orders_priorities_within_the_wait() {
        let reaches: Vec<_> =
            [Priority::Urgent, Priority::High, Priority::Normal, Priority::Low].map(|p| reach(p, 10_000)).into();
        assert_eq!(reaches, [10_000, 8_000, 6_000, 4_000]);
    }
}

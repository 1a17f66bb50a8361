//! A request quota shared by every analyzer instance: the PageSpeed Insights key's. Grants
//! are spaced evenly across the window (the generic cell rate algorithm: a "theoretical
//! arrival time" that each grant moves one spacing on) and counted per quota day, all in one
//! DynamoDB item, with one conditional UpdateItem per grant under load.
//!
//! Even spacing, rather than counting per fixed window, is what keeps every window of the
//! provider's own (whatever its alignment) under the limit: no burst at a window's edge.

use std::future::Future;
use std::time::Duration;

use crate::error::Error;
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

pub trait QuotaGate: Send + Sync {
    /// Takes one request's place, no later than `max_wait` from `now`.
    fn acquire(&self, now: Millis, max_wait: Duration) -> impl Future<Output = Result<Grant, Error>> + Send;
}

/// When a quota day ends. PageSpeed Insights' (Google Cloud's) daily quotas reset at midnight
/// Pacific time.
pub fn next_daily_reset(now: Millis) -> Millis {
    pacific::next_midnight(now / 1000) * 1000
}

/// The quota state every implementation keeps: the theoretical arrival time and the day's
/// count, with the decision of what a request gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct State {
    /// When the next grant's slot starts.
    pub tat: Millis,
    /// The end of the quota day `used` counts (its reset time).
    pub day: Millis,
    pub used: u32,
}

/// What a request finds in `state`.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Take the slot at `state.tat` and move it on: the common case under load, one
    /// conditional increment.
    Queue,
    /// The quota was idle or the day turned: write the new state outright (the slot is
    /// `max(tat, now)`).
    Restart(State),
    Wait(Grant),
}

pub fn decide(state: &State, limits: &QuotaLimits, now: Millis, max_wait: Duration) -> Decision {
    let day = next_daily_reset(now);
    let used_today = if state.day == day { state.used } else { 0 };
    if used_today >= limits.per_day {
        return Decision::Wait(Grant::Wait { until: day, daily: true });
    }
    let latest = now.saturating_add(i64::try_from(max_wait.as_millis()).unwrap_or(i64::MAX));
    let slot = state.tat.max(now);
    if slot > latest {
        // Come back when the slot ahead would be within reach.
        return Decision::Wait(Grant::Wait { until: slot - (latest - now), daily: false });
    }
    if state.day == day && state.tat >= now {
        return Decision::Queue;
    }
    Decision::Restart(State { tat: slot + limits.spacing_ms(), day, used: used_today + 1 })
}

mod pacific {
    //! Midnight in America/Los_Angeles without a time zone database: US daylight saving time
    //! runs from the second Sunday of March, 02:00 local, to the first Sunday of November,
    //! 02:00 local (the rules since 2007).

    const DAY: i64 = 86_400;

    /// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
    fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
        let y = if month <= 2 { year - 1 } else { year };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (month + 9) % 12;
        let doy = (153 * mp + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    fn year_of(days: i64) -> i64 {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        yoe + era * 400 + i64::from(month <= 2)
    }

    /// The `n`th Sunday (1-based) of a month, as days since the epoch.
    fn nth_sunday(year: i64, month: i64, n: i64) -> i64 {
        let first = days_from_civil(year, month, 1);
        // 1970-01-01 was a Thursday: weekday 0 = Sunday.
        let weekday = (first + 4).rem_euclid(7);
        first + (7 - weekday) % 7 + (n - 1) * 7
    }

    /// Whether daylight saving time is in force at `unix` seconds.
    fn is_dst(unix: i64) -> bool {
        let year = year_of(unix.div_euclid(DAY));
        // 02:00 PST = 10:00 UTC; 02:00 PDT = 09:00 UTC.
        let start = nth_sunday(year, 3, 2) * DAY + 10 * 3600;
        let end = nth_sunday(year, 11, 1) * DAY + 9 * 3600;
        (start..end).contains(&unix)
    }

    fn offset(unix: i64) -> i64 {
        if is_dst(unix) { -7 * 3600 } else { -8 * 3600 }
    }

    /// The next midnight in Los Angeles after `unix` seconds, in unix seconds.
    pub fn next_midnight(unix: i64) -> i64 {
        let local = unix + offset(unix);
        let local_midnight = (local.div_euclid(DAY) + 1) * DAY;
        // The offset at midnight itself: it differs from now's only on the switch days, and
        // the switches happen at 02:00, never at midnight.
        local_midnight - offset(local_midnight - offset(unix))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn unix(year: i64, month: i64, day: i64, hour: i64, minute: i64) -> i64 {
            days_from_civil(year, month, day) * DAY + hour * 3600 + minute * 60
        }

        #[test]
        fn midnight_in_los_angeles_through_the_year() {
            // Winter (PST, UTC−8): 2026-01-15 12:00 UTC is 04:00 local; next midnight is
            // 2026-01-16 00:00 PST = 08:00 UTC.
            assert_eq!(next_midnight(unix(2026, 1, 15, 12, 0)), unix(2026, 1, 16, 8, 0));
            // Summer (PDT, UTC−7): next midnight is 07:00 UTC.
            assert_eq!(next_midnight(unix(2026, 7, 1, 12, 0)), unix(2026, 7, 2, 7, 0));
            // Late evening local time is still the same local day: 2026-07-01 06:59 UTC is
            // 23:59 on June 30 local.
            assert_eq!(next_midnight(unix(2026, 7, 1, 6, 59)), unix(2026, 7, 1, 7, 0));
        }

        #[test]
        fn the_days_daylight_saving_time_starts_and_ends() {
            // 2026: DST from March 8 to November 1.
            assert_eq!(nth_sunday(2026, 3, 2), days_from_civil(2026, 3, 8));
            assert_eq!(nth_sunday(2026, 11, 1), days_from_civil(2026, 11, 1));
            // March 8, 05:00 UTC (March 7, 21:00 PST): midnight March 8 is still PST.
            assert_eq!(next_midnight(unix(2026, 3, 8, 5, 0)), unix(2026, 3, 8, 8, 0));
            // March 8, 12:00 UTC (05:00 PDT): next midnight March 9, 00:00 PDT = 07:00 UTC.
            assert_eq!(next_midnight(unix(2026, 3, 8, 12, 0)), unix(2026, 3, 9, 7, 0));
            // October 31, 12:00 UTC (05:00 PDT): midnight November 1 is still PDT.
            assert_eq!(next_midnight(unix(2026, 10, 31, 12, 0)), unix(2026, 11, 1, 7, 0));
            // November 1, 12:00 UTC (04:00 PST): midnight November 2 is PST.
            assert_eq!(next_midnight(unix(2026, 11, 1, 12, 0)), unix(2026, 11, 2, 8, 0));
        }
    }
}

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

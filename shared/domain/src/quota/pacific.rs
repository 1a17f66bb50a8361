//! Midnight in America/Los_Angeles without a time zone database: US daylight saving time
//! runs from the second Sunday of March, 02:00 local, to the first Sunday of November,
//! 02:00 local (the rules since 2007).

const DAY: i64 = 86_400;

use crate::time::{civil_from_days, days_from_civil};

fn year_of(days: i64) -> i64 {
    civil_from_days(days).0
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

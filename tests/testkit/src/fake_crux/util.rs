//! Small utilities: hashing, a seeded generator, query decoding and calendar arithmetic.

use super::*;

/// A seed derived from `seed` and a small label, so that every quantity drawn for one record
/// has its own independent stream.
pub(super) fn derive(seed: u64, label: u64) -> u64 {
    splitmix64(seed ^ label.wrapping_add(1).wrapping_mul(GOLDEN_GAMMA))
}

/// A uniform draw in `[lo, hi)` from `seed`.
pub(super) fn uniform(seed: u64, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * unit_interval(splitmix64(seed))
}

/// The first `name` parameter of a query string, decoded.
pub(super) fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').filter(|p| !p.is_empty()).find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(key) == name).then(|| percent_decode(value))
    })
}

pub(super) fn days_from_civil(date: CruxDate) -> i64 {
    domain::time::days_from_civil(i64::from(date.year), i64::from(date.month), i64::from(date.day))
}

/// The inverse of [`days_from_civil`].
pub(super) fn civil_from_days(days: i64) -> CruxDate {
    let (year, month, day) = domain::time::civil_from_days(days);
    CruxDate {
        year: i32::try_from(year).unwrap_or(i32::MAX),
        month: u32::try_from(month).unwrap_or(1),
        day: u32::try_from(day).unwrap_or(1),
    }
}

impl CruxDate {
    /// This date moved by `days` (negative: earlier).
    pub fn plus_days(self, days: i64) -> CruxDate {
        civil_from_days(days_from_civil(self) + days)
    }

    pub(super) fn to_json(self) -> Value {
        json!({"year": self.year, "month": self.month, "day": self.day})
    }
}

//! Small utilities: a seeded generator and a string hash.

use super::*;

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`, the form of PSI's `analysisUTCTimestamp`.
pub(super) fn rfc3339_utc(t: SystemTime) -> String {
    let millis = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_millis();
    domain::time::rfc3339(i64::try_from(millis).unwrap_or(i64::MAX))
}

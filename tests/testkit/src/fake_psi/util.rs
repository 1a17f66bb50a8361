//! Small utilities: a seeded generator and a string hash.

use super::*;

pub(super) const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

pub(super) fn splitmix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Maps 64 random bits to `[0, 1)`.
pub(super) fn unit_interval(bits: u64) -> f64 {
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

pub(super) fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xCBF2_9CE4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3))
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`, the form of PSI's `analysisUTCTimestamp`.
pub(super) fn rfc3339_utc(t: SystemTime) -> String {
    let millis = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO).as_millis();
    domain::time::rfc3339(i64::try_from(millis).unwrap_or(i64::MAX))
}

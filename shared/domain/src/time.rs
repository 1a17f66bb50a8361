//! Time as the service stores it (milliseconds since the Unix epoch, so counters and rates are
//! plain arithmetic) and as the API shows it (RFC 3339, UTC).

use chrono::{DateTime, SecondsFormat, Utc};

pub type Millis = i64;

pub fn now_millis() -> Millis {
    Utc::now().timestamp_millis()
}

pub fn rfc3339(millis: Millis) -> String {
    DateTime::<Utc>::from_timestamp_millis(millis).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// An RFC 3339 time (any offset) as milliseconds since the epoch.
pub fn parse_rfc3339(text: &str) -> Option<Millis> {
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_with_millis() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_764_361_234_567), "2025-11-28T20:20:34.567Z");
        assert_eq!(parse_rfc3339("2025-11-28T21:20:34.567+01:00"), Some(1_764_361_234_567));
        assert_eq!(parse_rfc3339("2025-11-28"), None);
    }
}

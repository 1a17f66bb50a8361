//! Query-string parameters shared by the listing endpoints.

use crate::error::ApiError;

/// `limit`: absent means `default`; otherwise a whole number in `1..=max`.
pub fn limit(value: Option<&str>, default: usize, max: usize) -> Result<usize, ApiError> {
    match value {
        None => Ok(default),
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| ApiError::invalid_field("limit", format!("must be a whole number from 1 to {max}"))),
    }
}

/// An optional enum-valued parameter such as `status`.
pub fn choice<T: std::str::FromStr<Err = String>>(field: &str, value: Option<&str>) -> Result<Option<T>, ApiError> {
    value.map(|text| text.parse().map_err(|e| ApiError::invalid_field(field, e))).transpose()
}

/// An optional RFC 3339 time such as `from`.
pub fn time(field: &str, value: Option<&str>) -> Result<Option<domain::time::Millis>, ApiError> {
    value
        .map(|text| {
            domain::time::parse_rfc3339(text).ok_or_else(|| {
                ApiError::invalid_field(field, format!("{text:?} is not an RFC 3339 time such as 2026-12-01T00:00:00Z"))
            })
        })
        .transpose()
}

/// A parameter that must be there.
pub fn required<'a>(field: &str, value: Option<&'a str>) -> Result<&'a str, ApiError> {
    value.filter(|v| !v.trim().is_empty()).ok_or_else(|| ApiError::invalid_field(field, "is required"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::JobStatus;

    #[test]
    fn limits_are_bounded() {
        assert_eq!(limit(None, 20, 100).unwrap(), 20);
        assert_eq!(limit(Some("100"), 20, 100).unwrap(), 100);
        for bad in ["0", "101", "-1", "ten", ""] {
            assert!(limit(Some(bad), 20, 100).is_err(), "{bad}");
        }
    }

    #[test]
    fn choices_name_the_field() {
        assert_eq!(choice::<JobStatus>("status", Some("failed")).unwrap(), Some(JobStatus::Failed));
        match choice::<JobStatus>("status", Some("done")) {
            Err(ApiError::Invalid { message, .. }) => {
                assert!(message.starts_with("status: \"done\" is not one of pending"), "{message}")
            }
            other => panic!("{other:?}"),
        }
    }
}

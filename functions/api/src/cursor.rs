//! Opaque pagination cursors. A cursor names the last item of a page; it is encoded so
//! clients treat it as a token, and checked on the way back in so a tampered one is a 400.

use crate::error::ApiError;

const PREFIX: &str = "v1:";

pub fn encode(last: &str) -> String {
    hex::encode(format!("{PREFIX}{last}"))
}

/// The item a cursor names, parsed by `parse`; anything else is a malformed request.
pub fn decode<T>(cursor: &str, parse: impl FnOnce(&str) -> Option<T>) -> Result<T, ApiError> {
    let invalid =
        || ApiError::Malformed("cursor is not valid: pass the next_cursor of the previous page unchanged".into());
    let bytes = hex::decode(cursor).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    text.strip_prefix(PREFIX).and_then(parse).ok_or_else(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_tampering() {
        let cursor = encode("42");
        assert_eq!(decode(&cursor, |s| s.parse::<u32>().ok()).unwrap(), 42);
        for bad in ["", "zz", &hex::encode("42"), &hex::encode("v1:x"), &cursor[..cursor.len() - 1]] {
            assert!(matches!(decode(bad, |s| s.parse::<u32>().ok()), Err(ApiError::Malformed(_))), "{bad:?}");
        }
    }
}

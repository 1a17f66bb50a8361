//! `GET /`: the dashboard. One HTML file with its styles and script inline, embedded in the
//! binary: no CDN, works offline, and under any path prefix (the page builds every API URL
//! from its own location). The key it is given stays in the browser's session storage.

use std::sync::OnceLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

const TEMPLATE: &str = include_str!("../../dashboard/index.html");

/// The page with the API's base path filled in (relative: the page may be served under a
/// prefix), rendered once.
fn page_html() -> &'static str {
    static PAGE: OnceLock<String> = OnceLock::new();
    PAGE.get_or_init(|| TEMPLATE.replace("{{BASE_PATH}}", domain::paths::BASE_PATH.trim_start_matches('/')))
}

pub async fn page() -> Response {
    let mut response = page_html().into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if let Ok(policy) = HeaderValue::from_str(content_security_policy()) {
        headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    response
}

/// Only the page's own inline script and styles run (by hash), it talks only to its own
/// origin, and no other site may frame it.
fn content_security_policy() -> &'static str {
    static POLICY: OnceLock<String> = OnceLock::new();
    POLICY.get_or_init(|| {
        let scripts = hashes(page_html(), "<script", "</script>");
        let styles = hashes(page_html(), "<style", "</style>");
        format!(
            "default-src 'none'; script-src {scripts}; style-src {styles}; connect-src 'self'; \
             img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        )
    })
}

/// `'sha256-…'` of the content of each element that starts with `open` (`<script`, its
/// attributes up to `>`) and ends with `close`.
fn hashes(page: &str, open: &str, close: &str) -> String {
    let mut out = Vec::new();
    let mut rest = page;
    while let Some(start) = rest.find(open) {
        let Some(tag_end) = rest[start..].find('>') else { break };
        let body = &rest[start + tag_end + 1..];
        let Some(end) = body.find(close) else { break };
        let digest = Sha256::digest(&body.as_bytes()[..end]);
        out.push(format!("'sha256-{}'", base64(&digest)));
        rest = &body[end + close.len()..];
    }
    if out.is_empty() { "'none'".to_owned() } else { out.join(" ") }
}

/// Standard base64 with padding, as CSP hashes are written.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_alphabet_and_padding() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn every_inline_block_is_hashed() {
        let page = "<style>a{}</style><script>one()</script><p></p><script type=\"module\">two()</script>";
        assert_eq!(hashes(page, "<script", "</script>").matches("'sha256-").count(), 2);
        assert_eq!(hashes(page, "<style", "</style>"), format!("'sha256-{}'", base64(&Sha256::digest(b"a{}"))));
        assert!(
            hashes(page, "<script", "</script>").ends_with(&format!("'sha256-{}'", base64(&Sha256::digest(b"two()"))))
        );
        assert_eq!(hashes("<p>", "<script", "</script>"), "'none'");
    }

    #[test]
    fn the_page_calls_the_api_under_its_base_path() {
        assert!(page_html().contains("BASE + 'api/v1/batch-processing/'"));
        assert!(!page_html().contains("{{"), "every placeholder is filled");
    }

    #[test]
    fn the_page_has_a_script_and_the_policy_allows_only_it() {
        let policy = content_security_policy();
        assert!(policy.contains("script-src 'sha256-") && policy.contains("connect-src 'self'"), "{policy}");
        assert!(!policy.contains("unsafe-inline"));
    }
}

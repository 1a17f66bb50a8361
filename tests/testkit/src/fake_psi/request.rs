//! Reading a `runPagespeed` request: its parameters, and the behaviour a URL asks for.

use super::*;

/// Query parameters the fake cares about; others (`locale`, `utm_*`,
/// `captchaToken`, `fields`, ...) are accepted and ignored, as at Google.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Params {
    pub(super) url: Option<String>,
    pub(super) strategy: Option<String>,
    pub(super) categories: Vec<String>,
    pub(super) key: Option<String>,
}

impl Params {
    /// Parsed by hand because `category` repeats and axum's `Query` into a
    /// struct keeps only one value; the first `url`, `strategy` and `key` win.
    pub(super) fn parse(query: &str) -> Params {
        let mut params = Params::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode(value);
            match percent_decode(name).as_str() {
                "url" => {
                    params.url.get_or_insert(value);
                }
                "strategy" => {
                    params.strategy.get_or_insert(value);
                }
                "key" => {
                    params.key.get_or_insert(value);
                }
                "category" => params.categories.push(value),
                _ => {}
            }
        }
        params
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Strategy {
    Mobile,
    Desktop,
}

impl Strategy {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Strategy::Mobile => "mobile",
            Strategy::Desktop => "desktop",
        }
    }
}

/// A validated request, ready for analysis.
#[derive(Debug)]
pub(super) struct AnalysisRequest {
    /// The page URL, without a `url:`/`origin:` prefix.
    pub(super) url: String,
    pub(super) strategy: Strategy,
    /// Lighthouse category ids, deduplicated, in request order.
    pub(super) categories: Vec<&'static str>,
}

impl AnalysisRequest {
    pub(super) fn from_params(params: &Params) -> Result<AnalysisRequest, ApiError> {
        let raw_url = params.url.as_deref().unwrap_or("");
        let url = page_url(raw_url).ok_or_else(|| invalid_value("url", "TYPE_STRING", raw_url))?.to_owned();

        // PSI analyses mobile unless told otherwise.
        let strategy = match params.strategy.as_deref() {
            None | Some("") => Strategy::Mobile,
            Some(s) if s.eq_ignore_ascii_case("mobile") => Strategy::Mobile,
            Some(s) if s.eq_ignore_ascii_case("desktop") => Strategy::Desktop,
            Some(s) if s.eq_ignore_ascii_case("STRATEGY_UNSPECIFIED") => Strategy::Mobile,
            Some(other) => return Err(invalid_value("strategy", "TYPE_ENUM", other)),
        };

        let mut categories = Vec::new();
        let mut any_given = false;
        for raw in &params.categories {
            let normalized = raw.to_ascii_uppercase().replace('-', "_");
            let id = match normalized.as_str() {
                "PERFORMANCE" => "performance",
                "ACCESSIBILITY" => "accessibility",
                "BEST_PRACTICES" => "best-practices",
                "SEO" => "seo",
                // Still in the API's enum, but Lighthouse 12+ has no PWA
                // category, so there is nothing to return for it.
                "PWA" => {
                    any_given = true;
                    continue;
                }
                "CATEGORY_UNSPECIFIED" | "" => continue,
                _ => return Err(invalid_value("category", "TYPE_ENUM", raw)),
            };
            any_given = true;
            if !categories.contains(&id) {
                categories.push(id);
            }
        }
        if !any_given {
            categories.push("performance");
        }
        Ok(AnalysisRequest { url, strategy, categories })
    }
}

/// The page to analyse, if `raw` matches Google's `(?i)(url:|origin:)?http(s)?://.*`
/// with a non-empty host and no whitespace (which Lighthouse could not load).
pub(super) fn page_url(raw: &str) -> Option<&str> {
    let url = strip_prefix_ignore_case(raw, "url:").or_else(|| strip_prefix_ignore_case(raw, "origin:")).unwrap_or(raw);
    let rest = strip_prefix_ignore_case(url, "https://").or_else(|| strip_prefix_ignore_case(url, "http://"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || url.chars().any(char::is_whitespace) {
        return None;
    }
    Some(url)
}

pub(super) fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &s[prefix.len()..])
}

/// `scheme://authority` of a URL already accepted by [`page_url`].
pub(super) fn origin_of(url: &str) -> &str {
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let end = url[authority_start..].find(['/', '?', '#']).map_or(url.len(), |i| authority_start + i);
    &url[..end]
}

/// The number after the first `marker` in `url` that is followed by digits.
pub(super) fn marker_number(url: &str, marker: &str) -> Option<u64> {
    url.match_indices(marker).find_map(|(i, _)| {
        let digits: &str = &url[i + marker.len()..];
        let end = digits.find(|c: char| !c.is_ascii_digit()).unwrap_or(digits.len());
        digits[..end].parse().ok()
    })
}

/// The injected error `url` asks for, if any. `next_flaky_count` is called
/// only for `flaky-N` URLs and returns how many accepted requests that exact
/// URL has had, this one included.
pub(super) fn injected_failure(url: &str, next_flaky_count: impl FnOnce() -> u64) -> Option<ApiError> {
    if let Some(failures) = marker_number(url, "flaky-")
        && next_flaky_count() <= failures
    {
        return Some(backend_internal_error());
    }
    if url.contains("server-error") {
        return Some(backend_internal_error());
    }
    if url.contains("dns-failure") {
        return Some(lighthouse_error(
            "Lighthouse returned error: DNS_FAILURE. DNS servers could not resolve the provided domain.",
        ));
    }
    if let Some(status) = marker_number(url, "errored-document-") {
        return Some(lighthouse_error(&format!(
            "Lighthouse returned error: ERRORED_DOCUMENT_REQUEST. {UNABLE_TO_LOAD} (Status code: {status})"
        )));
    }
    if url.contains("failed-document") {
        return Some(lighthouse_error(&format!(
            "Lighthouse returned error: FAILED_DOCUMENT_REQUEST. {UNABLE_TO_LOAD} (Details: net::ERR_TIMED_OUT)"
        )));
    }
    None
}

pub(super) const UNABLE_TO_LOAD: &str = "Lighthouse was unable to reliably load the page you requested. Make sure you are \
     testing the correct URL and that the server is properly responding to all requests.";

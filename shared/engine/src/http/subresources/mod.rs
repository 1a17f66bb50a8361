//! What a page's HTML references, and fetching it concurrently within a time budget.
//!
//! Extraction mirrors what a browser's preload scanner would request on first load: scripts,
//! stylesheets, images, preloads, icons, iframes and video posters. Render-blocking follows
//! Lighthouse's `render-blocking-resources` audit: classic synchronous scripts and stylesheets
//! whose media matches the screen, in the document's head.
//!
//! `scan` finds what a document references; `fetch` fetches it and sums up the report.

mod fetch;
mod scan;
#[cfg(test)]
mod tests;

use serde::Serialize;
use url::Url;

pub use fetch::{
    Failure, Fetch, FetchState, Fetched, MAX_SUBRESOURCE_BYTES, ResourceResult, Slowest, SubresourceReport, Totals,
    cache_ttl_secs, fetch_all,
};
pub use scan::{extract, first_srcset_candidate, media_matches_screen};

/// The list is capped so a page with thousands of images cannot turn one analysis into a
/// crawl; browsers lazy-load most of those anyway.
pub const MAX_SUBRESOURCES: usize = 150;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ResourceKind {
    Script,
    Stylesheet,
    Image,
    Font,
    Iframe,
    Other,
}

impl ResourceKind {
    /// The types Lighthouse's `uses-long-cache-ttl` audit expects to be cached for long.
    pub fn is_static(self) -> bool {
        matches!(self, Self::Script | Self::Stylesheet | Self::Image | Self::Font)
    }

    /// Text types that compress well (Lighthouse `uses-text-compression`).
    pub fn is_text(self) -> bool {
        matches!(self, Self::Script | Self::Stylesheet)
    }

    pub fn accept(self) -> &'static str {
        // What Chrome sends per destination, so servers negotiate formats as for a browser.
        match self {
            Self::Stylesheet => "text/css,*/*;q=0.1",
            Self::Image => "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8",
            Self::Iframe => "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            Self::Script | Self::Font | Self::Other => "*/*",
        }
    }
}

/// Which markup referenced the resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Initiator {
    Script,
    Stylesheet,
    Image,
    Preload,
    Icon,
    Iframe,
    VideoPoster,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScriptLoading {
    /// Classic script without `async`/`defer`: the parser waits for it.
    Sync,
    Async,
    Defer,
    /// `type=module` without `async`, deferred by default.
    Module,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Subresource {
    pub url: Url,
    pub kind: ResourceKind,
    pub initiator: Initiator,
    /// Referenced before the body started, i.e. where the browser puts it: in `<head>`.
    pub in_head: bool,
    pub script_loading: Option<ScriptLoading>,
    pub media: Option<String>,
    pub render_blocking: bool,
}

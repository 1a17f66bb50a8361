//! The URLs of a monitor's run: its own, or its sitemap's as they are when it runs (read again
//! each time, so pages added to the site are measured from the next run on).

use domain::monitor::Monitor;
use domain::{AddressPolicy, CleanUrl, Error, JobUrl, Tags};
use net::sitemap::{self, SitemapLimits};
use store::Monitors;

/// Why a run has nothing to analyse: not the store's fault, so a tick skips (and says why)
/// rather than being tried again.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NoUrls {
    #[error("the monitor's sitemap could not be read: {0}")]
    SitemapUnreadable(String),
    #[error("the monitor's sitemap lists no URL that can be analysed")]
    SitemapEmpty,
}

/// The URLs monitor `monitor` runs now; `Err` only when the store fails.
pub async fn run_urls<S: Monitors>(
    store: &S,
    http: &reqwest::Client,
    policy: AddressPolicy,
    monitor: &Monitor,
) -> Result<Result<Vec<JobUrl>, NoUrls>, Error> {
    let Some(sitemap) = &monitor.sitemap_url else {
        return Ok(Ok(store.monitor_urls(&monitor.tenant, &monitor.id).await?));
    };
    let root = match url::Url::parse(sitemap) {
        Ok(root) => root,
        Err(e) => return Ok(Err(NoUrls::SitemapUnreadable(format!("{sitemap:?} is not a URL: {e}")))),
    };
    let limits = SitemapLimits { max_urls: domain::settings::MAX_URLS, ..SitemapLimits::default() };
    let expanded = match sitemap::expand(http, policy, root, limits).await {
        Ok(expanded) => expanded,
        Err(e) => return Ok(Err(NoUrls::SitemapUnreadable(e.to_string()))),
    };
    let urls: Vec<JobUrl> = expanded
        .urls
        .iter()
        .filter_map(|url| CleanUrl::parse(url, policy).ok())
        .map(|url| JobUrl { url, tags: Tags::default() })
        .collect();
    Ok(if urls.is_empty() { Err(NoUrls::SitemapEmpty) } else { Ok(urls) })
}

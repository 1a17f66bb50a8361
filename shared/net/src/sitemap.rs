//! Sitemap expansion for `POST /start` with `sitemap_url`: a sitemap or a sitemap index
//! (gzip too), fetched through the same address policy as the analyzer and bounded in URLs,
//! bytes, nesting depth, documents and time, so a hostile sitemap (a gzip bomb, an index that
//! lists itself) costs little.

use std::collections::{HashSet, VecDeque};
use std::io::Read;
use std::time::Duration;

use quick_xml::events::Event;
use url::Url;

use crate::safe_client::{check_literal_host, describe};
use domain::AddressPolicy;

#[derive(Clone, Copy, Debug)]
pub struct SitemapLimits {
    /// URLs kept; a longer sitemap is truncated (and says so).
    pub max_urls: usize,
    /// Bytes of one document after decompression.
    pub max_bytes: u64,
    /// Levels of index below the submitted one.
    pub max_depth: u32,
    /// Documents fetched in all.
    pub max_documents: usize,
    /// Time for the whole expansion.
    pub time_limit: Duration,
}

impl Default for SitemapLimits {
    fn default() -> Self {
        SitemapLimits {
            max_urls: 10_000,
            max_bytes: 50 * 1024 * 1024,
            max_depth: 2,
            max_documents: 100,
            time_limit: Duration::from_secs(20),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SitemapError {
    #[error("could not fetch {url}: {reason}")]
    Fetch { url: String, reason: String },
    #[error("{url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("{url} is not a sitemap: {reason}")]
    NotSitemap { url: String, reason: String },
    #[error("{url} is larger than {limit} bytes (uncompressed)")]
    TooLarge { url: String, limit: u64 },
    #[error("sitemap indexes nest deeper than {limit} levels at {url}")]
    TooDeep { url: String, limit: u32 },
    #[error("the sitemap lists more than {limit} documents")]
    TooManyDocuments { limit: usize },
    #[error("expanding the sitemap took longer than {} s", .0.as_secs())]
    TimedOut(Duration),
}

/// What one document holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Document {
    UrlSet(Vec<String>),
    Index(Vec<String>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expanded {
    pub urls: Vec<String>,
    /// More URLs were listed than `max_urls`.
    pub truncated: bool,
    pub documents: usize,
}

/// Parses a sitemap (`<urlset>`) or sitemap index (`<sitemapindex>`) into its `<loc>`s.
pub fn parse(xml: &[u8]) -> Result<Document, String> {
    parse_bounded(xml, usize::MAX, usize::MAX).map(|(document, _)| document)
}

/// `parse`, stopping at the `max_urls`-th URL of a sitemap or the `max_children`-th child of
/// an index: the rest of the document (up to 50 MB) is never read. `true` when it stopped
/// before the end.
pub fn parse_bounded(xml: &[u8], max_urls: usize, max_children: usize) -> Result<(Document, bool), String> {
    let mut reader = quick_xml::Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut root: Option<bool> = None; // Some(true) for an index
    let mut in_loc = false;
    let mut loc = String::new();
    let mut locs = Vec::new();
    loop {
        match reader.read_event_into(&mut buf).map_err(|e| format!("invalid XML: {e}"))? {
            Event::Start(e) => match (root, e.local_name().into_inner()) {
                (None, "urlset") => root = Some(false),
                (None, "sitemapindex") => root = Some(true),
                (None, other) => {
                    return Err(format!("the root element is <{}>, not <urlset> or <sitemapindex>", other));
                }
                (Some(_), "loc") => {
                    in_loc = true;
                    loc.clear();
                }
                _ => {}
            },
            Event::End(e) if e.local_name().into_inner() == "loc" => {
                in_loc = false;
                let text = loc.trim();
                if !text.is_empty() {
                    let max = if root == Some(true) { max_children } else { max_urls };
                    if locs.len() >= max {
                        return Ok((document(root, locs)?, true));
                    }
                    locs.push(text.to_owned());
                }
            }
            Event::Text(text) if in_loc => loc.push_str(&text),
            Event::CData(data) if in_loc => loc.push_str(&data),
            Event::GeneralRef(entity) if in_loc => {
                let resolved = match entity.resolve_char_ref() {
                    Ok(Some(c)) => Some(c),
                    _ => match &*entity {
                        "amp" => Some('&'),
                        "lt" => Some('<'),
                        "gt" => Some('>'),
                        "quot" => Some('"'),
                        "apos" => Some('\''),
                        _ => None,
                    },
                };
                loc.push(resolved.ok_or_else(|| format!("unknown entity &{};", &*entity))?);
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    Ok((document(root, locs)?, false))
}

fn document(root: Option<bool>, locs: Vec<String>) -> Result<Document, String> {
    match root {
        Some(true) => Ok(Document::Index(locs)),
        Some(false) => Ok(Document::UrlSet(locs)),
        None => Err("the document is empty".into()),
    }
}

/// Gunzips `bytes` when they are gzip (by their magic number), reading at most `limit`
/// bytes of output: a gzip bomb stops at the limit instead of filling memory.
pub fn decompress(bytes: Vec<u8>, limit: u64) -> Result<Vec<u8>, Option<String>> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return if bytes.len() as u64 > limit { Err(None) } else { Ok(bytes) };
    }
    let mut out = Vec::new();
    let mut decoder = flate2::read::GzDecoder::new(&bytes[..]).take(limit + 1);
    decoder.read_to_end(&mut out).map_err(|e| Some(format!("invalid gzip: {e}")))?;
    if out.len() as u64 > limit { Err(None) } else { Ok(out) }
}

async fn fetch(
    client: &reqwest::Client,
    policy: AddressPolicy,
    url: &Url,
    limits: &SitemapLimits,
) -> Result<Vec<u8>, SitemapError> {
    let fetch_error = |reason: String| SitemapError::Fetch { url: url.to_string(), reason };
    check_literal_host(url, policy).map_err(|blocked| fetch_error(blocked.to_string()))?;
    let mut response = client.get(url.clone()).send().await.map_err(|e| fetch_error(describe(&e).1))?;
    if !response.status().is_success() {
        return Err(SitemapError::Status { url: url.to_string(), status: response.status().as_u16() });
    }
    let too_large = || SitemapError::TooLarge { url: url.to_string(), limit: limits.max_bytes };
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| fetch_error(describe(&e).1))? {
        body.extend_from_slice(&chunk);
        if body.len() as u64 > limits.max_bytes {
            return Err(too_large());
        }
    }
    decompress(body, limits.max_bytes).map_err(|e| match e {
        None => too_large(),
        Some(reason) => SitemapError::NotSitemap { url: url.to_string(), reason },
    })
}

/// Fetches `root` and every sitemap its indexes list (breadth first, each at most once),
/// collecting page URLs in document order.
pub async fn expand(
    client: &reqwest::Client,
    policy: AddressPolicy,
    root: Url,
    limits: SitemapLimits,
) -> Result<Expanded, SitemapError> {
    let work = async {
        let mut queue = VecDeque::from([(root.clone(), 0u32)]);
        let mut seen = HashSet::from([root]);
        let mut expanded = Expanded { urls: Vec::new(), truncated: false, documents: 0 };
        while let Some((url, depth)) = queue.pop_front() {
            if expanded.documents >= limits.max_documents {
                return Err(SitemapError::TooManyDocuments { limit: limits.max_documents });
            }
            expanded.documents += 1;
            let body = fetch(client, policy, &url, &limits).await?;
            // Parsing stops where the limits would: URLs beyond the room left are never
            // collected, children beyond the document limit never listed.
            let room = limits.max_urls - expanded.urls.len();
            let children = limits.max_documents + 1 - expanded.documents;
            let (document, more) = parse_bounded(&body, room, children)
                .map_err(|reason| SitemapError::NotSitemap { url: url.to_string(), reason })?;
            match document {
                Document::UrlSet(urls) => {
                    // The protocol wants absolute URLs; a relative one is read against the
                    // sitemap's own URL rather than refused.
                    let urls: Vec<String> =
                        urls.into_iter().map(|loc| url.join(&loc).map_or(loc, String::from)).collect();
                    expanded.truncated |= more;
                    expanded.urls.extend(urls);
                    if expanded.urls.len() >= limits.max_urls {
                        expanded.truncated |= !queue.is_empty();
                        break;
                    }
                }
                Document::Index(children) => {
                    if depth >= limits.max_depth {
                        return Err(SitemapError::TooDeep { url: url.to_string(), limit: limits.max_depth });
                    }
                    for child in children {
                        // A child that is not a URL is skipped; one already seen (an index
                        // listing itself or a sibling twice) is fetched once.
                        if let Ok(child) = url.join(&child)
                            && seen.insert(child.clone())
                        {
                            queue.push_back((child, depth + 1));
                        }
                    }
                }
            }
        }
        Ok(expanded)
    };
    tokio::time::timeout(limits.time_limit, work).await.map_err(|_| SitemapError::TimedOut(limits.time_limit))?
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn reads_the_locs_of_a_urlset() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
            <urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
              <url><loc> https://example.com/a </loc><lastmod>2024-01-01</lastmod></url>
              <url><loc>https://example.com/b?x=1&amp;y=2</loc></url>
              <url><loc><![CDATA[https://example.com/c]]></loc></url>
              <url><loc></loc></url>
            </urlset>"#;
        assert_eq!(
            parse(xml),
            Ok(Document::UrlSet(vec![
                "https://example.com/a".into(),
                "https://example.com/b?x=1&y=2".into(),
                "https://example.com/c".into(),
            ]))
        );
    }

    #[test]
    fn reads_an_index_with_a_prefixed_namespace() {
        let xml = br#"<sm:sitemapindex xmlns:sm="http://www.sitemaps.org/schemas/sitemap/0.9">
              <sm:sitemap><sm:loc>https://example.com/s1.xml</sm:loc></sm:sitemap>
            </sm:sitemapindex>"#;
        assert_eq!(parse(xml), Ok(Document::Index(vec!["https://example.com/s1.xml".into()])));
    }

    #[test]
    fn stops_reading_at_the_limit() {
        let locs: String = (0..100).map(|i| format!("<url><loc>https://example.com/{i}</loc></url>")).collect();
        // Broken after the 11th URL: a parser that read on would fail.
        let xml = format!("<urlset>{locs}<url><loc>broken</url>");
        assert!(parse(xml.as_bytes()).is_err(), "the whole document is not XML");
        let (document, more) = parse_bounded(xml.as_bytes(), 10, usize::MAX).unwrap();
        let Document::UrlSet(urls) = document else { panic!("a urlset") };
        assert_eq!((urls.len(), more), (10, true));
        assert_eq!(urls[9], "https://example.com/9");
        let whole = format!("<urlset>{locs}</urlset>");
        assert_eq!(parse_bounded(whole.as_bytes(), 100, 0).map(|(_, more)| more), Ok(false), "exactly full");
        let index = "<sitemapindex><sitemap><loc>https://e.com/1</loc></sitemap><sitemap><loc>https://e.com/2</loc></sitemap></sitemapindex>";
        assert_eq!(parse_bounded(index.as_bytes(), 0, 1), Ok((Document::Index(vec!["https://e.com/1".into()]), true)));
    }

    #[test]
    fn refuses_what_is_not_a_sitemap() {
        assert!(parse(b"<html><body>hi</body></html>").unwrap_err().contains("<html>"));
        assert_eq!(parse(b"").unwrap_err(), "the document is empty");
        assert!(parse(b"<urlset><url><loc>x</url>").unwrap_err().starts_with("invalid XML"));
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn gunzips_within_the_limit_and_stops_a_bomb() {
        let xml = b"<urlset><url><loc>https://example.com</loc></url></urlset>".to_vec();
        assert_eq!(decompress(gzip(&xml), 1_000), Ok(xml.clone()));
        assert_eq!(decompress(xml.clone(), 1_000), Ok(xml), "plain XML passes through");
        let bomb = gzip(&vec![b' '; 10 * 1024 * 1024]);
        assert!(bomb.len() < 20 * 1024, "10 MiB of spaces compress to {} bytes", bomb.len());
        assert_eq!(decompress(bomb, 1024 * 1024), Err(None));
        assert!(matches!(decompress(vec![0x1f, 0x8b, 0, 1, 2], 1_000), Err(Some(_))));
    }
}

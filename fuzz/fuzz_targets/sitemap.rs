//! Sitemap reading as `POST /start` with `sitemap_url` does it: `decompress` then `parse`, on
//! arbitrary bytes (plain XML, gzip, gzip bombs, garbage).
//!
//! Properties, beyond "never panics":
//! - `decompress` never returns more than its limit; plain input passes through unchanged
//!   when within the limit; a smaller limit gives the same answer or "too large", never a
//!   different document;
//! - every `<loc>` `parse` returns is non-empty and trimmed, and writing the document back as
//!   XML and parsing it again gives the same document;
//! - a sitemap written from known URLs (the input's lines, escaped) parses to exactly those
//!   URLs: the locs are the text inside `<loc>`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use net::sitemap::{Document, decompress, parse};

/// Small enough that a gzip bomb of a few kilobytes (the fuzzer's input size) crosses it.
const LIMIT: u64 = 1024 * 1024;
/// A second, tiny limit to exercise the boundary on ordinary inputs.
const SMALL: u64 = 64;

fuzz_target!(|data: &[u8]| {
    let plain = decompress(data.to_vec(), LIMIT);
    if let Ok(out) = &plain {
        assert!(out.len() as u64 <= LIMIT, "decompress returned {} bytes", out.len());
    }
    if !data.starts_with(&[0x1f, 0x8b]) {
        let expected = if data.len() as u64 <= LIMIT { Ok(data.to_vec()) } else { Err(None) };
        assert_eq!(plain, expected, "plain input passes through, bounded");
    }
    let small = decompress(data.to_vec(), SMALL);
    match (&plain, &small) {
        (_, Ok(out)) if out.len() as u64 > SMALL => panic!("decompress returned {} bytes over {SMALL}", out.len()),
        (Ok(out), _) if out.len() as u64 <= SMALL => assert_eq!(&small, &plain, "the limit changed the document"),
        (Ok(_), _) => assert_eq!(small, Err(None), "over the small limit is 'too large'"),
        // Under the small limit the decoder may stop before reaching a broken trailer, so a
        // broken stream can read as "too large"; it can never read as a document.
        (Err(_), _) => assert!(small.is_err(), "the small limit accepted what the large one refused"),
    }

    if let Ok(xml) = &plain
        && let Ok(document) = parse(xml)
    {
        let (index, locs) = split(&document);
        for loc in locs {
            assert!(!loc.is_empty() && loc.trim() == loc, "untrimmed or empty loc {loc:?}");
        }
        assert_eq!(parse(render(index, locs).as_bytes()), Ok(document), "the document does not survive a round trip");
    }

    // A sitemap we write ourselves, one URL a line of the input: parse must give those back.
    let text = String::from_utf8_lossy(data);
    let written: Vec<&str> = text.split('\n').collect();
    let index = data.first().is_some_and(|b| b & 1 == 1);
    let expected: Vec<String> = written.iter().map(|l| l.trim()).filter(|l| !l.is_empty()).map(String::from).collect();
    let document = if index { Document::Index(expected) } else { Document::UrlSet(expected) };
    assert_eq!(parse(render(index, &written).as_bytes()), Ok(document), "written from {written:?}");
});

fn split(document: &Document) -> (bool, &[String]) {
    match document {
        Document::Index(locs) => (true, locs),
        Document::UrlSet(locs) => (false, locs),
    }
}

/// A sitemap (or index) listing `locs`, each escaped, in the shape real sitemaps have.
fn render(index: bool, locs: &[impl AsRef<str>]) -> String {
    let (root, entry) = if index { ("sitemapindex", "sitemap") } else { ("urlset", "url") };
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{root} xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\n"
    );
    for loc in locs {
        let escaped = loc.as_ref().replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
        xml.push_str(&format!("  <{entry}><loc>{escaped}</loc><lastmod>2024-01-01</lastmod></{entry}>\n"));
    }
    xml.push_str(&format!("</{root}>\n"));
    xml
}

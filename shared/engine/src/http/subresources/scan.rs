//! Finding what a document references, as a browser's preload scanner would on first load.

use std::cell::Cell;
use std::rc::Rc;

use lol_html::html_content::Element;
use lol_html::{HtmlRewriter, Settings, element, end_tag};
use url::Url;

use super::{Initiator, MAX_SUBRESOURCES, ResourceKind, ScriptLoading, Subresource};

/// Subresources referenced by `html`, in document order, resolved against `base` (or the
/// document's `<base href>`), `http`/`https` only, deduplicated and capped at
/// [`MAX_SUBRESOURCES`]. An `<img>` with a `srcset` contributes its first candidate instead of
/// `src`: a browser that supports `srcset` fetches a candidate, not both.
pub fn extract(html: &[u8], base: &Url) -> Vec<Subresource> {
    let mut state = ScanState { in_head: true, ..ScanState::default() };
    // Content of <noscript> (scripting is on in a browser) and <template> is never fetched.
    // End-tag handlers must be 'static, hence the shared counter.
    let inert = Rc::new(Cell::new(0usize));
    {
        let inert_handler = Rc::clone(&inert);
        let settings = Settings::new().append_element_content_handler(element!("*", |el: &mut Element| {
            scan_element(el, &mut state, &inert_handler);
            Ok(())
        }));
        let mut rewriter = HtmlRewriter::new(settings, |_: &[u8]| {});
        // Broken markup yields what was found before the error, as a browser would render it.
        if rewriter.write(html).is_ok() {
            let _ = rewriter.end();
        }
    }
    resolve(state, base)
}

#[derive(Default)]
struct ScanState {
    base_href: Option<String>,
    in_head: bool,
    found: Vec<Found>,
}

struct Found {
    href: String,
    kind: ResourceKind,
    initiator: Initiator,
    in_head: bool,
    script_loading: Option<ScriptLoading>,
    media: Option<String>,
    render_blocking: bool,
}

/// Elements the HTML parser keeps in `<head>`; any other start tag opens the body.
const HEAD_TAGS: &[&str] = &[
    "html", "head", "base", "basefont", "bgsound", "link", "meta", "noframes", "script", "style", "template", "title",
    "noscript",
];

const HTML_NAMESPACE: &str = "http://www.w3.org/1999/xhtml";

fn scan_element(el: &mut Element<'_, '_>, state: &mut ScanState, inert: &Rc<Cell<usize>>) {
    let tag = el.tag_name();
    if tag == "noscript" || tag == "template" {
        let counter = Rc::clone(inert);
        if el
            .on_end_tag(end_tag!(move |_| {
                counter.set(counter.get().saturating_sub(1));
                Ok(())
            }))
            .is_ok()
        {
            inert.set(inert.get() + 1);
        }
    }
    if inert.get() > 0 || el.namespace_uri() != HTML_NAMESPACE {
        return;
    }
    if !HEAD_TAGS.contains(&tag.as_str()) {
        state.in_head = false;
    }
    let in_head = state.in_head;
    let attr = |name: &str| el.get_attribute(name).filter(|v| !v.trim().is_empty());
    let push = |href: String, kind, initiator| Found {
        href,
        kind,
        initiator,
        in_head,
        script_loading: None,
        media: None,
        render_blocking: false,
    };

    let found = match tag.as_str() {
        "base" => {
            if state.base_href.is_none() {
                state.base_href = attr("href");
            }
            None
        }
        "script" => attr("src").and_then(|src| {
            let loading = script_loading(el)?;
            let mut found = push(src, ResourceKind::Script, Initiator::Script);
            found.script_loading = Some(loading);
            found.render_blocking = in_head && loading == ScriptLoading::Sync;
            Some(found)
        }),
        "link" => attr("href").and_then(|href| {
            let rel = el.get_attribute("rel").unwrap_or_default().to_ascii_lowercase();
            let rel: Vec<&str> = rel.split_ascii_whitespace().collect();
            if rel.contains(&"stylesheet") {
                if rel.contains(&"alternate") {
                    return None;
                }
                let media = el.get_attribute("media");
                let mut found = push(href, ResourceKind::Stylesheet, Initiator::Stylesheet);
                found.render_blocking =
                    in_head && !el.has_attribute("disabled") && media.as_deref().is_none_or(media_matches_screen);
                found.media = media;
                Some(found)
            } else if rel.contains(&"preload") {
                let kind = match el.get_attribute("as")?.trim().to_ascii_lowercase().as_str() {
                    "script" => ResourceKind::Script,
                    "style" => ResourceKind::Stylesheet,
                    "font" => ResourceKind::Font,
                    "image" => ResourceKind::Image,
                    "document" => ResourceKind::Iframe,
                    _ => ResourceKind::Other,
                };
                Some(push(href, kind, Initiator::Preload))
            } else if rel.contains(&"modulepreload") {
                Some(push(href, ResourceKind::Script, Initiator::Preload))
            } else if rel.contains(&"icon") {
                Some(push(href, ResourceKind::Image, Initiator::Icon))
            } else {
                None
            }
        }),
        "img" => attr("srcset")
            .and_then(|srcset| first_srcset_candidate(&srcset).map(str::to_owned))
            .or_else(|| attr("src"))
            .map(|src| push(src, ResourceKind::Image, Initiator::Image)),
        "iframe" => attr("src").map(|src| push(src, ResourceKind::Iframe, Initiator::Iframe)),
        "video" => attr("poster").map(|src| push(src, ResourceKind::Image, Initiator::VideoPoster)),
        _ => None,
    };
    if let Some(found) = found {
        state.found.push(found);
    }
}

/// None for scripts a modern browser does not fetch: `nomodule` fallbacks and data blocks
/// such as `type="text/template"`.
fn script_loading(el: &Element<'_, '_>) -> Option<ScriptLoading> {
    if el.has_attribute("nomodule") {
        return None;
    }
    let kind = el.get_attribute("type").unwrap_or_default().trim().to_ascii_lowercase();
    let is_async = el.has_attribute("async");
    if kind == "module" {
        return Some(if is_async { ScriptLoading::Async } else { ScriptLoading::Module });
    }
    let essence = kind.split(';').next().unwrap_or_default().trim();
    let javascript = essence.is_empty()
        || matches!(
            essence,
            "text/javascript"
                | "application/javascript"
                | "application/x-javascript"
                | "text/ecmascript"
                | "application/ecmascript"
                | "text/jscript"
        );
    if !javascript {
        return None;
    }
    Some(if is_async {
        ScriptLoading::Async
    } else if el.has_attribute("defer") {
        ScriptLoading::Defer
    } else {
        ScriptLoading::Sync
    })
}

/// Whether a `media` attribute can match a screen. Media features are assumed to match (we
/// have no viewport), so only media types decide: `print`, `speech` and unknown types do not
/// match, `screen` and `all` do.
pub fn media_matches_screen(media: &str) -> bool {
    let media = media.trim().to_ascii_lowercase();
    if media.is_empty() {
        return true;
    }
    media.split(',').any(|query| {
        let mut words = query.split_ascii_whitespace();
        let (negated, media_type) = match words.next() {
            None => return false,
            Some("not") => (true, words.next()),
            Some("only") => (false, words.next()),
            Some(first) => (false, Some(first)),
        };
        let matches = match media_type {
            None => false,
            Some(t) if t.starts_with('(') => true,
            Some("all" | "screen") => true,
            Some(_) => false,
        };
        matches != negated
    })
}

/// The URL of the first `srcset` candidate (HTML's srcset parsing: commas around candidates,
/// whitespace before descriptors).
pub fn first_srcset_candidate(srcset: &str) -> Option<&str> {
    let rest = srcset.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == ',');
    let end = rest.find(|c: char| c.is_ascii_whitespace()).unwrap_or(rest.len());
    let url = rest[..end].trim_end_matches(',');
    (!url.is_empty()).then_some(url)
}

fn resolve(state: ScanState, document: &Url) -> Vec<Subresource> {
    // <base href> applies to the whole document, even to URLs seen before it.
    let base =
        state.base_href.as_deref().and_then(|href| document.join(href.trim()).ok()).unwrap_or_else(|| document.clone());

    let mut list: Vec<Subresource> = Vec::new();
    for found in state.found {
        let Ok(mut url) = base.join(found.href.trim()) else { continue };
        if !matches!(url.scheme(), "http" | "https") {
            continue;
        }
        url.set_fragment(None);
        let candidate = Subresource {
            url,
            kind: found.kind,
            initiator: found.initiator,
            in_head: found.in_head,
            script_loading: found.script_loading,
            media: found.media,
            render_blocking: found.render_blocking,
        };
        match list.iter().position(|known| known.url == candidate.url) {
            // The browser fetches a URL once; a preload is consumed by the element that uses
            // it, whose kind and blocking behaviour are the ones that count.
            Some(index) => {
                let known = &mut list[index];
                let blocking = known.render_blocking || candidate.render_blocking;
                if known.initiator == Initiator::Preload && candidate.initiator != Initiator::Preload {
                    *known = candidate;
                }
                known.render_blocking = blocking;
            }
            None if list.len() < MAX_SUBRESOURCES => list.push(candidate),
            None => {}
        }
    }
    list
}

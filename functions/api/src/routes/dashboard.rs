//! `GET /` and `GET /dashboard/{file}`: the dashboard. Its markup, styles and scripts are
//! embedded in the binary: no CDN, works offline, and under any path prefix (the page builds
//! every URL, its own files' included, from its own location). The key it is given stays in
//! the browser's session storage and goes to the live-progress socket in a message, never in
//! a URL.

use std::sync::OnceLock;

use axum::extract::{FromRef, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::state::AppState;

const TEMPLATE: &str = include_str!("../../dashboard/index.html");

/// The files the page loads from `dashboard/`, with their types: the styles, app.js (the entry:
/// the key, routing, start-up) and the modules it imports, directly or through each other
/// (live.js the socket and its fallback, charts.js the SVG charts, api.js the API client,
/// format.js words and numbers, view-*.js one view each, …).
const ASSETS: [(&str, &str, &str); 18] = [
    ("styles.css", "text/css; charset=utf-8", include_str!("../../dashboard/styles.css")),
    ("app.js", "text/javascript; charset=utf-8", include_str!("../../dashboard/app.js")),
    ("live.js", "text/javascript; charset=utf-8", include_str!("../../dashboard/live.js")),
    ("charts.js", "text/javascript; charset=utf-8", include_str!("../../dashboard/charts.js")),
    ("api.js", "text/javascript; charset=utf-8", include_str!("../../dashboard/api.js")),
    ("dom.js", "text/javascript; charset=utf-8", include_str!("../../dashboard/dom.js")),
    ("format.js", "text/javascript; charset=utf-8", include_str!("../../dashboard/format.js")),
    ("links.js", "text/javascript; charset=utf-8", include_str!("../../dashboard/links.js")),
    ("messages.js", "text/javascript; charset=utf-8", include_str!("../../dashboard/messages.js")),
    ("tracker.js", "text/javascript; charset=utf-8", include_str!("../../dashboard/tracker.js")),
    ("job-row.js", "text/javascript; charset=utf-8", include_str!("../../dashboard/job-row.js")),
    ("figures.js", "text/javascript; charset=utf-8", include_str!("../../dashboard/figures.js")),
    ("view-jobs.js", "text/javascript; charset=utf-8", include_str!("../../dashboard/view-jobs.js")),
    ("view-job.js", "text/javascript; charset=utf-8", include_str!("../../dashboard/view-job.js")),
    ("view-monitors.js", "text/javascript; charset=utf-8", include_str!("../../dashboard/view-monitors.js")),
    ("view-history.js", "text/javascript; charset=utf-8", include_str!("../../dashboard/view-history.js")),
    ("view-distribution.js", "text/javascript; charset=utf-8", include_str!("../../dashboard/view-distribution.js")),
    ("view-compare.js", "text/javascript; charset=utf-8", include_str!("../../dashboard/view-compare.js")),
];

/// The deployment's live-progress socket (`WS_URL`), the one setting the page needs. Taken
/// from the state by itself so the page's handler does not depend on the store, queue and
/// files types.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LiveUrl(pub Option<String>);

impl<S, Q, E> FromRef<std::sync::Arc<AppState<S, Q, E>>> for LiveUrl {
    fn from_ref(state: &std::sync::Arc<AppState<S, Q, E>>) -> LiveUrl {
        LiveUrl(state.settings.ws_url.clone())
    }
}

/// The page as served, and the policy that goes with it.
#[derive(Clone, Debug)]
struct Rendered {
    live: LiveUrl,
    html: String,
    policy: String,
}

/// The page with its placeholders filled: the API's base path (relative: the page may be
/// served under a prefix) and the socket's URL (empty without one: the page then polls).
fn render(live: &LiveUrl) -> Rendered {
    let socket = live.0.as_deref().and_then(socket_origin);
    if let (Some(url), None) = (&live.0, &socket) {
        tracing::warn!(ws_url = %url, "WS_URL is not a ws:// or wss:// URL: the dashboard polls for progress instead");
    }
    let ws_url = if socket.is_some() { live.0.as_deref().unwrap_or("") } else { "" };
    let html = TEMPLATE
        .replace("{{BASE_PATH}}", domain::paths::BASE_PATH.trim_start_matches('/'))
        .replace("{{WS_URL}}", &escape_html(ws_url));
    let policy = content_security_policy(&html, socket.as_deref());
    Rendered { live: live.clone(), html, policy }
}

/// Rendered once per process: a deployment's `WS_URL` does not change while it runs. (Tests
/// build apps with other URLs in one process; those are rendered for each request.)
fn rendered(live: &LiveUrl) -> std::borrow::Cow<'static, Rendered> {
    static PAGE: OnceLock<Rendered> = OnceLock::new();
    let cached = PAGE.get_or_init(|| render(live));
    if &cached.live == live { std::borrow::Cow::Borrowed(cached) } else { std::borrow::Cow::Owned(render(live)) }
}

pub async fn page(State(live): State<LiveUrl>) -> Response {
    let page = rendered(&live);
    let mut response = page.html.clone().into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if let Ok(policy) = HeaderValue::from_str(&page.policy) {
        headers.insert(header::CONTENT_SECURITY_POLICY, policy);
    }
    response
}

/// `GET /dashboard/{file}`: one of the page's files, revalidated on every load (`no-cache`)
/// against a strong ETag of its content. An ETag rather than a hash in the file's URL: the
/// scripts import each other by relative specifiers, which a hashed URL would have to
/// rewrite inside the scripts (or map with an import map, one more inline script); with
/// `no-cache` a new deployment is seen on the next load and an unchanged file costs a
/// bodiless 304.
pub async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Result<Response, ApiError> {
    let (content_type, body, etag) = asset_of(&file)
        .ok_or_else(|| ApiError::NotFound(format!("no dashboard file {file:?} (there are {})", asset_names())))?;
    let etag = HeaderValue::from_str(etag).map_err(|e| ApiError::Internal(domain::Error::Corrupt(e.to_string())))?;
    let fresh = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|candidate| candidate.trim() == etag);
    let common = [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::ETAG, etag),
    ];
    if fresh {
        return Ok((StatusCode::NOT_MODIFIED, common).into_response());
    }
    Ok((common, [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))], body).into_response())
}

/// A file's type, content and ETag (worked out once per process).
fn asset_of(file: &str) -> Option<(&'static str, &'static str, &'static str)> {
    static ETAGS: OnceLock<Vec<String>> = OnceLock::new();
    let etags =
        ETAGS.get_or_init(|| ASSETS.iter().map(|(_, _, body)| format!("\"{}\"", etag_of(body.as_bytes()))).collect());
    let at = ASSETS.iter().position(|(name, _, _)| *name == file)?;
    let (_, content_type, body) = ASSETS[at];
    Some((content_type, body, etags[at].as_str()))
}

fn etag_of(body: &[u8]) -> String {
    hex::encode(&Sha256::digest(body)[..16])
}

fn asset_names() -> String {
    ASSETS.iter().map(|(name, _, _)| *name).collect::<Vec<_>>().join(", ")
}

/// Only the page's own files and its one inline script (by hash) run, with no style
/// attributes or inline styles; it talks only to its own origin and the live-progress
/// socket's; no other site may frame it.
fn content_security_policy(html: &str, socket: Option<&str>) -> String {
    let scripts = hashes(html, "<script", "</script>");
    let connect = match socket {
        Some(origin) => format!("'self' {origin}"),
        None => "'self'".to_owned(),
    };
    format!(
        "default-src 'none'; script-src 'self' {scripts}; style-src 'self'; connect-src {connect}; \
         img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
}

/// The origin (`scheme://host[:port]`) a policy allows for the socket's URL; `None` for
/// anything but a ws:// or wss:// URL with a host.
fn socket_origin(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url.trim()).ok()?;
    if !matches!(parsed.scheme(), "ws" | "wss") {
        return None;
    }
    let host = match parsed.host()? {
        url::Host::Ipv6(address) => format!("[{address}]"),
        host => host.to_string(),
    };
    Some(match parsed.port() {
        Some(port) => format!("{}://{host}:{port}", parsed.scheme()),
        None => format!("{}://{host}", parsed.scheme()),
    })
}

/// Text made safe inside an HTML attribute value.
fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
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
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;
    use crate::test_app::{app, store};

    fn live(url: &str) -> LiveUrl {
        LiveUrl(Some(url.to_owned()))
    }

    async fn fetch(path: &str, if_none_match: Option<&str>) -> (StatusCode, HeaderMap, String) {
        let app = app(store().await);
        let mut request = Request::builder().uri(path);
        if let Some(tag) = if_none_match {
            request = request.header(header::IF_NONE_MATCH, tag);
        }
        let response = app.oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
        let (status, headers) = (response.status(), response.headers().clone());
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, headers, String::from_utf8(body.to_vec()).unwrap())
    }

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
    fn the_page_is_markup_and_one_loader_the_policy_allows_by_hash() {
        let page = render(&LiveUrl(None));
        let html = &page.html;
        assert!(!html.contains("{{"), "every placeholder is filled");
        assert_eq!(html.matches("<script").count(), 1, "one inline script, the loader");
        assert!(!html.contains("<style"), "styles are in styles.css");
        assert!(!html.contains(" style="), "a style attribute would be blocked by style-src 'self'");
        assert!(html.contains("<meta name=\"speedbatch-api\" content=\"api/v1/batch-processing\">"));
        assert!(html.contains("<meta name=\"speedbatch-ws\" content=\"\">"));
        // The loader names the two files the page starts from; app.js imports the others.
        for file in ["dashboard/styles.css", "dashboard/app.js"] {
            assert!(html.contains(file), "the page does not load {file}");
        }
        let script = &html[html.find("<script>").unwrap() + 8..html.find("</script>").unwrap()];
        let hash = format!("'sha256-{}'", base64(&Sha256::digest(script.as_bytes())));
        assert!(page.policy.contains(&format!("script-src 'self' {hash};")), "{}", page.policy);
    }

    /// The specifiers a script imports (`import { … } from './x.js';`).
    fn imports(script: &str) -> Vec<&str> {
        script
            .match_indices("} from '")
            .filter_map(|(at, marker)| {
                let rest = &script[at + marker.len()..];
                rest.find('\'').map(|end| &rest[..end])
            })
            .collect()
    }

    #[test]
    fn every_script_is_served_and_imported_relatively_from_app_js() {
        let scripts: Vec<&str> = ASSETS.iter().map(|(name, _, _)| *name).filter(|name| name.ends_with(".js")).collect();
        let mut imported = std::collections::HashSet::new();
        for (name, _, body) in ASSETS {
            for specifier in imports(body) {
                let file = specifier.strip_prefix("./").unwrap_or_else(|| panic!("{name} imports {specifier:?}"));
                assert!(scripts.contains(&file), "{name} imports {file}, which is not served");
                imported.insert(file);
            }
            assert!(!body.contains("{{"), "{name} holds a placeholder only index.html gets filled");
            assert!(!body.contains("eval(") && !body.contains("new Function"), "{name} needs 'unsafe-eval'");
        }
        // index.html loads app.js; every other script is reached from it.
        assert!(!imported.contains("app.js"), "app.js is the entry, not a module another imports");
        for script in scripts.iter().filter(|name| **name != "app.js") {
            assert!(imported.contains(script), "no script imports {script}: it is served but never loaded");
        }
        let (_, api, _) = asset_of("api.js").unwrap();
        assert!(api.contains("meta('speedbatch-api')") && api.contains("meta('speedbatch-ws')"));
    }

    #[test]
    fn the_policy_is_strict_and_lets_the_page_reach_its_socket() {
        for url in [None, Some("ws://127.0.0.1:4566/_aws/execute-api/abcd1234/live")] {
            let policy = render(&LiveUrl(url.map(str::to_owned))).policy;
            assert!(!policy.contains("unsafe-inline") && !policy.contains("unsafe-eval"), "{policy}");
            assert!(policy.contains("style-src 'self';") && policy.contains("default-src 'none'"), "{policy}");
            assert!(!policy.contains("http"), "no other site, no CDN: {policy}");
        }
        let local = render(&live("ws://127.0.0.1:4566/_aws/execute-api/abcd1234/live"));
        assert!(local.policy.contains("connect-src 'self' ws://127.0.0.1:4566;"), "{}", local.policy);
        assert!(
            local.html.contains(
                "<meta name=\"speedbatch-ws\" content=\"ws://127.0.0.1:4566/_aws/execute-api/abcd1234/live\">"
            )
        );
        let aws = render(&live("wss://xyz.execute-api.eu-west-1.amazonaws.com/live"));
        assert!(
            aws.policy.contains("connect-src 'self' wss://xyz.execute-api.eu-west-1.amazonaws.com;"),
            "{}",
            aws.policy
        );
    }

    #[test]
    fn a_socket_url_is_escaped_and_anything_but_ws_is_left_out() {
        assert_eq!(socket_origin("wss://[::1]:8443/live?x=1"), Some("wss://[::1]:8443".to_owned()));
        assert_eq!(socket_origin("wss://h.example:443/live"), Some("wss://h.example".to_owned()), "default port");
        for bad in ["https://h.example/live", "javascript:alert(1)", "ws://", "not a url", ""] {
            assert_eq!(socket_origin(bad), None, "{bad}");
            let page = render(&live(bad));
            assert!(page.html.contains("<meta name=\"speedbatch-ws\" content=\"\">"), "{bad}: the page polls");
            assert!(page.policy.contains("connect-src 'self';"), "{bad}: {}", page.policy);
        }
        let odd = render(&live("wss://h.example/live?a=\"><script>x</script>&b='"));
        assert!(
            odd.html
                .contains("content=\"wss://h.example/live?a=&quot;&gt;&lt;script&gt;x&lt;/script&gt;&amp;b=&#39;\""),
            "escaped as an attribute value"
        );
        assert_eq!(odd.html.matches("<script").count(), 1, "no markup gets in");
    }

    #[tokio::test]
    async fn the_page_is_served_with_its_policy() {
        let (status, headers, body) = fetch("/", None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        let policy = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert_eq!(policy, render(&LiveUrl(None)).policy, "the test app has no WS_URL");
        assert!(body.contains("id=\"api-key\""));
    }

    #[tokio::test]
    async fn the_page_is_given_the_deployments_socket() {
        let url = "wss://xyz.execute-api.eu-west-1.amazonaws.com/live";
        let settings = crate::ApiSettings { ws_url: Some(url.to_owned()), ..crate::test_app::settings() };
        let state = AppState {
            store: store().await,
            queue: aws::queue::MemoryQueue::new(),
            exports: aws::exports::MemoryExports::default(),
            settings,
        };
        let request = Request::builder().uri("/").body(Body::empty()).unwrap();
        let response = crate::app(state).oneshot(request).await.unwrap();
        let policy = response.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().to_owned();
        assert!(policy.contains("connect-src 'self' wss://xyz.execute-api.eu-west-1.amazonaws.com;"), "{policy}");
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let html = String::from_utf8(body.to_vec()).unwrap();
        assert!(html.contains(&format!("<meta name=\"speedbatch-ws\" content=\"{url}\">")));
    }

    #[tokio::test]
    async fn every_file_is_served_with_its_type_and_revalidated_by_etag() {
        for (name, content_type, content) in ASSETS {
            let (status, headers, body) = fetch(&format!("/dashboard/{name}"), None).await;
            assert_eq!(status, StatusCode::OK, "{name}");
            assert_eq!(headers[header::CONTENT_TYPE], content_type, "{name}");
            assert_eq!(headers[header::CACHE_CONTROL], "no-cache", "{name}");
            assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{name}");
            assert_eq!(body, content, "{name}");
            let etag = headers[header::ETAG].to_str().unwrap().to_owned();
            assert_eq!(etag, format!("\"{}\"", etag_of(content.as_bytes())), "{name}");
            let (again, headers, body) = fetch(&format!("/dashboard/{name}"), Some(&format!("\"x\", {etag}"))).await;
            assert_eq!((again, body.as_str()), (StatusCode::NOT_MODIFIED, ""), "{name}");
            assert_eq!(headers[header::ETAG].to_str().unwrap(), etag);
            let (changed, _, _) = fetch(&format!("/dashboard/{name}"), Some("\"an older one\"")).await;
            assert_eq!(changed, StatusCode::OK, "{name}");
        }
        let etags: std::collections::HashSet<_> = ASSETS.iter().map(|(_, _, body)| etag_of(body.as_bytes())).collect();
        assert_eq!(etags.len(), ASSETS.len(), "each file its own ETag");
    }

    #[tokio::test]
    async fn other_names_are_not_files() {
        for name in ["index.html", "..%2Fsrc%2Flib.rs", "app.js.map", "APP.JS"] {
            let (status, headers, body) = fetch(&format!("/dashboard/{name}"), None).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{name}");
            assert_eq!(headers[header::CONTENT_TYPE], "application/json", "{name}");
            assert!(body.contains("no dashboard file") && body.contains("app.js, live.js"), "{name}: {body}");
        }
    }
}

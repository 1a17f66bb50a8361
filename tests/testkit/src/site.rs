//! A small local web site for the analyzer to measure: pages, a missing page and a redirect,
//! served on 127.0.0.1 at a free port, counting the requests it answers (and keeping when each
//! came) and how many of its held pages were requested at once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;

pub struct Site {
    pub addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    visits: Arc<std::sync::Mutex<Vec<Visit>>>,
    held: Arc<Gauge>,
    hooks: Arc<std::sync::Mutex<Vec<Hook>>>,
    delays: Delays,
    _server: tokio::task::JoinHandle<()>,
}

/// Requests to `/held/{n}` in flight now and at most so far.
#[derive(Default)]
struct Gauge {
    now: AtomicUsize,
    max: AtomicUsize,
}

/// One request the site answered.
#[derive(Clone, Debug)]
pub struct Visit {
    pub at: std::time::Instant,
    pub path: String,
    pub status: u16,
}

/// How many seconds `/busy/{n}` asks for with its one `429`.
pub const BUSY_RETRY_AFTER_SECONDS: u64 = 5;

/// The first request to any `/busy/{n}` page is told to come back later (`429` with
/// `Retry-After`); every later one gets the page.
async fn busy(State(told): State<Arc<std::sync::atomic::AtomicBool>>, Path(n): Path<u32>) -> axum::response::Response {
    if told.swap(true, Ordering::SeqCst) {
        return page(n).into_response();
    }
    let retry_after = BUSY_RETRY_AFTER_SECONDS.to_string();
    (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, retry_after)], "slow down").into_response()
}

/// A POST the site's `/hook` received: a job callback.
#[derive(Clone, Debug)]
pub struct Hook {
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

async fn hook(
    State(hooks): State<Arc<std::sync::Mutex<Vec<Hook>>>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    hooks.lock().unwrap_or_else(|p| p.into_inner()).push(Hook { headers, body: body.to_vec() });
    StatusCode::NO_CONTENT
}

/// How long each `/tunable/{n}` page waits before answering, as the test last set it.
type Delays = Arc<std::sync::Mutex<std::collections::HashMap<u32, std::time::Duration>>>;

async fn tunable(State(delays): State<Delays>, Path(n): Path<u32>) -> impl IntoResponse {
    let delay = delays.lock().unwrap_or_else(|p| p.into_inner()).get(&n).copied();
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    page(n)
}

/// How long `/held/{n}` holds each request open.
const HOLD: std::time::Duration = std::time::Duration::from_millis(40);

async fn held(State(gauge): State<Arc<Gauge>>, Path(n): Path<u32>) -> impl IntoResponse {
    let now = gauge.now.fetch_add(1, Ordering::SeqCst) + 1;
    gauge.max.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(HOLD).await;
    gauge.now.fetch_sub(1, Ordering::SeqCst);
    page(n)
}

impl Site {
    /// Starts the site on 127.0.0.1 on the current runtime.
    pub async fn start() -> Site {
        Self::start_on(std::net::Ipv4Addr::LOCALHOST.into()).await
    }

    /// Starts the site on `ip` (another loopback address lets a test exempt the site alone
    /// from the address policy).
    pub async fn start_on(ip: std::net::IpAddr) -> Site {
        let hits = Arc::new(AtomicUsize::new(0));
        let visits = Arc::new(std::sync::Mutex::new(Vec::new()));
        let gauge = Arc::new(Gauge::default());
        let busy_pages = Router::new().route("/busy/{n}", get(busy)).with_state(Arc::default());
        let held_pages = Router::new().route("/held/{n}", get(held)).with_state(gauge.clone());
        let delays = Delays::default();
        let tunable_pages = Router::new().route("/tunable/{n}", get(tunable)).with_state(delays.clone());
        let hooks = Arc::new(std::sync::Mutex::new(Vec::new()));
        let hook_route = Router::new()
            .route("/hook", axum::routing::post(hook))
            .route("/hook/down", axum::routing::post(|| async { StatusCode::SERVICE_UNAVAILABLE }))
            // A callback URL that sends its caller on: a signed body must not follow it.
            .route("/hook/moved", axum::routing::post(|| async { Redirect::temporary("/hook") }))
            // A callback URL that takes the request and never answers (a dead tenant endpoint).
            .route(
                "/hook/hang",
                axum::routing::post(|| async {
                    tokio::time::sleep(std::time::Duration::from_secs(3_600)).await;
                    StatusCode::NO_CONTENT
                }),
            )
            .with_state(hooks.clone());
        let app = Router::new()
            .route("/", get(|| async { page(0) }))
            .route("/page/{n}", get(|Path(n): Path<u32>| async move { page(n) }))
            .route("/missing", get(|| async { (StatusCode::NOT_FOUND, "no such page") }))
            .route("/lab/busy", get(|| async { html(lab_busy()) }))
            .route("/lab/hero.svg", get(|| async { ([(header::CONTENT_TYPE, "image/svg+xml")], hero_svg()) }))
            .route(
                "/lab/fetches",
                get(|axum::extract::RawQuery(query): axum::extract::RawQuery| async move {
                    html(lab_fetches(query.as_deref().unwrap_or_default()))
                }),
            )
            .route("/moved", get(|| async { Redirect::permanent("/page/1") }))
            .route(
                "/redirect",
                get(|axum::extract::Query(to): axum::extract::Query<std::collections::HashMap<String, String>>| async move {
                    Redirect::temporary(to.get("to").map_or("/", String::as_str))
                }),
            )
            .route("/broken", get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "try later") }))
            .route(
                "/slow/{n}",
                get(|Path(n): Path<u32>| async move {
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    page(n)
                }),
            )
            .route("/sitemap.xml", get(|| async { xml(urlset(&["/page/1", "/page/2", "/page/2", "/missing"])) }))
            .route("/sitemap-more.xml.gz", get(|| async { gzip(urlset(&["/page/3", "/page/4"]).as_bytes()) }))
            .route(
                "/sitemap-index.xml",
                get(|| async { xml(index(&["/sitemap.xml", "/sitemap-more.xml.gz", "/sitemap-index.xml"])) }),
            )
            .route("/deep/{n}", get(|Path(n): Path<u32>| async move { xml(index(&[&format!("/deep/{}", n + 1)])) }))
            .route("/bomb.xml.gz", get(|| async { gzip(&vec![b' '; 60 * 1024 * 1024]) }))
            .merge(held_pages)
            .merge(busy_pages)
            .merge(tunable_pages)
            .merge(hook_route)
            .layer(axum::middleware::from_fn_with_state((hits.clone(), visits.clone()), count))
            .with_state(());
        let listener = tokio::net::TcpListener::bind((ip, 0)).await.expect("bind the local site");
        let addr = listener.local_addr().expect("local site address");
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("local site stopped");
        });
        Site { addr, hits, visits, held: gauge, hooks, delays, _server: server }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Every request answered so far, in the order they were answered.
    pub fn visits(&self) -> Vec<Visit> {
        self.visits.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The callbacks `/hook` has received so far.
    pub fn hooks(&self) -> Vec<Hook> {
        self.hooks.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Makes `/tunable/{n}` answer after `delay` from now on (zero: at once again): a page
    /// that got slower, or was fixed, between two runs.
    pub fn set_delay(&self, n: u32, delay: std::time::Duration) {
        self.delays.lock().unwrap_or_else(|p| p.into_inner()).insert(n, delay);
    }

    /// The most requests to `/held/{n}` (pages held open for 40 ms) that were in flight at
    /// the same moment: what a concurrency cap is measured by.
    pub fn max_concurrent(&self) -> usize {
        self.held.max.load(Ordering::SeqCst)
    }
}

type Traffic = (Arc<AtomicUsize>, Arc<std::sync::Mutex<Vec<Visit>>>);

async fn count(
    State((hits, visits)): State<Traffic>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    hits.fetch_add(1, Ordering::SeqCst);
    let (at, path) = (std::time::Instant::now(), request.uri().path().to_owned());
    let response = next.run(request).await;
    let visit = Visit { at, path, status: response.status().as_u16() };
    visits.lock().unwrap_or_else(|p| p.into_inner()).push(visit);
    response
}

fn xml(body: String) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/xml")], body)
}

/// Sitemap documents with site-relative locations (resolved against the sitemap's URL).
fn urlset(paths: &[&str]) -> String {
    let urls: String = paths.iter().map(|p| format!("<url><loc>{p}</loc></url>")).collect();
    format!(r#"<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>"#)
}

fn index(paths: &[&str]) -> String {
    let maps: String = paths.iter().map(|p| format!("<sitemap><loc>{p}</loc></sitemap>")).collect();
    format!(
        r#"<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{maps}</sitemapindex>"#
    )
}

fn gzip(bytes: &[u8]) -> impl IntoResponse + use<> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("gzip in memory");
    ([(header::CONTENT_TYPE, "application/gzip")], encoder.finish().expect("gzip in memory"))
}

fn page(n: u32) -> impl IntoResponse {
    let body = format!(
        "<!doctype html><html><head><title>Page {n}</title></head><body><h1>Page {n}</h1>{}</body></html>",
        "<p>Lorem ipsum dolor sit amet.</p>".repeat(50)
    );
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "max-age=60")], body)
}

fn html(body: String) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body)
}

/// A picture with enough in it to count as contentful: Chrome leaves images of under 0.05 bits
/// per pixel (a flat colour) out of the largest contentful paint.
fn hero_svg() -> String {
    let circles: String = (0u32..400)
        .map(|i| {
            let (x, y, r) = (i * 37 % 800, i * 91 % 600, 5 + i * 13 % 40);
            format!(
                r##"<circle cx="{x}" cy="{y}" r="{r}" fill="#{:06x}"/>"##,
                i.wrapping_mul(2_654_435_761) & 0xff_ffff
            )
        })
        .collect();
    format!(r#"<svg xmlns="http://www.w3.org/2000/svg" width="800" height="600">{circles}</svg>"#)
}

/// A page for the browser engine with something for every lab metric: a main-thread task of
/// 300 ms started once the first contentful paint is seen (blocking time, whatever the
/// machine's speed), a large image inserted late (the largest paint, and a layout shift as it
/// pushes the text down).
fn lab_busy() -> String {
    format!(
        r#"<!doctype html><html><head><title>Busy</title><meta name="viewport" content="width=device-width"></head>
<body><h1>A busy page</h1><div id="slot"></div>{text}
<script>
// The task waits for the first contentful paint, so all of it counts as blocking time.
new PerformanceObserver((list) => {{
  if (list.getEntries().some((e) => e.name === 'first-contentful-paint')) {{
    setTimeout(() => {{ const until = performance.now() + 300; while (performance.now() < until) {{}} }}, 50);
  }}
}}).observe({{ type: 'paint', buffered: true }});
setTimeout(() => {{
  const img = document.createElement('img');
  img.src = '/lab/hero.svg'; img.id = 'hero'; img.width = 800; img.height = 600;
  document.getElementById('slot').appendChild(img);
}}, 500);
</script></body></html>"#,
        text = "<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit.</p>".repeat(20)
    )
}

/// A page whose script and markup ask for every `to` of the query (`?to=URL&to=URL`): what a
/// hostile page would do to reach addresses the service must not.
fn lab_fetches(query: &str) -> String {
    let targets: Vec<String> = url::form_urlencoded::parse(query.as_bytes())
        .filter(|(name, _)| name == "to")
        .map(|(_, value)| value.into_owned())
        .collect();
    let list = serde_json::to_string(&targets).unwrap_or_else(|_| "[]".into());
    let images: String = targets.iter().map(|t| format!(r#"<img alt="" src="{}">"#, t.replace('"', "%22"))).collect();
    format!(
        r#"<!doctype html><html><head><title>Fetches</title></head><body><h1>Reaching out</h1>{images}
<script>for (const to of {list}) {{ fetch(to, {{mode: 'no-cors'}}).catch(() => {{}}); }}</script></body></html>"#
    )
}

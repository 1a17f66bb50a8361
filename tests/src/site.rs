//! A small local web site for the analyzer to measure: pages, a missing page and a redirect,
//! served on 127.0.0.1 at a free port, counting the requests it answers.

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
    _server: tokio::task::JoinHandle<()>,
}

impl Site {
    /// Starts the site on the current runtime.
    pub async fn start() -> Site {
        let hits = Arc::new(AtomicUsize::new(0));
        let app = Router::new()
            .route("/", get(|| async { page(0) }))
            .route("/page/{n}", get(|Path(n): Path<u32>| async move { page(n) }))
            .route("/missing", get(|| async { (StatusCode::NOT_FOUND, "no such page") }))
            .route("/moved", get(|| async { Redirect::permanent("/page/1") }))
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
            .layer(axum::middleware::from_fn_with_state(hits.clone(), count))
            .with_state(());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the local site");
        let addr = listener.local_addr().expect("local site address");
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("local site stopped");
        });
        Site { addr, hits, _server: server }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

async fn count(
    State(hits): State<Arc<AtomicUsize>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    hits.fetch_add(1, Ordering::SeqCst);
    next.run(request).await
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

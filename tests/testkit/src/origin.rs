//! Local origin servers for the http engine's tests: a hyper site (HTTP/1.1 and, over TLS,
//! HTTP/2), a raw TCP server for responses hyper would refuse to produce, and a throwaway CA.

use std::convert::Infallible;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode, Version, header};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use url::Url;

use engine::http::probe::{AddressCheck, ProbeConfig};

pub type Body = UnsyncBoxBody<Bytes, Infallible>;

pub const BROTLI_PAGE: &[u8] = include_bytes!("../../fixtures/probe/page.html.br");
pub const PLAIN_PAGE: &[u8] = include_bytes!("../../fixtures/probe/page.html");
pub const FINAL_HTML: &str = "<html><body>final</body></html>";

pub fn allow_all() -> impl AddressCheck {
    |_: IpAddr| Ok(())
}

pub fn refuse_loopback() -> impl AddressCheck {
    |ip: IpAddr| {
        if ip.is_loopback() { Err("loopback address blocked by policy".to_owned()) } else { Ok(()) }
    }
}

pub fn config() -> ProbeConfig {
    ProbeConfig { body_idle_timeout: Duration::from_millis(300), ..ProbeConfig::default() }
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

pub fn zlib(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// 32 MiB of zeros as gzip: a few tens of KB on the wire.
pub fn bomb() -> &'static [u8] {
    static BOMB: OnceLock<Vec<u8>> = OnceLock::new();
    BOMB.get_or_init(|| gzip(&vec![0u8; 32 * 1024 * 1024]))
}

#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub version: Version,
    pub headers: HeaderMap,
}

pub struct Server {
    pub addr: SocketAddr,
    scheme: &'static str,
    connections: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        // The accept loop owns the connection tasks (a JoinSet), so this stops them all.
        self.task.abort();
    }
}

impl Server {
    pub fn url(&self, path: &str) -> Url {
        Url::parse(&format!("{}://{}{path}", self.scheme, self.addr)).unwrap()
    }

    pub fn url_with_host(&self, host: &str, path: &str) -> Url {
        Url::parse(&format!("{}://{host}:{}{path}", self.scheme, self.addr.port())).unwrap()
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn paths(&self) -> Vec<String> {
        self.seen().into_iter().map(|s| s.path).collect()
    }
}

/// The test site on `ip` (127.0.0.1 unless a test needs a second loopback address).
pub async fn site(ip: &str, tls: Option<Arc<rustls::ServerConfig>>) -> Server {
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let connections = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let origin = format!("{scheme}://{addr}");
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let task = {
        let connections = connections.clone();
        let seen = seen.clone();
        tokio::spawn(async move {
            let mut tasks = JoinSet::new();
            loop {
                let Ok((tcp, _)) = listener.accept().await else { continue };
                connections.fetch_add(1, Ordering::SeqCst);
                let seen = seen.clone();
                let origin = origin.clone();
                let acceptor = acceptor.clone();
                tasks.spawn(async move {
                    let service = service_fn(move |request: Request<Incoming>| {
                        seen.lock().unwrap().push(Seen {
                            path: request.uri().path().to_owned(),
                            version: request.version(),
                            headers: request.headers().clone(),
                        });
                        let origin = origin.clone();
                        async move { Ok::<_, Infallible>(route(request, &origin).await) }
                    });
                    let builder = auto::Builder::new(TokioExecutor::new());
                    match acceptor {
                        Some(acceptor) => {
                            if let Ok(tls) = acceptor.accept(tcp).await {
                                let _ = builder.serve_connection(TokioIo::new(tls), service).await;
                            }
                        }
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
                        }
                    }
                });
            }
        })
    };
    Server { addr, scheme, connections, seen, task }
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

fn respond(status: u16, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Response<Body> {
    let mut builder = Response::builder().status(status);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(full(body)).unwrap()
}

fn html(body: impl Into<Bytes>) -> Response<Body> {
    respond(200, &[("content-type", "text/html; charset=utf-8")], body)
}

fn redirect(status: u16, location: &str) -> Response<Body> {
    respond(status, &[("location", location)], "moved")
}

fn encoded(body: impl Into<Bytes>, encoding: &str) -> Response<Body> {
    respond(200, &[("content-type", "text/html"), ("content-encoding", encoding)], body)
}

pub const SUBRESOURCE_PAGE: &str = r#"<!doctype html>
<html><head>
<title>Shop</title>
<link rel="stylesheet" href="/static/main.css">
<link rel="stylesheet" href="/static/print.css" media="print">
<link rel="preload" as="font" href="/static/font.woff2" crossorigin>
<script src="/static/app.js"></script>
<script async src="/static/analytics.js"></script>
<script defer src="static/defer.js"></script>
<link rel="icon" href="/static/favicon.ico">
</head><body>
<img src="/static/hero.jpg" alt="">
<img src="/static/missing.png" alt="">
<img srcset="/static/small.webp 480w, /static/large.webp 1080w" alt="">
<iframe src="/static/frame.html"></iframe>
<video poster="/static/poster.jpg"></video>
<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">
</body></html>"#;

/// A page whose subresources point at the metadata service, loopback and a name for it; only
/// its own stylesheet is on the site.
pub const HOSTILE_PAGE: &str = r#"<!doctype html><html><head>
<link rel="stylesheet" href="/static/main.css">
<script src="http://169.254.169.254/latest/meta-data/iam.js"></script>
<link rel="stylesheet" href="http://127.0.0.1/admin.css">
<link rel="stylesheet" href="http://localhost/private.css">
</head><body><img src="http://[::1]/x.png"></body></html>"#;

pub fn analytics_source() -> Vec<u8> {
    b"window.track=function(){};".repeat(80)
}

async fn route(request: Request<Incoming>, origin: &str) -> Response<Body> {
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or_default().to_owned();
    let param = |name: &str| {
        url::form_urlencoded::parse(query.as_bytes()).find(|(key, _)| key == name).map(|(_, value)| value.into_owned())
    };
    match path.as_str() {
        "/chain/start" => redirect(301, "/chain/two"),
        "/chain/two" => redirect(302, &format!("{origin}/chain/final")),
        "/chain/final" | "/same/two" => html(FINAL_HTML),
        "/same/one" => redirect(302, "/same/two"),
        "/close-redirect" => respond(302, &[("location", "/chain/final"), ("connection", "close")], "moved"),
        "/redirect" => {
            let status = param("status").and_then(|s| s.parse().ok()).unwrap_or(302);
            redirect(status, &param("to").unwrap_or_default())
        }
        "/loop" => redirect(302, "/loop"),
        "/no-location" => respond(302, &[], "no location"),
        "/empty-location" => respond(301, &[("location", "")], "empty location"),
        "/slow-head" => {
            tokio::time::sleep(Duration::from_millis(100)).await;
            html("slow head")
        }
        "/slow-body" => {
            let stream = futures::stream::unfold(0u8, |step| async move {
                match step {
                    0 => Some((Ok(Frame::data(Bytes::from_static(b"first"))), 1)),
                    1 => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        Some((Ok(Frame::data(Bytes::from_static(b"second"))), 2))
                    }
                    _ => None,
                }
            });
            Response::new(StreamBody::new(stream).boxed_unsync())
        }
        "/gzip" => encoded(gzip(PLAIN_PAGE), "gzip"),
        "/deflate" => encoded(zlib(PLAIN_PAGE), "deflate"),
        "/br" => encoded(BROTLI_PAGE, "br"),
        "/bomb" => encoded(bomb(), "gzip"),
        "/big" => html(vec![b'x'; 256 * 1024]),
        "/page" => html(SUBRESOURCE_PAGE),
        "/hostile" => html(HOSTILE_PAGE),
        "/page.gz" => respond(
            200,
            &[("content-type", "text/html"), ("content-encoding", "gzip")],
            gzip(SUBRESOURCE_PAGE.as_bytes()),
        ),
        "/cookies" => {
            let mut response = html(FINAL_HTML);
            for cookie in ["session=abcdef; Path=/; HttpOnly", "theme=dark; Max-Age=3600"] {
                response.headers_mut().append(header::SET_COOKIE, cookie.parse().unwrap());
            }
            response
        }
        "/static/main.css" => {
            respond(200, &[("content-type", "text/css"), ("cache-control", "max-age=31536000")], vec![b'c'; 3000])
        }
        "/static/print.css" => respond(200, &[("content-type", "text/css")], vec![b'p'; 500]),
        "/static/font.woff2" => respond(
            200,
            &[("content-type", "font/woff2"), ("cache-control", "public, max-age=31536000, immutable")],
            vec![0u8; 20_000],
        ),
        "/static/app.js" => {
            respond(200, &[("content-type", "text/javascript"), ("cache-control", "max-age=60")], vec![b'j'; 5000])
        }
        "/static/analytics.js" => respond(
            200,
            &[("content-type", "text/javascript"), ("content-encoding", "gzip")],
            gzip(&analytics_source()),
        ),
        "/static/defer.js" => respond(200, &[("content-type", "text/javascript")], vec![b'd'; 800]),
        "/static/favicon.ico" => respond(200, &[("content-type", "image/x-icon")], vec![1u8; 300]),
        "/static/hero.jpg" => {
            tokio::time::sleep(Duration::from_millis(150)).await;
            respond(200, &[("content-type", "image/jpeg"), ("cache-control", "max-age=2592000")], vec![2u8; 40_000])
        }
        "/static/small.webp" => respond(200, &[("content-type", "image/webp")], vec![3u8; 10_000]),
        "/static/frame.html" => html(vec![b'f'; 600]),
        "/static/poster.jpg" => respond(200, &[("content-type", "image/jpeg")], vec![4u8; 7000]),
        _ => respond(StatusCode::NOT_FOUND.as_u16(), &[("content-type", "text/plain")], "not found"),
    }
}

/// What the raw server does after writing its response.
#[derive(Clone, Copy)]
pub enum After {
    Close,
    /// Keep the connection open without sending anything more.
    Stall,
    /// Keep the connection open, then close it without a word when the next request arrives:
    /// a keep-alive connection the server silently dropped.
    DropNextRequest,
}

/// Reads one request head; its path.
pub async fn read_head(tcp: &mut tokio::net::TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match tcp.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&head);
    Some(text.split_whitespace().nth(1).unwrap_or_default().to_owned())
}

/// Answers one request per connection with `respond(path)`, written verbatim.
pub async fn raw(respond: fn(&str) -> Vec<u8>, after: After) -> Server {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let task = {
        let connections = connections.clone();
        let seen = seen.clone();
        tokio::spawn(async move {
            let mut tasks = JoinSet::new();
            loop {
                let Ok((mut tcp, _)) = listener.accept().await else { continue };
                connections.fetch_add(1, Ordering::SeqCst);
                let seen = seen.clone();
                tasks.spawn(async move {
                    let Some(path) = read_head(&mut tcp).await else { return };
                    seen.lock().unwrap().push(Seen {
                        path: path.clone(),
                        version: Version::HTTP_11,
                        headers: HeaderMap::new(),
                    });
                    let _ = tcp.write_all(&respond(&path)).await;
                    match after {
                        After::Close => {
                            let _ = tcp.shutdown().await;
                        }
                        After::Stall => tokio::time::sleep(Duration::from_secs(120)).await,
                        After::DropNextRequest => {
                            let _ = read_head(&mut tcp).await;
                        }
                    }
                });
            }
        })
    };
    Server { addr, scheme: "http", connections, seen, task }
}

/// A throwaway CA and a server certificate for localhost and 127.0.0.1 signed by it.
pub struct TestCa {
    pub root: CertificateDer<'static>,
    chain: Vec<CertificateDer<'static>>,
    key: Vec<u8>,
}

impl TestCa {
    pub fn generate() -> Self {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "speedbatch test CA");
        ca_params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&leaf_key, &*ca)
            .unwrap();
        Self {
            root: ca.der().clone(),
            chain: vec![leaf.der().clone(), ca.der().clone()],
            key: leaf_key.serialize_der(),
        }
    }

    pub fn server_config(&self, alpn: &[&[u8]]) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key.clone()));
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), key)
            .unwrap();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }

    pub fn probe_config(&self) -> ProbeConfig {
        ProbeConfig { extra_root_certs: vec![self.root.clone()], ..config() }
    }
}

pub fn header_of(seen: &Seen, name: header::HeaderName) -> String {
    seen.headers.get(name).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
}

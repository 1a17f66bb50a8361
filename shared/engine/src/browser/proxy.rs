//! The browser's only way out: a forward proxy on loopback, one per analysed page, through
//! which every request of the page goes (its browser context is created with this proxy and
//! without Chromium's implicit loopback bypass). The proxy resolves each host itself, checks
//! every address against the policy, and connects only to a checked one: request interception
//! in the browser could not promise that, since the browser would resolve the name again
//! (DNS rebinding). What it refuses is kept, and reported with the page's result.

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use domain::AddressPolicy;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use url::Url;

use crate::http::probe::{ProbeError, checked_addresses, connect_checked};
use crate::http::probe_error;
use domain::ErrorKind;

/// A request head larger than this is refused (Chromium's own limit is far above any real one).
const MAX_HEAD: usize = 64 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Marks the proxy's own refusal, so a refused document is told from a page's own 403.
pub const REFUSED_HEADER: &str = "x-speedbatch-refused";

/// A request the proxy did not forward: where it was going, why, and whether the policy
/// refused it (`Blocked`) or the address could not be reached (DNS, connection).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Refusal {
    pub url: String,
    pub reason: String,
    #[serde(skip)]
    pub kind: ErrorKind,
}

/// A running proxy; it stops, with every connection through it, when dropped.
pub struct Proxy {
    port: u16,
    refused: Arc<Mutex<Vec<Refusal>>>,
    _connections: JoinSet<()>,
}

/// At most this many refusals are kept for one page (a script in a loop could make millions).
pub const MAX_REFUSALS: usize = 50;

impl Proxy {
    /// Listens on a free loopback port and forwards what `policy` allows.
    pub async fn start(policy: AddressPolicy) -> io::Result<Proxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let port = listener.local_addr()?.port();
        let refused = Arc::new(Mutex::new(Vec::new()));
        let mut connections = JoinSet::new();
        let log = Arc::clone(&refused);
        connections.spawn(async move {
            let mut handlers = JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let log = Arc::clone(&log);
                handlers.spawn(async move {
                    let _ = forward(client, policy, &log).await;
                });
                // Finished handlers are reaped as new ones come, so the set stays small.
                while handlers.try_join_next().is_some() {}
            }
        });
        Ok(Proxy { port, refused, _connections: connections })
    }

    /// `--proxy-server`'s value for a browser context.
    pub fn address(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// What was refused so far, and how many in all (only the first [`MAX_REFUSALS`] are kept).
    pub fn refusals(&self) -> Vec<Refusal> {
        self.refused.lock().map(|list| list.clone()).unwrap_or_default()
    }
}

/// One client connection: a `CONNECT` tunnel, or one plain-HTTP request forwarded with
/// `Connection: close` (so every request is checked on its own: a kept-alive connection to
/// the proxy could otherwise carry a second request to another host through the first's).
async fn forward(mut client: TcpStream, policy: AddressPolicy, log: &Mutex<Vec<Refusal>>) -> io::Result<()> {
    let (head, rest) = match read_head(&mut client).await? {
        Some(read) => read,
        None => return respond(&mut client, "431 Request Header Fields Too Large", "request head too large").await,
    };
    let Some(request) = Head::parse(&head) else {
        return respond(&mut client, "400 Bad Request", "not an HTTP proxy request").await;
    };
    let target = match request.target() {
        Ok(url) => url,
        Err(reason) => return respond(&mut client, "400 Bad Request", &reason).await,
    };
    let shown = if request.is_connect() { format!("https://{}/", request.target) } else { target.to_string() };
    let connected = match checked_addresses(&target, &policy).await {
        Ok(addresses) => connect_checked(&addresses, CONNECT_TIMEOUT).await,
        Err(err) => Err(err),
    };
    let mut upstream = match connected {
        Ok(stream) => stream,
        Err(err) => {
            let status = if matches!(err, ProbeError::Blocked { .. }) { "403 Forbidden" } else { "502 Bad Gateway" };
            let failure = probe_error(err);
            if let Ok(mut list) = log.lock()
                && list.len() < MAX_REFUSALS
            {
                list.push(Refusal { url: shown, reason: failure.reason.clone(), kind: failure.kind });
            }
            return respond(&mut client, status, &failure.reason).await;
        }
    };
    if request.is_connect() {
        client.write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n").await?;
    } else {
        upstream.write_all(request.origin_form(&target).as_bytes()).await?;
    }
    upstream.write_all(&rest).await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await.map(|_| ())
}

/// Reads up to the end of the request head; `None` when it is too large. Returns the head and
/// whatever of the body came with it.
async fn read_head(client: &mut TcpStream) -> io::Result<Option<(String, Vec<u8>)>> {
    let mut buffer = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        let read = client.read(&mut chunk).await?;
        if read == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buffer.extend_from_slice(&chunk[..read]);
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buffer.split_off(end + 4);
            return Ok(Some((String::from_utf8_lossy(&buffer).into_owned(), rest)));
        }
        if buffer.len() > MAX_HEAD {
            return Ok(None);
        }
    }
}

async fn respond(client: &mut TcpStream, status: &str, reason: &str) -> io::Result<()> {
    let body = format!("{reason}\n");
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n{REFUSED_HEADER}: 1\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    );
    client.write_all(response.as_bytes()).await?;
    client.shutdown().await
}

/// A proxy request's head: its method, target (absolute URL, or `host:port` for CONNECT) and
/// header lines.
struct Head<'a> {
    method: &'a str,
    target: &'a str,
    headers: Vec<&'a str>,
}

/// Headers about the hop to the proxy, not meant for the server.
const HOP_HEADERS: [&str; 4] = ["proxy-connection", "connection", "keep-alive", "proxy-authorization"];

impl<'a> Head<'a> {
    fn parse(head: &'a str) -> Option<Head<'a>> {
        let mut lines = head.split("\r\n");
        let mut first = lines.next()?.split(' ');
        let (method, target, version) = (first.next()?, first.next()?, first.next()?);
        if !version.starts_with("HTTP/1.") || first.next().is_some() {
            return None;
        }
        Some(Head { method, target, headers: lines.filter(|l| !l.is_empty()).collect() })
    }

    fn is_connect(&self) -> bool {
        self.method.eq_ignore_ascii_case("CONNECT")
    }

    /// Where the request goes, as a URL the resolver checks.
    fn target(&self) -> Result<Url, String> {
        if self.is_connect() {
            // `host:port`, the only form CONNECT takes; the scheme only names the default port.
            return Url::parse(&format!("https://{}/", self.target))
                .ok()
                .filter(|url| url.host_str().is_some())
                .ok_or_else(|| format!("not a host and port: {}", self.target));
        }
        let url = Url::parse(self.target).map_err(|e| format!("not an absolute URL ({e}): {}", self.target))?;
        if url.scheme() != "http" {
            return Err(format!("only http is forwarded without CONNECT, not {}", url.scheme()));
        }
        Ok(url)
    }

    /// The request as the server is sent it: origin-form target, this hop's headers dropped,
    /// and `Connection: close`.
    fn origin_form(&self, target: &Url) -> String {
        let path = &target[url::Position::BeforePath..url::Position::AfterQuery];
        let mut out = format!("{} {path} HTTP/1.1\r\n", self.method);
        for line in &self.headers {
            let name = line.split(':').next().unwrap_or_default().trim().to_ascii_lowercase();
            if !HOP_HEADERS.contains(&name.as_str()) {
                out.push_str(line);
                out.push_str("\r\n");
            }
        }
        out.push_str("connection: close\r\n\r\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_request_reaches_the_server_in_origin_form_without_the_proxys_headers() {
        let raw = "GET http://a.example:8080/p/q?x=1 HTTP/1.1\r\nHost: a.example:8080\r\nProxy-Connection: \
                   keep-alive\r\nAccept: */*\r\n\r\n";
        let head = Head::parse(raw).unwrap();
        let target = head.target().unwrap();
        assert_eq!(
            head.origin_form(&target),
            "GET /p/q?x=1 HTTP/1.1\r\nHost: a.example:8080\r\nAccept: */*\r\nconnection: close\r\n\r\n"
        );
        let connect = Head::parse("CONNECT b.example:443 HTTP/1.1\r\nHost: b.example:443\r\n\r\n").unwrap();
        assert!(connect.is_connect());
        assert_eq!(connect.target().unwrap().as_str(), "https://b.example/");
        assert!(Head::parse("GET ftp://x/ HTTP/1.1\r\n\r\n").unwrap().target().is_err());
        assert!(Head::parse("nonsense\r\n\r\n").is_none());
    }

    #[tokio::test]
    async fn a_request_to_a_refused_address_is_answered_by_the_proxy_and_recorded() {
        let proxy = Proxy::start(AddressPolicy::STRICT).await.unwrap();
        let mut client = TcpStream::connect(("127.0.0.1", proxy.port)).await.unwrap();
        client
            .write_all(b"GET http://169.254.169.254/latest/meta-data/ HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        client.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 403 Forbidden"), "{answer}");
        assert!(answer.contains(REFUSED_HEADER), "{answer}");
        let refusals = proxy.refusals();
        assert_eq!(refusals.len(), 1);
        assert_eq!(refusals[0].url, "http://169.254.169.254/latest/meta-data/");
        assert!(refusals[0].reason.contains("blocked by policy"), "{:?}", refusals[0]);
        assert_eq!(refusals[0].kind, ErrorKind::Blocked);
    }
}

//! Pages that misbehave on purpose, spoken as raw HTTP so they can lie: a page that drips a
//! byte at a time, one that never ends, `Content-Length`s that lie both ways, and a server
//! that never answers. Served on the chaos stack's one exempt address.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

/// What each path does.
pub const PAGES: [(&str, &str); 6] = [
    ("/drip", "sends its body one byte every 500 ms, forever"),
    ("/endless", "sends 16 KB chunks as fast as it can, forever"),
    ("/lying-long-close", "says Content-Length 100 000, sends 100 bytes, closes"),
    ("/lying-long-silence", "says Content-Length 100 000, sends 100 bytes, then nothing (held 120 s)"),
    ("/lying-short", "says Content-Length 10, sends 5 000 bytes"),
    ("/no-answer", "reads the request and never answers (held 120 s)"),
];

pub struct HostileSite {
    pub addr: std::net::SocketAddr,
    connections: Arc<AtomicUsize>,
    _task: tokio::task::JoinHandle<()>,
}

const HOLD: Duration = Duration::from_secs(120);
const HTML_HEAD: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n";

impl HostileSite {
    pub async fn start(ip: IpAddr) -> Result<HostileSite, String> {
        let listener = TcpListener::bind((ip, 0)).await.map_err(|e| format!("bind the hostile site on {ip}: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut tcp, _)) = listener.accept().await else { continue };
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    if let Some(path) = testkit::origin::read_head(&mut tcp).await {
                        // A write error is the client giving up: that is what these pages test.
                        let _ = answer(&mut tcp, &path).await;
                    }
                });
            }
        });
        Ok(HostileSite { addr, connections, _task: task })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

async fn answer(tcp: &mut tokio::net::TcpStream, path: &str) -> std::io::Result<()> {
    let body = |n: usize| "<p>x</p>".repeat(n / 8 + 1).into_bytes()[..n].to_vec();
    match path {
        "/drip" => {
            tcp.write_all(format!("{HTML_HEAD}\r\n<html><body>").as_bytes()).await?;
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                tcp.write_all(b"x").await?;
            }
        }
        "/endless" => {
            tcp.write_all(format!("{HTML_HEAD}\r\n<html><body>").as_bytes()).await?;
            let chunk = body(16 * 1024);
            loop {
                tcp.write_all(&chunk).await?;
            }
        }
        "/lying-long-close" => {
            tcp.write_all(format!("{HTML_HEAD}Content-Length: 100000\r\n\r\n").as_bytes()).await?;
            tcp.write_all(&body(100)).await?;
            tcp.shutdown().await
        }
        "/lying-long-silence" => {
            tcp.write_all(format!("{HTML_HEAD}Content-Length: 100000\r\n\r\n").as_bytes()).await?;
            tcp.write_all(&body(100)).await?;
            tokio::time::sleep(HOLD).await;
            Ok(())
        }
        "/lying-short" => {
            tcp.write_all(format!("{HTML_HEAD}Content-Length: 10\r\n\r\n").as_bytes()).await?;
            tcp.write_all(&body(5000)).await?;
            tcp.shutdown().await
        }
        _ => {
            tokio::time::sleep(HOLD).await;
            Ok(())
        }
    }
}

//! `--watch` over the WebSocket API (SPEC §6.5): connect, send the subscribe message (the key
//! travels in it, never in the URL), then read the job's state as the server pushes it. Any
//! failure is reported to the caller, which polls instead: the socket is an optimisation, not
//! a dependency.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use url::Url;

/// How long connecting, and then the answer to the subscription, may take.
const HANDSHAKE: Duration = Duration::from_secs(10);
/// With no frame for this long the job is read once by HTTP and the socket dropped: API
/// Gateway closes idle connections after 10 minutes, and a stalled job pushes nothing.
const SILENCE: Duration = Duration::from_secs(300);

/// How a live watch ended.
#[derive(Debug)]
pub enum Ended {
    /// The job reached a final status: its last state.
    Finished(Value),
    /// The socket could not be used or went away: the reason, for one line of output.
    Lost(String),
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

async fn open(url: &Url) -> Result<Box<dyn Io>, String> {
    let host = url.host_str().ok_or_else(|| format!("{url} has no host"))?;
    let port = url.port_or_known_default().ok_or_else(|| format!("{url} has no port"))?;
    let tcp = TcpStream::connect((host, port)).await.map_err(|e| format!("connecting to {host}:{port}: {e}"))?;
    if url.scheme() != "wss" {
        return Ok(Box::new(tcp));
    }
    let config = net::tls::client_config(Vec::new(), &[b"http/1.1"])?;
    let name = rustls::pki_types::ServerName::try_from(host.to_owned()).map_err(|e| format!("{host}: {e}"))?;
    let tls = tokio_rustls::TlsConnector::from(config).connect(name, tcp).await.map_err(|e| format!("TLS: {e}"))?;
    Ok(Box::new(tls))
}

/// Follows job `id` at `ws_url`, calling `on_job` with every state pushed, until the job
/// finishes or the socket fails.
pub async fn follow(ws_url: &str, api_key: &str, id: &str, mut on_job: impl FnMut(&Value)) -> Ended {
    let url = match Url::parse(ws_url) {
        Ok(url) if matches!(url.scheme(), "ws" | "wss") => url,
        Ok(url) => return Ended::Lost(format!("{url} is not a ws:// or wss:// URL")),
        Err(e) => return Ended::Lost(format!("{ws_url:?} is not a URL: {e}")),
    };
    let connected = tokio::time::timeout(HANDSHAKE, async {
        let io = open(&url).await?;
        tokio_tungstenite::client_async(url.as_str(), io).await.map_err(|e| e.to_string())
    })
    .await;
    let mut socket = match connected {
        Ok(Ok((socket, _))) => socket,
        Ok(Err(reason)) => return Ended::Lost(reason),
        Err(_) => return Ended::Lost(format!("no connection within {} s", HANDSHAKE.as_secs())),
    };
    let subscribe = json!({"action": "subscribe", "api_key": api_key, "batch_job_id": id}).to_string();
    if let Err(e) = socket.send(Message::text(subscribe)).await {
        return Ended::Lost(e.to_string());
    }
    let mut subscribed = false;
    loop {
        let wait = if subscribed { SILENCE } else { HANDSHAKE };
        let frame = match tokio::time::timeout(wait, socket.next()).await {
            Err(_) if subscribed => return Ended::Lost(format!("nothing pushed for {} s", wait.as_secs())),
            Err(_) => return Ended::Lost("the subscription was not answered".into()),
            Ok(None) => return Ended::Lost("the server closed the connection".into()),
            Ok(Some(Err(e))) => return Ended::Lost(e.to_string()),
            Ok(Some(Ok(frame))) => frame,
        };
        let text = match frame {
            Message::Text(text) => text.to_string(),
            Message::Close(_) => return Ended::Lost("the server closed the connection".into()),
            // Pings are answered by the library; nothing else is sent.
            _ => continue,
        };
        let Ok(message) = serde_json::from_str::<Value>(&text) else { continue };
        match message["type"].as_str() {
            Some("subscribed") => subscribed = true,
            Some("progress") => {
                let job = &message["job"];
                on_job(job);
                if crate::finished(job) {
                    let _ = socket.close(None).await;
                    return Ended::Finished(job.clone());
                }
            }
            Some("error") => {
                return Ended::Lost(format!(
                    "{} ({})",
                    message["message"].as_str().unwrap_or("the subscription was refused"),
                    message["code"].as_str().unwrap_or("error")
                ));
            }
            _ => {}
        }
    }
}

//! A raw WebSocket client of the live-progress API (SPEC §6.5), for the end-to-end tests and
//! the bench: connects, subscribes, and keeps every frame with the moment it arrived.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// One frame received, and when (milliseconds since the epoch).
#[derive(Clone, Debug)]
pub struct Frame {
    pub at_ms: i64,
    pub body: Value,
}

pub struct Subscriber {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub frames: Vec<Frame>,
}

impl Subscriber {
    /// Connects to `ws_url` (ws:// only: the local stack's).
    pub async fn connect(ws_url: &str) -> Result<Subscriber, String> {
        let (socket, _) = tokio::time::timeout(Duration::from_secs(10), tokio_tungstenite::connect_async(ws_url))
            .await
            .map_err(|_| format!("no WebSocket connection to {ws_url} within 10 s"))?
            .map_err(|e| format!("WebSocket {ws_url}: {e}"))?;
        Ok(Subscriber { socket, frames: Vec::new() })
    }

    /// Sends any text, as a client could.
    pub async fn send_text(&mut self, text: String) -> Result<(), String> {
        self.socket.send(Message::text(text)).await.map_err(|e| e.to_string())
    }

    /// Sends the subscribe message and waits for its answer: `subscribed` or an error frame.
    pub async fn subscribe(&mut self, api_key: &str, id: &str) -> Result<Value, String> {
        self.send_text(json!({"action": "subscribe", "api_key": api_key, "batch_job_id": id}).to_string()).await?;
        self.next_where(Duration::from_secs(20), |f| matches!(f["type"].as_str(), Some("subscribed" | "error"))).await
    }

    /// Reads frames (keeping each) until one satisfies `done`, or `limit` passes.
    pub async fn next_where(&mut self, limit: Duration, done: impl Fn(&Value) -> bool) -> Result<Value, String> {
        let started = Instant::now();
        loop {
            let left = limit.checked_sub(started.elapsed()).ok_or_else(|| {
                format!("no such frame within {limit:?}; last: {:?}", self.frames.last().map(|f| &f.body))
            })?;
            let message = match tokio::time::timeout(left, self.socket.next()).await {
                Err(_) => continue,
                Ok(None) => return Err("the server closed the connection".into()),
                Ok(Some(Err(e))) => return Err(e.to_string()),
                Ok(Some(Ok(message))) => message,
            };
            if let Message::Text(text) = message {
                let body: Value = serde_json::from_str(&text).map_err(|e| format!("not JSON ({e}): {text}"))?;
                self.frames.push(Frame { at_ms: domain::time::now_millis(), body: body.clone() });
                if done(&body) {
                    return Ok(body);
                }
            }
        }
    }

    /// Waits for the job's final progress frame.
    pub async fn until_finished(&mut self, limit: Duration) -> Result<Value, String> {
        self.next_where(limit, |f| f["type"] == "progress" && crate::api::is_finished(&f["job"])).await
    }

    /// The progress frames received so far.
    pub fn progress(&self) -> Vec<&Frame> {
        self.frames.iter().filter(|f| f.body["type"] == "progress").collect()
    }

    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}

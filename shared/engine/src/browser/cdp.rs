//! A small client of the Chrome DevTools Protocol over the browser's one WebSocket: a command
//! is `{id, method, params, sessionId?}` answered by the message with the same `id`; anything
//! with a `method` and no `id` is an event, handed to whoever listens to its session. The
//! engine needs some twenty methods, so they are named as strings where they are used rather
//! than generated for the whole protocol.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;

/// What went wrong talking to the browser.
#[derive(Debug, thiserror::Error)]
pub enum CdpError {
    #[error("the browser's DevTools connection failed: {0}")]
    Connection(String),
    #[error("the browser closed its DevTools connection")]
    Closed,
    #[error("{method} took longer than {seconds} s")]
    Timeout { method: String, seconds: u64 },
    #[error("{method} failed: {message}")]
    Protocol { method: String, message: String },
}

/// One event: its method, its parameters, and the session it came from (`None`: the browser).
#[derive(Clone, Debug)]
pub struct Event {
    pub method: String,
    pub params: Value,
    pub session: Option<String>,
}

type Pending = HashMap<u64, (String, oneshot::Sender<Result<Value, CdpError>>)>;

/// A connection to one browser. Cloning shares it.
#[derive(Clone)]
pub struct Cdp {
    outbox: mpsc::UnboundedSender<Message>,
    pending: Arc<Mutex<Pending>>,
    listeners: Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Event>>>>,
    next_id: Arc<AtomicU64>,
}

/// The key events of the browser itself (not of a page's session) are listened to under.
const BROWSER: &str = "";

impl Cdp {
    /// Connects to the browser's WebSocket (`ws://127.0.0.1:<port>/devtools/browser/<id>`).
    pub async fn connect(url: &str) -> Result<Cdp, CdpError> {
        let (socket, _) =
            tokio_tungstenite::connect_async(url).await.map_err(|e| CdpError::Connection(e.to_string()))?;
        let (mut sink, mut stream) = socket.split();
        let (outbox, mut outgoing) = mpsc::unbounded_channel::<Message>();
        let cdp = Cdp {
            outbox,
            pending: Arc::new(Mutex::new(HashMap::new())),
            listeners: Arc::new(Mutex::new(HashMap::new())),
            next_id: Arc::new(AtomicU64::new(1)),
        };
        tokio::spawn(async move {
            while let Some(message) = outgoing.recv().await {
                if sink.send(message).await.is_err() {
                    break;
                }
            }
        });
        let (pending, listeners) = (Arc::clone(&cdp.pending), Arc::clone(&cdp.listeners));
        tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                let Message::Text(text) = message else { continue };
                let Ok(value) = serde_json::from_str::<Value>(&text) else { continue };
                route(value, &pending, &listeners).await;
            }
            // The connection is gone: every waiting command learns it now, not at its timeout.
            for (_, (_, reply)) in pending.lock().await.drain() {
                let _ = reply.send(Err(CdpError::Closed));
            }
            listeners.lock().await.clear();
        });
        Ok(cdp)
    }

    /// Sends `method` to `session` (`None`: the browser) and waits at most `wait` for its answer.
    pub async fn call(
        &self,
        session: Option<&str>,
        method: &str,
        params: Value,
        wait: Duration,
    ) -> Result<Value, CdpError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut command = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            command["sessionId"] = json!(session);
        }
        let (reply, answer) = oneshot::channel();
        self.pending.lock().await.insert(id, (method.to_owned(), reply));
        if self.outbox.send(Message::Text(command.to_string().into())).is_err() {
            self.pending.lock().await.remove(&id);
            return Err(CdpError::Closed);
        }
        match tokio::time::timeout(wait, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(CdpError::Closed),
            Err(_) => {
                self.pending.lock().await.remove(&id);
                Err(CdpError::Timeout { method: method.to_owned(), seconds: wait.as_secs() })
            }
        }
    }

    /// The events of `session` (`None`: the browser's) from now on, until it is forgotten.
    pub async fn listen(&self, session: Option<&str>) -> mpsc::UnboundedReceiver<Event> {
        let (sender, events) = mpsc::unbounded_channel();
        self.listeners.lock().await.insert(session.unwrap_or(BROWSER).to_owned(), sender);
        events
    }

    /// Stops handing `session`'s events to its listener.
    pub async fn forget(&self, session: &str) {
        self.listeners.lock().await.remove(session);
    }
}

/// Hands one message to the command waiting for it, or to its session's listener.
async fn route(
    value: Value,
    pending: &Mutex<Pending>,
    listeners: &Mutex<HashMap<String, mpsc::UnboundedSender<Event>>>,
) {
    if let Some(id) = value.get("id").and_then(Value::as_u64) {
        let Some((method, reply)) = pending.lock().await.remove(&id) else { return };
        let result = match value.get("error") {
            Some(error) => Err(CdpError::Protocol {
                method,
                message: error.get("message").and_then(Value::as_str).unwrap_or("unknown error").to_owned(),
            }),
            None => Ok(value.get("result").cloned().unwrap_or(Value::Null)),
        };
        let _ = reply.send(result);
        return;
    }
    let Some(method) = value.get("method").and_then(Value::as_str) else { return };
    let session = value.get("sessionId").and_then(Value::as_str).map(str::to_owned);
    let event =
        Event { method: method.to_owned(), params: value.get("params").cloned().unwrap_or(Value::Null), session };
    let key = event.session.clone().unwrap_or_default();
    if let Some(listener) = listeners.lock().await.get(&key) {
        let _ = listener.send(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_reach_their_command_and_events_their_session() {
        let pending = Mutex::new(Pending::new());
        let listeners = Mutex::new(HashMap::new());
        let (ok, ok_answer) = oneshot::channel();
        let (bad, bad_answer) = oneshot::channel();
        pending.lock().await.insert(1, ("Page.navigate".to_owned(), ok));
        pending.lock().await.insert(2, ("Page.reload".to_owned(), bad));
        let (sender, mut events) = mpsc::unbounded_channel();
        listeners.lock().await.insert("s1".to_owned(), sender);

        route(json!({"id": 1, "result": {"frameId": "f"}}), &pending, &listeners).await;
        route(json!({"id": 2, "error": {"code": -32000, "message": "no page"}}), &pending, &listeners).await;
        route(
            json!({"method": "Page.loadEventFired", "params": {"timestamp": 1.5}, "sessionId": "s1"}),
            &pending,
            &listeners,
        )
        .await;
        route(json!({"method": "Page.loadEventFired", "params": {}, "sessionId": "other"}), &pending, &listeners).await;
        route(json!({"id": 99, "result": {}}), &pending, &listeners).await;

        assert_eq!(ok_answer.await.unwrap().unwrap(), json!({"frameId": "f"}));
        let error = bad_answer.await.unwrap().unwrap_err();
        assert_eq!(error.to_string(), "Page.reload failed: no page");
        let event = events.recv().await.unwrap();
        assert_eq!((event.method.as_str(), event.params["timestamp"].as_f64()), ("Page.loadEventFired", Some(1.5)));
        assert!(events.try_recv().is_err(), "another session's event is not this one's");
        assert!(pending.lock().await.is_empty());
    }
}

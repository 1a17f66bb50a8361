//! The WebSocket API's connections, which the live function writes frames to through the
//! `@connections` API (PostToConnection). A connection that has closed answers `410 Gone`,
//! which is how its subscriptions are found to be stale.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};

use aws_sdk_apigatewaymanagement::primitives::Blob;

/// Why a frame was not delivered.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PostError {
    /// The connection has closed: drop what it subscribed to.
    #[error("the connection has gone")]
    Gone,
    #[error("PostToConnection failed: {0}")]
    Failed(String),
}

/// Where the live function sends frames.
pub trait Connections: Send + Sync {
    fn send_frame(&self, connection: &str, frame: Vec<u8>) -> impl Future<Output = Result<(), PostError>> + Send;
}

/// The deployment's WebSocket API, through its `@connections` endpoint.
#[derive(Clone, Debug)]
pub struct ApiGatewayConnections {
    client: aws_sdk_apigatewaymanagement::Client,
}

impl ApiGatewayConnections {
    pub fn new(client: aws_sdk_apigatewaymanagement::Client) -> Self {
        Self { client }
    }
}

impl Connections for ApiGatewayConnections {
    async fn send_frame(&self, connection: &str, frame: Vec<u8>) -> Result<(), PostError> {
        match self.client.post_to_connection().connection_id(connection).data(Blob::new(frame)).send().await {
            Ok(_) => Ok(()),
            Err(err) if err.as_service_error().is_some_and(|e| e.is_gone_exception()) => Err(PostError::Gone),
            Err(err) => Err(PostError::Failed(aws_smithy_types::error::display::DisplayErrorContext(err).to_string())),
        }
    }
}

/// Connections in memory for tests: what each was sent, and which have closed.
#[derive(Clone, Debug, Default)]
pub struct MemoryConnections {
    state: Arc<Mutex<MemoryState>>,
}

#[derive(Debug, Default)]
struct MemoryState {
    sent: HashMap<String, Vec<serde_json::Value>>,
    gone: HashSet<String>,
    posts: u64,
}

impl MemoryConnections {
    fn state(&self) -> std::sync::MutexGuard<'_, MemoryState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The frames `connection` was sent, oldest first.
    pub fn frames(&self, connection: &str) -> Vec<serde_json::Value> {
        self.state().sent.get(connection).cloned().unwrap_or_default()
    }

    /// Every PostToConnection made, delivered or not.
    pub fn posts(&self) -> u64 {
        self.state().posts
    }

    /// Closes a connection: posts to it answer `Gone` from now on.
    pub fn close(&self, connection: &str) {
        self.state().gone.insert(connection.to_owned());
    }
}

impl Connections for MemoryConnections {
    async fn send_frame(&self, connection: &str, frame: Vec<u8>) -> Result<(), PostError> {
        let mut state = self.state();
        state.posts += 1;
        if state.gone.contains(connection) {
            return Err(PostError::Gone);
        }
        let frame = serde_json::from_slice(&frame).map_err(|e| PostError::Failed(format!("not JSON: {e}")))?;
        state.sent.entry(connection.to_owned()).or_default().push(frame);
        Ok(())
    }
}

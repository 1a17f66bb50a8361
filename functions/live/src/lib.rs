//! The live function: progress pushed over a WebSocket (SPEC §6.5).
//!
//! - As the WebSocket API's integration (`routes`) it accepts connections, checks a
//!   subscriber's key and job as the HTTP API does, records the subscription with a TTL and
//!   drops a closed connection's subscriptions.
//! - From the table's stream (`push`), filtered to followed jobs' changes and new jobs only,
//!   it sends each followed job's newest state to its subscribers, at most twice a second
//!   per job, and always the last one. Nobody's job costs an invocation while nobody watches.

mod pace;
mod push;
mod routes;

use std::collections::HashMap;
use std::sync::Mutex;

use aws::connections::Connections;
use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use domain::JobId;
use serde::{Deserialize, Serialize};
use store::{KeyStore, Lookup, Subscriptions};

pub struct Live<S, C> {
    pub store: S,
    pub connections: C,
    /// When each job was last pushed from this container: the stream's records of one job
    /// come through one shard, one batch at a time, so this is where its pace is kept.
    last_push: Mutex<HashMap<JobId, pace::Pushed>>,
}

/// What invokes the function: a WebSocket route, or a batch from the table's stream.
#[derive(Debug)]
pub enum LiveEvent {
    Route(RouteRequest),
    Stream(Event),
}

/// The parts of a WebSocket route's event the routes read (API Gateway's proxy event has
/// many more, which differ between `$connect`, messages and `$disconnect`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteRequest {
    pub request_context: RouteContext,
    #[serde(default)]
    pub body: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteContext {
    pub route_key: String,
    pub connection_id: String,
}

/// A route's answer to API Gateway: only its status matters (2xx accepts a connection).
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RouteResponse {
    pub status_code: u16,
}

impl LiveEvent {
    /// Tells the two apart by their one required part: a stream batch's `Records`, a route's
    /// `requestContext` (each type alone accepts almost any object).
    pub fn parse(value: serde_json::Value) -> Result<Self, serde_json::Error> {
        if value.get("Records").is_some() {
            Ok(LiveEvent::Stream(serde_json::from_value(value)?))
        } else {
            Ok(LiveEvent::Route(serde_json::from_value(value)?))
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum LiveResponse {
    Route(RouteResponse),
    Stream(DynamoDbEventResponse),
}

impl<S, C> Live<S, C>
where
    S: KeyStore + Subscriptions + Lookup,
    C: Connections,
{
    pub fn new(store: S, connections: C) -> Self {
        Self { store, connections, last_push: Mutex::default() }
    }

    pub async fn handle(&self, event: LiveEvent) -> LiveResponse {
        match event {
            LiveEvent::Route(request) => LiveResponse::Route(self.route(&request).await),
            LiveEvent::Stream(batch) => LiveResponse::Stream(self.push(batch).await),
        }
    }
}

#[cfg(test)]
mod tests;

//! The API over an in-memory store, driven through its router as a client would: for the
//! handlers' tests.

use aws::config::QueueUrls;
use aws::exports::MemoryExports;
use aws::queue::MemoryQueue;
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use domain::auth::hash_key;
use domain::{AddressPolicy, Tenant};
use serde_json::Value;
use store::MemoryStore;
use store::prelude::*;
use tower::ServiceExt;

use crate::{ApiSettings, AppState, BASE_PATH};

pub const KEY: &str = "sb_7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e";
/// What API Gateway could still carry, less the margin the spec asks for.
pub const RESPONSE_MAX: usize = 5 * 1024 * 1024;

pub fn tenant() -> Tenant {
    Tenant("t".into())
}

pub fn app(store: MemoryStore) -> Router {
    app_with_exports(store, MemoryExports::default())
}

/// A deployment with no PSI key, no browser analyzer and no WebSocket API.
pub fn settings() -> ApiSettings {
    let queues = QueueUrls { high: "q/high".into(), normal: "q/normal".into(), low: "q/low".into(), browser: None };
    let policy = AddressPolicy::new(false);
    ApiSettings {
        queues,
        dead_letters: None,
        policy,
        max_url_timeout_seconds: 840,
        http: net::safe_client::safe_client(policy).unwrap(),
        psi_available: false,
        crux_available: false,
        tenant_limits: domain::tenancy::Limits::DEFAULT,
        ws_url: None,
    }
}

/// The API over `store`, with `exports` as its exports bucket.
pub fn app_with_exports(store: MemoryStore, exports: MemoryExports) -> Router {
    crate::app(AppState { store, queue: MemoryQueue::new(), exports, settings: settings() })
}

pub async fn store() -> MemoryStore {
    let store = MemoryStore::new();
    store.put_key_hash(&hash_key(KEY), &tenant()).await.unwrap();
    store
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A call with the fixture's key.
pub async fn call(app: &Router, method: &str, uri: &str) -> Answer {
    let request =
        Request::builder().method(method).uri(format!("{BASE_PATH}{uri}")).header("x-api-key", KEY).body(Body::empty());
    let response = app.clone().oneshot(request.unwrap()).await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap().to_vec();
    Answer { status, headers, body }
}

/// A POST of `body` as JSON with the fixture's key.
pub async fn post_json(app: &Router, uri: &str, body: &Value) -> Answer {
    send_json(app, "POST", uri, body).await
}

/// A request with `body` as JSON and the fixture's key.
pub async fn send_json(app: &Router, method: &str, uri: &str, body: &Value) -> Answer {
    let request = Request::builder()
        .method(method)
        .uri(format!("{BASE_PATH}{uri}"))
        .header("x-api-key", KEY)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()));
    let response = app.clone().oneshot(request.unwrap()).await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap().to_vec();
    Answer { status, headers, body }
}

pub async fn get(app: &Router, uri: &str) -> Answer {
    call(app, "GET", uri).await
}

/// Every page of `uri` (a query included), following `next_cursor` until a page has none:
/// each page's answer, in order, every one of them 200.
pub async fn every_page(app: &Router, method: &str, uri: &str) -> Vec<Answer> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let from = cursor.as_deref().map(|c| format!("&cursor={c}")).unwrap_or_default();
        let answer = call(app, method, &format!("{uri}{from}")).await;
        assert_eq!(answer.status, StatusCode::OK, "{uri}: {}", answer.text());
        cursor = answer.json()["next_cursor"].as_str().map(str::to_owned);
        pages.push(answer);
        if cursor.is_none() {
            return pages;
        }
        assert!(pages.len() < 1_000, "{uri}: the cursor never ends");
    }
}

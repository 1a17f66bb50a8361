//! The HTTP API function: an axum `Router` that `lambda_http` serves in Lambda and tests
//! drive in-process.

pub mod auth;
#[cfg(test)]
mod conformance;
pub mod csv;
pub mod cursor;
pub mod error;
pub mod openapi;
pub mod query;
pub mod routes;
pub mod state;
pub mod summary;
pub use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};

use crate::error::ApiError;
pub use crate::state::{ApiSettings, AppState, Queue, Store};

pub use domain::paths::BASE_PATH;

pub fn app<S, Q>(state: AppState<S, Q>) -> Router
where
    S: Store,
    Q: Queue,
{
    let api = Router::new()
        .route("/start", post(routes::start::start::<S, Q>))
        .route("/progress/{id}", get(routes::progress::progress::<S, Q>))
        .route("/jobs", get(routes::jobs::jobs::<S, Q>))
        .route("/cancel/{id}", post(routes::cancel::cancel::<S, Q>))
        .route("/results/{id}", get(routes::results::results::<S, Q>))
        .route("/cleanup", delete(routes::cleanup::cleanup::<S, Q>))
        .route("/queue/status", get(routes::queue_status::queue_status::<S, Q>))
        .route("/health", get(routes::health::health::<S, Q>))
        .route("/callback-secret", get(routes::callback_secret::callback_secret::<S, Q>))
        .layer(DefaultBodyLimit::max(routes::start::MAX_BODY_BYTES));
    Router::new()
        .route("/", get(routes::dashboard::page))
        .route(domain::paths::OPENAPI_PATH, get(openapi::document))
        .nest(BASE_PATH, api)
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .with_state(Arc::new(state))
}

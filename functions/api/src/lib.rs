//! The HTTP API function: an axum `Router` that `lambda_http` serves in Lambda and tests
//! drive in-process.

pub mod auth;
#[cfg(test)]
mod conformance;
pub mod cursor;
pub mod error;
pub mod exports;
pub mod openapi;
pub mod query;
pub mod routes;
pub mod state;
#[cfg(test)]
mod test_app;
pub use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};

use crate::error::ApiError;
pub use crate::state::{ApiSettings, AppState, Files, Queue, Store};

pub use domain::paths::BASE_PATH;

pub fn app<S, Q, E>(state: AppState<S, Q, E>) -> Router
where
    S: Store,
    Q: Queue,
    E: Files,
{
    let api = Router::new()
        .route("/start", post(routes::start::start::<S, Q, E>))
        .route("/progress/{id}", get(routes::progress::progress::<S, Q, E>))
        .route("/jobs", get(routes::jobs::jobs::<S, Q, E>))
        .route("/cancel/{id}", post(routes::cancel::cancel::<S, Q, E>))
        .route("/results/{id}", get(routes::results::results::<S, Q, E>))
        .route("/exports/{id}", get(routes::exports::exports::<S, Q, E>))
        .route("/screenshots/{job}/{file}", get(routes::screenshots::screenshot::<S, Q, E>))
        .route("/cleanup", delete(routes::cleanup::cleanup::<S, Q, E>))
        .route("/monitors", post(routes::monitors::create::<S, Q, E>).get(routes::monitors::list::<S, Q, E>))
        .route(
            "/monitors/{id}",
            get(routes::monitors::show::<S, Q, E>)
                .patch(routes::monitors::change::<S, Q, E>)
                .delete(routes::monitors::delete::<S, Q, E>),
        )
        .route("/monitors/{id}/run", post(routes::monitors::run::<S, Q, E>))
        .route("/monitors/{id}/budgets", get(routes::monitors::budgets::standings::<S, Q, E>))
        .route("/analytics", get(routes::analytics::analytics::<S, Q, E>))
        .route("/history", get(routes::history::history::<S, Q, E>))
        .route("/compare", get(routes::compare::compare::<S, Q, E>))
        .route("/usage", get(routes::usage::usage::<S, Q, E>))
        .route("/queue/status", get(routes::queue_status::queue_status::<S, Q, E>))
        .route("/health", get(routes::health::health::<S, Q, E>))
        .route("/callback-secret", get(routes::callback_secret::callback_secret::<S, Q, E>))
        .layer(DefaultBodyLimit::max(routes::start::MAX_BODY_BYTES));
    Router::new()
        .route("/", get(routes::dashboard::page))
        .route("/dashboard/{file}", get(routes::dashboard::asset))
        .route(domain::paths::OPENAPI_PATH, get(openapi::document))
        .nest(BASE_PATH, api)
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .with_state(Arc::new(state))
}

use std::time::Instant;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::{Value, json};

use crate::state::{Files, Queue, SharedState, Store};

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `healthy`, `degraded` (queues unreachable) or `unhealthy` (table unreachable, 503).
    pub status: &'static str,
    pub version: &'static str,
    /// `dynamodb` and `sqs`: `status` (`ok`/`error`) and `latency_ms`; `engine`: the default engine and which engines are configured.
    #[schema(value_type = Object)]
    pub checks: Value,
}

fn check(result: Result<(), domain::Error>, started: Instant, name: &str) -> (bool, Value) {
    let latency_ms = (started.elapsed().as_secs_f64() * 10_000.0).round() / 10.0;
    match result {
        Ok(()) => (true, json!({"status": "ok", "latency_ms": latency_ms})),
        Err(err) => {
            // The cause goes to the log; the public answer names only the dependency.
            tracing::warn!(dependency = name, error = %err, "health check failed");
            (false, json!({"status": "error", "latency_ms": latency_ms}))
        }
    }
}

/// `GET /health` (no key): whether the service can do its work. `unhealthy` (503) when the
/// table does not answer, `degraded` when only the queues do not.
#[utoipa::path(get, path = "/health", tag = "service", security(()),
    responses(
        (status = 200, description = "Healthy or degraded", body = Health),
        (status = 503, description = "Unhealthy: the table does not answer", body = Health),
    ))]
pub async fn health<S, Q, E>(State(state): State<SharedState<S, Q, E>>) -> (StatusCode, Json<Health>)
where
    S: Store,
    Q: Queue,
    E: Files,
{
    let started = Instant::now();
    let store = async { check(state.store.ping().await, started, "dynamodb") };
    let queue = async { check(state.queue.depth(&state.settings.queues.normal).await.map(|_| ()), started, "sqs") };
    let ((store_ok, store), (queue_ok, queue)) = tokio::join!(store, queue);
    let status = match (store_ok, queue_ok) {
        (true, true) => "healthy",
        (true, false) => "degraded",
        (false, _) => "unhealthy",
    };
    let code = if store_ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let offered = state.settings.offered();
    let engine = json!({
        "status": "ok",
        "default_engine": if offered.psi { "psi" } else { "http" },
        "psi_configured": offered.psi,
        // `engine: browser` is refused where the deployment has no browser analyzer.
        "browser_configured": offered.browser,
    });
    // Where clients subscribe to live progress (the CLI's --watch asks here); null: poll.
    let live = json!({"ws_url": state.settings.ws_url});
    let checks = json!({"dynamodb": store, "sqs": queue, "engine": engine, "live": live});
    (code, Json(Health { status, version: env!("CARGO_PKG_VERSION"), checks }))
}

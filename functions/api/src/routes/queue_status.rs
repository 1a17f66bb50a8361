use aws::queue::QueueDepth;
use axum::Json;
use axum::extract::State;
use domain::time::now_millis;
use domain::waits::Waiting;
use serde::Serialize;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::{Files, Queue, SharedState, Store};

#[derive(Serialize, utoipa::ToSchema)]
pub struct QueueStatus {
    /// `high`, `normal`, `low`, or `browser` (the browser engine's queue, all priorities).
    pub priority: &'static str,
    #[serde(flatten)]
    pub depth: QueueDepth,
    /// Messages that could not be processed (malformed), waiting for a redrive.
    pub dead_letter: Option<u64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct QueueStatusList {
    pub queues: Vec<QueueStatus>,
    /// URLs of every tenant waiting (not failed, no attempt used) by reason: now, or due back
    /// within the last second.
    pub waiting: Waiting,
}

/// `GET /queue/status`: the depth of each priority queue and its dead-letter queue, and how
/// many URLs wait and why. The queues are shared by all tenants; the counts reveal no job or
/// URL.
#[utoipa::path(get, path = "/queue/status", tag = "service",
    responses(
        (status = 200, description = "Depth of each priority queue and its dead-letter queue, and URLs waiting by reason", body = QueueStatusList),
        (status = 401, description = "No or unknown API key", body = crate::error::ErrorBody),
    ))]
pub async fn queue_status<S, Q, E>(
    State(state): State<SharedState<S, Q, E>>,
    Caller(_): Caller,
) -> Result<Json<QueueStatusList>, ApiError>
where
    S: Store,
    Q: Queue,
    E: Files,
{
    let settings = &state.settings;
    let dlq = settings.dead_letters.as_ref();
    let mut queues = vec![
        ("high", &settings.queues.high, dlq.map(|d| &d.high)),
        ("normal", &settings.queues.normal, dlq.map(|d| &d.normal)),
        ("low", &settings.queues.low, dlq.map(|d| &d.low)),
    ];
    // The browser engine's queue, whatever the priority of its URLs.
    if let Some(browser) = &settings.queues.browser {
        queues.push(("browser", browser, dlq.and_then(|d| d.browser.as_ref())));
    }
    let queue = &state.queue;
    let reads = queues.iter().map(|&(priority, url, dlq)| async move {
        let depth = queue.depth(url).await?;
        let dead_letter = match dlq {
            Some(dlq) => Some(queue.depth(dlq).await?.visible),
            None => None,
        };
        Ok::<_, domain::Error>(QueueStatus { priority, depth, dead_letter })
    });
    let (queues, waiting) =
        futures::future::try_join(futures::future::try_join_all(reads), state.store.waiting(now_millis())).await?;
    Ok(Json(QueueStatusList { queues, waiting }))
}

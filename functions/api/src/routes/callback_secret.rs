//! `GET /callback-secret`: the secret the tenant's job callbacks are signed with, so the
//! receiving end can check that a callback came from this service.

use aws::notify::SIGNATURE_HEADER;
use axum::Json;
use axum::extract::State;
use serde::Serialize;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::{Files, Queue, SharedState, Store};

#[derive(Serialize, utoipa::ToSchema)]
pub struct CallbackSecret {
    /// The HMAC-SHA256 key; created on first request, the same for all the tenant's jobs.
    secret: String,
    /// The request header that carries the signature.
    header: &'static str,
    /// How the header's value is built.
    scheme: &'static str,
}

#[utoipa::path(get, path = "/callback-secret", tag = "jobs",
    responses(
        (status = 200, description = "The tenant's callback signing secret", body = CallbackSecret),
        (status = 401, description = "No or unknown API key", body = crate::error::ErrorBody),
    ))]
pub async fn callback_secret<S, Q, E>(
    State(state): State<SharedState<S, Q, E>>,
    Caller(tenant): Caller,
) -> Result<Json<CallbackSecret>, ApiError>
where
    S: Store,
    Q: Queue,
    E: Files,
{
    let secret = state.store.callback_secret(&tenant).await?;
    Ok(Json(CallbackSecret {
        secret,
        header: SIGNATURE_HEADER,
        scheme: "t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<request body>\" keyed with the secret>",
    }))
}

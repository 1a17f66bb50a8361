//! Resolves the caller's tenant from its API key (`x-api-key`, or `Authorization: Bearer`).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use domain::Tenant;

use crate::error::ApiError;
use crate::state::{Files, Queue, SharedState, Store};

/// An authenticated caller. Taking it as a handler argument is what makes a route private.
pub struct Caller(pub Tenant);

fn presented_key(parts: &Parts) -> Option<&str> {
    let headers = &parts.headers;
    if let Some(key) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(key.trim());
    }
    let auth = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = auth.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

impl<S, Q, E> FromRequestParts<SharedState<S, Q, E>> for Caller
where
    S: Store,
    Q: Queue,
    E: Files,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState<S, Q, E>) -> Result<Self, ApiError> {
        let key = presented_key(parts).filter(|k| !k.is_empty()).ok_or(ApiError::Unauthorized)?;
        let tenant = state.store.tenant_for_key(key).await?;
        tenant.map(Caller).ok_or(ApiError::Unauthorized)
    }
}

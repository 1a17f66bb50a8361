//! `GET /monitors/{id}/budgets`: where the monitor's URLs stand against its budgets — which
//! URLs are over which budget, since when, with the value and run that put them there and how
//! the callback announcing it went. Only changes are kept (a URL never over a budget has no
//! row), so a page is one Query of the monitor's standings, by budget.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use domain::budget::{Budget, BudgetState, Standing, StandingKey};
use domain::time::rfc3339;
use domain::view::CallbackView;
use serde::Serialize;

use super::owned;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::{Files, Queue, SharedState, Store};
use crate::{cursor, query};

/// One URL against one budget.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StandingView {
    pub url: String,
    /// The budget in words: `lcp_ms <= 2500`.
    pub budget: String,
    pub metric: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<String>,
    pub state: BudgetState,
    /// When the URL entered this state (UTC).
    pub since: String,
    /// The value the run that put it there measured.
    pub value: f64,
    /// That run's job.
    pub batch_job_id: String,
    /// The callback announcing it, when the monitor names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback: Option<CallbackView>,
}

impl StandingView {
    fn new(standing: &Standing) -> StandingView {
        let Budget { metric, max, min, labels } = &standing.budget;
        StandingView {
            url: standing.url.clone(),
            budget: standing.budget.describe(),
            metric: metric.clone(),
            max: *max,
            min: *min,
            labels: labels.clone(),
            state: standing.state,
            since: rfc3339(standing.since),
            value: standing.value,
            batch_job_id: standing.job_id.to_string(),
            callback: standing.callback.as_ref().map(CallbackView::of_delivery),
        }
    }
}

/// Which standings a page lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StandingFilter {
    /// Over a budget now (the default).
    Breached,
    /// Back within a budget, kept for the retention period.
    Within,
    Any,
}

impl StandingFilter {
    fn parse(text: Option<&str>) -> Result<StandingFilter, ApiError> {
        match text {
            None | Some("breached") => Ok(StandingFilter::Breached),
            Some("within") => Ok(StandingFilter::Within),
            Some("any") => Ok(StandingFilter::Any),
            Some(other) => {
                Err(ApiError::invalid_field("state", format!("{other:?} is not one of breached, within, any")))
            }
        }
    }

    fn state(self) -> Option<BudgetState> {
        match self {
            StandingFilter::Breached => Some(BudgetState::Breached),
            StandingFilter::Within => Some(BudgetState::Within),
            StandingFilter::Any => None,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BudgetStandings {
    pub monitor_id: String,
    /// The standings listed.
    pub state: StandingFilter,
    pub standings: Vec<StandingView>,
    pub next_cursor: Option<String>,
}

/// `GET /monitors/{id}/budgets?state=&limit=&cursor=`.
#[utoipa::path(get, path = "/monitors/{id}/budgets", tag = "monitors",
    params(
        ("id" = String, Path, description = "monitor_id"),
        ("state" = Option<StandingFilter>, Query, description = "breached (the default), within (back within a budget, kept for the retention period) or any"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "1 to 1000, default 100"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses(
        (status = 200, description = "The monitor's URLs in that state against each of its budgets, by budget", body = BudgetStandings),
        (status = 400, description = "A tampered cursor", body = crate::error::ErrorBody),
        (status = 401, description = "No or unknown API key", body = crate::error::ErrorBody),
        (status = 404, description = "No such monitor for this tenant", body = crate::error::ErrorBody),
        (status = 422, description = "An invalid state or limit", body = crate::error::ErrorBody),
    ))]
pub async fn standings<S, Q, E>(
    State(state): State<SharedState<S, Q, E>>,
    Caller(tenant): Caller,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<BudgetStandings>, ApiError>
where
    S: Store,
    Q: Queue,
    E: Files,
{
    let filter = StandingFilter::parse(params.get("state").map(String::as_str))?;
    let limit = query::limit(params.get("limit").map(String::as_str), 100, 1_000)?;
    let after = params.get("cursor").map(|c| cursor::decode(c, StandingKey::decode)).transpose()?;
    let monitor = owned(&state.store, &tenant, &id).await?;
    let page = state.store.budget_page(&tenant, &monitor.id, filter.state(), limit, after.as_ref()).await?;
    Ok(Json(BudgetStandings {
        monitor_id: monitor.id.to_string(),
        state: filter,
        standings: page.items.iter().map(StandingView::new).collect(),
        next_cursor: page.next.map(|key| cursor::encode(&key.encode())),
    }))
}

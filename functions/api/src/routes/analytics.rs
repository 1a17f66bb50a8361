//! `GET /analytics?from=&to=`: the tenant's URLs analysed per UTC day, success rate, failures
//! by kind, and score and metric percentiles, from the tallies each finished job added to its
//! days (`domain::analytics`): a few small items per day, never the results.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use chrono::{Days, NaiveDate, Utc};
use domain::analytics::{DayTally, DayView, MAX_DAYS};
use serde::Serialize;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::{Files, Queue, SharedState, Store};

/// Days shown when `from` is not given.
const DEFAULT_DAYS: u64 = 30;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Analytics {
    pub from: String,
    pub to: String,
    /// Every day of the range, oldest first (a day without finished URLs counts zeros).
    pub days: Vec<DayView>,
    /// The whole range as one: its counts, and percentiles over all of its URLs.
    pub total: DayView,
}

/// `GET /analytics?from=&to=`.
#[utoipa::path(get, path = "/analytics", tag = "history",
    params(
        ("from" = Option<String>, Query, format = Date, description = "The first day, `yyyy-mm-dd` (or an RFC 3339 time: its UTC day); default 29 days before `to`"),
        ("to" = Option<String>, Query, format = Date, description = "The last day, included; default today (UTC)"),
    ),
    responses(
        (status = 200, description = "The tenant's finished URLs per UTC day: counts, success rate, failures by kind, score and metric percentiles (p50/p75/p95, within 2.5 % of the measured values)", body = Analytics),
        (status = 401, description = "No or unknown API key", body = crate::error::ErrorBody),
        (status = 422, description = "A day that is not a date, from after to, or a range over 93 days", body = crate::error::ErrorBody),
    ))]
pub async fn analytics<S, Q, E>(
    State(state): State<SharedState<S, Q, E>>,
    Caller(tenant): Caller,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Analytics>, ApiError>
where
    S: Store,
    Q: Queue,
    E: Files,
{
    let param = |name: &str| params.get(name).map(String::as_str);
    let to = match param("to") {
        Some(text) => day("to", text)?,
        None => Utc::now().date_naive(),
    };
    let from = match param("from") {
        Some(text) => day("from", text)?,
        None => to.checked_sub_days(Days::new(DEFAULT_DAYS - 1)).unwrap_or(to),
    };
    if from > to {
        return Err(ApiError::invalid_field("from", "is after to"));
    }
    if (to - from).num_days() >= MAX_DAYS {
        return Err(ApiError::invalid_field(
            "from",
            format!("is more than {MAX_DAYS} days before to: ask for a shorter range"),
        ));
    }
    let (from, to) = (from.to_string(), to.to_string());
    let tallies = state.store.day_tallies(&tenant, &from, &to).await?;
    let mut total = DayTally::default();
    let mut days = Vec::new();
    let mut date = NaiveDate::parse_from_str(&from, "%Y-%m-%d").ok();
    while let Some(current) = date.filter(|d| d.to_string() <= to) {
        let name = current.to_string();
        let tally = tallies.get(&name).cloned().unwrap_or_default();
        total.merge(&tally);
        days.push(DayView::new(name, &tally));
        date = current.checked_add_days(Days::new(1));
    }
    let total = DayView::new(format!("{from}/{to}"), &total);
    Ok(Json(Analytics { from, to, days, total }))
}

/// A day given as `yyyy-mm-dd`, or as an RFC 3339 time (its UTC day).
fn day(field: &str, text: &str) -> Result<NaiveDate, ApiError> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .or_else(|| {
            let at = domain::time::parse_rfc3339(text)?;
            chrono::DateTime::<Utc>::from_timestamp_millis(at).map(|t| t.date_naive())
        })
        .ok_or_else(|| ApiError::invalid_field(field, format!("{text:?} is not a day such as 2026-12-01")))
}

#[cfg(test)]
mod tests {
    use domain::analytics::DayTally;
    use domain::report::{JobReport, Summary};
    use domain::{JobId, Tenant};
    use serde_json::json;
    use store::JobTallies;
    use store::prelude::*;

    use crate::test_app::{app, get, store, tenant};

    async fn finished_job(
        store: &store::MemoryStore,
        tenant: &Tenant,
        day: &str,
        succeeded: u64,
        failed: u64,
        scores: &[f64],
    ) {
        let mut tally = DayTally { succeeded, failed, ..DayTally::default() };
        tally.failures_by_kind.insert("timeout".into(), failed);
        for score in scores {
            tally.histograms.entry("score".into()).or_default().add("score", *score);
            tally.histograms.entry("lcp_ms".into()).or_default().add("lcp_ms", 2_000.0);
        }
        let tallies = JobTallies { tenant: tenant.clone(), days: [(day.to_owned(), tally)].into() };
        let report = JobReport { summary: Summary::default(), exports: Vec::new(), digest: None, written_at: 0 };
        assert!(store.put_report(&JobId::generate(), &report, Some(&tallies)).await.unwrap());
    }

    #[tokio::test]
    async fn days_show_what_finished_jobs_added_with_every_day_of_the_range() {
        let store = store().await;
        finished_job(&store, &tenant(), "2026-12-01", 3, 1, &[90.0, 80.0, 70.0]).await;
        finished_job(&store, &tenant(), "2026-12-03", 1, 0, &[40.0]).await;
        finished_job(&store, &tenant(), "2026-12-03", 1, 1, &[60.0]).await;
        finished_job(&store, &Tenant("other".into()), "2026-12-03", 50, 50, &[1.0]).await;
        let app = app(store);

        let answer = get(&app, "/analytics?from=2026-12-01&to=2026-12-03T23:59:59Z").await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        let body = answer.json();
        assert_eq!((body["from"].as_str(), body["to"].as_str()), (Some("2026-12-01"), Some("2026-12-03")));
        let days = body["days"].as_array().unwrap();
        assert_eq!(days.len(), 3, "the empty day too");
        assert_eq!(days[0]["analysed"], 4);
        assert_eq!(days[0]["success_rate"], 0.75);
        assert_eq!(days[0]["failures_by_kind"], json!({"timeout": 1}));
        assert_eq!(days[0]["score"], json!({"count": 3, "p50": 80.0, "p75": 90.0, "p95": 90.0}));
        assert!(
            days[0]["metrics"]["lcp_ms"]["p50"].as_f64().is_some_and(|v| (v - 2_000.0).abs() <= 50.0),
            "{}",
            days[0]
        );
        assert_eq!(
            (days[1]["analysed"].as_u64(), &days[1]["success_rate"]),
            (Some(0), &json!(null)),
            "no analyses: no rate"
        );
        assert_eq!(
            (days[2]["analysed"].as_u64(), days[2]["succeeded"].as_u64()),
            (Some(3), Some(2)),
            "two jobs, not another tenant's"
        );
        assert_eq!(body["total"]["analysed"], 7);
        assert_eq!(body["total"]["score"]["p50"], 70.0, "percentiles over the whole range");
    }

    #[tokio::test]
    async fn a_bad_range_says_what_is_wrong() {
        let app = app(store().await);
        for (query, field) in [
            ("from=yesterday", "from"),
            ("to=2026-13-01", "to"),
            ("from=2026-12-05&to=2026-12-01", "from"),
            ("from=2026-01-01&to=2026-12-01", "from"),
        ] {
            let answer = get(&app, &format!("/analytics?{query}")).await;
            assert_eq!(answer.status, 422, "{query}: {}", answer.text());
            assert_eq!(answer.json()["error"]["details"][0]["field"], field, "{query}");
        }
        let default = get(&app, "/analytics").await.json();
        assert_eq!(default["days"].as_array().map(Vec::len), Some(30), "the last 30 days by default");
    }
}

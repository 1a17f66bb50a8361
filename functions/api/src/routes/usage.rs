//! `GET /usage`: the caller's limits and how much of each it uses now.

use axum::Json;
use axum::extract::State;
use domain::tenancy::{self, Limit, Limits, Usage};
use domain::time::{now_millis, rfc3339};
use serde::Serialize;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::{Files, Queue, SharedState, Store};

#[derive(Serialize, utoipa::ToSchema)]
pub struct UsageReport {
    /// The limits that apply to the caller's tenant.
    pub limits: Limits,
    /// The limits the tenant has its own value for; the others are the deployment's.
    pub own_limits: Vec<Limit>,
    pub usage: Usage,
    /// The UTC day `usage.urls_today` counts.
    pub day: String,
    /// When that count starts again (midnight UTC).
    pub day_resets_at: String,
}

#[utoipa::path(get, path = "/usage", tag = "service",
    responses(
        (status = 200, description = "The tenant's limits and what it uses of them now", body = UsageReport),
        (status = 401, description = "No or unknown API key", body = crate::error::ErrorBody),
    ))]
pub async fn usage<S, Q, E>(
    State(state): State<SharedState<S, Q, E>>,
    Caller(tenant): Caller,
) -> Result<Json<UsageReport>, ApiError>
where
    S: Store,
    Q: Queue,
    E: Files,
{
    let now = now_millis();
    let own = state.store.tenant_usage(&tenant, now).await?;
    Ok(Json(UsageReport {
        limits: state.settings.tenant_limits.with(&own.overrides),
        own_limits: own.overrides.names(),
        usage: own.usage,
        day: tenancy::usage_day(now),
        day_resets_at: rfc3339(tenancy::day_ends(now)),
    }))
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use domain::tenancy::LimitOverrides;
    use serde_json::json;
    use store::prelude::*;

    use crate::test_app::{app, get, post_json, store, tenant};

    fn urls(n: usize) -> serde_json::Value {
        json!({ "urls": (0..n).map(|i| format!("https://site.example/{i}")).collect::<Vec<_>>() })
    }

    #[tokio::test]
    async fn a_tenant_at_its_job_limit_is_told_which_limit_and_when_to_come_back() {
        let store = store().await;
        let own = LimitOverrides { max_active_jobs: Some(1), ..Default::default() };
        store.set_limit_overrides(&tenant(), &own).await.unwrap();
        let app = app(store);
        assert_eq!(post_json(&app, "/start", &urls(3)).await.status, StatusCode::CREATED);

        let dry = post_json(&app, "/start", &json!({"urls": ["https://site.example/x"], "dry_run": true})).await;
        assert_eq!(dry.status, StatusCode::OK, "a dry run says so, it is not refused");
        assert_eq!(
            (dry.json()["analyses"].as_u64(), &dry.json()["over_limit"]["limit"]),
            (Some(1), &json!("max_active_jobs"))
        );
        let refused = post_json(&app, "/start", &urls(1)).await;
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.headers["retry-after"], "30");
        let error = &refused.json()["error"];
        assert_eq!(error["code"], "over_limit");
        assert_eq!(error["details"]["limit"], "max_active_jobs");
        assert_eq!((error["details"]["allowed"].as_u64(), error["details"]["used"].as_u64()), (Some(1), Some(1)));
        assert!(error["message"].as_str().unwrap().contains("may have at most 1 at once"), "{error}");

        let usage = get(&app, "/usage").await.json();
        assert_eq!(usage["limits"]["max_active_jobs"], 1);
        assert_eq!(usage["limits"]["max_urls_per_day"], domain::tenancy::Limits::DEFAULT.max_urls_per_day);
        assert_eq!(usage["own_limits"], json!(["max_active_jobs"]));
        assert_eq!(usage["usage"], json!({"active_jobs": 1, "urls_today": 3}), "the refused job is not counted");
        assert!(usage["day_resets_at"].as_str().unwrap().ends_with("T00:00:00.000Z"), "{usage}");
    }

    #[tokio::test]
    async fn the_daily_count_refuses_until_midnight_and_a_job_too_large_for_any_day_for_good() {
        let store = store().await;
        let own = LimitOverrides { max_urls_per_day: Some(10), ..Default::default() };
        store.set_limit_overrides(&tenant(), &own).await.unwrap();
        let app = app(store);
        let both = json!({ "urls": ["https://a.example", "https://b.example"], "strategy": "both", "runs": 2 });
        assert_eq!(post_json(&app, "/start", &both).await.status, StatusCode::CREATED, "8 analyses");

        let refused = post_json(&app, "/start", &urls(3)).await;
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        let wait: u32 = refused.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=86_400).contains(&wait), "until midnight UTC: {wait}");
        let details = &refused.json()["error"]["details"];
        assert_eq!(details["limit"], "max_urls_per_day");
        assert_eq!((details["used"].as_u64(), details["requested"].as_u64()), (Some(8), Some(3)));
        assert_eq!(post_json(&app, "/start", &urls(2)).await.status, StatusCode::CREATED, "what is left still fits");

        let never = post_json(&app, "/start", &urls(11)).await;
        assert_eq!(never.status, StatusCode::UNPROCESSABLE_ENTITY, "waiting would not help");
        assert!(never.headers.get("retry-after").is_none());
        let error = &never.json()["error"];
        assert_eq!(
            (error["code"].as_str(), error["details"]["limit"].as_str()),
            (Some("over_limit"), Some("max_urls_per_day"))
        );
        assert!(error["message"].as_str().unwrap().contains("split it into smaller jobs"), "{error}");
        assert_eq!(get(&app, "/usage").await.json()["usage"]["urls_today"], 10);
    }
}

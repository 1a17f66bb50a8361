//! `GET /history`: one URL's results over time, across all the tenant's jobs: one Query of the
//! history index per page, never a read of a job.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use domain::history::{HistoryCursor, HistoryKey, MetricName, Span};
use domain::time::rfc3339;
use domain::{CleanUrl, Strategy};
use serde::Serialize;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::{Files, Queue, SharedState, Store};
use crate::{cursor, query};

/// The most points a page holds (a point is about 150 bytes of JSON).
pub const MAX_LIMIT: usize = 1_000;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UrlHistory {
    /// The URL as cleaned (the form results carry).
    pub url: String,
    pub metric: String,
    /// Oldest first.
    pub points: Vec<HistoryPoint>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HistoryPoint {
    pub analyzed_at: String,
    pub batch_job_id: String,
    pub value: f64,
    /// The range of the value between runs, when the job measured each URL more than once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spread: Option<f64>,
    pub engine: String,
    pub strategy: Strategy,
}

/// `GET /history?url=&metric=&from=&to=&limit=&cursor=`.
#[utoipa::path(get, path = "/history", tag = "history",
    params(
        ("url" = String, Query, min_length = 1, description = "The URL, cleaned as /start cleans it (so `example.com/` finds `https://example.com`)"),
        ("metric" = Option<String>, Query, pattern = "^[a-z0-9_]{1,64}$", description = "`score` (the default) or a metric's name, such as `lcp_ms` or `ttfb_ms`"),
        ("from" = Option<String>, Query, format = DateTime, description = "Only results analysed at or after this RFC 3339 time"),
        ("to" = Option<String>, Query, format = DateTime, description = "Only results analysed at or before this RFC 3339 time"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "1 to 1000, default 100: results read per page (those without the metric are not points)"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses(
        (status = 200, description = "The URL's new results (not reused ones) in any of the tenant's kept jobs, oldest first", body = UrlHistory),
        (status = 400, description = "A tampered cursor", body = crate::error::ErrorBody),
        (status = 401, description = "No or unknown API key", body = crate::error::ErrorBody),
        (status = 422, description = "A missing or invalid url, an invalid metric name, time or limit, or from after to", body = crate::error::ErrorBody),
    ))]
pub async fn history<S, Q, E>(
    State(state): State<SharedState<S, Q, E>>,
    Caller(tenant): Caller,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<UrlHistory>, ApiError>
where
    S: Store,
    Q: Queue,
    E: Files,
{
    let param = |name: &str| params.get(name).map(String::as_str);
    let url = CleanUrl::parse(query::required("url", param("url"))?, state.settings.policy)
        .map_err(|e| ApiError::invalid_field("url", e.to_string()))?;
    let metric = match param("metric") {
        None => MetricName::score(),
        Some(text) => MetricName::parse(text).map_err(|e| ApiError::invalid_field("metric", e))?,
    };
    let from = query::time("from", param("from"))?;
    let to = query::time("to", param("to"))?;
    let span = Span { from: from.unwrap_or(Span::ALL.from), to: to.unwrap_or(Span::ALL.to) };
    if span.from > span.to {
        return Err(ApiError::invalid_field("from", "is after to"));
    }
    let limit = query::limit(param("limit"), 100, MAX_LIMIT)?;
    let after = param("cursor").map(|c| cursor::decode(c, HistoryCursor::decode)).transpose()?;
    let key = HistoryKey::new(&tenant, url.as_str());
    let page = state.store.url_history(&key, span, limit, after.as_ref()).await?;
    let points = page
        .items
        .into_iter()
        .filter_map(|entry| {
            let value = *entry.headline.values.get(metric.as_str())?;
            Some(HistoryPoint {
                analyzed_at: rfc3339(entry.analyzed_at),
                batch_job_id: entry.job_id.to_string(),
                value,
                spread: entry.headline.spread.get(metric.as_str()).copied(),
                engine: entry.headline.engine,
                strategy: entry.headline.strategy,
            })
        })
        .collect();
    Ok(Json(UrlHistory {
        url: url.as_str().to_owned(),
        metric: metric.as_str().to_owned(),
        points,
        next_cursor: page.next.map(|c| cursor::encode(&c.encode())),
    }))
}

#[cfg(test)]
mod tests {

    use domain::history::HistoryKey;
    use domain::lifecycle::Outcome;
    use domain::{Analysis, CleanUrl, Job, JobSettings, Tenant};
    use serde_json::json;
    use store::prelude::*;
    use store::{MemoryStore, OutcomeRecord};

    use crate::cursor;
    use crate::test_app::{app, get, store, tenant};

    const URL: &str = "https://site.example/a";

    /// A one-URL job of `tenant` whose URL was newly analysed at `at`, with `ttfb_ms`.
    async fn analysed(store: &MemoryStore, tenant: &Tenant, at: i64, ttfb_ms: f64) -> Job {
        let job = Job::new(tenant.clone(), "h".into(), JobSettings::default(), 1, at - 10);
        store.create_job(&job, &[CleanUrl::parse(URL, Default::default()).unwrap()]).await.unwrap();
        let analysis = Analysis {
            engine: "http".into(),
            strategy: domain::Strategy::Mobile,
            score: Some(80.0),
            metrics: json!({"ttfb_ms": ttfb_ms}).as_object().unwrap().clone(),
            cached_from: None,
        };
        let record = OutcomeRecord {
            job_id: job.id.clone(),
            seq: 0,
            attempt: 1,
            outcome: Outcome::Succeeded(analysis),
            cache_key: None,
            history: Some(HistoryKey::new(tenant, URL)),
            places: Vec::new(),
        };
        store.record(&record, at).await.unwrap();
        job
    }

    #[tokio::test]
    async fn a_urls_history_is_its_results_in_any_job_oldest_first_a_page_at_a_time() {
        let store = store().await;
        let mut jobs = Vec::new();
        for (at, ttfb) in [(1_000, 30.0), (2_000, 45.0), (3_000, 25.0)] {
            jobs.push(analysed(&store, &tenant(), at, ttfb).await.id.to_string());
        }
        analysed(&store, &Tenant("someone-else".into()), 2_500, 999.0).await;
        let app = app(store);

        // Cleaned as /start cleans it: no scheme, a trailing slash.
        let first = get(&app, "/history?url=site.example/a/&metric=ttfb_ms&limit=2").await;
        assert_eq!(first.status, 200, "{}", first.text());
        let body = first.json();
        assert_eq!((body["url"].as_str(), body["metric"].as_str()), (Some(URL), Some("ttfb_ms")));
        let points = body["points"].as_array().unwrap();
        assert_eq!(points.len(), 2);
        assert_eq!(
            points[0],
            json!({"analyzed_at": "1970-01-01T00:00:01.000Z", "batch_job_id": jobs[0], "value": 30.0, "engine": "http", "strategy": "mobile"})
        );
        assert_eq!(points[1]["batch_job_id"], jobs[1]);
        let next = body["next_cursor"].as_str().unwrap();
        let rest = get(&app, &format!("/history?url={URL}&metric=ttfb_ms&limit=2&cursor={next}")).await.json();
        assert_eq!(rest["points"].as_array().unwrap().len(), 1, "another tenant's result is not here: {rest}");
        assert_eq!((rest["points"][0]["value"].as_f64(), &rest["next_cursor"]), (Some(25.0), &json!(null)));

        let score = get(&app, &format!("/history?url={URL}&from=1970-01-01T00:00:01.500Z")).await.json();
        let values: Vec<f64> =
            score["points"].as_array().unwrap().iter().map(|p| p["value"].as_f64().unwrap()).collect();
        assert_eq!((score["metric"].as_str(), values), (Some("score"), vec![80.0, 80.0]), "score is the default");
        let none = get(&app, &format!("/history?url={URL}&metric=lcp_ms")).await.json();
        assert_eq!(none["points"], json!([]), "a metric no result has: no points, never zeros");
    }

    #[tokio::test]
    async fn a_bad_question_says_what_is_wrong() {
        let app = app(store().await);
        for (query, field) in [
            ("", "url"),
            ("url=ftp://a.example", "url"),
            (&format!("url={URL}&metric=LCP"), "metric"),
            (&format!("url={URL}&from=yesterday"), "from"),
            (&format!("url={URL}&from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z"), "from"),
            (&format!("url={URL}&limit=1001"), "limit"),
        ] {
            let answer = get(&app, &format!("/history?{query}")).await;
            assert_eq!(answer.status, 422, "{query}: {}", answer.text());
            assert_eq!(answer.json()["error"]["details"][0]["field"], field, "{query}");
        }
        let tampered = cursor::encode("not a cursor");
        assert_eq!(get(&app, &format!("/history?url={URL}&cursor={tampered}")).await.status, 400);
    }
}

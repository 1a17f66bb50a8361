//! `POST /start`: validate and clean the submission, record the job, fan the URLs out.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::AddressPolicy;
use domain::time::{now_millis, rfc3339};
use domain::{
    Category, CleanUrl, EngineChoice, Job, JobSettings, Priority, Rejected, Strategy, TaskMessage, clean_batch,
};
use net::sitemap::{self, Expanded, SitemapLimits};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::{Queue, SharedState, Store};
use domain::JobView;

pub const MAX_BODY_BYTES: usize = 6 * 1024 * 1024;
pub const MAX_URLS: usize = 10_000;
pub const MAX_NAME_CHARS: usize = 200;

/// The fields `POST /start` takes; anything else is reported as unknown.
pub const START_FIELDS: [&str; 14] = [
    "name",
    "urls",
    "sitemap_url",
    "priority",
    "strategy",
    "batch_size",
    "timeout_seconds",
    "max_retries",
    "engine",
    "callback_url",
    "runs",
    "cache_ttl_seconds",
    "categories",
    "dry_run",
];

/// The body of `POST /start`, for the OpenAPI document. The handler validates the JSON field
/// by field itself (to report every problem at once); a test keeps the two in step.
// `Deserialize` is derived only for `deny_unknown_fields`, which utoipa documents as
// `additionalProperties: false`: the handler refuses unknown fields.
#[allow(dead_code)]
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"urls": ["example.com", "https://example.org/about/"], "priority": "high", "batch_size": 2}))]
pub struct StartRequest {
    /// 1 to 200 characters, not blank; generated from the time when absent.
    #[schema(min_length = 1, max_length = 200)]
    name: Option<String>,
    /// 1 to 10 000 URLs; give this or `sitemap_url`.
    #[schema(min_items = 1, max_items = 10000)]
    urls: Option<Vec<String>>,
    /// A sitemap or sitemap index (gzip too), expanded server-side.
    sitemap_url: Option<String>,
    /// Default `normal`; `urgent` and `high` use the high queue.
    priority: Option<Priority>,
    /// Default `mobile`.
    strategy: Option<Strategy>,
    /// 1 to 20, default 5.
    #[schema(minimum = 1, maximum = 20)]
    batch_size: Option<u32>,
    /// 60 to 1800, default 300; the response states the effective value.
    #[schema(minimum = 60, maximum = 1800)]
    timeout_seconds: Option<u32>,
    /// 0 to 5, default 3.
    #[schema(maximum = 5)]
    max_retries: Option<u32>,
    /// Default `auto`.
    engine: Option<EngineChoice>,
    /// An http(s) URL that receives a signed POST when the job finishes or is cancelled
    /// (the signing secret is at `GET /callback-secret`).
    callback_url: Option<String>,
    /// 1 to 5, default 1: analyses per URL and form factor; the median run is kept and the
    /// spread between runs reported.
    #[schema(minimum = 1, maximum = 5)]
    runs: Option<u32>,
    /// 0 to 86 400, default 0 (off): reuse the tenant's result for the same URL, engine and
    /// strategy when it is at most this old; the result is marked as cached.
    #[schema(maximum = 86400)]
    cache_ttl_seconds: Option<u32>,
    /// PageSpeed Insights categories, default `["performance"]`; the `http` engine measures
    /// performance only.
    categories: Option<Vec<Category>>,
    /// Validate and clean only: answer 200 with what would be accepted and rejected, and
    /// create nothing (the dashboard shows this before submitting).
    dry_run: Option<bool>,
}

/// A submission whose every field passed validation.
#[derive(Debug)]
struct Submission {
    name: Option<String>,
    source: Source,
    settings: JobSettings,
    dry_run: bool,
}

/// Where the URLs come from.
#[derive(Debug)]
enum Source {
    Urls(Vec<String>),
    Sitemap(String),
}

/// The field-by-field problems of a submission, reported together.
#[derive(Default)]
struct Problems(Vec<Value>);

impl Problems {
    fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(json!({"field": field, "message": message.into()}));
    }
}

fn integer(body: &Map<String, Value>, field: &str, range: (u32, u32), default: u32, problems: &mut Problems) -> u32 {
    match body.get(field) {
        None | Some(Value::Null) => default,
        Some(value) => match value.as_u64() {
            Some(n) if (u64::from(range.0)..=u64::from(range.1)).contains(&n) => n as u32,
            _ => {
                problems.add(field, format!("must be a whole number from {} to {}", range.0, range.1));
                default
            }
        },
    }
}

/// A list of distinct named values, performance always among them.
fn categories(body: &Map<String, Value>, problems: &mut Problems) -> Vec<Category> {
    let mut chosen = vec![Category::Performance];
    match body.get("categories") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                match item.as_str().map(str::parse::<Category>) {
                    Some(Ok(category)) if !chosen.contains(&category) => chosen.push(category),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => problems.add(&format!("categories[{i}]"), e),
                    None => problems.add(&format!("categories[{i}]"), "must be a string"),
                }
            }
        }
        Some(_) => problems.add("categories", "must be a list of strings"),
    }
    chosen
}

fn choice<T: std::str::FromStr<Err = String>>(
    body: &Map<String, Value>,
    field: &str,
    default: T,
    problems: &mut Problems,
) -> T {
    match body.get(field) {
        None | Some(Value::Null) => default,
        Some(Value::String(text)) => text.parse().unwrap_or_else(|e| {
            problems.add(field, e);
            default
        }),
        Some(_) => {
            problems.add(field, "must be a string");
            default
        }
    }
}

fn validate(body: Map<String, Value>, policy: AddressPolicy, psi_available: bool) -> Result<Submission, ApiError> {
    let mut problems = Problems::default();
    const KNOWN: [&str; 14] = START_FIELDS;
    for field in body.keys().filter(|k| !KNOWN.contains(&k.as_str())) {
        problems.add(field, format!("unknown field; expected one of {}", KNOWN.join(", ")));
    }
    let name = match body.get("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) if name.trim().is_empty() => {
            problems.add("name", "must not be blank");
            None
        }
        Some(Value::String(name)) if name.chars().count() > MAX_NAME_CHARS => {
            problems.add("name", format!("must be at most {MAX_NAME_CHARS} characters"));
            None
        }
        Some(Value::String(name)) => Some(name.trim().to_owned()),
        Some(_) => {
            problems.add("name", "must be a string");
            None
        }
    };
    let sitemap = match body.get("sitemap_url") {
        None | Some(Value::Null) => None,
        Some(Value::String(url)) => Some(url.clone()),
        Some(_) => {
            problems.add("sitemap_url", "must be a string");
            None
        }
    };
    let urls = match body.get("urls") {
        None | Some(Value::Null) if sitemap.is_some() => Vec::new(),
        None | Some(Value::Null) => {
            problems.add("urls", "is required: a list of 1 to 10000 URLs (or give sitemap_url)");
            Vec::new()
        }
        Some(_) if sitemap.is_some() => {
            problems.add("urls", "give urls or sitemap_url, not both");
            Vec::new()
        }
        Some(Value::Array(items)) if items.is_empty() => {
            problems.add("urls", "must contain at least one URL");
            Vec::new()
        }
        Some(Value::Array(items)) if items.len() > MAX_URLS => {
            problems.add("urls", format!("has {} entries; at most {MAX_URLS} are allowed", items.len()));
            Vec::new()
        }
        Some(Value::Array(items)) => {
            let mut urls = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(url) => urls.push(url.clone()),
                    _ => problems.add(&format!("urls[{i}]"), "must be a string"),
                }
            }
            urls
        }
        Some(_) => {
            problems.add("urls", "must be a list of strings");
            Vec::new()
        }
    };
    let callback_url = match body.get("callback_url") {
        None | Some(Value::Null) => None,
        Some(Value::String(url)) => match CleanUrl::parse(url, policy) {
            Ok(url) => Some(url.as_str().to_owned()),
            Err(reason) => {
                problems.add("callback_url", reason.to_string());
                None
            }
        },
        Some(_) => {
            problems.add("callback_url", "must be a string");
            None
        }
    };
    let dry_run = match body.get("dry_run") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(flag)) => *flag,
        Some(_) => {
            problems.add("dry_run", "must be true or false");
            false
        }
    };
    let default = JobSettings::default();
    let mut settings = JobSettings {
        priority: choice(&body, "priority", default.priority, &mut problems),
        strategy: choice(&body, "strategy", default.strategy, &mut problems),
        engine: choice(&body, "engine", default.engine, &mut problems),
        batch_size: integer(&body, "batch_size", (1, 20), default.batch_size, &mut problems),
        timeout_seconds: integer(&body, "timeout_seconds", (60, 1800), default.timeout_seconds, &mut problems),
        max_retries: integer(&body, "max_retries", (0, 5), default.max_retries, &mut problems),
        callback_url,
        runs: integer(&body, "runs", (1, 5), default.runs, &mut problems),
        cache_ttl_seconds: integer(&body, "cache_ttl_seconds", (0, 86_400), default.cache_ttl_seconds, &mut problems),
        categories: categories(&body, &mut problems),
    };
    // The job records the engine it runs on: `auto` is resolved here, once.
    settings.engine = match settings.engine {
        EngineChoice::Psi if !psi_available => {
            problems
                .add("engine", "psi needs a PageSpeed Insights key, and this deployment has none: use http or auto");
            EngineChoice::Psi
        }
        EngineChoice::Auto if psi_available => EngineChoice::Psi,
        EngineChoice::Auto => EngineChoice::Http,
        chosen => chosen,
    };
    if settings.engine == EngineChoice::Http && settings.categories.len() > 1 {
        problems.add(
            "categories",
            "only the psi engine scores accessibility, best-practices and seo; the http engine measures performance",
        );
    }
    if !problems.0.is_empty() {
        let count = problems.0.len();
        return Err(ApiError::Invalid {
            message: format!("{count} invalid field{}", if count == 1 { "" } else { "s" }),
            details: Value::Array(problems.0),
        });
    }
    let source = match sitemap {
        Some(sitemap) => Source::Sitemap(sitemap),
        None => Source::Urls(urls),
    };
    Ok(Submission { name, source, settings, dry_run })
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct StartResponse {
    #[serde(flatten)]
    job: JobView,
    accepted: usize,
    rejected: Vec<Rejected>,
    duplicates_removed: usize,
    effective_timeout_seconds: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    sitemap: Option<SitemapReport>,
}

/// A dry run's answer: the submission as it would be taken, with nothing created.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DryRunResponse {
    dry_run: bool,
    accepted: usize,
    /// The accepted URLs, cleaned, in submission order.
    urls: Vec<String>,
    rejected: Vec<Rejected>,
    duplicates_removed: usize,
    effective_timeout_seconds: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    sitemap: Option<SitemapReport>,
}

/// What a `sitemap_url` expanded to.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SitemapReport {
    url: String,
    documents: usize,
    urls_found: usize,
    /// The sitemap listed more than 10 000 URLs; the first 10 000 were taken.
    truncated: bool,
}

async fn expand_sitemap(settings: &crate::state::ApiSettings, sitemap_url: &str) -> Result<Expanded, ApiError> {
    let clean = CleanUrl::parse(sitemap_url, settings.policy)
        .map_err(|reason| ApiError::invalid_field("sitemap_url", reason.to_string()))?;
    let url = url::Url::parse(clean.as_str())
        .map_err(|e| ApiError::invalid_field("sitemap_url", format!("not a valid URL: {e}")))?;
    let limits = SitemapLimits { max_urls: MAX_URLS, ..SitemapLimits::default() };
    sitemap::expand(&settings.http, settings.policy, url, limits)
        .await
        .map_err(|e| ApiError::invalid_field("sitemap_url", e.to_string()))
}

#[utoipa::path(post, path = "/api/v1/batch-processing/start", tag = "jobs", request_body = StartRequest,
    responses(
        (status = 201, description = "The job was created and its URLs queued", body = StartResponse,
            links(
                ("progress" = (operation_id = "progress", parameters(("id" = "$response.body#/batch_job_id")),
                    description = "Watch the new job")),
                ("results" = (operation_id = "results", parameters(("id" = "$response.body#/batch_job_id")),
                    description = "The new job's results so far")),
                ("cancel" = (operation_id = "cancel", parameters(("id" = "$response.body#/batch_job_id")),
                    description = "Stop the new job")),
            )),
        (status = 200, description = "A dry run: what would be accepted and rejected; nothing created", body = DryRunResponse),
        (status = 400, description = "The body is not a JSON object", body = crate::error::ErrorBody),
        (status = 401, description = "No or unknown API key", body = crate::error::ErrorBody),
        (status = 413, description = "The body is over 6 MB", body = crate::error::ErrorBody),
        (status = 422, description = "Invalid fields, an unreadable sitemap, or no URL accepted", body = crate::error::ErrorBody),
    ))]
pub async fn start<S, Q>(
    State(state): State<SharedState<S, Q>>,
    Caller(tenant): Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError>
where
    S: Store,
    Q: Queue,
{
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge { limit: MAX_BODY_BYTES },
        _ => ApiError::Malformed(rejection.body_text()),
    })?;
    let body: Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::Malformed(format!("the body is not valid JSON: {e}")))?;
    let Value::Object(body) = body else {
        return Err(ApiError::Malformed("the body must be a JSON object".into()));
    };
    let settings = &state.settings;
    let submission = validate(body, settings.policy, settings.psi_available)?;
    let (urls, sitemap) = match submission.source {
        Source::Urls(urls) => (urls, None),
        Source::Sitemap(sitemap_url) => {
            let expanded = expand_sitemap(settings, &sitemap_url).await?;
            let report = SitemapReport {
                url: sitemap_url,
                documents: expanded.documents,
                urls_found: expanded.urls.len(),
                truncated: expanded.truncated,
            };
            (expanded.urls, Some(report))
        }
    };
    let batch = clean_batch(urls.iter().map(String::as_str), settings.policy);
    if batch.accepted.is_empty() {
        return Err(ApiError::Invalid {
            message: "no URL was accepted".into(),
            details: json!({
                "accepted": 0,
                "rejected": batch.rejected,
                "duplicates_removed": batch.duplicates_removed,
            }),
        });
    }
    let effective_timeout = submission.settings.timeout_seconds.min(settings.max_url_timeout_seconds);
    if submission.dry_run {
        let response = DryRunResponse {
            dry_run: true,
            accepted: batch.accepted.len(),
            urls: batch.accepted.iter().map(|url| url.as_str().to_owned()).collect(),
            rejected: batch.rejected,
            duplicates_removed: batch.duplicates_removed,
            effective_timeout_seconds: effective_timeout,
            sitemap,
        };
        return Ok((StatusCode::OK, Json(response)).into_response());
    }
    let now = now_millis();
    let name = submission.name.unwrap_or_else(|| format!("batch {}", rfc3339(now)));
    let job = Job::new(tenant, name, submission.settings, batch.accepted.len() as u64, now);
    state.store.create_job(&job, &batch.accepted).await?;
    // Only the first window starts now; each URL that finishes releases the next one.
    let messages: Vec<TaskMessage> = batch
        .accepted
        .iter()
        .take(job.initial_window() as usize)
        .enumerate()
        .map(|(seq, url)| TaskMessage::new(&job, seq as u32, url.as_str().to_owned(), effective_timeout))
        .collect();
    state.queue.send(settings.queues.for_priority(job.settings.priority), &messages).await?;
    tracing::info!(job_id = %job.id, urls = batch.accepted.len(), started = messages.len(), rejected = batch.rejected.len(), "job created");
    let response = StartResponse {
        job: JobView::new(&job),
        accepted: batch.accepted.len(),
        rejected: batch.rejected,
        duplicates_removed: batch.duplicates_removed,
        effective_timeout_seconds: effective_timeout,
        sitemap,
    };
    Ok((StatusCode::CREATED, Json(response)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems_of(body: Value) -> Vec<String> {
        let Value::Object(body) = body else { unreachable!() };
        match validate(body, AddressPolicy::default(), false) {
            Err(ApiError::Invalid { details: Value::Array(list), .. }) => list
                .iter()
                .map(|p| format!("{}: {}", p["field"].as_str().unwrap(), p["message"].as_str().unwrap()))
                .collect(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn the_documented_body_has_exactly_the_accepted_fields() {
        use utoipa::PartialSchema;
        let schema = serde_json::to_value(StartRequest::schema()).unwrap();
        let mut documented: Vec<&str> = schema["properties"].as_object().unwrap().keys().map(String::as_str).collect();
        let mut accepted = START_FIELDS.to_vec();
        documented.sort_unstable();
        accepted.sort_unstable();
        assert_eq!(documented, accepted);
    }

    #[test]
    fn defaults_fill_every_optional_field() {
        let Value::Object(body) = json!({"urls": ["a.com"]}) else { unreachable!() };
        let submission = validate(body, AddressPolicy::default(), false).unwrap();
        let s = submission.settings;
        // SPEC §2's defaults, spelled out: a change to JobSettings::default must show up here.
        assert_eq!((s.priority, s.strategy), (Priority::Normal, Strategy::Mobile));
        assert_eq!(s.engine, EngineChoice::Http, "auto, resolved: this deployment has no PSI key");
        assert_eq!((s.batch_size, s.timeout_seconds, s.max_retries), (5, 300, 3));
        assert_eq!((s.runs, s.cache_ttl_seconds, s.categories), (1, 0, vec![Category::Performance]));
        assert_eq!(submission.name, None);
    }

    #[test]
    fn reports_every_invalid_field_at_once() {
        let problems = problems_of(json!({
            "urls": ["a.com", 7],
            "priority": "asap",
            "strategy": 3,
            "batch_size": 21,
            "timeout_seconds": 59,
            "max_retries": -1,
            "dry_run": "yes",
            "runs": 6,
            "cache_ttl_seconds": 86_401,
            "categories": ["seo", "speed", 4],
            "name": "x".repeat(201),
            "colour": "blue",
        }));
        assert_eq!(
            problems,
            [
                "colour: unknown field; expected one of name, urls, sitemap_url, priority, strategy, batch_size, timeout_seconds, max_retries, engine, callback_url, runs, cache_ttl_seconds, categories, dry_run",
                "name: must be at most 200 characters",
                "urls[1]: must be a string",
                "dry_run: must be true or false",
                "priority: \"asap\" is not one of low, normal, high, urgent",
                "strategy: must be a string",
                "batch_size: must be a whole number from 1 to 20",
                "timeout_seconds: must be a whole number from 60 to 1800",
                "max_retries: must be a whole number from 0 to 5",
                "runs: must be a whole number from 1 to 5",
                "cache_ttl_seconds: must be a whole number from 0 to 86400",
                "categories[1]: \"speed\" is not one of performance, accessibility, best-practices, seo",
                "categories[2]: must be a string",
                "categories: only the psi engine scores accessibility, best-practices and seo; the http engine measures performance",
            ]
        );
    }

    #[test]
    fn categories_are_for_psi_and_always_include_performance() {
        let Value::Object(body) =
            json!({"urls": ["a.com"], "engine": "psi", "categories": ["seo", "seo", "accessibility"], "runs": 3})
        else {
            unreachable!()
        };
        let s = validate(body, AddressPolicy::default(), true).unwrap().settings;
        assert_eq!(s.categories, [Category::Performance, Category::Seo, Category::Accessibility]);
        assert_eq!((s.runs, s.cache_ttl_seconds), (3, 0));
        let Value::Object(body) = json!({"urls": ["a.com"], "categories": ["performance"]}) else { unreachable!() };
        assert!(validate(body, AddressPolicy::default(), false).is_ok(), "performance alone suits the http engine");
    }

    #[test]
    fn url_list_bounds() {
        assert_eq!(problems_of(json!({})), ["urls: is required: a list of 1 to 10000 URLs (or give sitemap_url)"]);
        assert_eq!(
            problems_of(json!({"urls": ["a.com"], "sitemap_url": "a.com/sitemap.xml"})),
            ["urls: give urls or sitemap_url, not both"]
        );
        assert_eq!(
            problems_of(json!({"sitemap_url": 5})),
            ["sitemap_url: must be a string", "urls: is required: a list of 1 to 10000 URLs (or give sitemap_url)"]
        );
        assert_eq!(problems_of(json!({"urls": []})), ["urls: must contain at least one URL"]);
        let too_many: Vec<String> = (0..10_001).map(|i| format!("a.com/{i}")).collect();
        assert_eq!(problems_of(json!({"urls": too_many})), ["urls: has 10001 entries; at most 10000 are allowed"]);
        assert_eq!(problems_of(json!({"urls": "a.com"})), ["urls: must be a list of strings"]);
    }

    #[test]
    fn boundaries_are_inclusive() {
        let Value::Object(body) = json!({"urls": ["a.com"], "batch_size": 20, "timeout_seconds": 1800, "max_retries": 0, "priority": "urgent"})
        else {
            unreachable!()
        };
        let settings = validate(body, AddressPolicy::default(), false).unwrap().settings;
        assert_eq!((settings.batch_size, settings.timeout_seconds, settings.max_retries), (20, 1800, 0));
    }

    #[test]
    fn auto_resolves_to_psi_where_there_is_a_key() {
        let body = |engine: &str| {
            let Value::Object(body) = json!({"urls": ["a.com"], "engine": engine}) else { unreachable!() };
            body
        };
        let resolved =
            |engine: &str, psi: bool| validate(body(engine), AddressPolicy::default(), psi).map(|s| s.settings.engine);
        assert_eq!(resolved("auto", true).unwrap(), EngineChoice::Psi);
        assert_eq!(resolved("auto", false).unwrap(), EngineChoice::Http);
        assert_eq!(resolved("http", true).unwrap(), EngineChoice::Http);
        assert_eq!(resolved("psi", true).unwrap(), EngineChoice::Psi);
        assert!(resolved("psi", false).is_err());
    }
}

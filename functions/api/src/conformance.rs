//! The handlers' real answers checked against the OpenAPI document they are served with: the
//! status is documented for the operation, the content type for the status, and the body
//! matches the schema. What scripts/schemathesis.sh checks against a deployed stack, here for
//! each kind of answer, in-process, over the in-memory store.

use aws::config::QueueUrls;
use aws::queue::MemoryQueue;
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use domain::AddressPolicy;
use domain::auth::hash_key;
use domain::{Job, JobSettings, JobStatus, Tenant};
use serde_json::{Value, json};
use store::MemoryStore;
use store::prelude::*;
use tower::ServiceExt;
use utoipa::OpenApi;

use crate::openapi::ApiDoc;
use crate::{ApiSettings, AppState, BASE_PATH};

const KEY: &str = "sb_c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0";

fn doc() -> Value {
    serde_json::to_value(ApiDoc::openapi()).unwrap()
}

/// A small JSON Schema validator for what utoipa emits: `$ref`, `type`, `enum`, `oneOf`,
/// `allOf`, `anyOf`, object properties, arrays and numeric and length bounds. Problems are
/// collected with the JSON path they were found at.
fn validate(doc: &Value, schema: &Value, value: &Value, at: &str, problems: &mut Vec<String>) {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.strip_prefix("#/components/schemas/").expect("a component reference");
        let target = &doc["components"]["schemas"][name];
        assert!(target.is_object(), "{reference} does not resolve");
        return validate(doc, target, value, at, problems);
    }
    let matches = |sub: &Value| {
        let mut inner = Vec::new();
        validate(doc, sub, value, at, &mut inner);
        inner.is_empty()
    };
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        all.iter().for_each(|sub| validate(doc, sub, value, at, problems));
    }
    if let Some(one) = schema.get("oneOf").and_then(Value::as_array) {
        let n = one.iter().filter(|sub| matches(sub)).count();
        if n != 1 {
            problems.push(format!("{at}: {value} matches {n} of oneOf {}", Value::Array(one.clone())));
        }
    }
    if let Some(any) = schema.get("anyOf").and_then(Value::as_array)
        && !any.iter().any(matches)
    {
        problems.push(format!("{at}: {value} matches none of anyOf"));
    }
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
            other => panic!("type {other}"),
        };
        let is = |t: &str| match t {
            "null" => value.is_null(),
            "boolean" => value.is_boolean(),
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "number" => value.is_number(),
            "integer" => value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|f| f.fract() == 0.0),
            other => panic!("type {other}"),
        };
        if !types.iter().any(|t| is(t)) {
            problems.push(format!("{at}: {value} is not of type {types:?}"));
            return;
        }
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array)
        && !values.contains(value)
    {
        problems.push(format!("{at}: {value} is not one of {values:?}"));
    }
    if let Some(n) = value.as_f64() {
        if schema.get("minimum").and_then(Value::as_f64).is_some_and(|min| n < min) {
            problems.push(format!("{at}: {n} is below the minimum {}", schema["minimum"]));
        }
        if schema.get("maximum").and_then(Value::as_f64).is_some_and(|max| n > max) {
            problems.push(format!("{at}: {n} is above the maximum {}", schema["maximum"]));
        }
    }
    if let Some(text) = value.as_str() {
        let chars = text.chars().count() as u64;
        if schema.get("minLength").and_then(Value::as_u64).is_some_and(|min| chars < min)
            || schema.get("maxLength").and_then(Value::as_u64).is_some_and(|max| chars > max)
        {
            problems.push(format!("{at}: {text:?} has a length out of bounds"));
        }
    }
    if let Some(items) = value.as_array() {
        if let Some(item_schema) = schema.get("items") {
            for (i, item) in items.iter().enumerate() {
                validate(doc, item_schema, item, &format!("{at}[{i}]"), problems);
            }
        }
        let n = items.len() as u64;
        if schema.get("minItems").and_then(Value::as_u64).is_some_and(|min| n < min)
            || schema.get("maxItems").and_then(Value::as_u64).is_some_and(|max| n > max)
        {
            problems.push(format!("{at}: {n} items, out of bounds"));
        }
    }
    if let Some(object) = value.as_object() {
        let properties = schema.get("properties").and_then(Value::as_object);
        for name in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
            let name = name.as_str().unwrap();
            if !object.contains_key(name) {
                problems.push(format!("{at}: required property {name:?} is missing"));
            }
        }
        for (name, field) in object {
            match properties.and_then(|p| p.get(name)) {
                Some(field_schema) => validate(doc, field_schema, field, &format!("{at}.{name}"), problems),
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    problems.push(format!("{at}: property {name:?} is not allowed"))
                }
                None => {}
            }
        }
    }
}

/// An answer of the API, as a client sees it.
struct Answer {
    status: StatusCode,
    content_type: Option<String>,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    /// Asserts the answer is one the document describes for `method` `path` (the template, as
    /// documented, below the base path), and returns its JSON body (null when it has none).
    fn conforms(&self, doc: &Value, method: &str, path: &str) -> Value {
        let operation = &doc["paths"][format!("{BASE_PATH}{path}")][method];
        assert!(operation.is_object(), "{method} {path} is not documented");
        let response = &operation["responses"][self.status.as_str()];
        assert!(response.is_object(), "{method} {path}: status {} is not documented", self.status);
        let Some(content) = response.get("content").and_then(Value::as_object) else {
            assert!(self.body.is_empty(), "{method} {path} {}: a body where none is documented", self.status);
            return Value::Null;
        };
        let media = self.content_type.as_deref().map(|t| t.split(';').next().unwrap().trim().to_owned());
        let media = media.unwrap_or_else(|| panic!("{method} {path} {}: no content type", self.status));
        let Some(documented) = content.get(&media) else {
            panic!("{method} {path} {}: content type {media} is not documented", self.status)
        };
        if media != "application/json" {
            return Value::Null;
        }
        let body = self.json();
        let mut problems = Vec::new();
        validate(doc, &documented["schema"], &body, "$", &mut problems);
        assert!(problems.is_empty(), "{method} {path} {}: {body}\n{}", self.status, problems.join("\n"));
        body
    }
}

async fn call(app: &Router, method: &str, uri: &str, body: Option<Value>, key: Option<&str>) -> Answer {
    let mut request = Request::builder().method(method).uri(format!("{BASE_PATH}{uri}"));
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    let body = match body {
        Some(body) => {
            request = request.header(header::CONTENT_TYPE, "application/json");
            Body::from(body.to_string())
        }
        None => Body::empty(),
    };
    let response = app.clone().oneshot(request.body(body).unwrap()).await.unwrap();
    let status = response.status();
    let content_type = response.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_owned());
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap().to_vec();
    Answer { status, content_type, body }
}

/// The router over an in-memory store holding `KEY`'s tenant and, for it, one finished job.
async fn app() -> (Router, String) {
    let store = MemoryStore::new();
    let tenant = Tenant("conformance".into());
    store.put_key_hash(&hash_key(KEY), &tenant).await.unwrap();
    let mut finished = Job::new(tenant, "finished".into(), JobSettings::default(), 0, 1_000);
    finished.status = JobStatus::Completed;
    finished.finished_at = Some(2_000);
    store.create_job(&finished, &[]).await.unwrap();
    let queues = QueueUrls { high: "q/high".into(), normal: "q/normal".into(), low: "q/low".into(), browser: None };
    let policy = AddressPolicy::new(false);
    let settings = ApiSettings {
        queues: queues.clone(),
        dead_letters: Some(queues),
        policy,
        max_url_timeout_seconds: 840,
        http: net::safe_client::safe_client(policy).unwrap(),
        psi_available: false,
        crux_available: false,
        tenant_limits: domain::tenancy::Limits::DEFAULT,
        ws_url: None,
    };
    (
        crate::app(AppState {
            store,
            queue: MemoryQueue::new(),
            exports: aws::exports::MemoryExports::default(),
            settings,
        }),
        finished.id.to_string(),
    )
}

#[tokio::test]
async fn error_bodies_match_the_document() {
    let (app, finished) = app().await;
    let doc = doc();
    // details: null.
    let answer = call(&app, "GET", "/progress/nope", None, Some(KEY)).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.conforms(&doc, "get", "/progress/{id}")["error"]["details"], Value::Null);
    let answer = call(&app, "POST", &format!("/cancel/{finished}"), None, Some(KEY)).await;
    assert_eq!(answer.status, StatusCode::CONFLICT);
    answer.conforms(&doc, "post", "/cancel/{id}");
    let answer = call(&app, "GET", "/jobs", None, Some("sb_unknown")).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    answer.conforms(&doc, "get", "/jobs");
    let answer = call(&app, "GET", "/jobs?cursor=tampered", None, Some(KEY)).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    answer.conforms(&doc, "get", "/jobs");
    // details: the invalid fields.
    let answer = call(&app, "GET", "/jobs?limit=0", None, Some(KEY)).await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(answer.conforms(&doc, "get", "/jobs")["error"]["details"].is_array());
    let answer = call(&app, "DELETE", "/cleanup", None, Some(KEY)).await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    answer.conforms(&doc, "delete", "/cleanup");
    // details: the accepted and rejected lists.
    let answer = call(&app, "POST", "/start", Some(json!({"urls": ["", "ftp://a.com"]})), Some(KEY)).await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(answer.conforms(&doc, "post", "/start")["error"]["details"]["rejected"].is_array());
    let answer = call(&app, "POST", "/start", None, Some(KEY)).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    answer.conforms(&doc, "post", "/start");
}

#[tokio::test]
async fn successful_answers_match_the_document() {
    let (app, finished) = app().await;
    let doc = doc();
    let submission = json!({"urls": ["a.com", "https://b.com/x/", "a.com", "http://10.0.0.1"], "name": "n"});
    let answer = call(&app, "POST", "/start", Some(submission.clone()), Some(KEY)).await;
    assert_eq!(answer.status, StatusCode::CREATED);
    let created = answer.conforms(&doc, "post", "/start");
    assert_eq!(created["status"], "pending", "the wire name, which the document must list");
    let id = created["batch_job_id"].as_str().unwrap();
    let mut dry_run = submission;
    dry_run["dry_run"] = json!(true);
    let answer = call(&app, "POST", "/start", Some(dry_run), Some(KEY)).await;
    assert_eq!(answer.status, StatusCode::OK);
    answer.conforms(&doc, "post", "/start");
    for (method, uri, path, status) in [
        ("GET", format!("/progress/{id}"), "/progress/{id}", StatusCode::OK),
        ("GET", format!("/results/{id}"), "/results/{id}", StatusCode::OK),
        ("GET", format!("/results/{finished}?status=queued&limit=1000"), "/results/{id}", StatusCode::OK),
        ("GET", "/jobs?limit=100&status=pending".into(), "/jobs", StatusCode::OK),
        ("GET", "/queue/status".into(), "/queue/status", StatusCode::OK),
        ("GET", "/callback-secret".into(), "/callback-secret", StatusCode::OK),
        ("GET", "/health".into(), "/health", StatusCode::OK),
        ("DELETE", "/cleanup?older_than_days=3650&dry_run=true".into(), "/cleanup", StatusCode::OK),
        ("POST", format!("/cancel/{id}"), "/cancel/{id}", StatusCode::ACCEPTED),
    ] {
        let answer = call(&app, method, &uri, None, Some(KEY)).await;
        assert_eq!(answer.status, status, "{method} {uri}: {}", String::from_utf8_lossy(&answer.body));
        answer.conforms(&doc, &method.to_lowercase(), path);
    }
    let answer = call(&app, "GET", &format!("/results/{id}?format=csv"), None, Some(KEY)).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.content_type.as_deref(), Some("text/csv; charset=utf-8"));
    answer.conforms(&doc, "get", "/results/{id}");
}

/// Positive data must be accepted: every value the document allows for a bounded query
/// parameter is one the handler takes, and the first one beyond is refused with 422.
#[tokio::test]
async fn documented_parameter_bounds_are_the_handlers() {
    let (app, _) = app().await;
    let doc = doc();
    for (path, name, uri) in [
        ("/jobs", "limit", "/jobs?limit="),
        ("/results/{id}", "limit", "/results/{id}?limit="),
        ("/cleanup", "older_than_days", "/cleanup?older_than_days="),
    ] {
        let operation = &doc["paths"][format!("{BASE_PATH}{path}")];
        let operation = operation.as_object().unwrap().values().next().unwrap();
        let parameter = operation["parameters"].as_array().unwrap().iter().find(|p| p["name"] == name).unwrap();
        let schema = &parameter["schema"];
        let min = schema["minimum"].as_i64().unwrap_or_else(|| panic!("{path} {name}: no minimum"));
        let max = schema["maximum"].as_i64().unwrap_or_else(|| panic!("{path} {name}: no maximum"));
        // results/{id}: a job of the tenant's is not needed to check the parameters, which are
        // validated first; a missing job is 404, a refused parameter 422.
        let uri = uri.replace("{id}", "missing");
        for (value, accepted) in [(min, true), (max, true), (min - 1, false), (max + 1, false)] {
            let answer = call(
                &app,
                if path == "/cleanup" { "DELETE" } else { "GET" },
                &format!("{uri}{value}"),
                None,
                Some(KEY),
            )
            .await;
            let refused = answer.status == StatusCode::UNPROCESSABLE_ENTITY;
            assert_eq!(!refused, accepted, "{path} {name}={value}: {}", answer.status);
        }
    }
}

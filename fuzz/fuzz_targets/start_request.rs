//! `POST /start` through the real router (body limit, authentication, JSON parsing,
//! validation, URL cleaning, job creation, fan-out), with the in-memory store and queue the
//! handlers' tests use, and arbitrary bytes as the body: invalid UTF-8, deep nesting, huge
//! numbers, duplicate keys.
//!
//! Properties, beyond "never panics":
//! - the answer is never a 5xx: bad input is the caller's problem, and says so;
//! - every error is `{"error": {"code", "message", "details"}}` with the code its status
//!   documents: 400 exactly when the body is not a JSON object, 422 otherwise;
//! - a success is the documented one: 200 for a dry run (the cleaned URLs, which clean to
//!   themselves, and nothing queued) and 201 otherwise (the job, its first window queued);
//!   accepted, rejected and duplicates account for every submitted URL.

#![no_main]

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::LazyLock;

use api::{ApiSettings, AppState};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use domain::auth::hash_key;
use store::KeyStore;
use aws::config::QueueUrls;
use domain::{CleanUrl, Tenant};
use domain::AddressPolicy;
use aws::queue::MemoryQueue;
use store::MemoryStore;
use tower::ServiceExt;

const KEY: &str = "sb_f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0";
const MAX_URL_TIMEOUT: u64 = 840;
/// The deployed default: the fuzzer's URLs are judged as production would judge them.
const POLICY: AddressPolicy = AddressPolicy::STRICT;

struct World {
    runtime: tokio::runtime::Runtime,
    /// Shared by every request: building a client (TLS roots) costs far more than a request.
    http: reqwest::Client,
}

static WORLD: LazyLock<World> = LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    // A `sitemap_url` must not reach the network from a fuzzer: every request the client makes
    // goes to a proxy on a local port that was just closed, so it fails at once, whatever the
    // host (names and public IP literals alike), and the API answers 422 as for any
    // unreachable sitemap.
    let closed: SocketAddr = {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        listener.local_addr().expect("address")
    };
    let proxy = reqwest::Proxy::all(format!("http://{closed}")).expect("proxy");
    let http = reqwest::Client::builder()
        .proxy(proxy)
        .connect_timeout(std::time::Duration::from_secs(1))
        .build()
        .expect("client");
    World { runtime, http }
});

fuzz_target!(|data: &[u8]| {
    let world = &*WORLD;
    world.runtime.block_on(async {
        for psi_available in [false, true] {
            check(world, data, psi_available).await;
        }
    });
});

async fn check(world: &World, data: &[u8], psi_available: bool) {
    // A fresh store and queue per request: each input is judged on its own, and created jobs
    // do not pile up in memory over millions of runs.
    let store = MemoryStore::new();
    store.put_key_hash(&hash_key(KEY), &Tenant("fuzz".into())).await.expect("key");
    let queues = QueueUrls { high: "q-high".into(), normal: "q-normal".into(), low: "q-low".into(), browser: None };
    let state = AppState {
        store,
        queue: MemoryQueue::new(),
        exports: aws::exports::MemoryExports::default(),
        settings: ApiSettings {
            queues,
            dead_letters: None,
            policy: POLICY,
            max_url_timeout_seconds: MAX_URL_TIMEOUT as u32,
            http: world.http.clone(),
            psi_available,
            crux_available: false,
            tenant_limits: domain::tenancy::Limits::DEFAULT,
            ws_url: None,
        },
    };
    let router = api::app(state);
    let request = Request::post(domain::paths::endpoint("/start"))
        .header("x-api-key", KEY)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(data.to_vec()))
        .expect("request");
    let response = router.oneshot(request).await.expect("the router is infallible");
    let status = response.status();
    let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
    let body: Value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{status}: the answer is not JSON ({e}): {}", String::from_utf8_lossy(&bytes)));
    assert_eq!(content_type.as_ref().map(|v| v.as_bytes()), Some(&b"application/json"[..]), "{status}");
    assert!(!status.is_server_error(), "{status} for a client's body: {body}");

    // What the body is, judged independently of the handler.
    let submitted = match serde_json::from_slice::<Value>(data) {
        Ok(Value::Object(object)) => Some(object),
        _ => None,
    };
    match status {
        StatusCode::BAD_REQUEST => {
            error(&body, "malformed_request");
            assert!(submitted.is_none(), "400 for a JSON object: {body}");
        }
        StatusCode::UNPROCESSABLE_ENTITY => {
            error(&body, "validation_failed");
            let submitted = submitted.unwrap_or_else(|| panic!("422 for a body that is not a JSON object: {body}"));
            let details = &body["error"]["details"];
            if body["error"]["message"] == "no URL was accepted" {
                assert_eq!(details["accepted"], 0);
                accounts_for_every_url(&submitted, details);
            } else {
                let problems = details.as_array().unwrap_or_else(|| panic!("details are not a list: {body}"));
                assert!(!problems.is_empty(), "422 without a reason: {body}");
                for problem in problems {
                    assert!(problem["field"].is_string() && problem["message"].is_string(), "{body}");
                }
            }
        }
        StatusCode::OK => {
            let submitted = submitted.unwrap_or_else(|| panic!("200 for a body that is not a JSON object: {body}"));
            assert_eq!(submitted.get("dry_run"), Some(&Value::Bool(true)), "200 is the dry run's answer: {body}");
            assert_eq!(body["dry_run"], true);
            let urls = body["urls"].as_array().expect("urls");
            assert!(!urls.is_empty());
            assert_eq!(body["accepted"].as_u64(), Some(urls.len() as u64));
            for url in urls {
                let url = url.as_str().expect("a URL is a string");
                assert_eq!(CleanUrl::parse(url, POLICY).as_ref().map(CleanUrl::as_str), Ok(url), "not clean");
            }
            accounts_for_every_url(&submitted, &body);
            effective_timeout(&submitted, &body);
        }
        StatusCode::CREATED => {
            let submitted = submitted.unwrap_or_else(|| panic!("201 for a body that is not a JSON object: {body}"));
            assert_ne!(submitted.get("dry_run"), Some(&Value::Bool(true)), "a dry run created a job: {body}");
            assert!(body["batch_job_id"].as_str().is_some_and(|id| !id.is_empty()), "{body}");
            assert_eq!(body["status"], "pending");
            let accepted = body["accepted"].as_u64().expect("accepted");
            assert!(accepted >= 1);
            assert_eq!(body["total_urls"].as_u64(), Some(accepted), "{body}");
            accounts_for_every_url(&submitted, &body);
            effective_timeout(&submitted, &body);
            settings_as_submitted(&submitted, &body, psi_available);
        }
        other => panic!("{other} is not an answer POST /start documents for a body: {body}"),
    }
}

/// The error envelope, with the code its status documents.
fn error(body: &Value, code: &str) {
    let error = &body["error"];
    assert_eq!(error["code"], code, "{body}");
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert!(error.get("details").is_some(), "{body}");
}

/// Accepted, rejected and removed duplicates add up to the URLs submitted (a sitemap's URLs
/// are not in the body; the fuzzer's sitemaps never load, so they never get here).
fn accounts_for_every_url(submitted: &serde_json::Map<String, Value>, answer: &Value) {
    let Some(Value::Array(urls)) = submitted.get("urls") else {
        panic!("an answer that counts URLs for a body without a list of them: {answer}");
    };
    let accepted = answer["accepted"].as_u64().expect("accepted");
    let rejected = answer["rejected"].as_array().expect("rejected");
    let duplicates = answer["duplicates_removed"].as_u64().expect("duplicates_removed");
    assert_eq!(accepted + rejected.len() as u64 + duplicates, urls.len() as u64, "{answer}");
    for item in rejected {
        assert!(item["input"].is_string() && item["reason"].as_str().is_some_and(|r| !r.is_empty()), "{item}");
    }
}

fn effective_timeout(submitted: &serde_json::Map<String, Value>, answer: &Value) {
    let requested = submitted.get("timeout_seconds").and_then(Value::as_u64).unwrap_or(300);
    assert_eq!(answer["effective_timeout_seconds"].as_u64(), Some(requested.min(MAX_URL_TIMEOUT)), "{answer}");
}

/// The job records what was asked for, defaults where nothing was, and `auto` resolved.
fn settings_as_submitted(submitted: &serde_json::Map<String, Value>, job: &Value, psi_available: bool) {
    let defaults =
        [("batch_size", 5), ("timeout_seconds", 300), ("max_retries", 3), ("runs", 1), ("cache_ttl_seconds", 0)];
    for (field, default) in defaults {
        let asked = submitted.get(field).and_then(Value::as_u64).unwrap_or(default);
        assert_eq!(job[field].as_u64(), Some(asked), "{field}: {job}");
    }
    let engine = match submitted.get("engine").and_then(Value::as_str).unwrap_or("auto") {
        "auto" if psi_available => "psi",
        "auto" => "http",
        chosen => chosen,
    };
    assert_eq!(job["engine"], engine, "{job}");
}

//! The HTTP contract of the endpoints this version serves: authentication, tenants, errors.

use axum::body::Body;
use axum::http::Request;
use serde_json::json;

use crate::harness::Harness;

fn start() -> String {
    domain::paths::endpoint("/start")
}

#[tokio::test]
async fn keys_are_required_and_tenants_are_isolated() {
    let h = Harness::new().await;
    let alice = h.key_for("alice").await;
    let bob = h.key_for("bob").await;
    let body = json!({"urls": ["http://127.0.0.1:9/page"]});

    let none = h.request("POST", &start(), None, Some(body.clone())).await;
    assert_eq!(none.status, 401);
    assert_eq!(none.body["error"]["code"], "unauthorized");
    let wrong = h.request("POST", &start(), Some("sb_not-a-key"), Some(body.clone())).await;
    assert_eq!(wrong.status, 401);

    let bearer = Request::builder()
        .method("POST")
        .uri(start())
        .header("authorization", format!("Bearer {alice}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let created = h.send(bearer).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["batch_job_id"].as_str().unwrap().to_owned();
    let path = domain::paths::endpoint(&format!("/progress/{id}"));

    assert_eq!(h.request("GET", &path, Some(&alice), None).await.status, 200);
    let api = domain::paths::BASE_PATH;
    for (method, path) in [
        ("GET", format!("{api}/progress/{id}")),
        ("GET", format!("{api}/results/{id}")),
        ("GET", format!("{api}/results/{id}?format=csv")),
        ("POST", format!("{api}/cancel/{id}")),
    ] {
        let other = h.request(method, &path, Some(&bob), None).await;
        assert_eq!(other.status, 404, "{method} {path}: another tenant's job does not exist for bob");
        assert_eq!(other.body["error"]["code"], "not_found");
        assert_eq!(h.request(method, &path, None, None).await.status, 401, "{method} {path} without a key");
    }
    let listed = h.request("GET", &format!("{api}/jobs"), Some(&bob), None).await;
    assert_eq!(listed.body["jobs"], serde_json::json!([]), "bob lists none of alice's jobs");
    let cleaned = h.request("DELETE", &format!("{api}/cleanup?older_than_days=0"), Some(&bob), None).await;
    assert_eq!(cleaned.body["jobs_matched"], 0);
    let progress = h.request("GET", &path, Some(&alice), None).await;
    assert_eq!(progress.body["status"], "pending", "bob's cancel did not touch alice's job");
    h.env.cleanup().await;
}

#[tokio::test]
async fn bad_requests_get_clear_errors() {
    let h = Harness::new().await;
    let key = h.key_for("acme").await;

    let malformed = h
        .send(
            Request::builder()
                .method("POST")
                .uri(start())
                .header("x-api-key", &key)
                .body(Body::from("{\"urls\": [\"a.com\""))
                .unwrap(),
        )
        .await;
    assert_eq!(malformed.status, 400);
    assert_eq!(malformed.body["error"]["code"], "malformed_request");
    assert!(malformed.body["error"]["message"].as_str().unwrap().starts_with("the body is not valid JSON"));

    let not_object = h.request("POST", &start(), Some(&key), Some(json!(["a.com"]))).await;
    assert_eq!(not_object.status, 400);

    let invalid = h.request("POST", &start(), Some(&key), Some(json!({"urls": ["a.com"], "batch_size": 0}))).await;
    assert_eq!(invalid.status, 422);
    assert_eq!(
        invalid.body["error"]["details"],
        json!([{"field": "batch_size", "message": "must be a whole number from 1 to 20"}])
    );

    let none_accepted = h
        .request("POST", &start(), Some(&key), Some(json!({"urls": ["ftp://a.com", "https://user:pw@b.com", "   "]})))
        .await;
    assert_eq!(none_accepted.status, 422);
    assert_eq!(none_accepted.body["error"]["message"], "no URL was accepted");
    assert_eq!(
        none_accepted.body["error"]["details"]["rejected"],
        json!([
            {"input": "ftp://a.com", "reason": "only http and https URLs can be analysed, not ftp:"},
            {"input": "https://user:pw@b.com", "reason": "credentials in the URL are not allowed"},
            {"input": "   ", "reason": "empty"},
        ])
    );

    let huge = format!("{{\"urls\": [\"{}\"]}}", "a".repeat(7 * 1024 * 1024));
    let too_large = h
        .send(Request::builder().method("POST").uri(start()).header("x-api-key", &key).body(Body::from(huge)).unwrap())
        .await;
    assert_eq!(too_large.status, 413);
    assert_eq!(too_large.body["error"]["code"], "payload_too_large");

    let unknown_job = h
        .request("GET", &domain::paths::endpoint("/progress/0190c2d5-0000-7000-8000-000000000000"), Some(&key), None)
        .await;
    assert_eq!(unknown_job.status, 404);
    let bad_id = h.request("GET", &domain::paths::endpoint("/progress/JOB%23x"), Some(&key), None).await;
    assert_eq!(bad_id.status, 404);
    let no_route = h.request("GET", "/api/v1/nothing-here", Some(&key), None).await;
    assert_eq!(no_route.status, 404);
    assert_eq!(no_route.body["error"]["code"], "not_found");
    h.env.cleanup().await;
}

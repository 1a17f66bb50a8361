//! Monitors through the API, on the in-memory store.

use serde_json::{Value, json};

use crate::test_app::{app, call, get, post_json, store};

const MINUTE: i64 = 60_000;

fn millis(text: &Value) -> i64 {
    domain::time::parse_rfc3339(text.as_str().expect("a time")).expect("RFC 3339")
}

async fn patch_json(app: &axum::Router, uri: &str, body: &Value) -> crate::test_app::Answer {
    crate::test_app::send_json(app, "PATCH", uri, body).await
}

#[tokio::test]
async fn a_monitor_is_created_with_its_schedule_and_urls_and_shown_to_its_tenant() {
    let app = app(store().await);
    let body = json!({"name": "home pages", "urls": ["a.example", {"url": "https://b.example/", "labels": {"tier": "gold"}}, "a.example/", "ftp://x"],
                      "schedule": "rate(15 minutes)", "engine": "http", "batch_size": 2,
                      "budgets": [{"metric": "ttfb_ms", "max": 500}, {"metric": "delivery_score", "min": 80, "labels": "tier:gold"}]});
    let created = post_json(&app, "/monitors", &body).await;
    assert_eq!(created.status, 201, "{}", created.text());
    let m = created.json();
    assert_eq!((m["accepted"].as_u64(), m["duplicates_removed"].as_u64()), (Some(2), Some(1)));
    assert_eq!(m["rejected"][0]["input"], "ftp://x");
    assert_eq!(
        (m["schedule"].as_str(), m["enabled"].as_bool(), m["batch_size"].as_u64()),
        (Some("rate(15 minutes)"), Some(true), Some(2))
    );
    assert_eq!((m["url_count"].as_u64(), m["runs"].as_u64(), &m["last_job_id"]), (Some(2), Some(0), &Value::Null));
    assert_eq!(m["budgets"][1], json!({"metric": "delivery_score", "min": 80.0, "labels": "tier:gold"}));
    let created_at = millis(&m["created_at"]);
    assert_eq!(millis(&m["next_run_at"]) - created_at, 15 * MINUTE, "the first tick, a period after creation");
    let id = m["monitor_id"].as_str().unwrap().to_owned();

    let shown = get(&app, &format!("/monitors/{id}")).await;
    assert_eq!((shown.status.as_u16(), shown.json()["name"].clone()), (200, json!("home pages")));
    let listed = get(&app, "/monitors").await.json();
    assert_eq!(listed["monitors"][0]["monitor_id"], id.as_str());
}

#[tokio::test]
async fn a_bad_monitor_says_everything_that_is_wrong() {
    let app = app(store().await);
    let answer = post_json(
        &app,
        "/monitors",
        &json!({"urls": ["a.example"], "schedule": "rate(5 minutes)", "batch_size": 99, "budgets": [{"metric": "lcp_ms"}], "enabled": "yes", "colour": 1}),
    )
    .await;
    assert_eq!(answer.status, 422, "{}", answer.text());
    let fields: Vec<String> = answer.json()["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["field"].as_str().unwrap().to_owned())
        .collect();
    for field in ["colour", "batch_size", "schedule", "budgets[0]", "enabled"] {
        assert!(fields.contains(&field.to_owned()), "{field} in {fields:?}");
    }
    // The http engine gives no performance score: a budget on it could never be checked.
    let http = post_json(
        &app,
        "/monitors",
        &json!({"urls": ["a.example"], "schedule": "rate(1 hour)", "engine": "http", "budgets": [{"metric": "score", "min": 90}]}),
    )
    .await;
    assert_eq!(http.status, 422, "{}", http.text());
    assert_eq!(
        http.json()["error"]["details"][0],
        json!({"field": "budgets[0]", "message": "the http engine gives no performance score (score): use delivery_score"})
    );
    let missing = post_json(&app, "/monitors", &json!({"urls": ["a.example"]})).await;
    assert_eq!(missing.json()["error"]["details"][0]["field"], "schedule");
    let none = post_json(&app, "/monitors", &json!({"urls": ["ftp://x"], "schedule": "rate(1 hour)"})).await;
    assert_eq!((none.status.as_u16(), none.json()["error"]["message"].clone()), (422, json!("no URL was accepted")));
}

#[tokio::test]
async fn a_change_replaces_what_it_names_and_a_new_schedule_counts_from_now() {
    let app = app(store().await);
    let created =
        post_json(&app, "/monitors", &json!({"urls": ["a.example"], "schedule": "rate(1 hour)"})).await.json();
    let id = created["monitor_id"].as_str().unwrap();
    let renamed = patch_json(&app, &format!("/monitors/{id}"), &json!({"name": "renamed"})).await;
    assert_eq!(renamed.status, 200, "{}", renamed.text());
    let renamed = renamed.json();
    assert_eq!(
        (renamed["name"].as_str(), &renamed["next_run_at"]),
        (Some("renamed"), &created["next_run_at"]),
        "the schedule is untouched"
    );
    let off = patch_json(&app, &format!("/monitors/{id}"), &json!({"enabled": false})).await.json();
    assert_eq!((off["enabled"].as_bool(), &off["next_run_at"]), (Some(false), &Value::Null));
    let on = patch_json(
        &app,
        &format!("/monitors/{id}"),
        &json!({"enabled": true, "schedule": "cron(0 6 * * ? *)", "urls": ["b.example", "c.example"]}),
    )
    .await
    .json();
    assert!(on["next_run_at"].as_str().unwrap().ends_with("T06:00:00.000Z"), "{on}");
    assert_eq!(on["url_count"], 2);
    let bad =
        patch_json(&app, &format!("/monitors/{id}"), &json!({"schedule": "cron(* * * * ? *)", "priority": "asap"}))
            .await;
    assert_eq!(bad.status, 422);
    assert_eq!(bad.json()["error"]["details"].as_array().map(Vec::len), Some(2), "{}", bad.text());
}

#[tokio::test]
async fn a_run_by_hand_is_a_job_of_the_monitor_and_never_overlaps_the_last() {
    let app = app(store().await);
    let created = post_json(
        &app,
        "/monitors",
        &json!({"urls": ["a.example", "b.example"], "schedule": "rate(1 day)", "batch_size": 1}),
    )
    .await
    .json();
    let id = created["monitor_id"].as_str().unwrap();
    let run = call(&app, "POST", &format!("/monitors/{id}/run")).await;
    assert_eq!(run.status, 202, "{}", run.text());
    let job_id = run.json()["batch_job_id"].as_str().unwrap().to_owned();
    let job = get(&app, &format!("/progress/{job_id}")).await.json();
    assert_eq!(
        (job["monitor_id"].as_str(), job["total_urls"].as_u64(), job["batch_size"].as_u64()),
        (Some(id), Some(2), Some(1))
    );
    let again = call(&app, "POST", &format!("/monitors/{id}/run")).await;
    assert_eq!(again.status, 409, "{}", again.text());
    let shown = get(&app, &format!("/monitors/{id}")).await.json();
    assert_eq!((shown["runs"].as_u64(), shown["last_job_id"].as_str()), (Some(1), Some(job_id.as_str())));
    assert_eq!(shown["next_run_at"], created["next_run_at"], "a run by hand does not move the schedule");
    let runs = get(&app, &format!("/jobs?monitor_id={id}")).await.json();
    let ids: Vec<&str> = runs["jobs"].as_array().unwrap().iter().map(|j| j["batch_job_id"].as_str().unwrap()).collect();
    assert_eq!(ids, [job_id.as_str()]);
}

#[tokio::test]
async fn a_monitors_runs_are_listed_by_status_page_by_page() {
    use domain::{Job, JobId, JobStatus};
    use store::{Jobs, Monitors};
    let store = store().await;
    let tenant = crate::test_app::tenant();
    let schedule = domain::schedule::Schedule::parse("rate(1 hour)").unwrap();
    let monitor = domain::monitor::Monitor::new(
        tenant.clone(),
        "m".into(),
        (&schedule, "rate(1 hour)".into()),
        domain::JobSettings::default(),
        None,
        1,
        Vec::new(),
        true,
        0,
    );
    store.create_monitor(&monitor, &[]).await.unwrap();
    // Oldest first: three completed runs, then one still going.
    let mut completed = Vec::new();
    for status in [JobStatus::Completed, JobStatus::Completed, JobStatus::Completed, JobStatus::Processing] {
        let mut job = Job::new(tenant.clone(), "run".into(), domain::JobSettings::default(), 0, 0)
            .of_monitor(monitor.id.clone(), JobId::generate());
        job.status = status;
        store.create_job(&job, &[]).await.unwrap();
        let now = store.get_monitor(&tenant, &monitor.id).await.unwrap().unwrap();
        assert!(store.record_run_now(&now, &job.id, 1).await.unwrap());
        if status == JobStatus::Completed {
            completed.insert(0, job.id.to_string());
        }
    }
    let app = app(store);
    let id = monitor.id.to_string();
    let listed = |uri: String| {
        let app = app.clone();
        async move {
            let mut ids = Vec::new();
            for page in crate::test_app::every_page(&app, "GET", &uri).await {
                let jobs = page.json()["jobs"].as_array().unwrap().clone();
                ids.extend(jobs.iter().map(|j| j["batch_job_id"].as_str().unwrap().to_owned()));
            }
            ids
        }
    };
    assert_eq!(listed(format!("/jobs?monitor_id={id}&status=completed&limit=2")).await, completed);
    assert_eq!(listed(format!("/jobs?monitor_id={id}&status=processing&limit=1")).await.len(), 1);
    assert!(listed(format!("/jobs?monitor_id={id}&status=failed")).await.is_empty());
    assert_eq!(listed(format!("/jobs?monitor_id={id}&limit=3")).await.len(), 4);
    let first = get(&app, &format!("/jobs?monitor_id={id}&status=completed&limit=1")).await.json();
    assert_eq!(first["jobs"][0]["batch_job_id"].as_str(), Some(completed[0].as_str()), "the going run is passed over");
    assert!(first["next_cursor"].is_string(), "{first}");
}

#[tokio::test]
async fn a_deleted_monitor_or_another_tenants_is_no_monitor() {
    let app = app(store().await);
    let id = post_json(&app, "/monitors", &json!({"urls": ["a.example"], "schedule": "rate(1 hour)"})).await.json()["monitor_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(call(&app, "DELETE", &format!("/monitors/{id}")).await.status, 204);
    for (method, path) in [
        ("GET", format!("/monitors/{id}")),
        ("DELETE", format!("/monitors/{id}")),
        ("POST", format!("/monitors/{id}/run")),
        ("GET", format!("/jobs?monitor_id={id}")),
        ("GET", "/monitors/not-an-id".to_owned()),
        // Escaped `?`, `#` and control characters stay in the id (the local emulator alone
        // cuts the path at them).
        ("POST", "/monitors/a%3Fb%0D/run".to_owned()),
        ("POST", "/monitors/a%23b/run".to_owned()),
    ] {
        assert_eq!(call(&app, method, &path).await.status, 404, "{method} {path}");
    }
}

#[tokio::test]
async fn the_budget_page_lists_which_urls_are_over_which_budget_since_when() {
    use domain::budget::{BudgetState, Standing, budget_id, parse_budgets};
    use domain::callback::{CallbackDelivery, DeliveryState};
    use store::Monitors;
    let store = store().await;
    let budgets = parse_budgets(&json!([{"metric": "lcp_ms", "max": 2500}, {"metric": "score", "min": 90}])).unwrap();
    let schedule = domain::schedule::Schedule::parse("rate(1 hour)").unwrap();
    let monitor = domain::monitor::Monitor::new(
        crate::test_app::tenant(),
        "m".into(),
        (&schedule, "rate(1 hour)".into()),
        domain::JobSettings::default(),
        None,
        1,
        budgets.clone(),
        true,
        0,
    );
    store.create_monitor(&monitor, &[]).await.unwrap();
    let run = domain::JobId::generate();
    let standing = |i: usize, budget: usize, state| Standing {
        url: format!("https://site.example/{i}"),
        budget_id: budget_id(&budgets[budget]),
        budget: budgets[budget].clone(),
        state,
        since: 1_000 * i as i64,
        value: 3_000.0,
        job_id: run.clone(),
        callback: (i == 0).then(|| CallbackDelivery {
            event: "Budget Breached".into(),
            state: DeliveryState::Delivered,
            attempts: 1,
            last_error: None,
            next_attempt_at: None,
            updated_at: 5,
        }),
    };
    let kept = [
        standing(0, 0, BudgetState::Breached),
        standing(1, 0, BudgetState::Breached),
        standing(2, 1, BudgetState::Breached),
        standing(3, 0, BudgetState::Within),
    ];
    store.put_budget_standings(&monitor.tenant, &monitor.id, &kept).await.unwrap();
    let app = app(store);
    let uri = format!("/monitors/{}/budgets", monitor.id);

    let mut urls = Vec::new();
    let mut page = get(&app, &format!("{uri}?limit=2")).await.json();
    assert_eq!(page["state"], "breached");
    loop {
        for row in page["standings"].as_array().unwrap() {
            urls.push(row["url"].as_str().unwrap().to_owned());
            assert_eq!((row["state"].as_str(), row["batch_job_id"].as_str()), (Some("breached"), Some(run.as_str())));
        }
        let Some(next) = page["next_cursor"].as_str() else { break };
        page = get(&app, &format!("{uri}?limit=2&cursor={next}")).await.json();
    }
    urls.sort();
    assert_eq!(urls, ["https://site.example/0", "https://site.example/1", "https://site.example/2"]);

    let all = get(&app, &format!("{uri}?state=any")).await.json();
    let first = all["standings"].as_array().unwrap().iter().find(|r| r["url"] == "https://site.example/0").unwrap();
    assert_eq!(
        (first["budget"].as_str(), first["metric"].as_str(), first["max"].as_f64()),
        (Some("lcp_ms <= 2500"), Some("lcp_ms"), Some(2_500.0))
    );
    assert_eq!(
        (first["since"].as_str(), first["callback"]["state"].as_str()),
        (Some("1970-01-01T00:00:00.000Z"), Some("delivered"))
    );
    assert_eq!(all["standings"].as_array().unwrap().len(), 4);
    let back = get(&app, &format!("{uri}?state=within")).await.json();
    assert_eq!(back["standings"][0]["url"], "https://site.example/3");

    let bad = get(&app, &format!("{uri}?state=over")).await;
    assert_eq!((bad.status.as_u16(), bad.json()["error"]["details"][0]["field"].clone()), (422, json!("state")));
    assert_eq!(get(&app, &format!("{uri}?cursor=zz")).await.status, 400);
    let stranger = domain::monitor::MonitorId::generate();
    assert_eq!(get(&app, &format!("/monitors/{stranger}/budgets")).await.status, 404);
}

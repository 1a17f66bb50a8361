use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use aws::queue::MemoryQueue;
use domain::callback::{Attempt, MAX_ATTEMPTS};
use domain::{CleanUrl, Job, JobId, JobSettings, Tenant};
use serde_json::json;
use store::MemoryStore;
use store::prelude::*;

use super::*;

/// Answers each URL as the test says, keeping what it was sent; `/barrier` waits until three
/// attempts are under way at once.
struct FakeEndpoints {
    answers: HashMap<String, Attempt>,
    sent: Mutex<Vec<(CallbackRequest, String)>>,
    together: tokio::sync::Barrier,
}

impl CallbackSender for FakeEndpoints {
    async fn attempt(&self, request: &CallbackRequest, secret: &str) -> Attempt {
        self.sent.lock().unwrap().push((request.clone(), secret.to_owned()));
        if request.url.ends_with("/barrier") {
            self.together.wait().await;
        }
        self.answers.get(&request.url).cloned().unwrap_or(Attempt::Delivered)
    }
}

type TestDeliverer = Deliverer<MemoryStore, MemoryQueue, FakeEndpoints>;

fn deliverer(answers: &[(&str, Attempt)]) -> TestDeliverer {
    Deliverer {
        store: MemoryStore::new(),
        queue: MemoryQueue::new(),
        sender: FakeEndpoints {
            answers: answers.iter().map(|(url, answer)| (url.to_string(), answer.clone())).collect(),
            sent: Mutex::new(Vec::new()),
            together: tokio::sync::Barrier::new(3),
        },
        queue_url: "q/callbacks".into(),
    }
}

async fn ended_job(d: &TestDeliverer, url: &str) -> Job {
    let settings = JobSettings { callback_url: Some(url.into()), ..JobSettings::default() };
    let job = Job::new(Tenant("acme".into()), "n".into(), settings, 1, 0);
    d.store.create_job(&job, &[CleanUrl::parse("https://site.example/", Default::default()).unwrap()]).await.unwrap();
    job
}

fn request(job: &Job, attempt: u32) -> CallbackRequest {
    CallbackRequest {
        batch_job_id: job.id.clone(),
        tenant: job.tenant.clone(),
        url: job.settings.callback_url.clone().unwrap(),
        event: "Job Completed".into(),
        time: "2026-12-04T00:00:00.000Z".into(),
        detail: json!({"batch_job_id": job.id.to_string(), "status": "completed"}),
        attempt,
        standing: None,
    }
}

fn event(bodies: &[String]) -> SqsEvent {
    let records: Vec<_> =
        bodies.iter().enumerate().map(|(i, body)| json!({"messageId": format!("m{i}"), "body": body})).collect();
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

fn body(request: &CallbackRequest) -> String {
    serde_json::to_string(request).unwrap()
}

async fn callback_of(d: &TestDeliverer, id: &JobId) -> domain::callback::CallbackDelivery {
    d.store.get_job(id).await.unwrap().unwrap().callback.expect("recorded on the job")
}

#[tokio::test]
async fn a_delivered_callback_is_signed_with_the_tenants_secret_and_recorded() {
    let d = deliverer(&[]);
    let job = ended_job(&d, "https://hooks.example/ok").await;
    let response = d.handle(event(&[body(&request(&job, 1))])).await;
    assert!(response.batch_item_failures.is_empty());
    let sent = d.sender.sent.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1, d.store.callback_secret(&job.tenant).await.unwrap());
    let kept = callback_of(&d, &job.id).await;
    assert_eq!((kept.state, kept.attempts, kept.last_error), (DeliveryState::Delivered, 1, None));
    assert!(d.queue.posted_later().is_empty(), "nothing to try again");
}

#[tokio::test]
async fn a_transient_failure_is_tried_again_later_as_a_new_message_until_the_last_attempt() {
    let d = deliverer(&[("https://hooks.example/down", Attempt::Transient("the callback answered HTTP 503".into()))]);
    let job = ended_job(&d, "https://hooks.example/down").await;
    let response = d.handle(event(&[body(&request(&job, 1))])).await;
    assert!(response.batch_item_failures.is_empty(), "done with this message: its retry is another");
    let later = d.queue.posted_later();
    assert_eq!(later.len(), 1);
    let (queue, retry, wait) = &later[0];
    assert_eq!((queue.as_str(), *wait), ("q/callbacks", Duration::from_secs(30)));
    assert_eq!(retry["attempt"], 2);
    assert_eq!(retry["url"], "https://hooks.example/down");
    let kept = callback_of(&d, &job.id).await;
    assert_eq!((kept.state, kept.attempts), (DeliveryState::Retrying, 1));
    assert_eq!(kept.last_error.as_deref(), Some("the callback answered HTTP 503"));
    assert!(kept.next_attempt_at.is_some());

    d.handle(event(&[body(&request(&job, MAX_ATTEMPTS))])).await;
    assert_eq!(d.queue.posted_later().len(), 1, "the last attempt queues nothing");
    let kept = callback_of(&d, &job.id).await;
    assert_eq!((kept.state, kept.attempts, kept.next_attempt_at), (DeliveryState::Failed, MAX_ATTEMPTS, None));
}

#[tokio::test]
async fn a_refused_callback_fails_at_once() {
    let moved = "the callback answered HTTP 307 (to /elsewhere): redirects are not followed, give the final URL";
    let d = deliverer(&[("https://hooks.example/moved", Attempt::Refused(moved.into()))]);
    let job = ended_job(&d, "https://hooks.example/moved").await;
    assert!(d.handle(event(&[body(&request(&job, 1))])).await.batch_item_failures.is_empty());
    let kept = callback_of(&d, &job.id).await;
    assert_eq!((kept.state, kept.last_error.as_deref()), (DeliveryState::Failed, Some(moved)));
    assert!(d.queue.posted_later().is_empty());
}

#[tokio::test]
async fn the_messages_of_a_batch_are_delivered_together() {
    // Three attempts wait for each other: one after another, the first would wait for ever.
    let d = deliverer(&[]);
    let jobs = [
        ended_job(&d, "https://a.example/barrier").await,
        ended_job(&d, "https://b.example/barrier").await,
        ended_job(&d, "https://c.example/barrier").await,
    ];
    let bodies: Vec<String> = jobs.iter().map(|job| body(&request(job, 1))).collect();
    let response = tokio::time::timeout(Duration::from_secs(10), d.handle(event(&bodies))).await;
    assert!(response.expect("delivered together, not one after another").batch_item_failures.is_empty());
    for job in &jobs {
        assert_eq!(callback_of(&d, &job.id).await.state, DeliveryState::Delivered);
    }
}

#[tokio::test]
async fn an_unreadable_message_or_a_store_outage_is_received_again_without_an_attempt() {
    let d = deliverer(&[]);
    let job = ended_job(&d, "https://hooks.example/ok").await;
    let response = d.handle(event(&["{\"job\": 1}".to_owned(), body(&request(&job, 1))])).await;
    let failed: Vec<_> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    assert_eq!(failed, ["m0"], "only the unreadable one");
    d.store.set_unavailable(true);
    let response = d.handle(event(&[body(&request(&job, 2))])).await;
    assert_eq!(response.batch_item_failures.len(), 1, "no secret, no attempt: the queue brings it back");
    assert_eq!(d.sender.sent.lock().unwrap().len(), 1, "only the readable message was sent");
}

#[tokio::test]
async fn a_budgets_callback_is_recorded_on_its_standing_not_on_the_run() {
    use domain::budget::{Budget, BudgetState, Standing, StandingRef, budget_id};
    let d = deliverer(&[("https://hooks.example/down", Attempt::Transient("timed out".into()))]);
    let run = ended_job(&d, "https://hooks.example/down").await;
    let budget = Budget { metric: "lcp_ms".into(), max: Some(2_500.0), min: None, labels: None };
    let schedule = domain::schedule::Schedule::parse("rate(1 hour)").unwrap();
    let monitor = domain::monitor::Monitor::new(
        run.tenant.clone(),
        "m".into(),
        (&schedule, "rate(1 hour)".into()),
        run.settings.clone(),
        None,
        1,
        vec![budget.clone()],
        true,
        0,
    );
    d.store.create_monitor(&monitor, &[]).await.unwrap();
    let standing = Standing {
        url: "https://site.example/".into(),
        budget_id: budget_id(&budget),
        budget,
        state: BudgetState::Breached,
        since: 1,
        value: 3_000.0,
        job_id: run.id.clone(),
        callback: None,
    };
    d.store.put_budget_standings(&monitor.tenant, &monitor.id, std::slice::from_ref(&standing)).await.unwrap();
    let request = CallbackRequest {
        event: "Budget Breached".into(),
        standing: Some(StandingRef {
            monitor_id: monitor.id.clone(),
            budget_id: standing.budget_id.clone(),
            url: standing.url.clone(),
        }),
        ..request(&run, 1)
    };
    assert!(d.handle(event(&[body(&request)])).await.batch_item_failures.is_empty());
    let kept = d.store.budget_standings(&monitor.tenant, &monitor.id).await.unwrap();
    let delivery = kept[0].callback.clone().expect("recorded on the standing");
    assert_eq!(
        (delivery.event.as_str(), delivery.state, delivery.attempts),
        ("Budget Breached", DeliveryState::Retrying, 1)
    );
    assert_eq!(d.store.get_job(&run.id).await.unwrap().unwrap().callback, None, "the run's own callback is untouched");
    let (_, retry, _) = &d.queue.posted_later()[0];
    assert_eq!(retry["standing"]["url"], "https://site.example/", "the retry still knows its standing");
}

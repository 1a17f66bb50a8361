//! Live progress on the deployed stack, through a raw WebSocket client: the key is checked as
//! for HTTP, another tenant's job is not found, and twenty subscribers of one job each see
//! its final state pushed. (The half-second pace is the live function's unit test: frames a
//! test does not read at once arrive together, so their arrival times cannot show it.)

use std::time::Duration;

use serde_json::{Value, json};
use testkit::live::Subscriber;
use testkit::site::Site;

use crate::{API, Client};

fn ws_url(client: &Client) -> String {
    client.stack.value("WS_URL").expect("WS_URL in stack.env: run `make up`").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_needs_the_tenants_key_and_job() {
    let client = Client::new();
    let ws = ws_url(&client);
    let site = Site::start().await;
    let mine = client.submit(client.key(), json!({"urls": [site.url("/page/1")], "name": "live-auth"})).await;
    let other_key = client.new_tenant_key("live-other").await;
    let theirs = client.submit(&other_key, json!({"urls": [site.url("/page/2")], "name": "live-theirs"})).await;

    let mut socket = Subscriber::connect(&ws).await.unwrap();
    let refused = socket.subscribe(&domain::auth::generate_key(), &mine).await.unwrap();
    assert_eq!(
        (refused["type"].as_str(), refused["code"].as_str()),
        (Some("error"), Some("unauthorized")),
        "{refused}"
    );
    let refused = socket.subscribe(client.key(), &theirs).await.unwrap();
    assert_eq!(refused["code"], "not_found", "another tenant's job is not found: {refused}");
    assert_eq!(refused["batch_job_id"], theirs.as_str());
    socket.send_text("{\"action\": \"ping\"}".into()).await.unwrap();
    let refused = socket.next_where(Duration::from_secs(20), |f| f["type"] == "error").await.unwrap();
    assert_eq!(refused["code"], "bad_request", "{refused}");
    // The socket stays usable: the right key and job are answered, and the job's state follows.
    let answer = socket.subscribe(client.key(), &mine).await.unwrap();
    assert_eq!(answer, json!({"type": "subscribed", "batch_job_id": mine}));
    let last = socket.until_finished(Duration::from_secs(120)).await.unwrap();
    assert_eq!(last["job"]["batch_job_id"], mine.as_str());
    // Nothing of the other tenant's job ever reached this socket.
    assert!(socket.frames.iter().all(|f| f.body["job"]["batch_job_id"] != theirs.as_str()));
    socket.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_subscribers_of_one_job_all_see_its_final_state() {
    let client = Client::new();
    let ws = ws_url(&client);
    let site = Site::start().await;
    // Slow pages, one at a time: the job runs while the subscribers join.
    let urls: Vec<String> = (1..=6).map(|n| site.url(&format!("/slow/{n}"))).collect();
    let id = client.submit(client.key(), json!({"urls": urls, "name": "live-20", "batch_size": 1})).await;
    let mut subscribers = Vec::new();
    for _ in 0..20 {
        let mut socket = Subscriber::connect(&ws).await.unwrap();
        let answer = socket.subscribe(client.key(), &id).await.unwrap();
        assert_eq!(answer["type"], "subscribed", "{answer}");
        subscribers.push(socket);
    }
    let finals =
        futures::future::join_all(subscribers.iter_mut().map(|s| s.until_finished(Duration::from_secs(180)))).await;
    let (_, polled) =
        client.call(reqwest::Method::GET, &format!("{API}/progress/{id}"), Some(client.key()), None).await;
    for (i, last) in finals.into_iter().enumerate() {
        let last = last.unwrap_or_else(|e| panic!("subscriber {i}: {e}"));
        // The pushed final state is the job as progress shows it.
        assert_eq!(last["job"], polled, "subscriber {i}");
    }
    for socket in &subscribers {
        let pushes: Vec<&Value> = socket.progress().iter().map(|f| &f.body["job"]).collect();
        let done: Vec<u64> = pushes.iter().map(|j| j["succeeded"].as_u64().unwrap_or(0)).collect();
        assert!(done.windows(2).all(|w| w[0] <= w[1]), "pushes arrive in order: {done:?}");
    }
    for socket in subscribers {
        socket.close().await;
    }
}

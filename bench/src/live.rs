//! Live progress against polling, on the deployed stack: a 1 000-URL job watched by 10
//! WebSocket subscribers and, at the same time, by 10 pollers asking `GET /progress` once a
//! second with their ETag (the dashboard's fallback). For each side: what reached the
//! watchers (frames, or requests and bodies), the Lambda invocations and AWS requests it
//! cost, and how long after a URL's result was recorded (its `analyzed_at`) a watcher first
//! saw it counted: median and p95 over the job's URLs.

use std::time::{Duration, Instant};

use domain::time::{now_millis, parse_rfc3339};
use reqwest::header::{ETAG, IF_NONE_MATCH};
use serde_json::{Value, json};
use testkit::live::Subscriber;
use testkit::site::Site;

use crate::report::{Figure, Section, Table, spread};
use crate::stack::{Tally, client};
use crate::stats::{median, percentile};

const WATCHERS: usize = 10;
/// Sites enough that the job's window never waits for a host (as the end-to-end figure).
const HOSTS: usize = 50;
const PER_HOST: usize = 4;

/// What one poller saw: requests made, and each answer with a body (when it came, the
/// URLs finished then).
#[derive(Default)]
struct Polled {
    requests: u64,
    bodies: u64,
    seen: Vec<(i64, u64)>,
}

fn finished_urls(job: &Value) -> u64 {
    ["succeeded", "failed", "cancelled"].iter().map(|k| job[k].as_u64().unwrap_or(0)).sum()
}

async fn poll(api_url: String, key: String, id: String, limit: Duration) -> Result<Polled, String> {
    let http = reqwest::Client::new();
    let url = format!("{api_url}{}/progress/{id}", domain::paths::BASE_PATH);
    let mut polled = Polled::default();
    let mut etag: Option<String> = None;
    let started = Instant::now();
    loop {
        let mut request = http.get(&url).header("x-api-key", &key).timeout(Duration::from_secs(30));
        if let Some(tag) = &etag {
            request = request.header(IF_NONE_MATCH, tag);
        }
        let response = request.send().await.map_err(|e| format!("poll: {e}"))?;
        polled.requests += 1;
        if response.status() == reqwest::StatusCode::OK {
            etag = response.headers().get(ETAG).and_then(|v| v.to_str().ok()).map(str::to_owned);
            let job: Value = response.json().await.map_err(|e| format!("poll body: {e}"))?;
            polled.bodies += 1;
            polled.seen.push((now_millis(), finished_urls(&job)));
            if testkit::api::is_finished(&job) {
                return Ok(polled);
            }
        }
        if started.elapsed() > limit {
            return Err(format!("job {id} not finished within {limit:?}"));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// For each URL (by the time its result was recorded), how long until `seen` (when, URLs
/// finished by then) first counted it.
fn delays(recorded: &[i64], seen: &[(i64, u64)]) -> Vec<f64> {
    recorded
        .iter()
        .enumerate()
        .filter_map(|(rank, at)| {
            let first = seen.iter().find(|(_, done)| *done > rank as u64)?;
            Some((first.0 - at).max(0) as f64)
        })
        .collect()
}

/// When each URL's result was recorded, oldest first.
async fn recorded_times(client: &crate::stack::Client, id: &str) -> Result<Vec<i64>, String> {
    let mut times = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/results/{id}?limit=1000&cursor={c}"),
            None => format!("/results/{id}?limit=1000"),
        };
        let page = client.call(reqwest::Method::GET, &path, None).await?;
        for row in page["results"].as_array().into_iter().flatten() {
            if let Some(at) = row["analyzed_at"].as_str().and_then(parse_rfc3339) {
                times.push(at);
            }
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    times.sort_unstable();
    Ok(times)
}

pub async fn run(runs: usize, urls: usize) -> Result<Section, String> {
    let client = client()?;
    let ws_url = client.stack.value("WS_URL")?.to_owned();
    let mut sites = Vec::new();
    for _ in 0..HOSTS {
        sites.push(Site::start().await);
    }
    let mut table = Table::new(&[
        "run",
        "job",
        "WebSocket: frames to 10 watchers",
        "live function: invocations, AWS requests",
        "polling: requests by 10 pollers (bodies)",
        "API invocations for polling",
        "delay to the watcher, median / p95 (WebSocket)",
        "(polling)",
    ]);
    let (mut frames, mut live_invocations, mut live_requests, mut poll_requests) = (vec![], vec![], vec![], vec![]);
    let (mut ws_median, mut ws_p95, mut poll_median, mut poll_p95) = (vec![], vec![], vec![], vec![]);
    for run in 1..=runs {
        let since = now_millis();
        let list: Vec<String> =
            (0..urls).map(|n| sites[(n / PER_HOST) % sites.len()].url(&format!("/page/live{run}{n:05}"))).collect();
        let body = json!({"urls": list, "engine": "http", "batch_size": 20, "name": format!("bench live {run}")});
        let created = client.call(reqwest::Method::POST, "/start", Some(body)).await?;
        let id = created["batch_job_id"].as_str().ok_or("POST /start gave no job")?.to_owned();
        let started = Instant::now();
        let limit = Duration::from_secs(900);
        let mut subscribers = Vec::new();
        for _ in 0..WATCHERS {
            let mut socket = Subscriber::connect(&ws_url).await?;
            let answer = socket.subscribe(&client.stack.api_key, &id).await?;
            if answer["type"] != "subscribed" {
                return Err(format!("subscription refused: {answer}"));
            }
            subscribers.push(socket);
        }
        let pollers: Vec<_> = (0..WATCHERS)
            .map(|_| tokio::spawn(poll(client.stack.api_url.clone(), client.stack.api_key.clone(), id.clone(), limit)))
            .collect();
        let watched = futures::future::join_all(subscribers.iter_mut().map(|s| s.until_finished(limit))).await;
        for outcome in watched {
            outcome?;
        }
        let mut polled = Vec::new();
        for poller in pollers {
            polled.push(poller.await.map_err(|e| e.to_string())??);
        }
        let seconds = started.elapsed().as_secs_f64();
        // The last invocations log after the job shows finished.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let mut live = Tally::default();
        client.metric_lines("live", since).await?.iter().for_each(|line| live.add(line));
        let api_lines = client.metric_lines("api", since).await?;
        let recorded = recorded_times(&client, &id).await?;
        let ws_seen: Vec<Vec<(i64, u64)>> = subscribers
            .iter()
            .map(|s| s.progress().iter().map(|f| (f.at_ms, finished_urls(&f.body["job"]))).collect())
            .collect();
        let ws_delays: Vec<f64> = ws_seen.iter().flat_map(|seen| delays(&recorded, seen)).collect();
        let poll_delays: Vec<f64> = polled.iter().flat_map(|p| delays(&recorded, &p.seen)).collect();
        let frame_count: usize = subscribers.iter().map(|s| s.frames.len()).sum();
        let requests: u64 = polled.iter().map(|p| p.requests).sum();
        let bodies: u64 = polled.iter().map(|p| p.bodies).sum();
        for socket in subscribers {
            socket.close().await;
        }
        let api_invocations = api_lines.len();
        println!(
            "{}",
            json!({"bench": "live", "run": run, "urls": urls, "seconds": seconds, "frames": frame_count,
                   "live_invocations": live.invocations, "live_requests": live.requests, "poll_requests": requests,
                   "poll_bodies": bodies, "api_invocations": api_invocations,
                   "ws_delay_ms": {"median": median(&ws_delays), "p95": percentile(&ws_delays, 95.0)},
                   "poll_delay_ms": {"median": median(&poll_delays), "p95": percentile(&poll_delays, 95.0)}})
        );
        table.row(vec![
            run.to_string(),
            format!("{urls} URLs, {seconds:.0} s"),
            frame_count.to_string(),
            format!("{:.0}, {:.0}", live.invocations, live.total()),
            format!("{requests} ({bodies})"),
            api_invocations.to_string(),
            format!("{:.0} / {:.0} ms", median(&ws_delays), percentile(&ws_delays, 95.0)),
            format!("{:.0} / {:.0} ms", median(&poll_delays), percentile(&poll_delays, 95.0)),
        ]);
        frames.push(frame_count as f64);
        live_invocations.push(live.invocations);
        live_requests.push(live.total());
        poll_requests.push(requests as f64);
        ws_median.push(median(&ws_delays));
        ws_p95.push(percentile(&ws_delays, 95.0));
        poll_median.push(median(&poll_delays));
        poll_p95.push(percentile(&poll_delays, 95.0));
    }
    let markdown = format!(
        "## Live progress: WebSocket against polling\n\n\
         A {urls}-URL job (http engine, `batch_size` 20, {HOSTS} local sites) watched at once by {WATCHERS} \
         WebSocket subscribers and by {WATCHERS} pollers asking `GET /progress` once a second with their ETag \
         (the dashboard's fallback). Frames are what API Gateway sends the subscribers (subscription answers \
         included); the live function's invocations and AWS requests come from its EMF lines; every poll is one \
         API invocation whether or not the job changed. Delay: from a URL's recorded `analyzed_at` to the first \
         frame or poll answer counting it, over every URL and watcher.\n\n{}\n",
        table.render()
    );
    Ok(Section {
        markdown,
        figures: vec![
            Figure::new("live: WebSocket frames to 10 watchers of a 1 000-URL job", spread(&frames, 0), "", None),
            Figure::new("live: polling requests by 10 pollers of the same job", spread(&poll_requests, 0), "", None),
            Figure::new(
                "live: live function invocations, AWS requests per job",
                format!("{}, {}", spread(&live_invocations, 0), spread(&live_requests, 0)),
                "",
                None,
            ),
            Figure::new(
                "live: delay to a WebSocket watcher, median / p95 (ms)",
                format!("{} / {}", spread(&ws_median, 0), spread(&ws_p95, 0)),
                "p95 under the poller's",
                Some(median(&ws_p95) < median(&poll_p95)),
            ),
            Figure::new(
                "live: delay to a poller (once a second), median / p95 (ms)",
                format!("{} / {}", spread(&poll_median, 0), spread(&poll_p95, 0)),
                "",
                None,
            ),
        ],
    })
}

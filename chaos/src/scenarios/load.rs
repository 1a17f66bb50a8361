//! Many clients at once: each submits a large job and watches it; every job completes with
//! exact counts, and the API's latency is measured from the clients' side.

use std::time::{Duration, Instant};

use futures::future::join_all;
use serde_json::{Value, json};
use testkit::api::{ApiClient, counts_exact, is_finished};
use testkit::stats::percentile;

use crate::Scale;
use crate::report::Section;
use crate::rig::{Rig, pages};

pub async fn run(rig: &Rig, scale: &Scale) -> Section {
    let mut section = Section::new(
        "Load",
        format!(
            "{c} clients, each with an API key of its own (a tenant each), submit a {u}-URL job (http engine, \
             `batch_size` 20) at the same moment, then poll its progress once a second until it finishes. The \
             pages are served by the suite's local site. Latency is each API call's time as the client saw it, \
             through the emulator's HTTP API.",
            c = scale.load_clients,
            u = scale.load_urls
        ),
    );
    let result = load(rig, scale, &mut section).await;
    section.settle("run the clients", result)
}

/// One client's run: its job's final progress, and each call's (kind, seconds).
async fn client(api: ApiClient, urls: Vec<String>) -> Result<(Value, Vec<(&'static str, f64)>), String> {
    let mut timings = Vec::new();
    let started = Instant::now();
    let id = api.submit(&json!({"urls": urls, "engine": "http", "batch_size": 20, "name": "chaos: load"})).await?;
    timings.push(("POST /start", started.elapsed().as_secs_f64()));
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let asked = Instant::now();
        let progress = api.progress(&id).await?;
        timings.push(("GET /progress", asked.elapsed().as_secs_f64()));
        if is_finished(&progress) {
            return Ok((progress, timings));
        }
        if Instant::now() > deadline {
            return Err(format!("job {id} did not finish within 30 minutes: {progress}"));
        }
    }
}

async fn load(rig: &Rig, scale: &Scale, section: &mut Section) -> Result<(), String> {
    let (clients, n) = (scale.load_clients, scale.load_urls);
    let mut apis = Vec::new();
    for c in 0..clients {
        apis.push(rig.tenant(&format!("load{c}")).await?);
    }
    let hits_before = rig.site.hits();
    let started = Instant::now();
    let runs =
        apis.into_iter().enumerate().map(|(c, api)| client(api, pages(&rig.site, "/page", 1_000_000 + c * n, n)));
    let results = join_all(runs).await;
    let elapsed = started.elapsed().as_secs_f64();
    let mut exact = 0;
    let mut timings: Vec<(&'static str, f64)> = Vec::new();
    let mut errors = Vec::new();
    for result in results {
        match result {
            Ok((progress, calls)) => {
                exact += usize::from(
                    progress["status"] == "completed"
                        && counts_exact(&progress, n as u64)
                        && progress["succeeded"] == n,
                );
                timings.extend(calls);
            }
            Err(err) => errors.push(err),
        }
    }
    let fetched = rig.site.hits() - hits_before;
    section.check(
        format!("{clients} clients submit a {n}-URL job each at once"),
        format!("{} URLs", clients * n),
        format!(
            "{exact} of {clients} jobs completed with exact counts in {elapsed:.0} s ({:.0} URLs/s); the site was \
             asked for {fetched} pages{}",
            (clients * n) as f64 / elapsed,
            if errors.is_empty() { String::new() } else { format!("; errors: {}", errors.join("; ")) }
        ),
        exact == clients && fetched == clients * n,
    );
    for kind in ["POST /start", "GET /progress"] {
        let seconds: Vec<f64> = timings.iter().filter(|(k, _)| *k == kind).map(|(_, s)| *s).collect();
        section.check(
            format!("API latency, `{kind}`, under that load"),
            format!("{} calls", seconds.len()),
            format!(
                "p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms",
                percentile(&seconds, 50.0) * 1000.0,
                percentile(&seconds, 95.0) * 1000.0,
                percentile(&seconds, 100.0) * 1000.0
            ),
            !seconds.is_empty(),
        );
    }
    Ok(())
}

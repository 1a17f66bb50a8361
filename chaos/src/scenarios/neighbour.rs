//! A noisy neighbour: one tenant floods one host with many large jobs while another tenant
//! runs a small job elsewhere. The host sees no more URLs at once than it was given places,
//! every flood URL succeeds exactly once, the quiet tenant is not held up, and the noisy
//! tenant's job over its `max_active_jobs` is refused with the limit named.

use std::time::{Duration, Instant};

use domain::tenancy::LimitOverrides;
use serde_json::json;
use testkit::api::{ApiClient, counts_exact};
use testkit::site::Site;

use crate::Scale;
use crate::report::Section;
use crate::rig::{EXEMPT, Rig, pages};

/// The places the flood's jobs ask for at their host.
const PLACES: u64 = 4;

pub async fn run(rig: &Rig, scale: &Scale) -> Section {
    let mut section = Section::new(
        "Noisy neighbour",
        format!(
            "Tenant *noisy* (its own `max_active_jobs` = {jobs}) submits {jobs} jobs of {urls} URLs each, all on \
             one local site whose pages hold each request for 40 ms and count how many are open at once, with \
             `batch_size` 20 and `host_concurrency` {PLACES}: {window} URLs would start at once without places. \
             Tenant *quiet* runs a 5-URL job on another site alone, then again while the flood is at its height. \
             `GET /queue/status` is read every half second during the flood.",
            jobs = scale.noisy_jobs,
            urls = scale.noisy_urls,
            window = scale.noisy_jobs * 20,
        ),
    );
    let result = neighbour(rig, scale, &mut section).await;
    section.settle("run the neighbours", result)
}

/// The quiet tenant's 5-URL job: how long from the POST to its end, every URL a success.
async fn quiet_job(api: &ApiClient, site: &Site, tag: &str) -> Result<Duration, String> {
    let urls: Vec<String> = (0..5).map(|n| site.url(&format!("/page/{n}?{tag}"))).collect();
    let started = Instant::now();
    let id = api.submit(&json!({"urls": urls, "engine": "http", "name": "chaos: quiet"})).await?;
    let progress = api.finished(&id, Duration::from_secs(600)).await?;
    if progress["succeeded"] != 5 {
        return Err(format!("the quiet job did not succeed: {progress}"));
    }
    Ok(started.elapsed())
}

async fn neighbour(rig: &Rig, scale: &Scale, section: &mut Section) -> Result<(), String> {
    let (jobs, n) = (scale.noisy_jobs, scale.noisy_urls);
    let victim = Site::start_on(EXEMPT).await;
    let elsewhere = Site::start_on(EXEMPT).await;
    let own = LimitOverrides { max_active_jobs: Some(jobs as u32), ..LimitOverrides::default() };
    let noisy = rig.limited_tenant("noisy", &own).await?;
    let quiet = rig.tenant("quiet").await?;
    let alone = quiet_job(&quiet, &elsewhere, "alone").await?;

    let started = Instant::now();
    let mut ids = Vec::new();
    for job in 0..jobs {
        let body = json!({"urls": pages(&victim, "/held", job * n, n), "engine": "http", "batch_size": 20,
                          "host_concurrency": PLACES, "name": "chaos: noisy"});
        ids.push(noisy.submit(&body).await?);
    }
    let over = json!({"urls": pages(&victim, "/held", jobs * n, 1), "engine": "http"});
    let (status, refused) = noisy.call(reqwest::Method::POST, "/start", Some(&over)).await?;
    section.check(
        format!("tenant noisy submits job {} while {jobs} run", jobs + 1),
        "1",
        format!("{status} {}: {}", refused["error"]["code"], refused["error"]["message"]),
        status == 429 && refused["error"]["details"]["limit"] == "max_active_jobs",
    );

    // The quiet job runs once the flood is under way; the queue's waits are sampled meanwhile.
    noisy
        .until(
            &ids[0],
            |p| p["succeeded"].as_u64().unwrap_or(0) >= 20,
            Duration::from_millis(250),
            Duration::from_secs(600),
        )
        .await?;
    let sampling = async {
        let mut most = 0;
        while started.elapsed() < Duration::from_secs(3_600) {
            if let Ok(status) = quiet.ok(reqwest::Method::GET, "/queue/status", None).await {
                most = most.max(status["waiting"]["host_busy"].as_u64().unwrap_or(0));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            if most > 0 {
                return most;
            }
        }
        most
    };
    let (during, most_waiting) = tokio::join!(quiet_job(&quiet, &elsewhere, "during"), sampling);
    let during = during?;

    let mut exact = 0;
    for id in &ids {
        let progress = noisy.finished(id, Duration::from_secs(3_600)).await?;
        exact += usize::from(
            progress["status"] == "completed" && counts_exact(&progress, n as u64) && progress["succeeded"] == n,
        );
    }
    let elapsed = started.elapsed().as_secs_f64();
    section.check(
        format!("{jobs} jobs of {n} URLs at one host"),
        format!("{} URLs", jobs * n),
        format!(
            "{exact} of {jobs} completed with exact counts in {elapsed:.0} s; the site was asked for {} pages, at \
             most {} at once; up to {most_waiting} URLs seen waiting for a place",
            victim.hits(),
            victim.max_concurrent()
        ),
        exact == jobs && victim.hits() == jobs * n && victim.max_concurrent() as u64 <= PLACES && most_waiting > 0,
    );
    // A small job's time alone is mostly the emulator's polling: a floor of 2 s keeps the
    // comparison about the flood, not about noise.
    let allowed = alone.max(Duration::from_secs(2)) * 3;
    section.check(
        "tenant quiet's 5-URL job during the flood",
        "1",
        format!(
            "{:.2} s, against {:.2} s alone (allowed: 3× that, at least 2 s alone)",
            during.as_secs_f64(),
            alone.as_secs_f64()
        ),
        during <= allowed,
    );
    Ok(())
}

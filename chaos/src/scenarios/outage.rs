//! The emulator (every AWS service at once) stopped for a while mid-job and started again
//! from its kept state: the functions retry, the job completes, nothing is lost.

use std::time::{Duration, Instant};

use serde_json::json;
use testkit::api::{counts, counts_exact};

use crate::emulator;
use crate::report::Section;
use crate::rig::{Rig, pages};
use crate::{Scale, scenarios};

pub async fn run(rig: &Rig, scale: &Scale) -> Section {
    let mut section = Section::new(
        "Outage",
        format!(
            "A {n}-URL job (http engine, `batch_size` 20) of 1 s pages. Once a quarter of it has succeeded, \
             at a moment when URLs are being analysed, \
             ministack is stopped (`scripts/ministack.sh stop`: SIGTERM, it writes its state to \
             `.local/ministack-state`), kept down for at least {s} s, and started again from that state. While it is \
             down, DynamoDB, SQS, Lambda and the HTTP API are all unreachable: running analyses fail to write \
             (the SDK retries with backoff, then the message is left to come back), and the function processes \
             end with the emulator. The job must then finish with exact counts.",
            n = scale.outage_urls,
            s = scale.outage_seconds
        ),
    );
    let result = outage(rig, scale, &mut section).await;
    section.settle("run a job through an outage", result)
}

async fn outage(rig: &Rig, scale: &Scale, section: &mut Section) -> Result<(), String> {
    let n = scale.outage_urls;
    let urls = pages(&rig.site, "/slow", 200_000, n);
    let id =
        rig.api.submit(&json!({"urls": urls, "engine": "http", "batch_size": 20, "name": "chaos: outage"})).await?;
    let mut stopped = None;
    let mut down_at: Option<(Instant, serde_json::Value)> = None;
    let (progress, failed_polls) = scenarios::watch(&rig.api, &id, Duration::from_secs(1500), async |progress| {
        // A quarter done, and URLs in the middle of their analysis, which the outage cuts short.
        let busy = progress["in_progress"].as_u64().unwrap_or(0) > 0;
        if down_at.is_none() && busy && progress["succeeded"].as_u64().unwrap_or(0) >= (n / 4) as u64 {
            let stopping = Instant::now();
            let stop = emulator::stop().await?;
            down_at = Some((stopping, progress.clone()));
            stopped = Some(stop);
            let refused = rig.api.progress(&id).await.is_err();
            tokio::time::sleep(Duration::from_secs(scale.outage_seconds).saturating_sub(stop)).await;
            let start = emulator::start().await?;
            section.check(
                format!("stop ministack (at least {} s down) with the job a quarter done", scale.outage_seconds),
                "1",
                format!(
                    "down for {:.0} s in all: stopping (writing its state) took {:.1} s, starting {:.1} s; the API {} \
                     while down; at the stop: {}",
                    stopping.elapsed().as_secs_f64(),
                    stop.as_secs_f64(),
                    start.as_secs_f64(),
                    if refused { "refused connections" } else { "still answered (not down?)" },
                    counts(progress)
                ),
                refused,
            );
        }
        Ok(())
    })
    .await?;
    let Some((down, _)) = down_at else {
        section.broke("stop ministack mid-job", format!("the job finished before a quarter was observed: {progress}"));
        return Ok(());
    };
    let exact = counts_exact(&progress, n as u64) && progress["succeeded"] == n;
    section.check(
        format!("the {n}-URL job after the outage"),
        "1",
        format!(
            "job {} {} s after the emulator went down ({failed_polls} later progress polls failed): {}",
            progress["status"],
            down.elapsed().as_secs(),
            counts(&progress)
        ),
        progress["status"] == "completed" && exact,
    );
    let outcome = scenarios::one_success_each(&rig.api, &id, n, section).await?;
    // The dev stack on the same emulator came back too: its key and jobs were kept.
    let dev = testkit::stack::DeployedStack::try_load()?;
    let (status, _) = testkit::api::ApiClient::new(&dev).call(reqwest::Method::GET, "/jobs?limit=1", None).await?;
    section.check(
        "the dev stack's key and jobs after the restart",
        "1",
        format!("GET /jobs answered {status}"),
        status == 200,
    );
    if let Some(stop) = stopped {
        section.note(format!(
            "Writing the emulator's state took {:.1} s. ministack keeps stream read positions but not stream \
             records; `scripts/ministack.sh start` forgets the positions so the tracker reads the new stream \
             from its start (without that it saw no change until the stream grew past its old position).",
            stop.as_secs_f64()
        ));
    }
    section.note(format!("{} URLs needed more than one attempt.", outcome.retried));
    Ok(())
}

//! Analyzer processes killed (SIGKILL) again and again while a job runs: the job still
//! completes, every URL counted once.

use std::time::{Duration, Instant};

use serde_json::json;
use testkit::api::{counts, counts_exact};

use crate::emulator::kill_busiest;
use crate::report::Section;
use crate::rig::{Rig, pages};
use crate::{Scale, scenarios};

pub async fn run(rig: &Rig, scale: &Scale) -> Section {
    let mut section = Section::new(
        "Crashes",
        format!(
            "A {n}-URL job (http engine, `batch_size` 20, high priority) of pages that take 1 s each, on the chaos \
             stack (analyzer timeout 70 s, queue visibility timeout 80 s). While it runs, the busiest analyzer \
             process (the one holding the most sockets: it is fetching pages) is killed with SIGKILL {k} times, \
             at least 3 s apart and each time only once more URLs have succeeded since the last kill, so every \
             kill lands in the middle of work. A kill loses the \
             invocation in the middle of its batch: nothing of its unfinished URLs was written (they stay \
             `queued`; their places are leased), the other instances go on, and SQS delivers the lost batch \
             again after the visibility timeout, each URL as its next attempt.",
            n = scale.crash_urls,
            k = scale.crash_kills
        ),
    );
    let result = crash(rig, scale, &mut section).await;
    section.settle("run a job while its analyzers are killed", result)
}

async fn crash(rig: &Rig, scale: &Scale, section: &mut Section) -> Result<(), String> {
    let analyzer = rig.analyzer()?.to_owned();
    let n = scale.crash_urls;
    let urls = pages(&rig.site, "/slow", 100_000, n);
    let started = Instant::now();
    let id = rig
        .api
        .submit(
            &json!({"urls": urls, "engine": "http", "batch_size": 20, "priority": "high", "name": "chaos: crashes"}),
        )
        .await?;
    let mut kills = 0;
    // (when, URLs succeeded then) of the last kill.
    let mut last_kill: Option<(Instant, u64)> = None;
    let (progress, _) = scenarios::watch(&rig.api, &id, Duration::from_secs(1200), async |progress| {
        let succeeded = progress["succeeded"].as_u64().unwrap_or(0);
        let due = last_kill.is_none_or(|(at, then)| at.elapsed() >= Duration::from_secs(3) && succeeded > then);
        if kills < scale.crash_kills && succeeded > 0 && due && kill_busiest(&analyzer).await? {
            kills += 1;
            last_kill = Some((Instant::now(), succeeded));
        }
        Ok(())
    })
    .await?;
    let elapsed = started.elapsed().as_secs();
    let exact = counts_exact(&progress, n as u64) && progress["succeeded"] == n;
    section.check(
        format!("SIGKILL an analyzer process mid-batch while a {n}-URL job runs"),
        format!("{kills} processes killed"),
        format!("job {} after {elapsed} s: {}", progress["status"], counts(&progress)),
        kills == scale.crash_kills && progress["status"] == "completed" && exact,
    );
    let outcome = scenarios::one_success_each(&rig.api, &id, n, section).await?;
    section.note(format!(
        "{} URLs needed more than one attempt (their analysis was killed and delivered again); \
         the site served {} requests for {n} URLs over the whole suite so far.",
        outcome.retried,
        rig.site.hits()
    ));
    Ok(())
}

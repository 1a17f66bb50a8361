//! SQS delivers at least once: every message of a job sent again, while it runs and after it
//! finished. No URL is analysed twice and no counter moves.

use std::time::Duration;

use serde_json::json;
use testkit::api::{counts, counts_exact};

use crate::report::Section;
use crate::rig::{Rig, pages};
use crate::{Scale, scenarios};

pub async fn run(rig: &Rig, scale: &Scale) -> Section {
    let mut section = Section::new(
        "Duplicates",
        format!(
            "A {n}-URL job (http engine, `batch_size` 20, high priority). Right after the submission, every one of its {n} task \
             messages is sent to its queue a second time (rebuilt from the stored URLs exactly as the API sends \
             them), so copies arrive while the originals are queued and in flight. When the job has finished, \
             all {n} are sent a third time. Counted: the job's counters, its result rows, and the requests the \
             site received.",
            n = scale.duplicate_urls
        ),
    );
    let result = duplicates(rig, scale, &mut section).await;
    section.settle("deliver every message again", result)
}

async fn duplicates(rig: &Rig, scale: &Scale, section: &mut Section) -> Result<(), String> {
    let n = scale.duplicate_urls;
    // A queue of its own among the quick tests, which run side by side.
    let queue = rig.queue("high")?;
    // The drain below is read off the whole queue: start with it idle.
    rig.wait_depth(queue, 0, Duration::from_secs(300)).await.map_err(|e| format!("before the scenario: {e}"))?;
    let hits_before = rig.site.hits();
    let urls = pages(&rig.site, "/page", 300_000, n);
    let created = rig
        .api
        .ok(
            reqwest::Method::POST,
            "/start",
            Some(&json!({"urls": urls, "engine": "http", "batch_size": 20, "priority": "high", "name": "chaos: duplicates"})),
        )
        .await?;
    let id = created["batch_job_id"].as_str().ok_or("no job id")?.to_owned();
    let messages = rig.messages_of(&id).await?;
    rig.send(queue, &messages).await?;
    let (progress, _) = scenarios::watch(&rig.api, &id, Duration::from_secs(600), async |_| Ok(())).await?;
    let drained = rig.wait_depth(queue, 0, Duration::from_secs(300)).await?;
    let fetched = rig.site.hits() - hits_before;
    let exact = counts_exact(&progress, n as u64) && progress["succeeded"] == n;
    // A copy read while its twin is being analysed is analysed too (nothing marks an analysis
    // started: docs/scale.md); one read after the result does nothing. Each URL at most twice.
    section.check(
        format!("every message of a running {n}-URL job sent again"),
        format!("{} copies", messages.len()),
        format!(
            "job {}: {}; the site was asked for {fetched} pages ({} URLs analysed by both copies at once); \
             the queue was empty {:.0} s after the job finished",
            progress["status"],
            counts(&progress),
            fetched.saturating_sub(n),
            drained.as_secs_f64()
        ),
        messages.len() == n && exact && (n..=2 * n).contains(&fetched),
    );

    let before = rig.api.progress(&id).await?;
    rig.send(queue, &messages).await?;
    let drained = rig.wait_depth(queue, 0, Duration::from_secs(300)).await?;
    let after = rig.api.progress(&id).await?;
    let fields = ["status", "succeeded", "failed", "cancelled", "queued", "in_progress", "finished_at"];
    let unchanged = fields.iter().all(|f| before[f] == after[f]);
    let refetched = rig.site.hits() - hits_before - fetched;
    section.check(
        "every message of the finished job sent again",
        format!("{} copies", messages.len()),
        format!(
            "all consumed in {:.0} s; the job {}: {}; {refetched} pages fetched again",
            drained.as_secs_f64(),
            if unchanged { "is unchanged" } else { "CHANGED" },
            counts(&after)
        ),
        unchanged && refetched == 0,
    );
    let outcome = scenarios::outcome(&scenarios::all_results(&rig.api, &id).await?);
    section.check(
        "one result per URL after both rounds",
        format!("{n} URLs"),
        outcome.to_string(),
        outcome.rows == n && outcome.distinct == n && outcome.retried == 0,
    );
    Ok(())
}

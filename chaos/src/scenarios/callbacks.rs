//! A tenant whose callback endpoint takes every request and never answers must not slow any
//! other job down: the tracker only queues callbacks, and the callbacks function gives each
//! attempt 5 s. Measured per bystander job: from its last URL's result to its `completed`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::report::Section;
use crate::rig::{Rig, pages};

/// Jobs of the hostile tenant, each calling back an endpoint that never answers.
const HANGING_JOBS: usize = 10;
/// Jobs of a bystander tenant submitted while those callbacks hang, and their URLs.
const BYSTANDER_JOBS: usize = 5;
const BYSTANDER_URLS: usize = 5;
/// What "as fast as ever" means: the bound.
const LAG_BOUND_MS: i64 = 5_000;

pub async fn run(rig: &Rig) -> Section {
    let mut section = Section::new(
        "Callbacks that hang",
        format!(
            "A tenant submits {HANGING_JOBS} one-URL jobs whose `callback_url` accepts the connection and never answers. \
             As soon as they have finished (their callbacks then hang, 5 s per attempt, retried after 30 s), another \
             tenant submits {BYSTANDER_JOBS} jobs of {BYSTANDER_URLS} URLs with no callback. For each of those, the time \
             from its last URL's `analyzed_at` to its `finished_at` (both written by the functions, on one clock). \
             Before callbacks had a queue of their own, the tracker delivered them inside the stream handler: with three \
             such jobs, another job took 92 s and 139 s to be marked completed."
        ),
    );
    let result = hanging_callbacks(rig, &mut section).await;
    section.settle("hanging callbacks beside other jobs", result)
}

fn millis(value: &Value) -> Result<i64, String> {
    let text = value.as_str().ok_or_else(|| format!("not a time: {value}"))?;
    chrono::DateTime::parse_from_rfc3339(text).map(|t| t.timestamp_millis()).map_err(|e| format!("{text}: {e}"))
}

async fn hanging_callbacks(rig: &Rig, section: &mut Section) -> Result<(), String> {
    let hostile = rig.tenant("hanging-callbacks").await?;
    let hang = rig.site.url("/hook/hang");
    let mut hanging = Vec::new();
    for (n, url) in pages(&rig.site, "/page", 700_000, HANGING_JOBS).into_iter().enumerate() {
        let body = json!({"urls": [url], "callback_url": hang, "name": format!("chaos: hanging callback {n}")});
        hanging.push(hostile.submit(&body).await?);
    }
    for id in &hanging {
        hostile.finished(id, Duration::from_secs(300)).await?;
    }
    let bystander = rig.tenant("bystander").await?;
    let mut lags = Vec::new();
    let mut ids = Vec::new();
    for n in 0..BYSTANDER_JOBS {
        let urls = pages(&rig.site, "/page", 710_000 + n * BYSTANDER_URLS, BYSTANDER_URLS);
        ids.push(bystander.submit(&json!({"urls": urls, "name": format!("chaos: bystander {n}")})).await?);
    }
    for id in &ids {
        let done = bystander.finished(id, Duration::from_secs(300)).await?;
        let rows = super::all_results(&bystander, id).await?;
        let last = rows.iter().map(|row| millis(&row["analyzed_at"])).collect::<Result<Vec<_>, _>>()?;
        let last = last.into_iter().max().ok_or("a job with no results")?;
        lags.push(millis(&done["finished_at"])? - last);
    }
    lags.sort_unstable();
    let worst = *lags.last().ok_or("no bystander job")?;
    section.check(
        format!("{BYSTANDER_JOBS} jobs of another tenant while {HANGING_JOBS} callbacks hang"),
        format!("{} URLs", BYSTANDER_JOBS * BYSTANDER_URLS),
        format!("completed {} ms after their last URL (sorted); the bound is {LAG_BOUND_MS} ms", join(&lags)),
        worst < LAG_BOUND_MS,
    );

    let mut states = Vec::new();
    for id in &hanging {
        let progress = hostile
            .until(id, |p| p["callback"]["state"] != "pending", Duration::from_millis(500), Duration::from_secs(120))
            .await?;
        states.push(progress["callback"].clone());
    }
    let timed_out = states
        .iter()
        .filter(|c| c["state"] == "retrying" && c["last_error"].as_str().is_some_and(|e| e.contains("timed out")))
        .count();
    section.check(
        "the hanging callbacks, as their jobs show them",
        format!("{HANGING_JOBS} jobs"),
        format!(
            "{timed_out} show `retrying` after a timed-out attempt, the next one due; e.g. {}",
            states.first().map(Value::to_string).unwrap_or_default()
        ),
        timed_out == HANGING_JOBS,
    );
    Ok(())
}

fn join(values: &[i64]) -> String {
    values.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
}

//! Messages nobody can read end in the dead-letter queue without touching any job, show in
//! `GET /queue/status`, and the documented redrive (`speedbatch redrive`) puts dead-lettered
//! messages back once the analyzer can handle them.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::json;
use testkit::api::{counts, counts_exact};

use crate::emulator::Lambda;
use crate::report::Section;
use crate::rig::{Rig, pages};
use crate::{Scale, scenarios};

/// Bodies that are not task messages, each differently wrong.
fn poison(n: usize) -> Vec<String> {
    let kinds = [
        "not json at all".to_owned(),
        "{}".to_owned(),
        "null".to_owned(),
        "[1, 2, 3]".to_owned(),
        json!({"job_id": 42, "seq": "first"}).to_string(),
        json!({"job_id": "../../etc/passwd", "seq": 0, "url": "http://127.0.0.2/"}).to_string(),
        format!("{{\"job_id\": \"{}\"", "x".repeat(100)),
        "\u{1F4A3} ".repeat(2000),
    ];
    (0..n).map(|i| kinds[i % kinds.len()].clone()).collect()
}

pub async fn run(rig: &Rig, scale: &Scale) -> Section {
    let mut section = Section::new(
        "Poison messages and redrive",
        format!(
            "{p} messages that are not task messages (not JSON, the wrong shape, wrong types, a path for a job \
             id, cut short, 8 KB of emoji) are sent to the low queue while a control job runs on the same queue. \
             (The low dead-letter queue is emptied first.) The analyzer returns each after 1 s, and SQS moves it to the dead-letter queue after 10 receives. \
             Then the redrive: the low queue's event source mapping is switched off (the analyzer \"broken\"), \
             a {r}-URL job is submitted, and its messages are received 10 times each without being processed, \
             so SQS dead-letters them too. The mapping is switched on again (\"the fix\") and the documented \
             redrive, `speedbatch redrive --queue <low queue URL>`, moves the dead letters back.",
            p = scale.poison_messages,
            r = scale.redrive_urls
        ),
    );
    if let Err(err) = dead_letters(rig, scale, &mut section).await {
        section.broke("send poison messages", err);
    }
    if let Err(err) = redrive(rig, scale, &mut section).await {
        section.broke("redrive dead letters after a fix", err);
    }
    section
}

/// The low queue's dead-letter count as `GET /queue/status` shows it.
async fn dead_letter_count(rig: &Rig) -> Result<u64, String> {
    let status = rig.api.ok(reqwest::Method::GET, "/queue/status", None).await?;
    status["queues"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|q| q["priority"] == "low")
        .and_then(|q| q["dead_letter"].as_u64())
        .ok_or_else(|| format!("no dead_letter count for the low queue in {status}"))
}

async fn dead_letters(rig: &Rig, scale: &Scale, section: &mut Section) -> Result<(), String> {
    let queue = rig.queue("low")?;
    let dlq = rig.dead_letters("low")?;
    // Leftovers of an earlier run would be redriven too and muddle the counts below.
    rig.sqs.purge_queue().queue_url(dlq).send().await.map_err(|e| format!("PurgeQueue: {e:?}"))?;
    let before = rig.depth(dlq).await?;
    let shown_before = dead_letter_count(rig).await?;
    let control_urls = pages(&rig.site, "/page", 400_000, 10);
    let control = rig
        .api
        .submit(&json!({"urls": control_urls, "engine": "http", "priority": "low", "name": "chaos: poison control"}))
        .await?;
    let bodies = poison(scale.poison_messages);
    for body in &bodies {
        rig.sqs.send_message().queue_url(queue).message_body(body).send().await.map_err(|e| format!("{e:?}"))?;
    }
    let started = Instant::now();
    let waited = rig.wait_depth(dlq, before + bodies.len() as u64, Duration::from_secs(300)).await;
    let shown = dead_letter_count(rig).await?;
    let (progress, _) = scenarios::watch(&rig.api, &control, Duration::from_secs(300), async |_| Ok(())).await?;
    section.check(
        "malformed messages on the low queue",
        format!("{}", bodies.len()),
        match &waited {
            Ok(took) => format!(
                "all in the dead-letter queue {:.0} s after sending; `GET /queue/status` shows low dead_letter {shown} \
                 (was {shown_before})",
                took.as_secs_f64()
            ),
            Err(err) => format!("{err} (after {:.0} s)", started.elapsed().as_secs_f64()),
        },
        waited.is_ok() && shown == shown_before + bodies.len() as u64,
    );
    section.check(
        "a job running on the same queue meanwhile",
        "10 URLs",
        format!("job {}: {}", progress["status"], counts(&progress)),
        progress["status"] == "completed" && counts_exact(&progress, 10) && progress["succeeded"] == 10,
    );
    Ok(())
}

fn cli() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug/speedbatch")
}

async fn redrive(rig: &Rig, scale: &Scale, section: &mut Section) -> Result<(), String> {
    let queue = rig.queue("low")?.to_owned();
    let dlq = rig.dead_letters("low")?;
    let lambda = Lambda::new(rig.stack.endpoint());
    let mapping = lambda.mapping_for_queue(rig.analyzer()?, &queue).await?;
    lambda.set_enabled(&mapping, false).await?;
    let broken = dead_letter_while_broken(rig, scale, &queue, dlq).await;
    // Whatever happened, the analyzer gets its queue back.
    lambda.set_enabled(&mapping, true).await?;
    let (id, in_dlq) = broken?;
    let stuck = rig.api.progress(&id).await?;
    section.check(
        format!("a {}-URL job whose messages were dead-lettered (analyzer off)", scale.redrive_urls),
        "1",
        format!("{in_dlq} messages in the low dead-letter queue; the job waits: {}", counts(&stuck)),
        stuck["queued"].as_u64() == Some(scale.redrive_urls as u64),
    );
    let started = Instant::now();
    let output = tokio::process::Command::new(cli())
        .args(["redrive", "--queue", &queue])
        .env("AWS_ENDPOINT_URL", rig.stack.endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .output()
        .await
        .map_err(|e| format!("run {}: {e} (`cargo build -p speedbatch-cli` first)", cli().display()))?;
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    let (progress, _) = scenarios::watch(&rig.api, &id, Duration::from_secs(300), async |_| Ok(())).await?;
    let n = scale.redrive_urls;
    section.check(
        "`speedbatch redrive --queue <low queue>` after the fix",
        "1",
        format!(
            "exit {}, said: {}; the job {} {:.0} s later: {}",
            output.status.code().unwrap_or(-1),
            said.trim().lines().last().unwrap_or_default(),
            progress["status"],
            started.elapsed().as_secs_f64(),
            counts(&progress)
        ),
        output.status.success() && progress["status"] == "completed" && counts_exact(&progress, n as u64),
    );
    // The poison moved back with them cannot be read now either: it returns to the DLQ.
    let back = rig.wait_depth(dlq, in_dlq.saturating_sub(n as u64), Duration::from_secs(300)).await;
    section.check(
        "the unreadable messages the redrive also moved",
        format!("{}", in_dlq.saturating_sub(n as u64)),
        match &back {
            Ok(took) => format!("back in the dead-letter queue {:.0} s later, no job touched", took.as_secs_f64()),
            Err(err) => err.clone(),
        },
        back.is_ok(),
    );
    Ok(())
}

/// With the analyzer's mapping off: a job whose messages are received 10 times each, which
/// dead-letters them. The job's id and the dead-letter queue's depth after.
async fn dead_letter_while_broken(rig: &Rig, scale: &Scale, queue: &str, dlq: &str) -> Result<(String, u64), String> {
    let before = rig.depth(dlq).await?;
    let urls = pages(&rig.site, "/page", 500_000, scale.redrive_urls);
    let id = rig
        .api
        .submit(&json!({"urls": urls, "engine": "http", "priority": "low", "batch_size": 20, "name": "chaos: redrive"}))
        .await?;
    let target = before + scale.redrive_urls as u64;
    testkit::emulator::dead_letter_by_receiving(&rig.sqs, queue, dlq, target, Duration::from_secs(120)).await?;
    Ok((id, rig.depth(dlq).await?))
}

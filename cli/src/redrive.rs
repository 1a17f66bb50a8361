//! `speedbatch redrive`: sends the messages of the priority queues' dead-letter queues back to
//! their queues, once whatever sent them there is fixed. An operator's command: the queues are
//! shared by every tenant, so it runs with AWS credentials, not an API key.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use aws::queue::{RedriveSummary, SqsQueue};
use aws_config::{BehaviorVersion, Region};
use aws_sdk_sqs::config::Credentials;
use serde_json::{Value, json};

use crate::config::{self, LocalAws};
use crate::error::CliError;
use crate::render;

/// Redrives each queue in turn (one failing does not stop the others), with a progress line
/// per queue on stderr and a summary on stdout. Exit 0 when every message was moved.
pub async fn run(queues: Vec<String>, max: Option<u64>, json: bool, cwd: &Path) -> Result<ExitCode, CliError> {
    let target = config::resolve_redrive(queues, |name| std::env::var(name).ok(), cwd)?;
    let queue = SqsQueue::new(sqs_client(target.local.as_ref()).await);
    let terminal = std::io::stderr().is_terminal();
    let mut outcomes = Vec::new();
    for (label, url) in &target.queues {
        let result = queue
            .redrive(url, max, |moved| {
                // A terminal sees the count grow; a log gets only the final line.
                if terminal {
                    eprint!("\r\x1b[2K{label}: {moved} moved");
                    let _ = std::io::stderr().flush();
                }
            })
            .await;
        match &result {
            Ok(summary) => {
                eprintln!("{}{}", if terminal { "\r\x1b[2K" } else { "" }, render::redrive_line(label, summary))
            }
            Err(err) => eprintln!("{}{label}: {err}", if terminal { "\r\x1b[2K" } else { "" }),
        }
        outcomes.push((label.as_str(), result));
    }
    let problems = outcomes
        .iter()
        .map(|(_, result)| match result {
            Ok(summary) => summary.failed.len(),
            Err(_) => 1,
        })
        .sum::<usize>();
    if json {
        let queues: Vec<Value> = outcomes
            .iter()
            .map(|(label, result)| match result {
                Ok(summary) => json!({"queue": label, "summary": summary, "error": null}),
                Err(err) => json!({"queue": label, "summary": null, "error": err.to_string()}),
            })
            .collect();
        let moved: u64 = outcomes.iter().filter_map(|(_, r)| r.as_ref().ok()).map(|s| s.moved).sum();
        crate::print_json(&json!({"moved": moved, "queues": queues}));
    } else {
        let summaries: Vec<(&str, Option<&RedriveSummary>)> =
            outcomes.iter().map(|(label, result)| (*label, result.as_ref().ok())).collect();
        print!("{}", render::redrive_summary(&summaries));
    }
    if problems == 0 {
        return Ok(ExitCode::SUCCESS);
    }
    let failed_queues = outcomes.iter().filter(|(_, r)| r.is_err()).count();
    let not_moved: usize = outcomes.iter().filter_map(|(_, r)| r.as_ref().ok()).map(|s| s.failed.len()).sum();
    let mut parts = Vec::new();
    if failed_queues > 0 {
        parts.push(format!("{failed_queues} of {} queues could not be redriven", outcomes.len()));
    }
    if not_moved > 0 {
        parts.push(format!("{not_moved} messages could not be moved (they stay in the dead-letter queue)"));
    }
    Err(CliError::Incomplete(parts.join("; ")))
}

/// The standard chain, as on AWS; for the local stack, its emulator with the dummy credentials
/// it accepts (the emulator checks none, and a developer's machine may have no AWS credentials).
async fn sqs_client(local: Option<&LocalAws>) -> aws_sdk_sqs::Client {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(local) = local {
        loader = loader
            .endpoint_url(&local.endpoint)
            .region(Region::new(local.region.clone()))
            .credentials_provider(Credentials::new("test", "test", None, None, "speedbatch-local-stack"));
    }
    aws_sdk_sqs::Client::new(&loader.load().await)
}

//! Where the API is and which key to use: `--api-url`/`--api-key`, else `SPEEDBATCH_API_URL`
//! and `SPEEDBATCH_API_KEY` (clap reads both), else the local stack's `.local/stack.env` that
//! `make up` writes, found in the working directory or any directory above it.
//!
//! `redrive` talks to SQS, not to the API: its queues come from `--queue`, else
//! `HIGH_QUEUE_URL`, `NORMAL_QUEUE_URL` and `LOW_QUEUE_URL`, else the same `.local/stack.env`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::CliError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Without a trailing slash.
    pub api_url: String,
    pub api_key: String,
}

pub fn resolve(url: Option<String>, key: Option<String>, cwd: &Path) -> Result<Target, CliError> {
    let stack = if url.is_none() || key.is_none() { find_stack_env(cwd) } else { None };
    let from_stack = |name: &str| stack.as_ref().and_then(|(_, values)| values.get(name).cloned());
    let where_looked = || match &stack {
        Some((path, _)) => format!("not in {} either", path.display()),
        None => "and no .local/stack.env was found here or above (run `make up`)".to_owned(),
    };
    let api_url = url.or_else(|| from_stack("API_URL")).ok_or_else(|| {
        CliError::Usage(format!("no API URL: give --api-url or set SPEEDBATCH_API_URL, {}", where_looked()))
    })?;
    let api_key = key.or_else(|| from_stack("API_KEY")).ok_or_else(|| {
        CliError::Usage(format!("no API key: give --api-key or set SPEEDBATCH_API_KEY, {}", where_looked()))
    })?;
    if !(api_url.starts_with("http://") || api_url.starts_with("https://")) {
        return Err(CliError::Usage(format!("the API URL must start with http:// or https://, not {api_url:?}")));
    }
    Ok(Target { api_url: api_url.trim_end_matches('/').to_owned(), api_key })
}

/// The priority queues `redrive` works on by default, with the variables that name them.
const PRIORITY_QUEUES: [(&str, &str); 3] =
    [("high", "HIGH_QUEUE_URL"), ("normal", "NORMAL_QUEUE_URL"), ("low", "LOW_QUEUE_URL")];

/// The browser engine's queue: redriven beside the priority queues where it is named.
const BROWSER_QUEUE: &str = "BROWSER_QUEUE_URL";

/// What `redrive` works on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedriveTarget {
    /// Each source queue's URL with the name it is reported under.
    pub queues: Vec<(String, String)>,
    /// The local emulator, when the queues came from `.local/stack.env` and the environment
    /// names no AWS endpoint of its own; `None`: the SDK's standard chain (environment,
    /// profile, instance role), as on AWS.
    pub local: Option<LocalAws>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalAws {
    pub endpoint: String,
    pub region: String,
}

/// The emulator's region when neither the stack file nor the environment names one.
const LOCAL_REGION: &str = "us-east-1";

/// `--queue` URLs (reported by their queue names), else the three priority queues, each from
/// the environment (`env`) or else `.local/stack.env`.
pub fn resolve_redrive(
    queues: Vec<String>,
    env: impl Fn(&str) -> Option<String>,
    cwd: &Path,
) -> Result<RedriveTarget, CliError> {
    let env = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    if !queues.is_empty() {
        let queues = queues
            .into_iter()
            .map(|url| {
                let name = url.trim_end_matches('/').rsplit('/').next().unwrap_or_default().to_owned();
                if url.starts_with("http://") || url.starts_with("https://") {
                    Ok((name, url))
                } else {
                    Err(CliError::Usage(format!("--queue takes a queue URL (http:// or https://), not {url:?}")))
                }
            })
            .collect::<Result<_, _>>()?;
        return Ok(RedriveTarget { queues, local: None });
    }
    let stack = if PRIORITY_QUEUES.iter().all(|(_, var)| env(var).is_some()) { None } else { find_stack_env(cwd) };
    let from_stack = |name: &str| stack.as_ref().and_then(|(_, values)| values.get(name).cloned());
    let mut from_file = false;
    let mut resolved = Vec::new();
    for (label, var) in PRIORITY_QUEUES {
        let url = match env(var) {
            Some(url) => url,
            None => {
                from_file = true;
                from_stack(var).ok_or_else(|| {
                    let where_looked = match &stack {
                        Some((path, _)) => format!("not in {} either", path.display()),
                        None => "and no .local/stack.env was found here or above (run `make up`)".to_owned(),
                    };
                    CliError::Usage(format!("no {var}: give --queue URL or set {var}, {where_looked}"))
                })?
            }
        };
        resolved.push((label.to_owned(), url));
    }
    // The browser engine's queue, where the deployment has one (set, or in the stack file).
    if let Some(url) = env(BROWSER_QUEUE).or_else(|| from_stack(BROWSER_QUEUE)) {
        resolved.push(("browser".to_owned(), url));
    }
    // The stack file describes the local emulator, which takes any credentials; an endpoint
    // in the environment means the caller chose where to go, so the standard chain decides.
    let local = match from_stack("AWS_ENDPOINT_URL") {
        Some(endpoint) if from_file && env("AWS_ENDPOINT_URL").is_none() => Some(LocalAws {
            endpoint,
            region: from_stack("AWS_REGION").or_else(|| env("AWS_REGION")).unwrap_or_else(|| LOCAL_REGION.to_owned()),
        }),
        _ => None,
    };
    Ok(RedriveTarget { queues: resolved, local })
}

fn find_stack_env(cwd: &Path) -> Option<(PathBuf, HashMap<String, String>)> {
    cwd.ancestors().map(|dir| dir.join(".local/stack.env")).find_map(|path| {
        let text = std::fs::read_to_string(&path).ok()?;
        let values = text
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
            .collect();
        Some((path, values))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("speedbatch-cli-{name}-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("a/b")).unwrap();
        dir
    }

    #[test]
    fn flags_win_then_the_stack_file_found_above() {
        let dir = temp_dir("config");
        std::fs::create_dir_all(dir.join(".local")).unwrap();
        std::fs::write(dir.join(".local/stack.env"), "API_URL=http://127.0.0.1:4566/x/\nAPI_KEY=sb_local\n").unwrap();
        let nested = dir.join("a/b");
        let found = resolve(None, None, &nested).unwrap();
        assert_eq!(found, Target { api_url: "http://127.0.0.1:4566/x".into(), api_key: "sb_local".into() });
        let flagged = resolve(Some("https://api.example".into()), Some("k".into()), &nested).unwrap();
        assert_eq!(flagged.api_url, "https://api.example");
        assert_eq!(resolve(None, Some("mine".into()), &nested).unwrap().api_key, "mine");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn redrive_uses_the_local_endpoint_of_the_stack_file_unless_the_environment_names_one() {
        let dir = temp_dir("redrive");
        std::fs::create_dir_all(dir.join(".local")).unwrap();
        std::fs::write(
            dir.join(".local/stack.env"),
            "HIGH_QUEUE_URL=http://localhost:4566/000000000000/h\nNORMAL_QUEUE_URL=http://localhost:4566/000000000000/n\n\
             LOW_QUEUE_URL=http://localhost:4566/000000000000/l\nAWS_ENDPOINT_URL=http://127.0.0.1:4566\n\
             AWS_REGION=eu-west-1\n",
        )
        .unwrap();
        let nested = dir.join("a/b");
        let local = resolve_redrive(Vec::new(), no_env, &nested).unwrap();
        let labels: Vec<&str> = local.queues.iter().map(|(label, _)| label.as_str()).collect();
        assert_eq!(labels, ["high", "normal", "low"]);
        assert_eq!(local.queues[2].1, "http://localhost:4566/000000000000/l");
        assert_eq!(
            local.local,
            Some(LocalAws { endpoint: "http://127.0.0.1:4566".into(), region: "eu-west-1".into() })
        );

        // An endpoint in the environment: the caller's choice, through the standard chain.
        let chosen = resolve_redrive(Vec::new(), |n| (n == "AWS_ENDPOINT_URL").then(|| "http://x:1".into()), &nested);
        assert_eq!(chosen.unwrap().local, None);
        // Queues all from the environment: nothing comes from the file, the standard chain.
        let env = |n: &str| n.ends_with("_QUEUE_URL").then(|| format!("https://sqs.eu-west-1.amazonaws.com/1/{n}"));
        let aws = resolve_redrive(Vec::new(), env, &nested).unwrap();
        assert_eq!(aws.local, None);
        assert_eq!(aws.queues[0].1, "https://sqs.eu-west-1.amazonaws.com/1/HIGH_QUEUE_URL");
        // The browser engine's queue where it is named (here by the environment), after the others.
        assert_eq!(
            aws.queues[3],
            ("browser".to_owned(), "https://sqs.eu-west-1.amazonaws.com/1/BROWSER_QUEUE_URL".to_owned())
        );
        // One from the environment, the rest from the file: still the local stack.
        let mixed = resolve_redrive(Vec::new(), |n| (n == "LOW_QUEUE_URL").then(|| "http://q/9/own".into()), &nested);
        let mixed = mixed.unwrap();
        assert_eq!((mixed.queues[2].1.as_str(), mixed.local.is_some()), ("http://q/9/own", true));
        // --queue: named by the queue's name, standard chain.
        let given = resolve_redrive(vec!["https://sqs.us-east-1.amazonaws.com/1/jobs-high".into()], no_env, &nested);
        let given = given.unwrap();
        assert_eq!(
            given.queues,
            [("jobs-high".to_owned(), "https://sqs.us-east-1.amazonaws.com/1/jobs-high".to_owned())]
        );
        assert_eq!(given.local, None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn redrive_says_which_queue_is_missing() {
        let dir = temp_dir("redrive-missing");
        let err = resolve_redrive(Vec::new(), no_env, &dir).unwrap_err().to_string();
        assert!(err.starts_with("no HIGH_QUEUE_URL: give --queue URL") && err.contains("make up"), "{err}");
        std::fs::create_dir_all(dir.join(".local")).unwrap();
        std::fs::write(dir.join(".local/stack.env"), "HIGH_QUEUE_URL=http://h\nNORMAL_QUEUE_URL=http://n\n").unwrap();
        let err = resolve_redrive(Vec::new(), no_env, &dir).unwrap_err().to_string();
        assert!(err.starts_with("no LOW_QUEUE_URL") && err.contains("not in "), "{err}");
        // Without an endpoint in the file, the standard chain (an older stack file).
        std::fs::write(
            dir.join(".local/stack.env"),
            "HIGH_QUEUE_URL=http://h\nNORMAL_QUEUE_URL=http://n\nLOW_QUEUE_URL=http://l\n",
        )
        .unwrap();
        assert_eq!(resolve_redrive(Vec::new(), no_env, &dir).unwrap().local, None);
        let err = resolve_redrive(vec!["my-queue".into()], no_env, &dir).unwrap_err().to_string();
        assert!(err.contains("queue URL"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn what_is_missing_is_said() {
        let dir = temp_dir("missing");
        let err = resolve(None, Some("k".into()), &dir).unwrap_err().to_string();
        assert!(err.starts_with("no API URL") && err.contains("make up"), "{err}");
        let err = resolve(Some("ftp://x".into()), Some("k".into()), &dir).unwrap_err().to_string();
        assert!(err.contains("http:// or https://"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

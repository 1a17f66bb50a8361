//! `speedbatch-bench`: the measurements behind BENCHMARKS.md, on this machine and the local
//! stack. Each prints one JSON line per run and a summary line (median and spread).
//!
//! - `psi-quota`: the fleet-wide PSI limiter (DynamoDB on ministack) shared by several
//!   analyzer instances, against the fake PageSpeed Insights enforcing quota Q with seconds
//!   of latency (time scaled by 10): throughput as a share of Q, and 429s.
//! - `http-engine`: the http engine on a static site served by a separate process (the Rust
//!   documentation that ships with the toolchain): pages per second, wall and CPU time per
//!   page.
//! - `serve DIR`: the static file server `http-engine` starts.

mod http_engine;
mod psi_quota;
mod serve;
mod stats;

use std::process::ExitCode;

const USAGE: &str = "usage: speedbatch-bench psi-quota [--runs N] [--urls N]
       speedbatch-bench http-engine [--runs N] [--pages N] [--concurrency N] [--docs DIR]
       speedbatch-bench serve DIR";

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let option = |name: &str, default: usize| -> Result<usize, String> {
        match args.iter().position(|a| a == name) {
            None => Ok(default),
            Some(i) => {
                args.get(i + 1).and_then(|v| v.parse().ok()).ok_or_else(|| format!("{name} needs a whole number"))
            }
        }
    };
    let result = match args.first().map(String::as_str) {
        Some("psi-quota") => match (option("--runs", 3), option("--urls", 200)) {
            (Ok(runs), Ok(urls)) => psi_quota::run(runs, urls).await,
            (Err(e), _) | (_, Err(e)) => Err(e),
        },
        Some("http-engine") => {
            let docs = args.iter().position(|a| a == "--docs").and_then(|i| args.get(i + 1)).cloned();
            match (option("--runs", 3), option("--pages", 60), option("--concurrency", 4)) {
                (Ok(runs), Ok(pages), Ok(concurrency)) => http_engine::run(runs, pages, concurrency, docs).await,
                (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => Err(e),
            }
        }
        Some("serve") => match args.get(1) {
            Some(dir) => serve::run(dir.into()).await,
            None => Err("serve needs a directory".into()),
        },
        _ => Err("no such benchmark".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => {
            eprintln!("speedbatch-bench: {reason}\n{USAGE}");
            ExitCode::FAILURE
        }
    }
}

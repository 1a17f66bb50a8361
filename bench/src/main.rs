//! `speedbatch-bench`: the measurements behind BENCHMARKS.md, on this machine and the local
//! stack. Each prints one JSON line per run and a summary line (median and spread).
//!
//! - `psi-quota`: the fleet-wide PSI limiter (DynamoDB on ministack) shared by several
//!   analyzer instances, against the fake PageSpeed Insights enforcing quota Q with seconds
//!   of latency (time scaled by 10): throughput as a share of Q, and 429s.
//! - `http-engine`: the http engine on a static site served by a separate process (the Rust
//!   documentation that ships with the toolchain): pages per second, wall and CPU time per
//!   page.
//! - `browser-engine`: the browser engine as one browser analyzer instance runs it, on the
//!   same documentation: time per page and pages per minute per form factor, Chromium's peak
//!   memory and its start (Debian's, and the Lambda layer's build).
//! - `lighthouse-compare`: Lighthouse, the browser engine and the http engine on the same
//!   local pages; rank correlation, band agreement and metric ratios (`make
//!   lighthouse-compare`, its own section of BENCHMARKS.md).
//! - `live`: a 1 000-URL job watched by 10 WebSocket subscribers and 10 pollers at once:
//!   frames, requests and invocations each way, and the delay to the watcher.
//! - `cost`: the end-to-end job's every AWS charge at list prices (`prices.rs`), beside the
//!   same job with field data, on slow pages, and a PSI job (modelled): dollars per 1 000
//!   URLs, where the write units go, log bytes per URL.
//! - `scale-model`: a simulation of one job's counters item under transactions at rising
//!   rates, in one item and split (real DynamoDB refuses colliding transactions; the emulator
//!   does not), for `docs/scale.md`.
//! - `field`: a 1 000-URL field-only job (engine `none`) against the fake Chrome UX Report at
//!   its quota: time, CrUX requests per URL, 429s, AWS requests per URL.
//! - `serve DIR`: the static file server `http-engine` and `lighthouse-compare` start.

mod artifacts;
mod browser_engine;
mod cost;
mod exports;
mod field;
mod http_engine;
mod lighthouse;
mod live;
mod monitors;
mod prices;
mod psi_quota;
mod report;
mod scale;
mod serve;
mod stack;
mod stats;
mod stored;

use std::process::ExitCode;

use report::Section;

const USAGE: &str = "usage: speedbatch-bench all [--runs N] [--out FILE]   every figure; writes BENCHMARKS.md
       speedbatch-bench psi-quota [--runs N] [--urls N]
       speedbatch-bench http-engine [--runs N] [--pages N] [--concurrency N] [--docs DIR]
       speedbatch-bench browser-engine [--runs N] [--pages N] [--docs DIR]   (Chromium: CHROMIUM_PATH or /usr/bin/chromium)
       speedbatch-bench end-to-end [--runs N] [--urls N]   (on the stack `make up` deployed)
       speedbatch-bench cost [--runs N] [--urls N] [--field-urls N] [--slow-urls N]   (on the stack `make up` deployed; the end-to-end runs priced, one with field data, one on pages answering in 0.2–2 s)
       speedbatch-bench scale-model                         (no AWS: one job's hot items under load, simulated)
       speedbatch-bench guards [--runs N] [--urls N]       (on the stack `make up` deployed)
       speedbatch-bench submission [--runs N]              (on the stack `make up` deployed)
       speedbatch-bench exports [--runs N] [--urls N]      (on the stack `make up` deployed)
       speedbatch-bench monitors [--runs N] [--monitors N] [--urls N]   (on the stack `make up` deployed)
       speedbatch-bench live [--runs N] [--urls N]         (on the stack `make up` deployed)
       speedbatch-bench field [--runs N] [--urls N]        (on the stack `make up` deployed; about 7 minutes a run)
       speedbatch-bench artifacts [--runs N]               (arm64 sizes; host cold starts)
       speedbatch-bench lighthouse-compare [--runs N] [--pages N] [--only NAME,..] [--measure lighthouse,browser,http] [--out FILE] [--docs DIR]
       speedbatch-bench lighthouse-compare --from FILE [--measure browser] [--out FILE]   (recompute; measure one side again)
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
    let runs = match option("--runs", 3) {
        Ok(runs) if runs >= 1 => runs,
        _ => return fail("--runs needs a whole number of at least 1".into()),
    };
    let print = |result: Result<Section, String>| result.map(|section| println!("{}", section.markdown));
    let result = match args.first().map(String::as_str) {
        Some("all") => {
            let out = args.iter().position(|a| a == "--out").and_then(|i| args.get(i + 1)).cloned();
            all(runs, out.unwrap_or_else(|| "BENCHMARKS.md".into())).await
        }
        Some("psi-quota") => match option("--urls", 200) {
            Ok(urls) => print(psi_quota::run(runs, urls).await),
            Err(e) => Err(e),
        },
        Some("http-engine") => {
            let docs = args.iter().position(|a| a == "--docs").and_then(|i| args.get(i + 1)).cloned();
            match (option("--pages", 60), option("--concurrency", 4)) {
                (Ok(pages), Ok(concurrency)) => print(http_engine::run(runs, pages, concurrency, docs).await),
                (Err(e), _) | (_, Err(e)) => Err(e),
            }
        }
        Some("browser-engine") => {
            let docs = args.iter().position(|a| a == "--docs").and_then(|i| args.get(i + 1)).cloned();
            match option("--pages", 20) {
                Ok(pages) => print(browser_engine::run(runs, pages, docs).await),
                Err(e) => Err(e),
            }
        }
        Some("end-to-end") => match option("--urls", 1000) {
            Ok(urls) => print(stack::end_to_end(runs, urls).await.map(|(section, ..)| section)),
            Err(e) => Err(e),
        },
        Some("guards") => match option("--urls", 1000) {
            Ok(urls) => match stack::end_to_end(1, urls).await {
                Ok((_, uncontended, _)) => print(stack::guards(runs, urls, uncontended).await),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        },
        Some("cost") => match (option("--urls", 1000), option("--field-urls", 300), option("--slow-urls", 500)) {
            (Ok(urls), Ok(field_urls), Ok(slow_urls)) => match stack::end_to_end(runs, urls).await {
                Ok((end_to_end, _, jobs)) => {
                    println!("{}", end_to_end.markdown);
                    print(cost::run(&jobs, field_urls, slow_urls).await)
                }
                Err(e) => Err(e),
            },
            (Err(e), ..) | (_, Err(e), _) | (.., Err(e)) => Err(e),
        },
        Some("scale-model") => print(Ok(scale::run())),
        Some("submission") => print(stack::submission(runs, &[1_000, 10_000]).await),
        Some("exports") => match option("--urls", 10_000) {
            Ok(urls) => print(exports::run(runs, urls).await),
            Err(e) => Err(e),
        },
        Some("monitors") => match (option("--monitors", 10), option("--urls", 100)) {
            (Ok(monitors), Ok(urls)) => print(monitors::run(runs, monitors, urls).await),
            (Err(e), _) | (_, Err(e)) => Err(e),
        },
        Some("live") => match option("--urls", 1000) {
            Ok(urls) => print(live::run(runs, urls).await),
            Err(e) => Err(e),
        },
        Some("field") => match option("--urls", 1000) {
            Ok(urls) => print(field::run(runs, urls).await),
            Err(e) => Err(e),
        },
        Some("artifacts") => match artifacts::sizes().await {
            Ok((sizes, _)) => {
                println!("{}", sizes.markdown);
                print(artifacts::cold_starts(runs.max(10), &stack::peak_rss()).await)
            }
            Err(e) => Err(e),
        },
        Some("lighthouse-compare") => match lighthouse::Options::parse(&args, runs) {
            Ok(options) => lighthouse::run(options).await,
            Err(e) => Err(e),
        },
        Some("serve") => match args.get(1) {
            Some(dir) => serve::run(dir.into()).await,
            None => Err("serve needs a directory".into()),
        },
        _ => Err("no such benchmark".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => fail(reason),
    }
}

fn fail(reason: String) -> ExitCode {
    eprintln!("speedbatch-bench: {reason}\n{USAGE}");
    ExitCode::FAILURE
}

/// Every figure, each over `runs` runs, written to `out` with the machine and the date.
async fn all(runs: usize, out: String) -> Result<(), String> {
    let mut sections = Vec::new();
    eprintln!("==> end to end: {runs} × 1 000 URLs on the deployed stack");
    let (end_to_end, uncontended, jobs) = stack::end_to_end(runs, 1_000).await?;
    sections.push(end_to_end);
    eprintln!("==> cost: the end-to-end job priced, and 300 URLs with field data (about 5 minutes)");
    sections.push(cost::run(&jobs, 300, 500).await?);
    eprintln!("==> guards: {runs} × 1 000 URLs at one host");
    sections.push(stack::guards(runs, 1_000, uncontended).await?);
    eprintln!("==> submission: {runs} × 1 000 and 10 000 URLs");
    sections.push(stack::submission(runs, &[1_000, 10_000]).await?);
    eprintln!("==> exports: {runs} × a 10 000-URL job, read every way");
    sections.push(exports::run(runs, 10_000).await?);
    eprintln!("==> monitors: {runs} × 10 monitors of 100 URLs run by one sweep");
    sections.push(monitors::run(runs, 10, 100).await?);
    eprintln!("==> live progress: {runs} × a 1 000-URL job watched by 10 subscribers and 10 pollers");
    sections.push(live::run(runs, 1_000).await?);
    eprintln!("==> field data: {runs} × a 1 000-URL field-only job at the CrUX quota (about 7 minutes each)");
    sections.push(field::run(runs, 1_000).await?);
    // Read now: the processes that just carried both loads.
    let rss = stack::peak_rss();
    eprintln!("==> PSI quota: {runs} runs of about a minute");
    sections.push(psi_quota::run(runs, 200).await?);
    eprintln!("==> scale model: one job's hot items, simulated");
    sections.push(scale::run());
    eprintln!("==> http engine against curl: {runs} runs");
    sections.push(http_engine::run(runs, 60, 4, None).await?);
    eprintln!("==> browser engine: {runs} runs of 20 pages per form factor");
    sections.push(browser_engine::run(runs, 20, None).await?);
    eprintln!("==> cold starts and peak memory");
    sections.push(artifacts::cold_starts(runs.max(10), &rss).await?);
    eprintln!("==> arm64 artifacts");
    sections.push(artifacts::sizes().await?.0);
    let document = format!(
        "# Benchmarks\n\nWritten by `make bench` (`speedbatch-bench all --runs {runs}`) on {date}, commit {commit}: \
         {machine}; ministack {ministack} on loopback. Each figure is the median of {runs} runs or more, with \
         the range (min–max) beside it; every run's row is below. Tests never assert a time; the request \
         counts are also asserted, without timing, by `tests/integration/scale.rs`.\n\n## Summary\n\n{summary}\n{body}",
        date = chrono_date(),
        commit = command_output("git", &["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into()),
        machine = machine(),
        ministack = ministack_pin(),
        summary = report::summary_table(&sections),
        body = sections.iter().map(|s| s.markdown.as_str()).collect::<Vec<_>>().join("\n"),
    );
    // The Lighthouse comparison is not part of `all` (it takes 50 minutes): keep the one there is.
    let document = lighthouse::carry_over(&std::fs::read_to_string(&out).unwrap_or_default(), document);
    std::fs::write(&out, document).map_err(|e| format!("{out}: {e}"))?;
    eprintln!("==> wrote {out}");
    Ok(())
}

fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let output = std::process::Command::new(program).args(args).output().ok()?;
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

fn chrono_date() -> String {
    command_output("date", &["-u", "+%Y-%m-%d"]).unwrap_or_else(|| "an unknown date".into())
}

/// Cores, memory, architecture and OS, read from the machine.
fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory_gib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|kb| kb.parse::<f64>().ok()))
        .map_or(0.0, |kb| kb / 1024.0 / 1024.0);
    let os = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|r| r.lines().find_map(|l| l.strip_prefix("PRETTY_NAME=").map(|v| v.trim_matches('"').to_owned())))
        .unwrap_or_else(|| "Linux".into());
    format!("{cores} cores, {memory_gib:.0} GiB, {}, {os}", std::env::consts::ARCH)
}

/// The emulator version `scripts/tools.sh` pins.
fn ministack_pin() -> String {
    let tools =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/tools.sh")).unwrap_or_default();
    tools.lines().find_map(|l| l.strip_prefix("MINISTACK_VERSION=")).unwrap_or("(unpinned)").to_owned()
}

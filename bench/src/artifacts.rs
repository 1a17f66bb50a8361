//! The functions as Lambda gets them: the zipped size of each arm64 release build, and for the
//! host build the time from process start to the first poll of the Lambda Runtime API.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use serde_json::json;
use tokio::sync::mpsc;

use crate::report::{Figure, Section, Table, num, spread};
use crate::stats::median;

pub const FUNCTIONS: [&str; 3] = ["api", "analyzer", "tracker"];
/// Whose start is timed: the browser analyzer too (its Chromium starts per page, later: the
/// `browser-engine` bench times that).
const STARTED: [&str; 4] = ["api", "analyzer", "browser-analyzer", "tracker"];
const ZIP_TARGET_MB: f64 = 4.0;
const COLD_START_TARGET_MS: f64 = 30.0;

/// The workspace root (the bench runs from anywhere).
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Builds the three functions for arm64 (release, as `cargo lambda` does for deployment) and
/// zips each bootstrap as Lambda's upload would.
pub async fn sizes() -> Result<(Section, Vec<(String, u64, u64)>), String> {
    let root = root();
    let venv_bin = root.join(".local/venvs/sam/bin");
    let path = format!("{}:{}", venv_bin.display(), std::env::var("PATH").unwrap_or_default());
    eprintln!("==> cargo lambda build --release --arm64 (minutes when cold)");
    let status = tokio::process::Command::new("cargo")
        .args(["lambda", "build", "--release", "--arm64"])
        .args(FUNCTIONS.iter().flat_map(|f| ["--bin", f]))
        .current_dir(&root)
        .env("PATH", path)
        .status()
        .await
        .map_err(|e| format!("cargo lambda: {e} (make tools installs it)"))?;
    if !status.success() {
        return Err(format!("cargo lambda build --arm64 ended with {status}"));
    }
    let mut table = Table::new(&["function", "`bootstrap`", "zipped (zip -9)", "target"]);
    let mut measured = Vec::new();
    let mut figures = Vec::new();
    for function in FUNCTIONS {
        let bootstrap = root.join("target/lambda").join(function).join("bootstrap");
        let raw = std::fs::metadata(&bootstrap).map_err(|e| format!("{}: {e}", bootstrap.display()))?.len();
        let zipped = zip_size(&bootstrap).await?;
        let mb = zipped as f64 / 1e6;
        table.row(vec![
            function.to_owned(),
            format!("{} MB", num(raw as f64 / 1e6, 2)),
            format!("{} MB", num(mb, 2)),
            crate::report::verdict(mb <= ZIP_TARGET_MB).to_owned(),
        ]);
        figures.push(Figure::new(
            &format!("{function}: zipped arm64 artifact"),
            format!("{} MB", num(mb, 2)),
            "≤ 4 MB",
            Some(mb <= ZIP_TARGET_MB),
        ));
        measured.push((function.to_owned(), raw, zipped));
    }
    let markdown = format!(
        "## Lambda artifacts\n\n`cargo lambda build --release --arm64` (aarch64-unknown-linux-gnu through zig, the \
         workspace's release profile: `opt-level = \"s\"`, LTO, one codegen unit, `panic = \"abort\"`, stripped), \
         each `bootstrap` zipped alone with `zip -9`, as Lambda receives it.\n\n{}",
        table.render()
    );
    Ok((Section { markdown, figures }, measured))
}

async fn zip_size(bootstrap: &Path) -> Result<u64, String> {
    let out = std::env::temp_dir().join(format!("speedbatch-bench-{}.zip", std::process::id()));
    let _ = std::fs::remove_file(&out);
    let status = tokio::process::Command::new("zip")
        .arg("-9jq")
        .arg(&out)
        .arg(bootstrap)
        .status()
        .await
        .map_err(|e| format!("zip: {e}"))?;
    if !status.success() {
        return Err(format!("zip ended with {status}"));
    }
    let size = std::fs::metadata(&out).map_err(|e| e.to_string())?.len();
    let _ = std::fs::remove_file(&out);
    Ok(size)
}

/// Starts each host-built bootstrap (`make up`'s `.aws-sam/build`) against a Runtime API of
/// our own and times the first `GET …/invocation/next`: everything a cold start does before
/// it can take an event (configuration, SDK clients, TLS roots).
pub async fn cold_starts(runs: usize, rss: &[(String, u64)]) -> Result<Section, String> {
    let (sender, mut polls) = mpsc::unbounded_channel::<Instant>();
    let app = Router::new().route(
        "/2018-06-01/runtime/invocation/next",
        get(move || {
            let _ = sender.send(Instant::now());
            // The function waits here for an event that never comes; it is then stopped.
            std::future::pending::<&'static str>()
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    let stack = testkit::stack::DeployedStack::try_load()?;
    let env = |name: &str| stack.values.get(name).cloned().unwrap_or_default();
    let mut table = Table::new(&[
        "function",
        "start → first poll",
        "peak RSS under load (end-to-end and submission benches)",
        "targets",
    ]);
    let mut figures = Vec::new();
    for function in STARTED {
        let bootstrap = host_bootstrap(function)?;
        let mut times = Vec::new();
        for _ in 0..runs {
            let started = Instant::now();
            let mut child = tokio::process::Command::new(&bootstrap)
                .env_clear()
                .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
                .env("AWS_LAMBDA_FUNCTION_NAME", format!("bench-{function}"))
                .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
                .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
                .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/bench-{function}"))
                .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
                .env("AWS_REGION", "us-east-1")
                .env("AWS_ACCESS_KEY_ID", "test")
                .env("AWS_SECRET_ACCESS_KEY", "test")
                .env("TABLE_NAME", env("TABLE_NAME"))
                .env("QUEUE_HIGH_URL", env("HIGH_QUEUE_URL"))
                .env("QUEUE_NORMAL_URL", env("NORMAL_QUEUE_URL"))
                .env("QUEUE_LOW_URL", env("LOW_QUEUE_URL"))
                .env("EVENT_BUS_NAME", env("EVENT_BUS_NAME"))
                .env("QUEUE_BROWSER_URL", env("BROWSER_QUEUE_URL"))
                .env("EXPORTS_BUCKET", env("EXPORTS_BUCKET"))
                .env("CHROMIUM_PATH", "/usr/bin/chromium")
                .env("SPEEDBATCH_AWS_ENDPOINT", "http://127.0.0.1:4566")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| format!("{}: {e}", bootstrap.display()))?;
            let polled = tokio::time::timeout(Duration::from_secs(10), polls.recv()).await;
            let _ = child.kill().await;
            match polled {
                Ok(Some(at)) => times.push(at.duration_since(started).as_secs_f64() * 1000.0),
                _ => return Err(format!("{function} never polled the Runtime API")),
            }
        }
        let peak_mb = rss
            .iter()
            .filter(|(name, _)| {
                name.to_lowercase().replace(['-', '_'], "").contains(&format!("{}function", function.replace('-', "")))
            })
            .map(|(_, kb)| *kb as f64 / 1024.0)
            .fold(None, |max: Option<f64>, mb| Some(max.map_or(mb, |m| m.max(mb))));
        println!("{}", json!({"bench": "cold-start", "function": function, "ms": times, "peak_rss_mb": peak_mb}));
        table.row(vec![
            function.to_owned(),
            format!("{} ms", spread(&times, 1)),
            peak_mb.map_or_else(|| "not seen".to_owned(), |mb| format!("{} MB", num(mb, 1))),
            "≤ 30 ms, ≤ 40 MB".to_owned(),
        ]);
        figures.push(Figure::new(
            &format!("{function}: start → first Runtime API poll (host build)"),
            format!("{} ms", spread(&times, 1)),
            "≤ 30 ms",
            Some(median(&times) <= COLD_START_TARGET_MS),
        ));
        if let Some(mb) = peak_mb {
            figures.push(Figure::new(
                &format!("{function}: peak RSS under load"),
                format!("{} MB", num(mb, 1)),
                "≤ 40 MB",
                Some(mb <= 40.0),
            ));
        }
    }
    let markdown = format!(
        "## Cold start and memory (host build)\n\n\
         Start → first poll: each release `bootstrap` that `make up` built (x86_64) started {runs} times as a \
         Lambda would start it, against a Runtime API served by the bench, with the deployed stack's \
         configuration; timed from spawning the process to its first `GET /2018-06-01/runtime/invocation/next` \
         (configuration, SDK clients, TLS roots: all a cold start does before it can take an event). Peak RSS: \
         `VmHWM` of the function processes the emulator was running after the end-to-end and submission runs (the largest \
         process per function).\n\n{}",
        table.render()
    );
    Ok(Section { markdown, figures })
}

/// The host build of `function` that `make up` deployed.
fn host_bootstrap(function: &str) -> Result<PathBuf, String> {
    let build = root().join(".aws-sam/build");
    let entries = std::fs::read_dir(&build).map_err(|e| format!("{}: {e} (run `make up`)", build.display()))?;
    entries
        .flatten()
        .map(|entry| entry.path())
        .find(|dir| {
            dir.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.to_lowercase() == format!("{}function", function.replace('-', "")))
        })
        .map(|dir| dir.join("bootstrap"))
        .filter(|bootstrap| bootstrap.is_file())
        .ok_or_else(|| format!("no {function} bootstrap under {}", build.display()))
}

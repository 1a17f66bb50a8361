//! The http engine on a real static site: rustdoc pages (each with its stylesheets, scripts
//! and fonts) served by a separate `serve` process on loopback, against curl fetching the same
//! documents and subresources at the same concurrency (a document, then its subresources 6 at
//! a time, as the engine does): the overhead ratio of time and of CPU.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use domain::AddressPolicy;
use domain::Strategy;
use engine::http::subresources::extract;
use engine::{Engine, HttpEngine};
use futures::StreamExt;
use serde_json::json;

use crate::report::{Figure, Section, Table, num, spread};
use crate::stats::{children_cpu_seconds, cpu_seconds, median, percentile, round, summary};

pub async fn run(runs: usize, pages: usize, concurrency: usize, docs: Option<String>) -> Result<Section, String> {
    let docs = match docs {
        Some(dir) => PathBuf::from(dir),
        None => toolchain_docs()?,
    };
    let list = pick_pages(&docs, pages)?;
    // Its own process: its CPU is not the engine's.
    let (_server, port) = crate::serve::spawn(&docs).await?;
    let urls: Vec<String> = list.iter().map(|page| format!("http://127.0.0.1:{port}/{page}")).collect();

    let engine = HttpEngine::new(AddressPolicy::LOCAL).map_err(|e| e.to_string())?;
    // Warm-up: the first TLS-free connections, page cache, allocator.
    for url in urls.iter().take(3) {
        let _ = engine.analyze(url, Strategy::Desktop, Duration::from_secs(30)).await;
    }
    let plans = curl_plans(&urls).await?;
    let mut rates = Vec::new();
    let mut cpu = Vec::new();
    let mut medians = Vec::new();
    let mut time_ratios = Vec::new();
    let mut cpu_ratios = Vec::new();
    let mut table = Table::new(&[
        "run",
        "engine pages/s",
        "time per page p50",
        "p95",
        "engine CPU per page",
        "curl pages/s",
        "curl CPU per page",
        "time, engine ÷ curl",
        "CPU, engine ÷ curl",
    ]);
    let mut shape = (0.0, 0.0);
    for run in 1..=runs {
        let cpu_before = cpu_seconds();
        let started = Instant::now();
        let results: Vec<(f64, Option<(u64, u64)>)> = futures::stream::iter(urls.iter())
            .map(|url| {
                let engine = &engine;
                async move {
                    let started = Instant::now();
                    let result = engine.analyze(url, Strategy::Desktop, Duration::from_secs(30)).await;
                    let measured = result.ok().map(|a| {
                        let number = |name: &str| a.metrics.get(name).and_then(|v| v.as_u64()).unwrap_or(0);
                        (number("requests"), number("page_bytes"))
                    });
                    (started.elapsed().as_secs_f64() * 1000.0, measured)
                }
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        let elapsed = started.elapsed().as_secs_f64();
        let cpu_ms = (cpu_seconds() - cpu_before) * 1000.0 / urls.len() as f64;
        let times: Vec<f64> = results.iter().map(|(ms, _)| *ms).collect();
        let ok: Vec<(u64, u64)> = results.iter().filter_map(|(_, m)| *m).collect();
        let requests = ok.iter().map(|(r, _)| r).sum::<u64>() as f64 / ok.len().max(1) as f64;
        let bytes = ok.iter().map(|(_, b)| b).sum::<u64>() as f64 / ok.len().max(1) as f64;
        let rate = urls.len() as f64 / elapsed;
        println!(
            "{}",
            json!({
                "bench": "http-engine", "run": run, "pages": urls.len(), "analysed": ok.len(),
                "concurrency": concurrency, "pages_per_second": round(rate),
                "page_ms_p50": round(percentile(&times, 50.0)), "page_ms_p95": round(percentile(&times, 95.0)),
                "cpu_ms_per_page": round(cpu_ms), "requests_per_page": round(requests), "bytes_per_page": round(bytes),
            })
        );
        if ok.len() != urls.len() {
            return Err(format!("{} of {} pages could not be analysed", urls.len() - ok.len(), urls.len()));
        }
        rates.push(rate);
        cpu.push(cpu_ms);
        medians.push(percentile(&times, 50.0));

        let (curl_seconds, curl_cpu_ms) = run_curl(&plans, concurrency).await?;
        let curl_rate = urls.len() as f64 / curl_seconds;
        time_ratios.push(elapsed / curl_seconds);
        cpu_ratios.push(cpu_ms / curl_cpu_ms);
        shape = (requests, bytes);
        table.row(vec![
            run.to_string(),
            num(rate, 0),
            format!("{} ms", num(percentile(&times, 50.0), 1)),
            format!("{} ms", num(percentile(&times, 95.0), 1)),
            format!("{} ms", num(cpu_ms, 2)),
            num(curl_rate, 0),
            format!("{} ms", num(curl_cpu_ms, 1)),
            num(elapsed / curl_seconds, 2),
            num(cpu_ms / curl_cpu_ms, 3),
        ]);
        println!(
            "{}",
            json!({
                "bench": "http-engine-vs-curl", "run": run, "pages": urls.len(), "concurrency": concurrency,
                "curl_pages_per_second": round(curl_rate), "curl_cpu_ms_per_page": round(curl_cpu_ms),
                "time_ratio": round(elapsed / curl_seconds), "cpu_ratio": round(cpu_ms / curl_cpu_ms),
            })
        );
    }
    println!(
        "{}",
        json!({
            "bench": "http-engine", "summary": true, "runs": runs,
            "pages_per_second": summary(&rates), "page_ms_p50": summary(&medians), "cpu_ms_per_page": summary(&cpu),
            "time_ratio_to_curl": summary(&time_ratios), "cpu_ratio_to_curl": summary(&cpu_ratios),
        })
    );
    let markdown = format!(
        "## The http engine (`speedbatch-bench http-engine`)\n\n\
         {pages} module pages of the Rust standard library's documentation that ships with the toolchain \
         (rustdoc HTML with its stylesheets, scripts and fonts: {requests:.0} requests and {kb:.0} KB per page), \
         served on loopback by the bench's own static server running as a separate process (so its CPU is not \
         counted), release build, {concurrency} pages at a time, after 3 warm-up pages. Against curl fetching the \
         same files at the same concurrency, the way a script around curl would: per page one `curl` for the \
         document, then one `curl -Z --parallel-max 6` for the subresources the engine finds (listed once, \
         before timing). CPU is read from `/proc` (the engine's process; curl's as children's time), in 10-ms \
         ticks.\n\n{table}\nThe engine takes {time} of curl's time and {cpu} of its CPU per page (target ≤ 1.2×); \
         {rate} pages/s, {engine_cpu} ms of CPU per page. Most of curl's cost is starting two processes per page; \
         the engine keeps one process and its connections.\n",
        pages = urls.len(),
        requests = shape.0,
        kb = shape.1 / 1000.0,
        table = table.render(),
        time = spread(&time_ratios, 2),
        cpu = spread(&cpu_ratios, 3),
        rate = spread(&rates, 0),
        engine_cpu = spread(&cpu, 2),
    );
    Ok(Section {
        markdown,
        figures: vec![
            Figure::new(
                "http engine time, ÷ curl on the same pages",
                format!("{}×", spread(&time_ratios, 2)),
                "≤ 1.2×",
                Some(median(&time_ratios) <= 1.2),
            ),
            Figure::new(
                "http engine CPU per page, ÷ curl",
                format!("{}×", spread(&cpu_ratios, 3)),
                "≤ 1.2×",
                Some(median(&cpu_ratios) <= 1.2),
            ),
            Figure::new("http engine pages per second (4 at a time)", spread(&rates, 0), "", None),
        ],
    })
}

/// What curl fetches for one page: the document, then these subresources, found in the
/// document the way the engine finds them (read once, before anything is timed).
struct CurlPlan {
    document: String,
    subresources: Vec<String>,
}

async fn curl_plans(urls: &[String]) -> Result<Vec<CurlPlan>, String> {
    let client = reqwest::Client::new();
    let mut plans = Vec::with_capacity(urls.len());
    for url in urls {
        let body = client.get(url).send().await.and_then(|r| r.error_for_status()).map_err(|e| e.to_string())?;
        let html = body.bytes().await.map_err(|e| e.to_string())?;
        let base = url::Url::parse(url).map_err(|e| e.to_string())?;
        let subresources = extract(&html, &base).into_iter().map(|r| r.url.to_string()).collect();
        plans.push(CurlPlan { document: url.clone(), subresources });
    }
    Ok(plans)
}

/// Wall seconds for all pages, and curl's CPU per page in ms.
async fn run_curl(plans: &[CurlPlan], concurrency: usize) -> Result<(f64, f64), String> {
    let cpu_before = children_cpu_seconds();
    let started = Instant::now();
    let results: Vec<Result<(), String>> = futures::stream::iter(plans)
        .map(|plan| async move {
            curl(&["-s", "-f", "-o", "/dev/null", &plan.document]).await?;
            if plan.subresources.is_empty() {
                return Ok(());
            }
            let mut args =
                vec!["-s".to_owned(), "--no-progress-meter".into(), "-Z".into(), "--parallel-max".into(), "6".into()];
            for url in &plan.subresources {
                args.extend(["-o".to_owned(), "/dev/null".into(), url.clone()]);
            }
            curl(&args.iter().map(String::as_str).collect::<Vec<_>>()).await
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let seconds = started.elapsed().as_secs_f64();
    results.into_iter().collect::<Result<Vec<()>, String>>()?;
    Ok((seconds, (children_cpu_seconds() - cpu_before) * 1000.0 / plans.len() as f64))
}

async fn curl(args: &[&str]) -> Result<(), String> {
    let status = tokio::process::Command::new("curl").args(args).status().await.map_err(|e| format!("curl: {e}"))?;
    if status.success() { Ok(()) } else { Err(format!("curl {args:?} ended with {status}")) }
}

/// The HTML documentation rustup installs with the toolchain.
pub(crate) fn toolchain_docs() -> Result<PathBuf, String> {
    let output = std::process::Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .map_err(|e| format!("rustc --print sysroot: {e}"))?;
    let sysroot = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let docs = Path::new(&sysroot).join("share/doc/rust/html");
    if docs.join("std/index.html").is_file() {
        Ok(docs)
    } else {
        Err(format!("no Rust documentation at {} (rustup component add rust-docs), or pass --docs DIR", docs.display()))
    }
}

/// `count` pages of `std`, spread evenly over its module indexes in name order, so every run
/// and every machine measures the same pages.
pub(crate) fn pick_pages(docs: &Path, count: usize) -> Result<Vec<String>, String> {
    let std = docs.join("std");
    let mut modules: Vec<String> = std::fs::read_dir(&std)
        .map_err(|e| format!("{}: {e}", std.display()))?
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.path().join("index.html").is_file())
        .filter_map(|entry| entry.file_name().into_string().ok())
        .map(|name| format!("std/{name}/index.html"))
        .collect();
    modules.sort();
    if modules.is_empty() {
        return Err(format!("no module pages under {}", std.display()));
    }
    let step = (modules.len() as f64 / count.max(1) as f64).max(1.0);
    Ok((0..count.min(modules.len())).map(|i| modules[(i as f64 * step) as usize].clone()).collect())
}

//! The browser engine as one browser analyzer instance runs it: one page at a time, Chromium
//! kept between pages. Per form factor: time per page (median, p95) and pages per minute;
//! the browser's memory at its peak (the proportional set size of every Chromium process of
//! this bench, sampled); and Chromium's start — Debian's and the Lambda layer's build (when
//! `make build` has unpacked it), each with Lambda's switches — which a cold start adds.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use domain::{AddressPolicy, Strategy};
use engine::Engine;
use engine::browser::launch::launch;
use engine::browser::{BrowserEngine, BrowserSettings};
use testkit::screenshots::Folder;

use crate::report::{Figure, Section, Table, num, spread};
use crate::stats::{median, percentile};

/// Lambda's sandbox needs these; the bench runs with them so its figures are the function's.
const LAMBDA_SWITCHES: [&str; 2] = ["--single-process", "--no-zygote"];
const PAGE_TIME: Duration = Duration::from_secs(120);

pub async fn run(runs: usize, pages: usize, docs: Option<String>) -> Result<Section, String> {
    let docs = match docs {
        Some(dir) => PathBuf::from(dir),
        None => crate::http_engine::toolchain_docs()?,
    };
    let list = crate::http_engine::pick_pages(&docs, pages)?;
    let (_server, port) = crate::serve::spawn(&docs).await?;
    let urls: Vec<String> = list.iter().map(|page| format!("http://127.0.0.1:{port}/{page}")).collect();
    let chromium = testkit::browser::chromium();
    let settings = BrowserSettings {
        switches: LAMBDA_SWITCHES.iter().map(|s| (*s).to_owned()).collect(),
        ..BrowserSettings::new(chromium.clone())
    };
    let engine = BrowserEngine::new(AddressPolicy::LOCAL, settings, Folder::new());
    let peak = MemoryPeak::start();

    let mut table =
        Table::new(&["run", "form factor", "pages", "failed", "time per page p50", "p95", "pages per minute"]);
    let mut per_minute: Vec<(Strategy, f64)> = Vec::new();
    for run in 1..=runs {
        for strategy in [Strategy::Mobile, Strategy::Desktop] {
            let mut times = Vec::new();
            let mut failed = 0;
            let started = Instant::now();
            for url in &urls {
                let page_started = Instant::now();
                if engine.analyze(url, strategy, PAGE_TIME).await.is_err() {
                    failed += 1;
                }
                times.push(page_started.elapsed().as_secs_f64() * 1000.0);
            }
            let rate = urls.len() as f64 / started.elapsed().as_secs_f64() * 60.0;
            per_minute.push((strategy, rate));
            table.row(vec![
                run.to_string(),
                strategy.as_str().to_owned(),
                urls.len().to_string(),
                failed.to_string(),
                format!("{} ms", num(median(&times), 0)),
                format!("{} ms", num(percentile(&times, 95.0), 0)),
                num(rate, 1),
            ]);
        }
    }
    let peak_mb = peak.stop() as f64 / 1024.0 / 1024.0;

    let mut starts = Table::new(&["Chromium", "start → DevTools ready, median of 5", "range"]);
    let mut debian_start = None;
    for (name, binary) in browsers(&chromium) {
        let mut times = Vec::new();
        for _ in 0..5 {
            let started = Instant::now();
            let extra: Vec<String> = LAMBDA_SWITCHES.iter().map(|s| (*s).to_owned()).collect();
            let browser = launch(&binary, &extra, Duration::from_secs(30)).await.map_err(|e| format!("{name}: {e}"))?;
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            drop(browser);
        }
        if debian_start.is_none() {
            debian_start = Some(median(&times));
        }
        starts.row(vec![name, format!("{} ms", num(median(&times), 0)), format!("{} ms", spread(&times, 0))]);
    }

    let rates = |s: Strategy| per_minute.iter().filter(|(x, _)| *x == s).map(|(_, r)| *r).collect::<Vec<f64>>();
    let (mobile, desktop) = (rates(Strategy::Mobile), rates(Strategy::Desktop));
    let markdown = format!(
        "## Browser engine: pages per minute per instance\n\n`speedbatch-bench browser-engine --runs {runs} --pages {pages}`: \
         {pages} pages of the Rust documentation served on loopback by a separate process, each loaded by the browser \
         engine under Lighthouse's conditions (mobile: slow 4G emulated, CPU slowed 4×; desktop: 40 ms, 10 Mbit/s), one \
         page at a time as one browser analyzer instance loads them, with Lambda's switches \
         (`{switches}`). Chromium: `{chromium}`. A page's time includes waiting for the network and the main thread to \
         stay quiet for 1 s after its load event, as Lighthouse waits.\n\n{table}\n\
         Peak memory of Chromium (sum of its processes' proportional set size, sampled every 100 ms): **{peak_mb:.0} MB**. \
         Every page starts a browser of its own (a page's time above includes it); what that start takes:\n\n{starts}",
        switches = LAMBDA_SWITCHES.join(" "),
        chromium = chromium.display(),
        table = table.render(),
        starts = starts.render(),
    );
    let figures = vec![
        Figure::new("browser engine, mobile: pages per minute per instance", spread(&mobile, 1), "", None),
        Figure::new("browser engine, desktop: pages per minute per instance", spread(&desktop, 1), "", None),
        Figure::new(
            "browser engine: Chromium's peak memory (PSS)",
            format!("{peak_mb:.0} MB"),
            "< 2048 MB",
            Some(peak_mb < 2048.0),
        ),
        Figure::new(
            "browser engine: Chromium start (a cold start's share)",
            format!("{} ms", num(debian_start.unwrap_or(0.0), 0)),
            "",
            None,
        ),
    ];
    Ok(Section { markdown, figures })
}

/// The browsers whose start is measured: the one the engine ran, and the Lambda layer's build
/// where `make build` unpacked it (`.local/layer-chromium` runs it with the layer's libraries
/// and fonts, as Lambda's `/opt` gives them).
fn browsers(chromium: &Path) -> Vec<(String, PathBuf)> {
    let mut list = vec![(format!("{} (the engine's above)", chromium.display()), chromium.to_owned())];
    let layer = testkit::stack::local_dir().join("layer-chromium");
    if layer.is_file() {
        list.push(("the Lambda layer's chrome-headless-shell (@sparticuz/chromium)".to_owned(), layer));
    }
    list
}

/// The largest sum, so far, of the proportional set sizes of this bench's Chromium processes
/// (their profile directory names this process), sampled every 100 ms on a thread of its own.
struct MemoryPeak {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MemoryPeak {
    fn start() -> MemoryPeak {
        let (peak, stop) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
        let marker = format!("speedbatch-chromium-{}-", std::process::id());
        let (seen, done) = (Arc::clone(&peak), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                seen.fetch_max(browser_pss(&marker), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        MemoryPeak { peak, stop, thread: Some(thread) }
    }

    /// Bytes at the peak.
    fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.peak.load(Ordering::Relaxed)
    }
}

/// Bytes of proportional set size of every process whose command line holds `marker`.
fn browser_pss(marker: &str) -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else { return 0 };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
        .filter(|e| std::fs::read(e.path().join("cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains(marker)))
        .filter_map(|e| std::fs::read_to_string(e.path().join("smaps_rollup")).ok())
        .filter_map(|rollup| {
            let line = rollup.lines().find(|l| l.starts_with("Pss:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kb| kb * 1024)
        })
        .sum()
}

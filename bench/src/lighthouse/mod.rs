//! `lighthouse-compare` (issue 19, part 4): Lighthouse and our engines on the same pages, one
//! after another, and how far they agree. The corpus (`corpus`) is served by a separate
//! `serve` process on loopback; Lighthouse 12.8.2 runs from `bench/lighthouse` (`run.mjs`);
//! then the browser engine and the http engine measure the same pages the same number of
//! times. Every run is one JSON line, kept in `bench/lighthouse/last-run.jsonl`, so the
//! figures (`report`) can be recomputed (`--from`) or one side measured again
//! (`--from FILE --measure browser`) without the other.
//!
//! Nothing runs beside anything else: the machine has two cores, and Lighthouse's simulated
//! throttling scales the CPU time it observes, so a second browser or a build next to it
//! would move its scores.

mod corpus;
mod report;
mod stats;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use domain::{AddressPolicy, Analysis, Strategy};
use engine::browser::{BrowserEngine, BrowserSettings, ScreenshotStore};
use engine::{Engine, HttpEngine};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use corpus::Page;

pub use report::carry_over;

/// Where the Node package is, and where the last run's lines are kept (git-ignored).
const PACKAGE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/lighthouse");
const LAST_RUN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/lighthouse/last-run.jsonl");

/// Long enough for the slowest corpus page under mobile conditions, short enough that a hung
/// page does not hold the run.
const ENGINE_TIMEOUT: Duration = Duration::from_secs(90);

/// Who measured: the reference and the two engines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// `run.mjs` prints its lines without a source.
    #[default]
    Lighthouse,
    Browser,
    Http,
}

impl Source {
    const ALL: [Source; 3] = [Source::Lighthouse, Source::Browser, Source::Http];

    fn parse(name: &str) -> Result<Source, String> {
        match name {
            "lighthouse" => Ok(Source::Lighthouse),
            "browser" => Ok(Source::Browser),
            "http" => Ok(Source::Http),
            _ => Err(format!("--measure takes lighthouse, browser or http, not {name:?}")),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Source::Lighthouse => "lighthouse",
            Source::Browser => "browser",
            Source::Http => "http",
        }
    }
}

/// The two form factors, in Lighthouse's words (the engines' strategies).
pub const FORM_FACTORS: [&str; 2] = ["mobile", "desktop"];

fn strategy(form_factor: &str) -> Strategy {
    if form_factor == "desktop" { Strategy::Desktop } else { Strategy::Mobile }
}

/// One run of one page in one form factor by one source: a line of `last-run.jsonl` (and,
/// for Lighthouse, what `run.mjs` prints, joined to its page).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Record {
    #[serde(default)]
    pub source: Source,
    #[serde(default)]
    pub page: String,
    pub url: String,
    pub form_factor: String,
    pub run: usize,
    /// 0–100: Lighthouse's and the browser engine's performance score, the http engine's
    /// delivery score.
    pub score: Option<f64>,
    pub fcp_ms: Option<f64>,
    pub lcp_ms: Option<f64>,
    pub tbt_ms: Option<f64>,
    pub cls: Option<f64>,
    pub speed_index_ms: Option<f64>,
    pub ttfb_ms: Option<f64>,
    pub total_bytes: Option<f64>,
    pub requests: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_ms: Option<f64>,
    /// Lighthouse's own CPU benchmark of the machine during the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub benchmark_index: Option<f64>,
}

/// What the report says about the run besides its numbers: the first line of the file.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Meta {
    pub date: String,
    pub commit: String,
    pub machine: String,
    pub chromium: String,
    pub lighthouse: String,
    pub runs: usize,
    /// Wall seconds each source took for all its runs.
    #[serde(default)]
    pub seconds: BTreeMap<String, f64>,
    /// What each synthetic page varies, by page name.
    #[serde(default)]
    pub pages: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum Line {
    Meta { meta: Meta },
    Record(Box<Record>),
}

/// What `speedbatch-bench lighthouse-compare` was asked.
pub struct Options {
    pub runs: usize,
    pub pages: Option<usize>,
    /// Only the pages whose names contain one of these (looking at a few pages closely).
    pub only: Vec<String>,
    pub from: Option<PathBuf>,
    /// What to measure now: everything without `--from`, nothing with it (unless named).
    pub measure: Vec<Source>,
    pub out: PathBuf,
    pub docs: Option<PathBuf>,
}

impl Options {
    /// Reads the options after the subcommand; `runs` comes parsed from `main`.
    pub fn parse(args: &[String], runs: usize) -> Result<Options, String> {
        let value = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
        let pages = match value("--pages") {
            Some(v) => Some(v.parse().ok().filter(|n| *n >= 3).ok_or("--pages needs a whole number of at least 3")?),
            None => None,
        };
        let from = value("--from").map(PathBuf::from);
        let measure = match value("--measure") {
            Some(list) => list.split(',').map(Source::parse).collect::<Result<Vec<_>, _>>()?,
            None if from.is_some() => Vec::new(),
            None => Source::ALL.to_vec(),
        };
        Ok(Options {
            runs,
            pages,
            only: value("--only").map(|list| list.split(',').map(str::to_owned).collect()).unwrap_or_default(),
            from,
            measure,
            out: value("--out").map_or_else(|| PathBuf::from("BENCHMARKS.md"), PathBuf::from),
            docs: value("--docs").map(PathBuf::from),
        })
    }
}

pub async fn run(options: Options) -> Result<(), String> {
    let (mut meta, mut records) = match &options.from {
        Some(path) => load(path)?,
        None => (Meta { runs: options.runs, ..Meta::default() }, Vec::new()),
    };
    let measure = options.measure.clone();
    if !measure.is_empty() {
        let root = std::env::temp_dir().join(format!("speedbatch-lighthouse-corpus-{}", std::process::id()));
        let result = measure_sources(&options, &measure, &root, &mut meta, &mut records).await;
        let _ = std::fs::remove_dir_all(&root);
        result?;
        save(Path::new(LAST_RUN), &meta, &records)?;
        eprintln!("==> the runs' lines are in {LAST_RUN}");
    }
    let section = report::section(&meta, &records);
    println!("{}", section.markdown);
    let existing = std::fs::read_to_string(&options.out).unwrap_or_default();
    let document = report::splice(&existing, &section);
    std::fs::write(&options.out, document).map_err(|e| format!("{}: {e}", options.out.display()))?;
    eprintln!("==> wrote the section \"{}\" of {}", report::HEADING, options.out.display());
    Ok(())
}

async fn measure_sources(
    options: &Options,
    measure: &[Source],
    root: &Path,
    meta: &mut Meta,
    records: &mut Vec<Record>,
) -> Result<(), String> {
    let docs = match &options.docs {
        Some(dir) => dir.clone(),
        None => crate::http_engine::toolchain_docs()?,
    };
    let mut pages = corpus::build(root, &docs)?;
    if options.from.is_some() {
        // Measure again what the file measured, so the sides stay paired page by page.
        let measured: Vec<&str> = records.iter().map(|r| r.page.as_str()).collect();
        pages.retain(|page| measured.contains(&page.name.as_str()));
        if pages.is_empty() {
            return Err("none of the file's pages is in the corpus".into());
        }
    } else if let Some(count) = options.pages {
        pages = corpus::pick(pages, count);
    }
    if !options.only.is_empty() {
        pages.retain(|page| options.only.iter().any(|part| page.name.contains(part.as_str())));
        if pages.is_empty() {
            return Err(format!("no page's name contains any of {:?}", options.only));
        }
    }
    let runs = if options.from.is_some() { meta.runs.max(1) } else { options.runs };
    let (_server, port) = crate::serve::spawn(root).await?;
    let base = format!("http://127.0.0.1:{port}");
    check_server(&base, &pages).await?;
    meta.runs = runs;
    meta.date = crate::chrono_date();
    meta.commit = crate::command_output("git", &["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".into());
    meta.machine = crate::machine();
    meta.chromium =
        crate::command_output(&testkit::browser::chromium().to_string_lossy(), &["--version"]).unwrap_or_default();
    meta.lighthouse = lighthouse_version();
    meta.pages.extend(pages.iter().map(|p| (p.name.clone(), p.what.clone())));
    for &source in measure {
        eprintln!(
            "==> {}: {} pages × {} form factors × {runs} runs, one at a time",
            source.name(),
            pages.len(),
            FORM_FACTORS.len()
        );
        let started = Instant::now();
        let measured = match source {
            Source::Lighthouse => run_lighthouse(&pages, &base, runs).await?,
            Source::Browser => run_browser(&pages, &base, runs).await,
            Source::Http => {
                let engine = HttpEngine::new(AddressPolicy::LOCAL).map_err(|e| e.to_string())?;
                run_engine(&engine, Source::Http, &pages, &base, runs).await
            }
        };
        meta.seconds.insert(source.name().into(), (started.elapsed().as_secs_f64() * 10.0).round() / 10.0);
        // Only what was measured again is replaced: `--only` keeps the file's other pages.
        records.retain(|r| r.source != source || !pages.iter().any(|p| p.name == r.page));
        records.extend(measured);
    }
    Ok(())
}

/// The browser engine on every page, `runs` times, with Debian's Chromium (the one Lighthouse
/// runs) and no switches beyond its own; loopback allowed, where the corpus is.
async fn run_browser(pages: &[Page], base: &str, runs: usize) -> Vec<Record> {
    let engine = BrowserEngine::new(AddressPolicy::LOCAL, BrowserSettings::new(testkit::browser::chromium()), Discard);
    run_engine(&engine, Source::Browser, pages, base, runs).await
}

/// The comparison is about numbers: the screenshots are taken (that is part of the engine's
/// time) and dropped.
struct Discard;

impl ScreenshotStore for Discard {
    async fn put(&self, _job: &str, _jpeg: Vec<u8>) -> Result<String, String> {
        Ok(String::new())
    }
}

/// One engine on every page and form factor, `runs` times, one analysis at a time. A failed
/// analysis is a line with its reason: the report counts it, the statistics leave it out.
async fn run_engine<E: Engine>(engine: &E, source: Source, pages: &[Page], base: &str, runs: usize) -> Vec<Record> {
    let total = pages.len() * FORM_FACTORS.len() * runs;
    let mut records = Vec::with_capacity(total);
    for run in 1..=runs {
        for page in pages {
            for form_factor in FORM_FACTORS {
                let url = format!("{base}{}", page.path);
                let started = Instant::now();
                let result = engine.analyze(&url, strategy(form_factor), ENGINE_TIMEOUT).await;
                let mut record = match &result {
                    Ok(analysis) => from_analysis(analysis, source),
                    Err(err) => Record {
                        error: Some(err.reason.clone()),
                        ..err.analysis.as_ref().map(|a| from_analysis(a, source)).unwrap_or_default()
                    },
                };
                record.source = source;
                record.page = page.name.clone();
                record.url = url;
                record.form_factor = form_factor.into();
                record.run = run;
                record.wall_ms = Some((started.elapsed().as_secs_f64() * 1000.0).round());
                progress(records.len() + 1, total, &record);
                records.push(record);
            }
        }
    }
    records
}

fn from_analysis(analysis: &Analysis, source: Source) -> Record {
    let metric = |name: &str| analysis.metrics.get(name).and_then(serde_json::Value::as_f64);
    Record {
        source,
        score: match source {
            Source::Http => metric(domain::delivery::DELIVERY_SCORE),
            _ => analysis.score,
        },
        fcp_ms: metric("fcp_ms"),
        lcp_ms: metric("lcp_ms"),
        tbt_ms: metric("tbt_ms"),
        cls: metric("cls"),
        speed_index_ms: metric("speed_index_ms"),
        ttfb_ms: metric("ttfb_ms"),
        total_bytes: metric("total_bytes").or_else(|| metric("page_bytes")),
        requests: metric("requests"),
        ..Record::default()
    }
}

fn progress(done: usize, total: usize, record: &Record) {
    let outcome = match (&record.error, record.score) {
        (Some(error), _) => format!("error: {error}"),
        (None, Some(score)) => format!("{score:.0}"),
        (None, None) => "no score".into(),
    };
    eprintln!(
        "    [{done}/{total}] {} run {} {}: {outcome} ({:.1} s)",
        record.form_factor,
        record.run,
        record.page,
        record.wall_ms.unwrap_or(0.0) / 1000.0
    );
}

/// Lighthouse on every page and form factor, `runs` times, in one `node run.mjs` that runs
/// them one after another; its lines are read as they come.
async fn run_lighthouse(pages: &[Page], base: &str, runs: usize) -> Result<Vec<Record>, String> {
    if !Path::new(PACKAGE).join("node_modules/lighthouse/package.json").is_file() {
        return Err(format!("Lighthouse is not installed: npm ci --prefix {PACKAGE} (make lighthouse-compare does)"));
    }
    let mut jobs = String::new();
    let mut by_url = BTreeMap::new();
    for run in 1..=runs {
        for page in pages {
            let url = format!("{base}{}", page.path);
            for form_factor in FORM_FACTORS {
                jobs.push_str(&serde_json::json!({"url": url, "form_factor": form_factor, "run": run}).to_string());
                jobs.push('\n');
            }
            by_url.insert(url, page.name.clone());
        }
    }
    let node = std::env::var_os("NODE").unwrap_or_else(|| "node".into());
    let mut child = tokio::process::Command::new(node)
        .arg("run.mjs")
        .current_dir(PACKAGE)
        .env("CHROMIUM_PATH", testkit::browser::chromium())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("starting node run.mjs: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("node has no standard input")?;
    stdin.write_all(jobs.as_bytes()).await.map_err(|e| format!("writing the jobs to run.mjs: {e}"))?;
    drop(stdin);
    let stdout = child.stdout.take().ok_or("node has no standard output")?;
    let mut lines = BufReader::new(stdout).lines();
    let total = runs * pages.len() * FORM_FACTORS.len();
    let mut records = Vec::with_capacity(total);
    while let Some(line) = lines.next_line().await.map_err(|e| format!("reading run.mjs: {e}"))? {
        let mut record: Record =
            serde_json::from_str(&line).map_err(|e| format!("run.mjs printed {line:?}, not a run: {e}"))?;
        record.source = Source::Lighthouse;
        record.page =
            by_url.get(&record.url).cloned().ok_or_else(|| format!("run.mjs ran {}, not asked", record.url))?;
        progress(records.len() + 1, total, &record);
        records.push(record);
    }
    let status = child.wait().await.map_err(|e| e.to_string())?;
    if !status.success() || records.len() != total {
        return Err(format!("run.mjs ended with {status} after {} of {total} runs", records.len()));
    }
    Ok(records)
}

fn lighthouse_version() -> String {
    std::fs::read_to_string(Path::new(PACKAGE).join("node_modules/lighthouse/package.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|package| package["version"].as_str().map(str::to_owned))
        .unwrap_or_else(|| "unknown".into())
}

/// Every page answers 200 with HTML before anything is measured: a wrong path would otherwise
/// show as a fast page with a perfect score.
async fn check_server(base: &str, pages: &[Page]) -> Result<(), String> {
    let client = reqwest::Client::new();
    for page in pages {
        let url = format!("{base}{}", page.path);
        let response = client.get(&url).send().await.map_err(|e| format!("{url}: {e}"))?;
        let html = response.headers().get("content-type").is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
        if !response.status().is_success() || !html {
            return Err(format!("{url} answered {} without HTML", response.status()));
        }
    }
    Ok(())
}

fn load(path: &Path) -> Result<(Meta, Vec<Record>), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut meta = None;
    let mut records = Vec::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        match serde_json::from_str(line).map_err(|e| format!("{}:{}: {e}", path.display(), n + 1))? {
            Line::Meta { meta: m } => meta = Some(m),
            Line::Record(record) => records.push(*record),
        }
    }
    let mut meta = meta.unwrap_or_default();
    meta.runs = meta.runs.max(records.iter().map(|r| r.run).max().unwrap_or(1));
    Ok((meta, records))
}

fn save(path: &Path, meta: &Meta, records: &[Record]) -> Result<(), String> {
    let mut text = serde_json::to_string(&Line::Meta { meta: meta.clone() }).map_err(|e| e.to_string())?;
    text.push('\n');
    for record in records {
        text.push_str(&serde_json::to_string(record).map_err(|e| e.to_string())?);
        text.push('\n');
    }
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_of_run_mjs_reads_as_a_lighthouse_record() {
        let line = r#"{"url":"http://127.0.0.1:1/a.html","form_factor":"mobile","run":2,"score":61,"fcp_ms":2709.7,
            "lcp_ms":6834.7,"tbt_ms":1,"cls":0.24,"speed_index_ms":2709.7,"ttfb_ms":6.9,"total_bytes":1129415,
            "requests":30,"error":null,"warnings":[],"benchmark_index":2799.5,"lighthouse":"12.8.2","wall_ms":8627}"#;
        let record: Record = serde_json::from_str(line).unwrap();
        assert_eq!(record.source, Source::Lighthouse);
        assert_eq!((record.run, record.score, record.requests), (2, Some(61.0), Some(30.0)));
        assert_eq!(record.error, None);
    }

    #[test]
    fn the_file_keeps_meta_and_records() {
        let path = std::env::temp_dir().join(format!("lighthouse-compare-test-{}.jsonl", std::process::id()));
        let meta = Meta { runs: 3, lighthouse: "12.8.2".into(), ..Meta::default() };
        let record = Record {
            source: Source::Browser,
            page: "synthetic/fast".into(),
            form_factor: "desktop".into(),
            run: 3,
            score: Some(99.0),
            ..Record::default()
        };
        save(&path, &meta, std::slice::from_ref(&record)).unwrap();
        let (read_meta, read) = load(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!((read_meta.runs, read_meta.lighthouse.as_str()), (3, "12.8.2"));
        assert_eq!(read.len(), 1);
        assert_eq!(
            (read[0].source, read[0].page.as_str(), read[0].score),
            (Source::Browser, "synthetic/fast", Some(99.0))
        );
    }

    #[test]
    fn options_measure_everything_unless_reading_a_file() {
        let args = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        let parse = |s: &str| Options::parse(&args(s), 3);
        assert_eq!(parse("lighthouse-compare").unwrap().measure, Source::ALL);
        assert_eq!(parse("lighthouse-compare --from x.jsonl").unwrap().measure, []);
        let options = parse("lighthouse-compare --from x.jsonl --measure browser,http").unwrap();
        assert_eq!(options.measure, [Source::Browser, Source::Http]);
        assert_eq!(parse("lighthouse-compare --measure lighthouse").unwrap().measure, [Source::Lighthouse]);
        assert!(parse("lighthouse-compare --measure gpu").is_err());
        assert_eq!(parse("lighthouse-compare --pages 5").unwrap().pages, Some(5));
        assert!(parse("lighthouse-compare --pages 1").is_err());
    }
}

//! `speedbatch`: submit URL lists, watch jobs, export results and cancel, against the HTTP API;
//! and, for operators, send dead-lettered messages back to their queues (`redrive`, over SQS).
//!
//! Exit codes: 0 when everything asked for succeeded (for a watched job: every URL), 2 when a
//! watched job ended with URLs failed or cancelled, or `compare` found a regression (for CI
//! pipelines), 1 for any error (shown in plain words).

mod client;
mod config;
mod error;
mod input;
mod live;
mod redrive;
mod render;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use domain::field::FieldCategory;
use domain::politeness::HOST_CONCURRENCY;
use domain::settings::{BATCH_SIZE, Bounds, CACHE_TTL_SECONDS, MAX_NAME_CHARS, MAX_RETRIES, RUNS, TIMEOUT_SECONDS};
use domain::{EngineChoice, JobStatus, Priority, Strategy, UrlStatus};
use serde_json::{Map, Value, json};

use crate::client::{Api, Progress};
use crate::error::CliError;

#[derive(Parser)]
#[command(name = "speedbatch", version, about = "Batch page-speed analysis from the command line")]
struct Cli {
    /// The API's base URL (default: SPEEDBATCH_API_URL, else API_URL of .local/stack.env).
    #[arg(long, global = true, env = "SPEEDBATCH_API_URL")]
    api_url: Option<String>,
    /// The API key (default: SPEEDBATCH_API_KEY, else API_KEY of .local/stack.env).
    #[arg(long, global = true, env = "SPEEDBATCH_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Print the API's JSON instead of text, for scripts.
    #[arg(long, global = true)]
    json: bool,
    /// The WebSocket API `--watch` follows jobs on (default: the one the API's /health names;
    /// `off` polls instead).
    #[arg(long, global = true, env = "SPEEDBATCH_WS_URL")]
    ws_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Submit a job: URLs from FILE (one per line, or a CSV's url column; - for stdin), or a sitemap.
    Submit(Submit),
    /// Show a job's progress.
    Status {
        id: String,
        /// Follow the job until it finishes.
        #[arg(long)]
        watch: bool,
    },
    /// List your jobs, newest first.
    Jobs {
        #[arg(long, help = format!("Only jobs in this status: {}", one_of(JobStatus::ALL)))]
        status: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Print a job's per-URL results (every page of them).
    Results {
        id: String,
        /// The API's CSV export instead of a table.
        #[arg(long)]
        csv: bool,
        #[arg(long, help = format!("Only URLs in this status: {}", one_of(UrlStatus::ALL)))]
        status: Option<String>,
        #[arg(long, value_name = "VERDICT", help = field_verdict_help())]
        field_overall_category: Option<String>,
    },
    /// Cancel a job: no further URL of it starts.
    Cancel { id: String },
    /// Show your tenant's limits and how much of each it uses now.
    Usage,
    /// Monitors: URLs analysed again on a schedule, each run a job.
    #[command(subcommand)]
    Monitor(MonitorCommand),
    /// A URL's results over time, across all your jobs, oldest first.
    History {
        /// The URL (cleaned as submissions are: `example.com/` is `https://example.com`).
        url: String,
        /// `score` or a metric's name, such as lcp_ms or ttfb_ms.
        #[arg(long, default_value = "score")]
        metric: String,
        /// Only results analysed at or after this RFC 3339 time.
        #[arg(long)]
        from: Option<String>,
        /// Only results analysed at or before this RFC 3339 time.
        #[arg(long)]
        to: Option<String>,
    },
    /// Compare two finished jobs URL by URL: regressions first; exit status 2 when any URL
    /// regressed beyond run-to-run noise.
    Compare {
        /// The earlier job.
        base: String,
        /// The later job.
        head: String,
        /// Also list the URLs that did not change.
        #[arg(long)]
        all: bool,
    },
    /// Operators: send dead-lettered messages back to their queues, after a fix.
    ///
    /// Uses AWS credentials (the SDK's standard chain), not an API key; when the queues come
    /// from .local/stack.env and AWS_ENDPOINT_URL is not set, that file's local emulator.
    Redrive {
        /// A source queue's URL; its dead-letter queue is the one its RedrivePolicy names
        /// (repeatable; default: HIGH_QUEUE_URL, NORMAL_QUEUE_URL and LOW_QUEUE_URL, from the
        /// environment or .local/stack.env).
        #[arg(long = "queue", value_name = "URL")]
        queues: Vec<String>,
        /// Take at most this many messages from each dead-letter queue.
        #[arg(long, value_name = "N")]
        max: Option<u64>,
    },
}

#[derive(Args)]
struct Submit {
    /// A file of URLs, or - for standard input.
    #[arg(required_unless_present = "sitemap", conflicts_with = "sitemap")]
    file: Option<String>,
    /// A sitemap or sitemap index URL, expanded by the API.
    #[arg(long)]
    sitemap: Option<String>,
    #[command(flatten)]
    job: JobArgs,
    /// Follow the job until it finishes, then summarise it.
    #[arg(long)]
    watch: bool,
}

/// A monitor's commands.
#[derive(Subcommand)]
enum MonitorCommand {
    /// A new monitor: URLs from FILE (as submit reads them) or a sitemap, analysed on a schedule.
    Create(Box<MonitorCreate>),
    /// Your monitors, newest first.
    List,
    /// A monitor: its schedule, next run, runs and skips.
    Show { id: String },
    /// Run a monitor now, outside its schedule.
    Run { id: String },
    /// Which URLs are over which of a monitor's budgets, since when; exit 2 when any is.
    Budgets {
        id: String,
        /// breached (the default), within (back within, kept for the retention period) or any.
        #[arg(long, default_value = "breached")]
        state: String,
    },
    /// Delete a monitor (its runs' jobs stay).
    Delete { id: String },
}

#[derive(Args)]
struct MonitorCreate {
    /// A file of URLs, or - for standard input.
    #[arg(required_unless_present = "sitemap", conflicts_with = "sitemap")]
    file: Option<String>,
    /// A sitemap or sitemap index URL, read again at every run.
    #[arg(long)]
    sitemap: Option<String>,
    /// rate(N minutes|hours|days), at least 15 minutes, or an AWS cron(...) expression, in UTC.
    #[arg(long)]
    schedule: String,
    /// A budget: METRIC<=N or METRIC>=N, optionally @LABEL or @LABEL:VALUE (repeatable),
    /// e.g. lcp_ms<=2500 or score>=90@tier:gold.
    #[arg(long = "budget")]
    budgets: Vec<String>,
    /// Create it disabled: it runs only by hand until enabled.
    #[arg(long)]
    disabled: bool,
    #[command(flatten)]
    job: JobArgs,
}

/// The settings of a job, as `submit` and a monitor take them.
#[derive(Args)]
struct JobArgs {
    #[arg(long, help = format!("A name (at most {MAX_NAME_CHARS} characters)"))]
    name: Option<String>,
    #[arg(long, help = one_of(Priority::ALL))]
    priority: Option<String>,
    #[arg(long, help = one_of(Strategy::ALL))]
    strategy: Option<String>,
    #[arg(long, help = help(&BATCH_SIZE, "The most URLs of this job analysed at once"))]
    batch_size: Option<u32>,
    #[arg(long, help = help(&TIMEOUT_SECONDS, "Seconds per URL"))]
    timeout: Option<u32>,
    #[arg(long, help = help(&MAX_RETRIES, "Retries of a URL after a retryable failure"))]
    max_retries: Option<u32>,
    #[arg(long, help = format!(
        "{}; none: field data only (Chrome UX Report), no page load",
        one_of(EngineChoice::ALL)
    ))]
    engine: Option<String>,
    /// Real users' experience from the Chrome UX Report beside the lab result: the last 28
    /// days' p75s and the Core Web Vitals verdict (needs a deployment with a CrUX key).
    #[arg(long)]
    field_data: bool,
    /// Each URL's weekly field p75s too, over the last 40 weeks (implies --field-data).
    #[arg(long)]
    field_history: bool,
    #[arg(long, help = help(&RUNS, "Analyses per URL; the median is kept"))]
    runs: Option<u32>,
    #[arg(long, help = help(&CACHE_TTL_SECONDS, "Reuse your results up to this many seconds old"))]
    cache_ttl: Option<u32>,
    #[arg(long, help = format!(
        "{} to {}: the most URLs of one site analysed at once while this job runs, if fewer than the service's",
        HOST_CONCURRENCY.min, HOST_CONCURRENCY.max
    ))]
    host_concurrency: Option<u32>,
    /// A PageSpeed Insights category besides performance (repeatable).
    #[arg(long = "category")]
    categories: Vec<String>,
}

/// A setting's help: what it is, its range and the API's default. The range is the API's to
/// enforce, so every invalid field of a submission is reported at once.
fn help(bounds: &Bounds, what: &str) -> String {
    format!("{what} ({})", bounds.describe())
}

/// The `--field-overall-category` help: the verdicts, and `unavailable` for URLs that got none.
fn field_verdict_help() -> String {
    let mut names: Vec<String> = FieldCategory::ALL.iter().map(ToString::to_string).collect();
    names.push("unavailable (no verdict)".into());
    format!("Only URLs with this Core Web Vitals verdict from field data: {}", one_of(&names))
}

/// A choice's help: its values as the API names them.
fn one_of<T: std::fmt::Display>(all: &[T]) -> String {
    let names: Vec<String> = all.iter().map(T::to_string).collect();
    match names.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version are not errors; usage errors exit 1 like every other error
        // (clap's own 2 means "URLs failed" here).
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() { ExitCode::from(1) } else { ExitCode::SUCCESS };
        }
    };
    match run(cli).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(1)
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode, CliError> {
    let cwd = std::env::current_dir().map_err(|e| CliError::Usage(format!("working directory: {e}")))?;
    match cli.command {
        // SQS, not the API: it needs no API URL or key.
        Command::Redrive { queues, max } => redrive::run(queues, max, cli.json, &cwd).await,
        command => {
            let api = Api::new(config::resolve(cli.api_url, cli.api_key, &cwd)?)?;
            api_command(&api, command, &Output { json: cli.json, ws_url: cli.ws_url }).await
        }
    }
}

/// How a command reports, and where `--watch` follows jobs.
struct Output {
    json: bool,
    ws_url: Option<String>,
}

async fn api_command(api: &Api, command: Command, output: &Output) -> Result<ExitCode, CliError> {
    let json = output.json;
    match command {
        Command::Submit(submit) => {
            let watch = submit.watch;
            let created = api.post("start", &submit_body(submit)?).await?;
            let id = created["batch_job_id"].as_str().unwrap_or_default().to_owned();
            if json {
                print_json(&created);
            } else {
                report_created(&created);
            }
            if watch { follow(api, &id, output).await } else { Ok(ExitCode::SUCCESS) }
        }
        Command::Status { id, watch: true } => follow(api, &id, output).await,
        Command::Status { id, watch: false } => {
            let job = api.get(&format!("progress/{id}")).await?;
            if json {
                print_json(&job);
            } else {
                print!("{}", describe(&job));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Jobs { status, limit } => {
            let limit = limit.to_string();
            let mut query = vec![("limit", limit.as_str())];
            query.extend(status.as_deref().map(|s| ("status", s)));
            let page = api.get_with("jobs", &query).await?;
            if json {
                print_json(&page);
            } else {
                print!("{}", jobs_table(&page));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Results { id, csv, status, field_overall_category } => {
            let filters = result_filters(status.as_deref(), field_overall_category.as_deref());
            if csv {
                print!("{}", api.csv(&id, &filters).await?);
                return Ok(ExitCode::SUCCESS);
            }
            let (rows, summary) = api.all_results(&id, &filters).await?;
            if json {
                print_json(&json!({"batch_job_id": id, "results": rows, "summary": summary}));
            } else {
                print!("{}", results_table(&rows));
                print!("{}", render::field_verdicts(&summary));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Cancel { id } => {
            let job = api.post(&format!("cancel/{id}"), &json!({})).await?;
            if json {
                print_json(&job);
            } else {
                println!("{id}: {}", job["status"].as_str().unwrap_or("?").replace('_', " "));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Usage => {
            let usage = api.get("usage").await?;
            if json {
                print_json(&usage);
            } else {
                print!("{}", render::usage(&usage));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::History { url, metric, from, to } => {
            let mut query = vec![("url", url.as_str()), ("metric", metric.as_str())];
            query.extend(from.as_deref().map(|f| ("from", f)));
            query.extend(to.as_deref().map(|t| ("to", t)));
            let (points, first) = api.all_pages("history", &query, "points", 1_000).await?;
            if json {
                print_json(&json!({"url": first["url"], "metric": first["metric"], "points": points}));
            } else {
                print!("{}", render::history(first["url"].as_str().unwrap_or(&url), &metric, &points));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Compare { base, head, all } => {
            let query = [("base", base.as_str()), ("head", head.as_str())];
            let (urls, first) = api.all_pages("compare", &query, "urls", 1_000).await?;
            if json {
                print_json(&json!({"base": base, "head": head, "counts": first["counts"], "urls": urls}));
            } else {
                print!("{}", render::comparison(&first["counts"], &urls, all));
            }
            let regressed = first["counts"]["regressed"].as_u64().unwrap_or(0);
            Ok(if regressed > 0 { ExitCode::from(2) } else { ExitCode::SUCCESS })
        }
        Command::Monitor(command) => monitor_command(api, command, json).await,
        Command::Redrive { .. } => Err(CliError::Usage("redrive does not go through the API".into())),
    }
}

async fn monitor_command(api: &Api, command: MonitorCommand, json: bool) -> Result<ExitCode, CliError> {
    let answer = match command {
        MonitorCommand::Create(create) => {
            let created = api.post("monitors", &monitor_body(*create)?).await?;
            if !json {
                for rejected in created["rejected"].as_array().into_iter().flatten() {
                    eprintln!(
                        "rejected {}: {}",
                        rejected["input"].as_str().unwrap_or("?"),
                        rejected["reason"].as_str().unwrap_or("?")
                    );
                }
            }
            created
        }
        MonitorCommand::List => {
            let (monitors, _) = api.all_pages("monitors", &[], "monitors", 100).await?;
            if !json {
                print!("{}", render::monitors(&monitors));
                return Ok(ExitCode::SUCCESS);
            }
            json!({"monitors": monitors})
        }
        MonitorCommand::Show { id } => api.get(&format!("monitors/{id}")).await?,
        MonitorCommand::Run { id } => {
            let run = api.post(&format!("monitors/{id}/run"), &json!({})).await?;
            if !json {
                println!("{id}: run started as job {}", run["batch_job_id"].as_str().unwrap_or("?"));
                return Ok(ExitCode::SUCCESS);
            }
            run
        }
        MonitorCommand::Budgets { id, state } => {
            let (standings, _) =
                api.all_pages(&format!("monitors/{id}/budgets"), &[("state", &state)], "standings", 1_000).await?;
            let breached = standings.iter().any(|s| s["state"] == "breached");
            if json {
                print_json(&json!({"monitor_id": id, "state": state, "standings": standings}));
            } else {
                print!("{}", render::standings(&standings));
            }
            // For a pipeline's gate, as compare: anything over a budget is a failure.
            return Ok(if breached { ExitCode::from(2) } else { ExitCode::SUCCESS });
        }
        MonitorCommand::Delete { id } => {
            api.delete(&format!("monitors/{id}")).await?;
            if !json {
                println!("{id}: deleted");
                return Ok(ExitCode::SUCCESS);
            }
            json!({"monitor_id": id, "deleted": true})
        }
    };
    if json {
        print_json(&answer);
    } else {
        print!("{}", render::monitor(&answer));
    }
    Ok(ExitCode::SUCCESS)
}

/// The `POST /start` body: only what was given, so the API's defaults apply to the rest.
fn submit_body(submit: Submit) -> Result<Value, CliError> {
    let mut body = source(submit.file, submit.sitemap)?;
    job_fields(submit.job, &mut body);
    Ok(Value::Object(body))
}

/// The `POST /monitors` body.
fn monitor_body(create: MonitorCreate) -> Result<Value, CliError> {
    let mut body = source(create.file, create.sitemap)?;
    job_fields(create.job, &mut body);
    body.insert("schedule".into(), json!(create.schedule));
    let budgets = create.budgets.iter().map(|b| budget(b)).collect::<Result<Vec<_>, _>>()?;
    if !budgets.is_empty() {
        body.insert("budgets".into(), json!(budgets));
    }
    if create.disabled {
        body.insert("enabled".into(), json!(false));
    }
    Ok(Value::Object(body))
}

/// `lcp_ms<=2500` or `score>=90@tier:gold` as a budget; the API judges the metric and label.
fn budget(text: &str) -> Result<Value, CliError> {
    let (limit, labels) = match text.split_once('@') {
        Some((limit, labels)) => (limit, Some(labels)),
        None => (text, None),
    };
    let (metric, bound, value) = if let Some((metric, value)) = limit.split_once("<=") {
        (metric, "max", value)
    } else if let Some((metric, value)) = limit.split_once(">=") {
        (metric, "min", value)
    } else {
        return Err(CliError::Usage(format!("--budget {text:?}: write METRIC<=N or METRIC>=N, e.g. lcp_ms<=2500")));
    };
    let value: f64 =
        value.trim().parse().map_err(|_| CliError::Usage(format!("--budget {text:?}: {value:?} is not a number")))?;
    let mut budget = json!({"metric": metric.trim(), bound: value});
    if let Some(labels) = labels {
        budget["labels"] = json!(labels);
    }
    Ok(budget)
}

/// A file's URLs (read as submit reads them) or a sitemap.
fn source(file: Option<String>, sitemap: Option<String>) -> Result<Map<String, Value>, CliError> {
    let mut body = Map::new();
    match (file, sitemap) {
        (Some(file), _) => {
            body.insert("urls".into(), json!(input::read_urls(&file)?));
        }
        (None, Some(sitemap)) => {
            body.insert("sitemap_url".into(), json!(sitemap));
        }
        (None, None) => return Err(CliError::Usage("give a file of URLs or --sitemap URL".into())),
    }
    Ok(body)
}

/// The job settings given: only those, so the API's defaults apply to the rest.
fn job_fields(job: JobArgs, body: &mut Map<String, Value>) {
    let given = [
        ("name", job.name.map(Value::from)),
        ("priority", job.priority.map(Value::from)),
        ("strategy", job.strategy.map(Value::from)),
        ("engine", job.engine.map(Value::from)),
        ("batch_size", job.batch_size.map(Value::from)),
        ("timeout_seconds", job.timeout.map(Value::from)),
        ("max_retries", job.max_retries.map(Value::from)),
        ("runs", job.runs.map(Value::from)),
        ("cache_ttl_seconds", job.cache_ttl.map(Value::from)),
        ("host_concurrency", job.host_concurrency.map(Value::from)),
        ("field_data", job.field_data.then_some(Value::Bool(true))),
        ("field_history", job.field_history.then_some(Value::Bool(true))),
    ];
    for (field, value) in given {
        if let Some(value) = value {
            body.insert(field.into(), value);
        }
    }
    if !job.categories.is_empty() {
        body.insert("categories".into(), json!(job.categories));
    }
}

/// `GET /results`' filters given, as its query parameters.
fn result_filters<'a>(
    status: Option<&'a str>,
    field_overall_category: Option<&'a str>,
) -> Vec<(&'static str, &'a str)> {
    let mut filters = Vec::new();
    filters.extend(status.map(|s| ("status", s)));
    filters.extend(field_overall_category.map(|c| ("field_overall_category", c)));
    filters
}

fn report_created(created: &Value) {
    println!(
        "{}: {} URLs accepted, {} rejected, {} duplicates removed",
        created["batch_job_id"].as_str().unwrap_or("?"),
        created["accepted"],
        created["rejected"].as_array().map_or(0, Vec::len),
        created["duplicates_removed"],
    );
    for rejected in created["rejected"].as_array().into_iter().flatten() {
        eprintln!(
            "rejected {}: {}",
            rejected["input"].as_str().unwrap_or("?"),
            rejected["reason"].as_str().unwrap_or("?")
        );
    }
}

fn finished(job: &Value) -> bool {
    !matches!(job["status"].as_str(), Some("pending" | "processing" | "cancelling"))
}

/// One line of progress on stderr, redrawn in place on a terminal, printed when it changes.
struct ProgressLine {
    terminal: bool,
    shown: String,
}

impl ProgressLine {
    fn draw(&mut self, job: &Value) {
        let line = render::progress_line(job);
        if line == self.shown {
            return;
        }
        if self.terminal {
            eprint!("\r\x1b[2K{line}");
        } else {
            eprintln!("{line}");
        }
        let _ = std::io::stderr().flush();
        self.shown = line;
    }
}

/// Follows the job until it finishes, drawing progress on stderr, then summarises it; 2 when
/// URLs failed or were cancelled. The job's changes are pushed over the WebSocket API when
/// the deployment has one; otherwise, or when the socket fails, the job is polled once a
/// second with its ETag (an unchanged job costs the API no body).
async fn follow(api: &Api, id: &str, output: &Output) -> Result<ExitCode, CliError> {
    let terminal = std::io::stderr().is_terminal();
    let mut line = ProgressLine { terminal, shown: String::new() };
    let ws_url = match output.ws_url.as_deref() {
        Some("off") => None,
        Some(url) => Some(url.to_owned()),
        None => api.live_url().await,
    };
    let pushed = match ws_url {
        None => None,
        Some(ws_url) => match live::follow(&ws_url, api.key(), id, |pushed| line.draw(pushed)).await {
            live::Ended::Finished(last) => Some(last),
            live::Ended::Lost(reason) => {
                if terminal {
                    eprintln!();
                }
                eprintln!("live progress unavailable ({reason}); polling instead");
                None
            }
        },
    };
    let job = match pushed {
        Some(job) => job,
        None => poll_until_finished(api, id, &mut line).await?,
    };
    if terminal {
        eprintln!();
    }
    let summary = complete_summary(api, id).await?;
    if output.json {
        print_json(&json!({"job": job, "summary": summary}));
    } else {
        print!("{}", render::final_summary(&job, &summary));
    }
    let incomplete = render::count(&job, "failed") + render::count(&job, "cancelled") > 0;
    Ok(if incomplete { ExitCode::from(2) } else { ExitCode::SUCCESS })
}

/// Polls the job once a second with its ETag (an unchanged job costs the API no body) until
/// it finishes; its last state.
async fn poll_until_finished(api: &Api, id: &str, line: &mut ProgressLine) -> Result<Value, CliError> {
    let mut etag: Option<String> = None;
    loop {
        if let Progress::Changed { job, etag: tag } = api.progress(id, etag.as_deref()).await? {
            line.draw(&job);
            if finished(&job) {
                return Ok(job);
            }
            etag = tag;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The finished job's summary once its report is written (the exporter writes it within
/// seconds of the job's end); the counts alone if it takes longer than `REPORT_WAIT`.
async fn complete_summary(api: &Api, id: &str) -> Result<Value, CliError> {
    const REPORT_WAIT: Duration = Duration::from_secs(30);
    let started = std::time::Instant::now();
    loop {
        let summary = api.get(&format!("results/{id}?limit=1")).await?["summary"].take();
        if summary["complete"] == true || started.elapsed() > REPORT_WAIT {
            return Ok(summary);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn describe(job: &Value) -> String {
    format!(
        "{} {}\n{}\nengine {}, strategy {}, priority {}, batch size {}, created {}\n",
        job["batch_job_id"].as_str().unwrap_or("?"),
        job["name"].as_str().unwrap_or_default(),
        render::progress_line(job),
        job["engine"].as_str().unwrap_or("?"),
        job["strategy"].as_str().unwrap_or("?"),
        job["priority"].as_str().unwrap_or("?"),
        job["batch_size"],
        job["created_at"].as_str().unwrap_or("?"),
    )
}

fn jobs_table(page: &Value) -> String {
    let rows: Vec<Vec<String>> = page["jobs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|job| {
            let done = render::count(job, "succeeded") + render::count(job, "failed") + render::count(job, "cancelled");
            vec![
                job["batch_job_id"].as_str().unwrap_or("?").to_owned(),
                job["status"].as_str().unwrap_or("?").to_owned(),
                format!("{done}/{}", render::count(job, "total_urls")),
                job["created_at"].as_str().unwrap_or("?").to_owned(),
                job["name"].as_str().unwrap_or_default().to_owned(),
            ]
        })
        .collect();
    let mut out = render::table(&["id", "status", "done", "created", "name"], &rows);
    if page["next_cursor"].is_string() {
        out.push_str("(more jobs: raise --limit)\n");
    }
    out
}

/// Results as a table: the performance `score` where an engine gave one, the http engine's
/// `delivery` score (with its band) where it gave that, the field data's verdict and LCP where
/// the job asked for field data, each column only when some row has it.
fn results_table(rows: &[Value]) -> String {
    let scored = rows.iter().any(|row| row["score"].is_number());
    let delivered = rows.iter().any(|row| row["metrics"]["delivery_score"].is_number());
    let fielded = rows.iter().any(|row| row["metrics"]["field_status"].is_string());
    let mut headers = vec!["status"];
    headers.extend(scored.then_some("score"));
    headers.extend(delivered.then_some("delivery"));
    headers.extend(fielded.then_some("field"));
    headers.extend(["ttfb_ms", "url", "error"]);
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let mut cells = vec![row["status"].as_str().unwrap_or("?").to_owned()];
            if scored {
                cells.push(render::number(&row["score"]));
            }
            if delivered {
                cells.push(render::delivery(&row["metrics"]));
            }
            if fielded {
                cells.push(render::field(&row["metrics"]));
            }
            // The lab result stands when field data could not be had: say why in the row's
            // otherwise empty error column, not in place of the row's own error.
            let own_error = row["error"].as_str().filter(|e| !e.is_empty());
            let error = match (own_error, row["metrics"]["field_error"].as_str()) {
                (Some(error), _) => error.to_owned(),
                (None, Some(field_error)) => format!("field data: {field_error}"),
                (None, None) => String::new(),
            };
            cells.extend([
                render::number(&row["metrics"]["ttfb_ms"]),
                row["url"].as_str().unwrap_or("?").to_owned(),
                error,
            ]);
            cells
        })
        .collect();
    render::table(&headers, &cells)
}

fn print_json(value: &Value) {
    println!("{}", serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string()));
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Command {
        Cli::try_parse_from([&["speedbatch"], args].concat()).unwrap_or_else(|e| panic!("{args:?}: {e}")).command
    }

    fn submitted(args: &[&str]) -> Value {
        let Command::Submit(submit) =
            parse(&[&["submit", "--sitemap", "https://a.example/sitemap.xml"], args].concat())
        else {
            unreachable!()
        };
        submit_body(submit).unwrap()
    }

    #[test]
    fn field_flags_are_sent_only_when_given() {
        assert_eq!(submitted(&[]), json!({"sitemap_url": "https://a.example/sitemap.xml"}));
        assert_eq!(
            submitted(&["--field-data"]),
            json!({"sitemap_url": "https://a.example/sitemap.xml", "field_data": true})
        );
        assert_eq!(
            submitted(&["--engine", "none", "--field-history"]),
            json!({"sitemap_url": "https://a.example/sitemap.xml", "engine": "none", "field_history": true})
        );
        let Command::Monitor(MonitorCommand::Create(create)) = parse(&[
            "monitor",
            "create",
            "--sitemap",
            "https://a.example/s.xml",
            "--schedule",
            "rate(1 day)",
            "--field-data",
        ]) else {
            unreachable!()
        };
        assert_eq!(
            monitor_body(*create).unwrap(),
            json!({"sitemap_url": "https://a.example/s.xml", "schedule": "rate(1 day)", "field_data": true})
        );
    }

    #[test]
    fn the_engine_help_names_none_and_what_it_does() {
        let mut cli = Cli::command();
        let submit = cli.find_subcommand_mut("submit").unwrap();
        let engine = submit.get_arguments().find(|a| a.get_id() == "engine").unwrap();
        assert_eq!(
            engine.get_help().unwrap().to_string(),
            "auto, psi, http, browser or none; none: field data only (Chrome UX Report), no page load"
        );
    }

    #[test]
    fn results_filters_go_to_the_api_as_given() {
        let Command::Results { status, field_overall_category, .. } =
            parse(&["results", "j1", "--status", "succeeded", "--field-overall-category", "needs_improvement"])
        else {
            unreachable!()
        };
        assert_eq!(
            result_filters(status.as_deref(), field_overall_category.as_deref()),
            [("status", "succeeded"), ("field_overall_category", "needs_improvement")]
        );
        assert!(result_filters(None, None).is_empty());
    }

    #[test]
    fn the_results_table_has_a_field_column_only_when_a_row_has_field_data() {
        let rows = [
            json!({"status": "succeeded", "score": 41, "url": "https://a.example/",
                   "metrics": {"ttfb_ms": 310, "field_status": "available", "field_source": "url",
                               "field_lcp_ms": 4_200, "field_overall_category": "poor"}}),
            json!({"status": "succeeded", "score": 90, "url": "https://b.example/",
                   "metrics": {"ttfb_ms": 95, "field_status": "error", "field_error": "HTTP 503 from the Chrome UX Report"}}),
            json!({"status": "failed", "score": null, "url": "https://c.example/", "error": "HTTP 404", "metrics": {}}),
        ];
        assert_eq!(
            results_table(&rows),
            "status     score  field       ttfb_ms  url                 error\n\
             succeeded  41     poor 4.2 s  310      https://a.example/\n\
             succeeded  90     error       95       https://b.example/  field data: HTTP 503 from the Chrome UX Report\n\
             failed            -                    https://c.example/  HTTP 404\n"
        );
        let none = [json!({"status": "succeeded", "engine": "none", "score": null, "url": "https://a.example/",
                           "metrics": {"field_status": "unavailable"}})];
        assert_eq!(
            results_table(&none),
            "status     field        ttfb_ms  url                 error\n\
             succeeded  unavailable           https://a.example/\n"
        );
        let lab =
            [json!({"status": "succeeded", "score": 88, "url": "https://a.example/", "metrics": {"ttfb_ms": 80}})];
        assert!(!results_table(&lab).contains("field"), "{}", results_table(&lab));
    }

    #[test]
    fn a_budget_is_a_metric_a_bound_and_maybe_a_label() {
        assert_eq!(budget("lcp_ms<=2500").unwrap(), json!({"metric": "lcp_ms", "max": 2500.0}));
        assert_eq!(
            budget("score>=90@tier:gold").unwrap(),
            json!({"metric": "score", "min": 90.0, "labels": "tier:gold"})
        );
        for bad in ["lcp_ms<2500", "score>=fast"] {
            let err = budget(bad).unwrap_err().to_string();
            assert!(err.contains("--budget"), "{bad}: {err}");
        }
    }
}

//! What scheduling costs: `monitors` monitors of `urls` URLs each, all due at one tick, run by
//! one sweep of the deployed scheduler (invoked with that tick's time, as EventBridge would);
//! every AWS request the scheduler made for the sweep and the runs, per run, against what
//! `POST /start` makes for the same job. Each job is cancelled as soon as it exists: what its
//! URLs cost is the end-to-end figure's, per URL.

use std::time::{Duration, Instant};

use crate::report::{Figure, Section, Table, num, spread};
use crate::stack::{Tally, client};
use crate::stats::median;
use domain::time::{now_millis, parse_rfc3339, rfc3339};
use serde_json::json;

/// Hourly runs in a 30-day month.
const RUNS_PER_MONTH: f64 = 24.0 * 30.0;
/// Scheduler sweeps in a 30-day month (its rule fires every minute, whether anything is due).
const SWEEPS_PER_MONTH: f64 = 60.0 * 24.0 * 30.0;
/// us-east-1 list prices (2026): DynamoDB on demand per million write and read request units,
/// SQS standard per million requests, Lambda per million requests and per GB-second (arm64).
const WRITE_UNIT: f64 = 0.625 / 1e6;
const READ_UNIT: f64 = 0.125 / 1e6;
const SQS_REQUEST: f64 = 0.40 / 1e6;
const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
const LAMBDA_GB_SECOND: f64 = 0.000_013_333_4;

pub async fn run(runs: usize, monitors: usize, urls: usize) -> Result<Section, String> {
    let client = client()?;
    let scheduler = client.stack.value("SCHEDULER_FUNCTION")?.to_owned();
    let endpoint = client.stack.endpoint().to_owned();
    let mut table = Table::new(&[
        "run",
        "monitors",
        "scheduler invocations",
        "requests per run",
        "by operation",
        "write units per run",
        "POST /start of the same job: requests, write units",
    ]);
    let mut per_run = Vec::new();
    let mut extra_requests = Vec::new();
    let mut extra_units = Vec::new();
    for run in 1..=runs {
        // The same job by hand, for what a run costs beyond any job of its size.
        let since = now_millis();
        let list: Vec<String> = (0..urls).map(|n| format!("https://example.com/bench/start{run}/{n}")).collect();
        let started =
            client.call(reqwest::Method::POST, "/start", Some(json!({"urls": list, "engine": "http"}))).await?;
        let job = started["batch_job_id"].as_str().ok_or("POST /start gave no job")?.to_owned();
        client.call(reqwest::Method::POST, &format!("/cancel/{job}"), None).await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let lines = client.metric_lines("api", since).await?;
        // The submission's line: the API's invocation that wrote the job (the most write units;
        // the previous run's monitor deletions also write, less).
        let by_hand = lines
            .iter()
            .map(|line| {
                let mut tally = Tally::default();
                tally.add(line);
                tally
            })
            .max_by(|a, b| a.write_units.total_cmp(&b.write_units))
            .ok_or("the submission logged no request counts")?;

        let since = now_millis();
        let mut ids = Vec::new();
        let mut tick = 0;
        for m in 0..monitors {
            // Documentation addresses: accepted like any, never fetched (each run is cancelled).
            let list: Vec<String> = (0..urls).map(|n| format!("https://example.com/bench/m{m}/{n}")).collect();
            let body = json!({"name": format!("bench monitor {run}.{m}"), "urls": list, "schedule": "rate(1 hour)",
                              "engine": "http", "budgets": [{"metric": "ttfb_ms", "max": 800}]});
            let created = client.call(reqwest::Method::POST, "/monitors", Some(body)).await?;
            let next =
                created["next_run_at"].as_str().and_then(parse_rfc3339).ok_or("a monitor without next_run_at")?;
            tick = tick.max(next);
            ids.push(created["monitor_id"].as_str().ok_or("no monitor_id")?.to_owned());
        }
        // One sweep at the last monitor's tick finds them all due.
        let event = json!({"version": "0", "id": format!("bench-{run}-{since}"), "detail-type": "Scheduled Event",
                           "source": "aws.events", "account": "000000000000", "time": rfc3339(tick + 1_000),
                           "region": "us-east-1", "resources": [], "detail": {}});
        let url = format!("{endpoint}/2015-03-31/functions/{scheduler}/invocations");
        let swept = reqwest::Client::new().post(url).json(&event).send().await.map_err(|e| format!("sweep: {e}"))?;
        if !swept.status().is_success() {
            return Err(format!("the sweep answered {}", swept.status()));
        }
        let started = Instant::now();
        let mut jobs: Vec<String> = Vec::new();
        for id in &ids {
            let job = loop {
                let monitor = client.call(reqwest::Method::GET, &format!("/monitors/{id}"), None).await?;
                if let Some(job) = monitor["last_job_id"].as_str() {
                    break job.to_owned();
                }
                if started.elapsed() > Duration::from_secs(300) {
                    return Err(format!("monitor {id} never ran: {monitor}"));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            };
            client.call(reqwest::Method::POST, &format!("/cancel/{job}"), None).await?;
            jobs.push(job);
        }
        // The last run's invocation logs its counts as it returns.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let mut tally = Tally::default();
        for line in client.metric_lines("scheduler", since).await? {
            tally.add(&line);
        }
        for id in &ids {
            client.call(reqwest::Method::DELETE, &format!("/monitors/{id}"), None).await.ok();
        }
        let n = monitors as f64;
        println!(
            "{}",
            json!({"bench": "monitors", "run": run, "monitors": monitors, "urls": urls, "requests": tally.requests,
                   "requests_per_run": tally.total() / n, "write_units_per_run": tally.write_units / n,
                   "invocations": tally.invocations})
        );
        per_run.push(tally.total() / n);
        extra_requests.push(tally.total() / n - by_hand.total());
        extra_units.push(tally.write_units / n - by_hand.write_units);
        let operations: Vec<String> =
            tally.requests.iter().map(|(op, count)| format!("{op} {}", num(*count / n, 2))).collect();
        table.row(vec![
            run.to_string(),
            monitors.to_string(),
            num(tally.invocations, 0),
            num(tally.total() / n, 1),
            operations.join(", "),
            num(tally.write_units / n, 1),
            format!("{}, {}", num(by_hand.total(), 0), num(by_hand.write_units, 0)),
        ]);
    }
    let (requests, units) = (median(&extra_requests), median(&extra_units));
    // A month of 1 000 hourly monitors beyond what their jobs cost as jobs: each run's extra
    // requests and write units (measured above), one idle sweep a minute (one Query), the run
    // queue's messages (send, receive, delete) and the scheduler's Lambda time (about 50 ms at
    // 256 MB per invocation, 10 runs a batch).
    let runs_month = 1_000.0 * RUNS_PER_MONTH;
    let dynamo =
        runs_month * (units.max(0.0) * WRITE_UNIT + requests.max(0.0) * READ_UNIT) + SWEEPS_PER_MONTH * READ_UNIT;
    let sqs = runs_month * 3.0 * SQS_REQUEST;
    let invocations = SWEEPS_PER_MONTH + runs_month / 10.0;
    let lambda = invocations * (LAMBDA_REQUEST + 0.05 * 0.25 * LAMBDA_GB_SECOND);
    let scheduling = dynamo + sqs + lambda;
    let markdown = format!(
        "## Monitors: what scheduling costs (`speedbatch-bench monitors`)\n\n\
         {monitors} monitors of {urls} URLs each (`rate(1 hour)`, one budget), all due at one tick, run by one \
         invocation of the deployed scheduler with that tick's time; every AWS request the scheduler made for \
         the sweep and the runs (the monitor, its URLs, the tick's claim, the job, its first window), per run, \
         from its EMF lines, beside what `POST /start` makes for the same job (the API's line). Each job is \
         cancelled as soon as it exists: what a run's URLs cost is the end-to-end figure per URL.\n\n{table}\n\
         A run costs **{requests:.1} requests and {units:.1} write units more** than the same job submitted by hand \
         (reading the monitor, its URLs and the previous run; claiming the tick beside its run listing). \
         **1 000 hourly monitors of 100 URLs**, a 30-day month at us-east-1 list prices: the scheduling beyond \
         the jobs about **${scheduling:.2}** (those extras for 720 000 runs, 43 200 idle sweeps, the run queue, \
         the scheduler's Lambda time). The runs themselves are 72 million URL analyses, priced per URL by the \
         end-to-end figure: at about 17.6 write units per URL that is some $790 of DynamoDB writes a month, \
         which dwarfs scheduling (issue 22 is about that figure).\n",
        table = table.render(),
    );
    Ok(Section {
        markdown,
        figures: vec![
            Figure::new("monitors: AWS requests per scheduled run (scheduler)", spread(&per_run, 1), "", None),
            Figure::new("monitors: extra requests per run beyond POST /start", spread(&extra_requests, 1), "", None),
            Figure::new("1 000 hourly monitors: scheduling per month", format!("${scheduling:.2}"), "", None),
        ],
    })
}

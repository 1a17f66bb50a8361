//! The deployed local stack (`make up`) driven like a client: a 1 000-URL job end to end, and
//! single submissions of 1 000 and 10 000 URLs. The AWS requests are the functions' own
//! counts: every invocation writes them in its EMF line (`aws::RequestCounter`), and
//! this reads those lines back from the emulator's CloudWatch Logs.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use domain::time::now_millis;
use serde_json::{Value, json};
use testkit::api::ApiClient;
use testkit::logs::{Logs, group_of};
use testkit::processes::function_processes;
use testkit::site::Site;
use testkit::stack::DeployedStack;

use crate::cost::Usage;
use crate::report::{Figure, Section, Table, num, spread};
use crate::stats::median;
use crate::stored::Stored;

/// The functions a job runs through, in the order `JobRun::invocations` lists them.
const FUNCTIONS: [&str; 4] = ["api", "analyzer", "tracker", "exporter"];

pub(crate) struct Client {
    api: ApiClient,
    logs: Logs,
    stack_name: String,
    pub stack: DeployedStack,
}

impl Client {
    pub(crate) async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, String> {
        self.api.ok(method, path, body.as_ref()).await
    }

    async fn submit(&self, body: Value) -> Result<String, String> {
        self.api.submit(&body).await
    }

    /// Polls every 100 ms until the job's status is one of `done`.
    async fn until(&self, id: &str, done: &[&str], limit: Duration) -> Result<Value, String> {
        let done = |progress: &Value| done.iter().any(|status| progress["status"] == *status);
        self.api.until(id, done, Duration::from_millis(100), limit).await
    }

    /// The EMF lines of `function`'s invocations logged from `since` (ms) on: each
    /// invocation's request counts, and the analyzer's outcomes (its waits among them).
    pub(crate) async fn metric_lines(&self, function: &str, since: i64) -> Result<Vec<Value>, String> {
        Ok(self.function_log(function, since).await?.metric_lines)
    }

    /// Everything `function` logged from `since` (ms) on.
    pub(crate) async fn function_log(&self, function: &str, since: i64) -> Result<FunctionLog, String> {
        let messages = self.logs.messages(|group| group_of(group, &self.stack_name, function), since).await?;
        Ok(FunctionLog::of(messages))
    }

    /// The bytes of job `id`'s export files, once the exporter has logged writing them.
    async fn export_of(&self, id: &str, since: i64) -> Result<f64, String> {
        let started = Instant::now();
        while started.elapsed() < EXPORT_WAIT {
            let log = self.function_log("exporter", since).await?;
            let written = log.messages.iter().filter(|m| m.contains(id)).find_map(|m| exported_bytes(m));
            if let Some(bytes) = written {
                return Ok(bytes);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Err(format!("job {id}: the exporter logged no export within {EXPORT_WAIT:?}"))
    }

    /// What job `id` keeps in the table (read back after it finished).
    async fn stored(&self, id: &str) -> Result<Stored, String> {
        let table = self.stack.values.get("TABLE_NAME").ok_or("the stack's TABLE_NAME is not in .local/stack.env")?;
        let sdk = aws::sdk::sdk_config(Some(self.stack.endpoint())).await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
        let mut stored = Stored::default();
        let mut start = None;
        loop {
            let page = dynamodb
                .query()
                .table_name(table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(":pk", aws_sdk_dynamodb::types::AttributeValue::S(format!("JOB#{id}")))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| format!("reading job {id}'s items: {e}"))?;
            page.items().iter().for_each(|item| stored.add(item));
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(stored),
            }
        }
    }
}

/// Requests by `Service.Operation`, invocations and write units summed over EMF lines.
#[derive(Default, Clone)]
pub(crate) struct Tally {
    pub(crate) requests: BTreeMap<String, f64>,
    pub(crate) invocations: f64,
    pub(crate) write_units: f64,
    pub(crate) read_units: f64,
    /// Write units by operation (the table's part) and by index (`Index.<name>`).
    pub(crate) write_units_by: BTreeMap<String, f64>,
    /// URLs sent back to wait (for a place at their host or their tenant's, or the quota).
    waits: f64,
}

impl Tally {
    pub(crate) fn add(&mut self, line: &Value) {
        self.invocations += line["Invocations"].as_f64().unwrap_or(0.0);
        self.write_units += line["DynamoDB.WriteUnits"].as_f64().unwrap_or(0.0);
        self.read_units += line["DynamoDB.ReadUnits"].as_f64().unwrap_or(0.0);
        for (name, value) in line.as_object().into_iter().flatten() {
            let value = value.as_f64().unwrap_or(0.0);
            if let Some(operation) = name.strip_prefix("Requests.") {
                *self.requests.entry(operation.to_owned()).or_default() += value;
            } else if let Some(part) = name.strip_prefix("DynamoDB.WriteUnits.") {
                *self.write_units_by.entry(part.to_owned()).or_default() += value;
            } else if name.starts_with("Waits.") {
                self.waits += value;
            }
        }
    }

    fn merge(&mut self, other: Tally) {
        self.invocations += other.invocations;
        self.write_units += other.write_units;
        self.read_units += other.read_units;
        self.waits += other.waits;
        for (operation, count) in other.requests {
            *self.requests.entry(operation).or_default() += count;
        }
        for (part, units) in other.write_units_by {
            *self.write_units_by.entry(part).or_default() += units;
        }
    }

    pub(crate) fn total(&self) -> f64 {
        self.requests.values().sum()
    }

    /// Requests of one `Service.Operation`.
    pub(crate) fn of(&self, operation: &str) -> f64 {
        self.requests.get(operation).copied().unwrap_or(0.0)
    }

    /// Requests to one service.
    pub(crate) fn service(&self, service: &str) -> f64 {
        self.requests.iter().filter(|(op, _)| op.starts_with(&format!("{service}."))).map(|(_, n)| n).sum()
    }
}

/// One function's log over a job: its invocations' metric lines, their billed time, and the
/// bytes CloudWatch Logs ingested.
#[derive(Default)]
pub(crate) struct FunctionLog {
    pub(crate) metric_lines: Vec<Value>,
    /// Each invocation's duration (ms) and memory (MB), from Lambda's REPORT line.
    pub(crate) reports: Vec<(f64, f64)>,
    pub(crate) bytes: f64,
    pub(crate) messages: Vec<String>,
}

/// CloudWatch Logs bills each event's message and 26 bytes more.
const LOG_EVENT_OVERHEAD: f64 = 26.0;

impl FunctionLog {
    pub(crate) fn of(messages: Vec<String>) -> FunctionLog {
        let mut log = FunctionLog::default();
        for message in &messages {
            log.bytes += message.len() as f64 + LOG_EVENT_OVERHEAD;
            if let Some(report) = report_of(message) {
                log.reports.push(report);
            } else if let Ok(line) = serde_json::from_str::<Value>(message)
                && line.get("_aws").is_some()
            {
                log.metric_lines.push(line);
            }
        }
        log.messages = messages;
        log
    }

    fn gb_seconds(&self) -> f64 {
        self.reports.iter().map(|(ms, mb)| ms / 1000.0 * mb / 1024.0).sum()
    }
}

/// The billed duration (ms) and memory size (MB) of a Lambda REPORT line.
fn report_of(message: &str) -> Option<(f64, f64)> {
    let rest = message.strip_prefix("REPORT RequestId:")?;
    let field = |name: &str| -> Option<f64> {
        let after = &rest[rest.find(name)? + name.len()..];
        after.split_whitespace().next()?.parse().ok()
    };
    Some((field("Billed Duration:").or_else(|| field("Duration:"))?, field("Memory Size:")?))
}

pub(crate) fn client() -> Result<Client, String> {
    let stack = DeployedStack::try_load()?;
    let stack_name = stack.values.get("STACK_NAME").map_or("speedbatch-local", String::as_str).to_owned();
    Ok(Client { api: ApiClient::new(&stack), logs: Logs::new(stack.endpoint()), stack_name, stack })
}

/// The submission's own invocation among the API's lines: the one that wrote URLs.
fn submission_line(lines: &[Value]) -> Option<&Value> {
    lines.iter().find(|line| line.get("Requests.DynamoDB.BatchWriteItem").is_some())
}

/// What one job cost: its time, the functions' requests, each function's invocations, and
/// everything priced in dollars ([`Usage`]).
pub(crate) struct JobRun {
    pub(crate) seconds: f64,
    pub(crate) tally: Tally,
    pub(crate) invocations: Vec<f64>,
    /// Lambda's SQS poller's requests for the job: one `ReceiveMessage` that returned a batch
    /// and one `DeleteMessageBatch` per invocation of an SQS-fed function (the analyzer's and
    /// the exporter's); functions do not see these.
    pub(crate) mapping_requests: f64,
    pub(crate) usage: Usage,
    /// Log bytes ingested, by function.
    pub(crate) log_bytes: BTreeMap<&'static str, f64>,
    /// Each function's memory (GB), as its REPORT lines give it.
    pub(crate) memory_gb: BTreeMap<&'static str, f64>,
    pub(crate) stored: Stored,
}

/// Submits `list` (http engine, `batch_size` 20) and waits for every URL to succeed: the time
/// from the POST to `completed` and every AWS request the functions made for the job.
async fn run_job(client: &Client, list: Vec<String>, name: String) -> Result<JobRun, String> {
    run_job_of(client, json!({"urls": list, "engine": "http", "batch_size": 20, "name": name})).await
}

/// How long the exporter may take to log a finished job's export.
const EXPORT_WAIT: Duration = Duration::from_secs(60);

/// Submits `body` and waits for every URL of it to succeed and its export to be written, as
/// `run_job` does; then reads back everything it used.
pub(crate) async fn run_job_of(client: &Client, body: Value) -> Result<JobRun, String> {
    let urls = body["urls"].as_array().map_or(0, Vec::len) as u64;
    let name = body["name"].as_str().unwrap_or("bench").to_owned();
    let since = now_millis();
    let started = Instant::now();
    let id = client.submit(body).await?;
    let finished = ["completed", "completed_with_errors", "failed", "cancelled"];
    let progress = client.until(&id, &finished, Duration::from_secs(900)).await?;
    let seconds = started.elapsed().as_secs_f64();
    if progress["succeeded"].as_u64() != Some(urls) {
        return Err(format!("{name}: not every URL succeeded: {progress}"));
    }
    let export = client.export_of(&id, since).await?;
    // The last tracker invocations (the status change to completed) log after it shows.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut tally = Tally::default();
    let mut invocations = Vec::new();
    let mut usage = Usage { urls: urls as f64, api_requests: 1.0, ..Usage::default() };
    let mut log_bytes = BTreeMap::new();
    let mut memory_gb = BTreeMap::new();
    for function in FUNCTIONS {
        let log = client.function_log(function, since).await?;
        if let Some((_, mb)) = log.reports.first() {
            memory_gb.insert(function, mb / 1024.0);
        }
        let mut own = Tally::default();
        if function == "api" {
            // Only the submission: progress polls are the client's choice, not the URLs' cost.
            // Its invocation wrote every URL: the longest of the API's, and its own lines.
            let line = submission_line(&log.metric_lines).ok_or("the submission logged no request counts")?;
            own.add(line);
            let (ms, mb) = log.reports.iter().copied().fold((0.0, 0.0), |a, b| if b.0 > a.0 { b } else { a });
            usage.gb_seconds += ms / 1000.0 * mb / 1024.0;
            // Its lines: the metric line, the "job created" line, and Lambda's START, END and
            // REPORT (the polls' invocations log the same three; they are not counted).
            let created = log.messages.iter().filter(|m| m.contains("job created") && m.contains(&id));
            let platform = log.messages.iter().filter(|m| m.starts_with("START") || m.starts_with("END")).take(2);
            let report = log.messages.iter().find(|m| m.starts_with("REPORT"));
            let bytes: f64 = std::iter::once(&line.to_string())
                .chain(created)
                .chain(platform)
                .chain(report)
                .map(|m| m.len() as f64 + LOG_EVENT_OVERHEAD)
                .sum();
            log_bytes.insert(function, bytes);
        } else {
            log.metric_lines.iter().for_each(|line| own.add(line));
            usage.gb_seconds += log.gb_seconds();
            log_bytes.insert(function, log.bytes);
        }
        invocations.push(own.invocations);
        tally.merge(own);
    }
    let mapping = 2.0 * (invocations[1] + invocations[3]);
    usage.invocations = tally.invocations;
    usage.write_units = tally.write_units;
    usage.read_units = tally.read_units;
    usage.sqs_requests = tally.service("SQS") + mapping;
    usage.events = tally.of("EventBridge.PutEvents");
    usage.log_bytes = log_bytes.values().sum();
    usage.log_retention_days = LOG_RETENTION_DAYS;
    usage.retention_days = RETENTION_DAYS;
    usage.s3_puts = tally.of("S3.PutObject") + tally.of("S3.CopyObject");
    usage.s3_gets = tally.of("S3.GetObject");
    usage.s3_bytes = export;
    let stored = client.stored(&id).await?;
    usage.stored_bytes = stored.total() as f64;
    Ok(JobRun { seconds, tally, invocations, mapping_requests: mapping, usage, log_bytes, memory_gb, stored })
}

/// The template's defaults: days a job's items and exports are kept, and its log.
const RETENTION_DAYS: f64 = 30.0;
const LOG_RETENTION_DAYS: f64 = 30.0;

/// The bytes in an exporter's `export` line (`Written { urls: .., bytes: N }`).
fn exported_bytes(message: &str) -> Option<f64> {
    let after = &message[message.find("bytes: ")? + "bytes: ".len()..];
    after.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

/// Sites enough that a job's window of 20 never finds a host full: the guards' cost with no
/// URL waiting.
const UNCONTENDED_HOSTS: usize = 50;
/// Neighbouring URLs on one host, as a crawl's are, and no more than the host's 4 places.
const PER_HOST: usize = 4;

/// Sites for jobs none of whose URLs waits for a place at its host.
pub(crate) async fn uncontended_sites() -> Vec<Site> {
    let mut sites = Vec::new();
    for _ in 0..UNCONTENDED_HOSTS {
        sites.push(Site::start().await);
    }
    sites
}

/// `urls` pages on `sites`, [`PER_HOST`] neighbours per site and the sites in turn; `tag`
/// keeps each job's pages apart.
pub(crate) fn uncontended_urls(sites: &[Site], urls: usize, tag: usize) -> Vec<String> {
    (0..urls).map(|n| site_of(sites, n).url(&format!("/page/{tag}{n:05}"))).collect()
}

/// The site of a job's URL `n`: [`PER_HOST`] neighbours per site, the sites in turn.
pub(crate) fn site_of(sites: &[Site], n: usize) -> &Site {
    &sites[(n / PER_HOST) % sites.len()]
}

/// A 1 000-URL job, http engine, `batch_size` 20, on local sites: time from the POST to
/// `completed`, and every AWS request the functions made for it; with the cost of a job none
/// of whose URLs waits.
pub async fn end_to_end(runs: usize, urls: usize) -> Result<(Section, Uncontended, Vec<JobRun>), String> {
    let client = client()?;
    let sites = uncontended_sites().await;
    let mut seconds = Vec::new();
    let mut per_url = Vec::new();
    let mut units_per_url = Vec::new();
    let mut invocations_per_url = Vec::new();
    let mut with_mapping_per_url = Vec::new();
    let mut mapping_per_url = Vec::new();
    let mut by_operation: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut table = Table::new(&[
        "run",
        "URLs",
        "submit → completed",
        "URLs/s",
        "functions' AWS requests",
        "per URL",
        "+ SQS mapping's receive/delete, per URL",
        "write units per URL",
        "invocations (api/analyzer/tracker/exporter)",
    ]);
    let mut jobs = Vec::new();
    for run in 1..=runs {
        let list = uncontended_urls(&sites, urls, run);
        let job = run_job(&client, list, format!("bench e2e {run}")).await?;
        let JobRun { seconds: elapsed, tally, invocations, mapping_requests: mapping, .. } = &job;
        let (elapsed, mapping) = (*elapsed, *mapping);
        let n = urls as f64;
        seconds.push(elapsed);
        per_url.push(tally.total() / n);
        mapping_per_url.push(mapping / n);
        with_mapping_per_url.push((tally.total() + mapping) / n);
        units_per_url.push(tally.write_units / n);
        invocations_per_url.push(tally.invocations / n);
        for (operation, count) in &tally.requests {
            by_operation.entry(operation.clone()).or_default().push(count / n);
        }
        println!(
            "{}",
            json!({"bench": "end-to-end", "run": run, "urls": urls, "seconds": elapsed, "requests": tally.requests,
                   "requests_per_url": tally.total() / n, "write_units_per_url": tally.write_units / n,
                   "invocations": invocations})
        );
        table.row(vec![
            run.to_string(),
            urls.to_string(),
            format!("{} s", num(elapsed, 1)),
            num(n / elapsed, 0),
            num(tally.total(), 0),
            num(tally.total() / n, 3),
            num((tally.total() + mapping) / n, 3),
            num(tally.write_units / n, 2),
            invocations.iter().map(|i| num(*i, 0)).collect::<Vec<_>>().join(" / "),
        ]);
        jobs.push(job);
    }
    let mut operations = Table::new(&["operation", "per URL"]);
    for (operation, values) in &by_operation {
        operations.row(vec![format!("`{operation}`"), spread(values, 3)]);
    }
    let markdown = format!(
        "## End to end: AWS requests per URL and time (`speedbatch-bench end-to-end`)\n\n\
         A {urls}-URL job on the deployed stack (`make up`: release build, ministack), http engine, `batch_size` \
         20, against {UNCONTENDED_HOSTS} local sites (`testkit::site`, a small page per URL; {PER_HOST} neighbouring \
         URLs per site, the sites in turn, so no window of 20 finds a host with its 4 places taken) on loopback. Time from sending the POST \
         to the first progress poll (every 100 ms) that reads `completed`. Requests are counted by the functions \
         themselves: each invocation's EMF line carries the count of every AWS request its clients sent (an SDK \
         interceptor; retries included) and the DynamoDB write units DynamoDB reported, read back here from \
         the emulator's CloudWatch Logs. Counted: the submission's own API invocation, every analyzer and \
         tracker invocation from the POST until the job showed `completed` plus 3 s, and the exporter's; not counted: the progress \
         polls (the client's choice).\n\n{table}\nBy operation (median and range over the runs):\n\n{operations}\n\
         The functions made {per_url} AWS requests per URL. Lambda's SQS event source mapping also receives \
         and deletes the messages: one `ReceiveMessage` and one `DeleteMessageBatch` per analyzer invocation, \
         {esm} per URL (inferred from the invocations; its empty polls of an idle queue are per queue, not per \
         URL). Billable requests per URL, both together: {billable} (target ≤ 1.0). Lambda invocations, all \
         functions: {invocations} per URL; DynamoDB Streams reads by Lambda are free. {units} DynamoDB write \
         units per URL (as DynamoDB reported them): transactions bill double, and a result item carries the \
         analysis.\n",
        table = table.render(),
        operations = operations.render(),
        per_url = spread(&per_url, 3),
        esm = spread(&mapping_per_url, 3),
        billable = spread(&with_mapping_per_url, 3),
        invocations = spread(&invocations_per_url, 3),
        units = spread(&units_per_url, 2),
    );
    let section = Section {
        markdown,
        figures: vec![
            Figure::new(
                "billable AWS requests per URL (functions' own + SQS mapping's), 1 000-URL job",
                spread(&with_mapping_per_url, 3),
                "≤ 1.0",
                Some(median(&with_mapping_per_url) <= 1.0),
            ),
            Figure::new("of which the functions' own (counted)", spread(&per_url, 3), "", None),
            Figure::new("DynamoDB write units per URL", spread(&units_per_url, 2), "", None),
            Figure::new(
                "1 000 URLs, http engine, batch_size 20: submit → completed",
                format!("{} s", spread(&seconds, 1)),
                "",
                None,
            ),
        ],
    };
    Ok((section, Uncontended { requests: median(&per_url), write_units: median(&units_per_url) }, jobs))
}

/// A job's cost per URL when none of its URLs waits (medians over the runs).
#[derive(Clone, Copy, Debug)]
pub struct Uncontended {
    pub requests: f64,
    pub write_units: f64,
}

/// The functions' requests and write units per URL before the places and waits existed
/// (commit 4620c0b, the same 1 000-URL job): what "extra" is measured from.
const BEFORE_GUARDS: Uncontended = Uncontended { requests: 0.524, write_units: 10.78 };

/// What fairness and politeness cost in AWS requests: a 1 000-URL job whose URLs are all on
/// one host (4 places), against `uncontended`, the same job's requests per URL when no URL
/// waits.
pub async fn guards(runs: usize, urls: usize, uncontended: Uncontended) -> Result<Section, String> {
    let client = client()?;
    let mut table = Table::new(&[
        "run",
        "URLs",
        "submit → completed",
        "at once at the host",
        "URLs sent back to wait",
        "functions' AWS requests per URL",
        "extra per waiting URL",
    ]);
    let (mut per_wait, mut waits_per_url, mut concurrent) = (Vec::new(), Vec::new(), Vec::new());
    for run in 1..=runs {
        let site = Site::start().await;
        let list: Vec<String> = (0..urls).map(|n| site.url(&format!("/held/{run}{n:05}"))).collect();
        let JobRun { seconds, tally, .. } = run_job(&client, list, format!("bench guards {run}")).await?;
        let n = urls as f64;
        let extra = (tally.total() - uncontended.requests * n).max(0.0) / tally.waits.max(1.0);
        per_wait.push(extra);
        waits_per_url.push(tally.waits / n);
        concurrent.push(site.max_concurrent() as f64);
        println!(
            "{}",
            json!({"bench": "guards", "run": run, "urls": urls, "seconds": seconds, "waits": tally.waits,
                   "requests_per_url": tally.total() / n, "extra_per_wait": extra,
                   "max_concurrent": site.max_concurrent(), "requests": tally.requests})
        );
        table.row(vec![
            run.to_string(),
            urls.to_string(),
            format!("{} s", num(seconds, 1)),
            site.max_concurrent().to_string(),
            num(tally.waits, 0),
            num(tally.total() / n, 3),
            num(extra, 2),
        ]);
    }
    let extra_uncontended = uncontended.requests - BEFORE_GUARDS.requests;
    let (units, units_before) = (uncontended.write_units, BEFORE_GUARDS.write_units);
    let markdown = format!(
        "## Fair to tenants, polite to sites: what the guards cost (`speedbatch-bench guards`)\n\n\
         Each URL being analysed holds a place at its host and one among its tenant's; the places are taken in \
         the claim's transaction and given back in the result's, so a URL that does not wait costs no request \
         of its own. With no URL waiting (the end-to-end job, {UNCONTENDED_HOSTS} hosts, {PER_HOST} neighbouring \
         URLs each) the functions made {requests:.3} requests per URL against {before:.3} before the guards (commit \
         4620c0b): {extra_uncontended:+.3} per URL (target ≤ 0.1). They are not free in write units: each place \
         is one more item in the claim's and the result's transactions, which DynamoDB bills double, so the job \
         took {units:.1} write units per URL against {units_before:.1} before (a batch of claims or results \
         touches each host's and each tenant shard's item once, so URLs of one host in a batch share it). A URL that finds its places taken waits as a delayed \
         copy of its message (one `SendMessage`), and each invocation that sent some back notes them for \
         `GET /queue/status` (one `UpdateItem` per reason and second). Below, the same {urls}-URL job with \
         every URL on one host (`/held/` pages, 40 ms each), so that at most 4 run at once and the rest take \
         turns: the extra requests are counted against the uncontended job, per URL sent back.\n\n{table}\n\
         A waiting URL costs {per_wait} requests each time it is sent back; the host never saw more than 4 \
         at once.\n",
        table = table.render(),
        per_wait = spread(&per_wait, 2),
        requests = uncontended.requests,
        before = BEFORE_GUARDS.requests,
    );
    Ok(Section {
        markdown,
        figures: vec![
            Figure::new(
                "guards: extra AWS requests per URL, no URL waiting",
                format!("{extra_uncontended:+.3}"),
                "≤ 0.1",
                Some(extra_uncontended <= 0.1),
            ),
            Figure::new("guards: extra AWS requests per waiting URL, each wait", spread(&per_wait, 2), "", None),
            Figure::new("guards: DynamoDB write units per URL, no URL waiting", format!("{units:.1}"), "", None),
            Figure::new(
                "1 000 URLs at one host: most at once",
                spread(&concurrent, 0),
                "≤ 4",
                Some(concurrent.iter().all(|c| *c <= 4.0)),
            ),
        ],
    })
}

/// One POST of `sizes` URLs each (then cancelled, so the stack is idle for the next): the
/// client's time and the API invocation's requests.
pub async fn submission(runs: usize, sizes: &[usize]) -> Result<Section, String> {
    let client = client()?;
    let mut table = Table::new(&["URLs", "run", "POST time", "AWS requests", "by operation", "write units"]);
    let mut figures = Vec::new();
    for &size in sizes {
        let mut times = Vec::new();
        let mut requests = Vec::new();
        for run in 1..=runs {
            // Documentation addresses: cleaned and accepted like any, never fetched (cancelled).
            let list: Vec<String> = (0..size).map(|n| format!("https://example.com/bench/{run}/{n}")).collect();
            let since = now_millis();
            let started = Instant::now();
            let id =
                client.submit(json!({"urls": list, "batch_size": 1, "name": format!("bench submit {size}")})).await?;
            let elapsed = started.elapsed().as_secs_f64();
            client.call(reqwest::Method::POST, &format!("/cancel/{id}"), None).await?;
            client.until(&id, &["cancelled", "completed", "completed_with_errors"], Duration::from_secs(900)).await?;
            let lines = client.metric_lines("api", since).await?;
            let mut tally = Tally::default();
            tally.add(submission_line(&lines).ok_or("the submission logged no request counts")?);
            println!(
                "{}",
                json!({"bench": "submission", "urls": size, "run": run, "seconds": elapsed, "requests": tally.requests})
            );
            times.push(elapsed);
            requests.push(tally.total());
            let operations: Vec<String> =
                tally.requests.iter().map(|(op, count)| format!("{op} {}", num(*count, 0))).collect();
            table.row(vec![
                size.to_string(),
                run.to_string(),
                format!("{} s", num(elapsed, 2)),
                num(tally.total(), 0),
                operations.join(", "),
                num(tally.write_units, 0),
            ]);
        }
        figures.push(Figure::new(
            &format!("POST /start with {size} URLs: time"),
            format!("{} s", spread(&times, 2)),
            "",
            None,
        ));
        figures.push(Figure::new(
            &format!("POST /start with {size} URLs: AWS requests per URL"),
            spread(&requests.iter().map(|r| r / size as f64).collect::<Vec<_>>(), 3),
            "",
            None,
        ));
    }
    let markdown = format!(
        "## Submission (`speedbatch-bench submission`)\n\n\
         One `POST /start` through the deployed API (the emulator's HTTP API and the release `api` function), \
         timed by the client from sending to the 201; its AWS requests from the invocation's own EMF line. \
         Each job is cancelled after it is measured, so the next starts on an idle stack.\n\n{}",
        table.render()
    );
    Ok(Section { markdown, figures })
}

/// Peak resident memory of every function process the emulator runs now (after a load).
pub fn peak_rss() -> Vec<(String, u64)> {
    function_processes().into_iter().filter_map(|p| Some((p.function, p.peak_rss_kb?))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_line_gives_the_billed_time_and_the_memory() {
        let line = "REPORT RequestId: 4b1d\tDuration: 12.5 ms\tBilled Duration: 13 ms\tMemory Size: 256 MB\tMax Memory Used: 30 MB";
        assert_eq!(report_of(line), Some((13.0, 256.0)));
        let emulator = "REPORT RequestId: 4b1d\tDuration: 12 ms\tMemory Size: 1024 MB";
        assert_eq!(report_of(emulator), Some((12.0, 1024.0)), "no billed duration: the duration");
        assert_eq!(report_of("START RequestId: 4b1d Version: $LATEST"), None);
    }

    #[test]
    fn a_function_log_counts_every_byte_and_sorts_its_lines() {
        let log = FunctionLog::of(vec![
            "START RequestId: 1 Version: $LATEST".into(),
            r#"{"_aws":{},"Invocations":1}"#.into(),
            r#"{"level":"INFO","message":"hello"}"#.into(),
            "REPORT RequestId: 1\tDuration: 1000 ms\tBilled Duration: 1000 ms\tMemory Size: 512 MB".into(),
        ]);
        assert_eq!(log.metric_lines.len(), 1);
        assert_eq!(log.reports, [(1000.0, 512.0)]);
        assert_eq!(log.gb_seconds(), 0.5);
        let raw: usize = log.messages.iter().map(String::len).sum();
        assert_eq!(log.bytes, raw as f64 + 4.0 * LOG_EVENT_OVERHEAD);
    }

    #[test]
    fn an_export_line_gives_its_bytes() {
        let line = r#"{"message":"export","outcome":"Written { urls: 1000, bytes: 483211 }"}"#;
        assert_eq!(exported_bytes(line), Some(483_211.0));
        assert_eq!(exported_bytes(r#"{"outcome":"AlreadyWritten"}"#), None);
    }
}

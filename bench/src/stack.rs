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

use crate::report::{Figure, Section, Table, num, spread};
use crate::stats::median;

const FUNCTIONS: [&str; 3] = ["api", "analyzer", "tracker"];

struct Client {
    api: ApiClient,
    logs: Logs,
    stack_name: String,
}

impl Client {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, String> {
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

    /// The EMF lines of `function`'s invocations logged from `since` (ms) on.
    async fn metric_lines(&self, function: &str, since: i64) -> Result<Vec<Value>, String> {
        let messages = self.logs.messages(|group| group_of(group, &self.stack_name, function), since).await?;
        Ok(messages
            .iter()
            .filter_map(|message| serde_json::from_str::<Value>(message).ok())
            .filter(|line| line.get("Invocations").is_some())
            .collect())
    }
}

/// Requests by `Service.Operation`, invocations and write units summed over EMF lines.
#[derive(Default, Clone)]
struct Tally {
    requests: BTreeMap<String, f64>,
    invocations: f64,
    write_units: f64,
}

impl Tally {
    fn add(&mut self, line: &Value) {
        self.invocations += line["Invocations"].as_f64().unwrap_or(0.0);
        self.write_units += line["DynamoDB.WriteUnits"].as_f64().unwrap_or(0.0);
        for (name, value) in line.as_object().into_iter().flatten() {
            if let Some(operation) = name.strip_prefix("Requests.") {
                *self.requests.entry(operation.to_owned()).or_default() += value.as_f64().unwrap_or(0.0);
            }
        }
    }

    fn total(&self) -> f64 {
        self.requests.values().sum()
    }
}

fn client() -> Result<Client, String> {
    let stack = DeployedStack::try_load()?;
    let stack_name = stack.values.get("STACK_NAME").map_or("speedbatch-local", String::as_str).to_owned();
    Ok(Client { api: ApiClient::new(&stack), logs: Logs::new(stack.endpoint()), stack_name })
}

/// The submission's own invocation among the API's lines: the one that wrote URLs.
fn submission_line(lines: &[Value]) -> Option<&Value> {
    lines.iter().find(|line| line.get("Requests.DynamoDB.BatchWriteItem").is_some())
}

/// A 1 000-URL job, http engine, `batch_size` 20, on a local site: time from the POST to
/// `completed`, and every AWS request the functions made for it.
pub async fn end_to_end(runs: usize, urls: usize) -> Result<Section, String> {
    let client = client()?;
    let site = Site::start().await;
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
        "invocations (api/analyzer/tracker)",
    ]);
    for run in 1..=runs {
        let list: Vec<String> = (0..urls).map(|n| site.url(&format!("/page/{run}{n:05}"))).collect();
        let since = now_millis();
        let started = Instant::now();
        let id = client
            .submit(json!({"urls": list, "engine": "http", "batch_size": 20, "name": format!("bench e2e {run}")}))
            .await?;
        let progress = client.until(&id, &["completed", "completed_with_errors"], Duration::from_secs(900)).await?;
        let elapsed = started.elapsed().as_secs_f64();
        if progress["succeeded"].as_u64() != Some(urls as u64) {
            return Err(format!("run {run}: not every URL succeeded: {progress}"));
        }
        // The last tracker invocations (the status change to completed) log after it shows.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let mut tally = Tally::default();
        let mut invocations = Vec::new();
        for function in FUNCTIONS {
            let lines = client.metric_lines(function, since).await?;
            let mut own = Tally::default();
            if function == "api" {
                // Only the submission: progress polls are the client's choice, not the URLs' cost.
                own.add(submission_line(&lines).ok_or("the submission logged no request counts")?);
            } else {
                lines.iter().for_each(|line| own.add(line));
            }
            invocations.push(own.invocations);
            tally.invocations += own.invocations;
            tally.write_units += own.write_units;
            for (operation, count) in own.requests {
                *tally.requests.entry(operation).or_default() += count;
            }
        }
        let n = urls as f64;
        // Lambda's SQS poller: one ReceiveMessage that returned the batch and one
        // DeleteMessageBatch per analyzer invocation (functions do not see these requests).
        let mapping = 2.0 * invocations[1];
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
    }
    let mut operations = Table::new(&["operation", "per URL"]);
    for (operation, values) in &by_operation {
        operations.row(vec![format!("`{operation}`"), spread(values, 3)]);
    }
    let markdown = format!(
        "## End to end: AWS requests per URL and time (`speedbatch-bench end-to-end`)\n\n\
         A {urls}-URL job on the deployed stack (`make up`: release build, ministack), http engine, `batch_size` \
         20, against a local site (`testkit::site`, a small page per URL) on loopback. Time from sending the POST \
         to the first progress poll (every 100 ms) that reads `completed`. Requests are counted by the functions \
         themselves: each invocation's EMF line carries the count of every AWS request its clients sent (an SDK \
         interceptor; retries included) and the DynamoDB write units DynamoDB reported, read back here from \
         the emulator's CloudWatch Logs. Counted: the submission's own API invocation, every analyzer and \
         tracker invocation from the POST until the job showed `completed` plus 3 s; not counted: the progress \
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
    Ok(Section {
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

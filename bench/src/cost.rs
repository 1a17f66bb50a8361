//! What a job cost at AWS's list prices ([`crate::prices`]): everything it used, as the
//! functions and the emulator counted it, turned into dollars per 1 000 URLs, line by line;
//! and `speedbatch-bench cost`, the bill of the end-to-end job beside the same job with field
//! data, the same job on pages as slow as real ones, and a PageSpeed Insights job.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;
use testkit::fake_crux::local::for_local_stack;

use crate::prices::{self, Price};
use crate::report::{Figure, Section, Table, num};
use crate::stack::{JobRun, client, run_job_of, site_of, uncontended_sites, uncontended_urls};

/// Everything one job used, as measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Usage {
    pub urls: f64,
    /// Lambda invocations of every function, and their GB-seconds (each invocation's billed
    /// duration times its memory).
    pub invocations: f64,
    pub gb_seconds: f64,
    pub write_units: f64,
    pub read_units: f64,
    /// Bytes the job's items hold in the table and its indexes, kept `retention_days`.
    pub stored_bytes: f64,
    pub retention_days: f64,
    /// SQS requests: the functions' own and the event source mapping's receives and deletes.
    pub sqs_requests: f64,
    pub events: f64,
    /// CloudWatch Logs: bytes ingested (each event's message and its 26 bytes), kept as long
    /// as the log group keeps them.
    pub log_bytes: f64,
    pub log_retention_days: f64,
    pub s3_puts: f64,
    pub s3_gets: f64,
    /// Export files' bytes, kept `retention_days`.
    pub s3_bytes: f64,
    pub api_requests: f64,
}

/// One line of the bill: what, how much of it per 1 000 URLs, and its dollars.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    pub item: &'static str,
    pub quantity: f64,
    pub unit: &'static str,
    pub dollars: f64,
}

const GB: f64 = 1024.0 * 1024.0 * 1024.0;
const DAYS_PER_MONTH: f64 = 30.0;

impl Usage {
    /// The bill per 1 000 URLs, one line per priced item.
    pub fn per_thousand(&self) -> Vec<Line> {
        let scale = 1000.0 / self.urls.max(1.0);
        let months = |days: f64| days / DAYS_PER_MONTH;
        let line = |item, quantity: f64, price: &Price| Line {
            item,
            quantity: quantity * scale,
            unit: price.per,
            dollars: quantity * scale * price.dollars,
        };
        vec![
            line("Lambda requests", self.invocations, &prices::LAMBDA_REQUEST),
            line("Lambda duration", self.gb_seconds, &prices::LAMBDA_GB_SECOND_ARM),
            line("DynamoDB writes", self.write_units, &prices::DYNAMODB_WRITE_UNIT),
            line("DynamoDB reads", self.read_units, &prices::DYNAMODB_READ_UNIT),
            line(
                "DynamoDB storage, for the retention",
                self.stored_bytes / GB * months(self.retention_days),
                &prices::DYNAMODB_GB_MONTH,
            ),
            line("SQS requests", self.sqs_requests, &prices::SQS_REQUEST),
            line("EventBridge events", self.events, &prices::EVENTBRIDGE_EVENT),
            line("CloudWatch Logs ingested", self.log_bytes / GB, &prices::LOGS_GB_INGESTED),
            line("CloudWatch Logs kept", self.log_bytes / GB * months(self.log_retention_days), &prices::LOGS_GB_MONTH),
            line("S3 PUT requests", self.s3_puts, &prices::S3_PUT),
            line("S3 GET requests", self.s3_gets, &prices::S3_GET),
            line(
                "S3 storage, for the retention",
                self.s3_bytes / GB * months(self.retention_days),
                &prices::S3_GB_MONTH,
            ),
            line("HTTP API requests", self.api_requests, &prices::HTTP_API_REQUEST),
        ]
    }

    /// Dollars per 1 000 URLs, all lines together.
    pub fn dollars_per_thousand(&self) -> f64 {
        self.per_thousand().iter().map(|line| line.dollars).sum()
    }
}

/// A PageSpeed Insights run's time, which the analyzer waits out billed: Google's answer for
/// one URL and form factor. Not measured here (no test calls Google); the typical figure.
const PSI_SECONDS: f64 = 15.0;

/// The PSI engine's job, priced from the http job's measured use: the same requests, writes
/// and logs (a PSI result item is deflated like any), but each invocation waits for Google.
/// An invocation of `k` URLs runs them at once, so each URL bills about `PSI_SECONDS / k`
/// of its function's memory (as the analyzer's REPORT lines gave it).
fn psi_from(http: &JobRun) -> Result<Usage, String> {
    let analyzer_invocations = http.invocations.get(1).copied().unwrap_or(1.0).max(1.0);
    let urls_per_invocation = http.usage.urls / analyzer_invocations;
    let gb = http.memory_gb.get("analyzer").copied().ok_or("the analyzer logged no REPORT line")?;
    let waited = http.usage.urls * PSI_SECONDS / urls_per_invocation * gb;
    Ok(Usage { gb_seconds: http.usage.gb_seconds + waited, ..http.usage.clone() })
}

/// How long the slow job's pages take to answer, from the first to the last (ms): loopback
/// pages answer within milliseconds, real sites' in a second or two, so an invocation's
/// results finish apart and share fewer writes.
const SLOW_PAGES_MS: (u64, u64) = (200, 2_000);

/// `urls` pages answering after [`SLOW_PAGES_MS`], spread evenly (a fixed shuffle, so every
/// run waits the same), laid out on `sites` as the end-to-end job's.
fn slow_urls(sites: &[testkit::site::Site], urls: usize) -> Vec<String> {
    let (least, most) = SLOW_PAGES_MS;
    (0..urls)
        .map(|n| {
            let site = site_of(sites, n);
            let seq = u32::try_from(n).unwrap_or(u32::MAX);
            site.set_delay(seq, Duration::from_millis(least + (n as u64 * 7_919) % (most - least + 1)));
            site.url(&format!("/tunable/{n}"))
        })
        .collect()
}

/// `speedbatch-bench cost`: the bill of `http` (the end-to-end runs), of the same kind of job
/// with `field_data` on (`urls` of them, run here once: the CrUX quota sets its pace), of it
/// on slow pages (`slow` URLs, once) and of a PSI job.
pub async fn run(http: &[JobRun], urls: usize, slow: usize) -> Result<Section, String> {
    let Some(http) = median_run(http) else { return Err("no end-to-end run to price".into()) };
    let client = client()?;
    let fake = for_local_stack(&client.stack)?;
    let sites = uncontended_sites().await;
    let list = uncontended_urls(&sites, urls, 9);
    let body =
        json!({"urls": list, "engine": "http", "field_data": true, "batch_size": 20, "name": "bench cost field"});
    fake.reset_stats();
    let field = run_job_of(&client, body).await?;
    println!(
        "{}",
        json!({"bench": "cost", "urls": urls, "field_usage": format!("{:?}", field.usage),
               "crux_requests": fake.stats().requests})
    );
    let body = json!({"urls": slow_urls(&sites, slow), "engine": "http", "batch_size": 20, "name": "bench cost slow"});
    let slow = run_job_of(&client, body).await?;
    println!("{}", json!({"bench": "cost", "slow_urls": slow.usage.urls, "slow_usage": format!("{:?}", slow.usage)}));
    let psi = psi_from(http)?;
    let jobs: [(&str, &Usage); 4] = [
        ("http", &http.usage),
        ("http + field data", &field.usage),
        ("http, slow pages", &slow.usage),
        ("PSI (modelled)", &psi),
    ];
    Ok(section(&jobs, &[http, &field, &slow]))
}

/// The run whose total is the median: its lines all come from one job.
fn median_run(runs: &[JobRun]) -> Option<&JobRun> {
    let mut sorted: Vec<&JobRun> = runs.iter().collect();
    sorted.sort_by(|a, b| a.usage.dollars_per_thousand().total_cmp(&b.usage.dollars_per_thousand()));
    sorted.get(sorted.len().saturating_sub(1) / 2).copied()
}

/// A price as its page quotes it: per million units when a unit costs under a tenth of a cent.
fn price_text(price: &Price) -> String {
    if price.dollars < 0.001 {
        format!("${} per million × {}", round(price.dollars * 1e6), price.per)
    } else {
        format!("${} per {}", round(price.dollars), price.per)
    }
}

/// Up to 10 significant decimals, without float noise (0.20000000000000004 → 0.2).
fn round(value: f64) -> f64 {
    (value * 1e10).round() / 1e10
}

fn dollars(value: f64) -> String {
    if value >= 0.01 { format!("${value:.3}") } else { format!("${value:.5}") }
}

/// The bill of `jobs` (the http, field-data and slow-page jobs measured, then the PSI job
/// modelled); `runs` are the measured ones, in the same order.
fn section(jobs: &[(&str, &Usage)], runs: &[&JobRun; 3]) -> Section {
    let [http, field, slow] = *runs;
    let mut header = vec!["per 1 000 URLs"];
    header.extend(jobs.iter().map(|(name, _)| *name));
    let mut bill = Table::new(&header);
    let lines: Vec<Vec<Line>> = jobs.iter().map(|(_, usage)| usage.per_thousand()).collect();
    for (i, line) in lines[0].iter().enumerate() {
        let mut row = vec![format!("{} ({})", line.item, line.unit)];
        row.extend(lines.iter().map(|job| format!("{} × {}", num(job[i].quantity, 3), dollars(job[i].dollars))));
        bill.row(row);
    }
    let totals: Vec<f64> = jobs.iter().map(|(_, usage)| usage.dollars_per_thousand()).collect();
    let mut total_row = vec!["**all together**".to_owned()];
    total_row.extend(totals.iter().map(|t| format!("**{}**", dollars(*t))));
    bill.row(total_row);
    let mut prices_table = Table::new(&["item", "price", "source"]);
    for (item, price) in prices::ALL {
        prices_table.row(vec![item.to_owned(), price_text(price), price.source.to_owned()]);
    }
    let n = http.usage.urls;
    let measured = ["http", "http + field data", "http, slow pages"];
    let mut units = Table::new(&[&["write units per URL"][..], &measured[..]].concat());
    let parts: BTreeSet<&String> = runs.iter().flat_map(|run| run.tally.write_units_by.keys()).collect();
    for part in parts {
        let of = |run: &&JobRun| run.tally.write_units_by.get(part).copied().unwrap_or(0.0) / run.usage.urls;
        units.row([format!("`{part}`")].into_iter().chain(runs.iter().map(|run| num(of(run), 2))).collect());
    }
    let all_units = runs.iter().map(|run| num(run.tally.write_units / run.usage.urls, 2));
    units.row(["**all**".to_owned()].into_iter().chain(all_units).collect());
    let mut logs = Table::new(&[&["log bytes per URL"][..], &measured[..]].concat());
    for function in http.log_bytes.keys() {
        let of = |run: &&JobRun| run.log_bytes.get(function).copied().unwrap_or(0.0) / run.usage.urls;
        logs.row([function.to_string()].into_iter().chain(runs.iter().map(|run| num(of(run), 0))).collect());
    }
    let all_logs = runs.iter().map(|run| num(run.usage.log_bytes / run.usage.urls, 0));
    logs.row(["**all**".to_owned()].into_iter().chain(all_logs).collect());
    let markdown = format!(
        "## What a URL costs (`speedbatch-bench cost`)\n\n\
         Every AWS charge of a job, counted on the deployed stack and priced at {region} list prices read \
         {date} (`bench/src/prices.rs`, each with its source; free tiers left out). **http**: the median \
         end-to-end run above ({urls} URLs). **http + field data**: a {field_urls}-URL job of the same kind with `field_data` \
         (one CrUX request per URL, against the fake at its quota of 150 a minute, which sets the pace). **http, slow pages**: a \
         {slow_urls}-URL job of the same kind on pages that answer after {least}–{most} ms, spread evenly (real sites' pages \
         finish seconds apart, loopback ones within milliseconds, and an invocation's results share their writes only when \
         they finish close together). **PSI (modelled)**: the http job's \
         measured use with each analyzer invocation waiting {PSI_SECONDS} s for Google (PageSpeed Insights \
         itself is free; a key's quota, 25 000 a day by default, is the limit), not measured. Lambda \
         duration is each invocation's billed time from its REPORT line times its memory, as on arm64 (the \
         emulator runs the x86_64 build on this machine); SQS includes the event source mapping's receive \
         and delete per invocation; storage is what the job's items and index entries hold by DynamoDB's \
         size rules (read back from the table), and its export files, kept the template's 30 days; logs are \
         every byte the functions logged for the job (26 bytes more per event, as CloudWatch bills), kept \
         30 days. The API's progress polls are the client's choice and not counted.\n\n{bill}\n\
         Where the write units go (the table's part by operation; each index's part):\n\n{units}\n\
         Log bytes per URL by function (EMF lines, Lambda's START/END/REPORT, and any other line):\n\n{logs}\n\
         A job's items hold {stored} bytes per URL (table and index entries, with DynamoDB's 100 bytes per \
         item); its largest task item is {largest} bytes.\n\nPrices:\n\n{prices}",
        region = prices::REGION,
        date = prices::READ_ON,
        urls = num(n, 0),
        field_urls = num(field.usage.urls, 0),
        slow_urls = num(slow.usage.urls, 0),
        least = SLOW_PAGES_MS.0,
        most = SLOW_PAGES_MS.1,
        bill = bill.render(),
        units = units.render(),
        logs = logs.render(),
        stored = num(http.stored.total() as f64 / n, 0),
        largest = http.stored.largest_task,
        prices = prices_table.render(),
    );
    let figure = |name: &str, value: String| Figure::new(name, value, "", None);
    Section {
        markdown,
        figures: vec![
            figure("dollars per 1 000 URLs, http engine", dollars(totals[0])),
            figure("dollars per 1 000 URLs, http engine + field data", dollars(totals[1])),
            figure("dollars per 1 000 URLs, http engine, pages answering in 0.2–2 s", dollars(totals[2])),
            figure("dollars per 1 000 URLs, PSI engine (modelled)", dollars(totals[3])),
            Figure::new(
                "DynamoDB write units per URL, 1 000-URL http job",
                num(http.tally.write_units / n, 2),
                "≤ 3.5",
                Some(http.tally.write_units / n <= 3.5),
            ),
            figure(
                "DynamoDB write units per URL, the same job on pages answering in 0.2–2 s",
                num(slow.tally.write_units / slow.usage.urls, 2),
            ),
            figure("log bytes per URL, http engine", num(http.usage.log_bytes / n, 0)),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bill_prices_each_use_per_thousand_urls() {
        let usage = Usage {
            urls: 2_000.0,
            invocations: 400.0,
            gb_seconds: 100.0,
            write_units: 20_000.0,
            read_units: 2_000.0,
            stored_bytes: GB,
            retention_days: 30.0,
            sqs_requests: 1_000.0,
            events: 2.0,
            log_bytes: GB / 10.0,
            log_retention_days: 30.0,
            s3_puts: 4.0,
            s3_gets: 0.0,
            s3_bytes: 0.0,
            api_requests: 1.0,
        };
        let bill = usage.per_thousand();
        let of = |item: &str| bill.iter().find(|l| l.item == item).map(|l| (l.quantity, l.dollars)).unwrap();
        assert_eq!(of("DynamoDB writes"), (10_000.0, 10_000.0 * 0.625 / 1e6));
        assert_eq!(of("Lambda duration").0, 50.0);
        assert!((of("DynamoDB storage, for the retention").1 - 0.125).abs() < 1e-12, "half a GB for a month");
        assert!((of("CloudWatch Logs ingested").1 - 0.025).abs() < 1e-12);
        let total: f64 = bill.iter().map(|l| l.dollars).sum();
        assert_eq!(usage.dollars_per_thousand(), total);
        assert_eq!(Usage::default().dollars_per_thousand(), 0.0, "nothing used costs nothing");
        assert_eq!(price_text(&prices::LAMBDA_REQUEST), "$0.2 per million × request");
        assert_eq!(price_text(&prices::S3_GB_MONTH), "$0.023 per GB-month stored");
    }
}

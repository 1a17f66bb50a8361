//! Results of a 10 000-URL job within AWS's limits (`speedbatch-bench exports`): a finished
//! job on the deployed local stack, then every way a client reads its results, with the size
//! of every answer and how long each took.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::api::ApiClient;
use testkit::site::Site;
use testkit::stack::DeployedStack;

use crate::report::{Figure, Section, Table, num, spread};
use crate::stats::median;

/// The spec's bound on any answer: API Gateway carries 6 MB from a Lambda, less a margin.
const ANSWER_MAX: usize = 5 * 1024 * 1024;

/// One GET under the API with the key, redirects not followed: status, bytes, seconds, the
/// `Location` and the body.
async fn get(api: &ApiClient, path: &str) -> Result<(u16, usize, f64, Option<String>, Vec<u8>), String> {
    let client =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().map_err(|e| e.to_string())?;
    let started = Instant::now();
    let response = client
        .get(api.url(path))
        .header("x-api-key", &api.key)
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .map_err(|e| format!("{path}: {e}"))?;
    let status = response.status().as_u16();
    let location = response.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = response.bytes().await.map_err(|e| format!("{path}: {e}"))?.to_vec();
    Ok((status, body.len(), started.elapsed().as_secs_f64(), location, body))
}

/// A file through its link (no key): bytes and seconds.
async fn download(link: &str) -> Result<(Vec<u8>, f64), String> {
    let started = Instant::now();
    let response = reqwest::get(link).await.map_err(|e| format!("export link: {e}"))?;
    if response.status() != 200 {
        return Err(format!("export link answered {}", response.status()));
    }
    let body = response.bytes().await.map_err(|e| e.to_string())?.to_vec();
    Ok((body, started.elapsed().as_secs_f64()))
}

pub async fn run(runs: usize, urls: usize) -> Result<Section, String> {
    let stack = DeployedStack::try_load()?;
    let api = ApiClient::new(&stack);
    let site = Site::start().await;
    let mut table = Table::new(&[
        "run",
        "completed → report",
        "first JSON page (100 rows)",
        "a page of 1 000 rows",
        "largest JSON page",
        "pages",
        "CSV: 303 / file",
        "JSON Lines: 303 / file",
        "largest answer",
    ]);
    let (mut report_wait, mut first_page, mut largest, mut csv_sizes, mut csv_times) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for run in 1..=runs {
        let list: Vec<String> = (0..urls).map(|n| site.url(&format!("/page/{}", 900_000 + run * 20_000 + n))).collect();
        let id = api
            .submit(&json!({"urls": list, "engine": "http", "batch_size": 20, "name": format!("bench exports {run}")}))
            .await?;
        let progress = api.finished(&id, Duration::from_secs(1_800)).await?;
        if progress["succeeded"].as_u64() != Some(urls as u64) {
            return Err(format!("run {run}: not every URL succeeded: {progress}"));
        }
        let finished = Instant::now();
        let mut answers = Vec::new();
        // The exporter's report: pages stay cheap meanwhile (the counters' summary).
        loop {
            let (status, bytes, seconds, _, body) = get(&api, &format!("/results/{id}?limit=1")).await?;
            answers.push(bytes);
            let body: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
            if status == 200 && body["summary"]["complete"] == true {
                break;
            }
            if finished.elapsed() > Duration::from_secs(300) {
                return Err(format!("run {run}: no report 5 minutes after the job finished ({seconds} s)"));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let waited = finished.elapsed().as_secs_f64();
        // The first page a client gets by default (100 rows).
        let (status, bytes, first, _, _) = get(&api, &format!("/results/{id}")).await?;
        if status != 200 {
            return Err(format!("run {run}: the first page answered {status}"));
        }
        answers.push(bytes);
        // Every JSON page, at the largest limit.
        let (mut cursor, mut pages, mut page_max, mut full_page) = (None::<String>, 0, 0, 0.0);
        loop {
            let query = cursor.as_deref().map(|c| format!("&cursor={c}")).unwrap_or_default();
            let (status, bytes, seconds, _, body) = get(&api, &format!("/results/{id}?limit=1000{query}")).await?;
            if status != 200 {
                return Err(format!("run {run}: a results page answered {status}"));
            }
            if pages == 0 {
                full_page = seconds;
            }
            pages += 1;
            page_max = page_max.max(bytes);
            answers.push(bytes);
            let body: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
            match body["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        let mut cells = Vec::new();
        for (format, lines_per_url) in [("csv", 1), ("jsonl", 1)] {
            let (status, bytes, seconds, location, _) = get(&api, &format!("/results/{id}?format={format}")).await?;
            answers.push(bytes);
            let link =
                location.filter(|_| status == 303).ok_or_else(|| format!("{format}: answered {status}, not 303"))?;
            let (file, fetch) = download(&link).await?;
            let rows = file.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count();
            let expected = urls * lines_per_url + usize::from(format == "csv");
            if rows != expected {
                return Err(format!("run {run}: the {format} file has {rows} lines, not {expected}"));
            }
            if format == "csv" {
                csv_sizes.push(file.len() as f64 / 1e6);
                csv_times.push(seconds + fetch);
            }
            cells.push(format!(
                "{} s / {} MB in {} s",
                num(seconds, 2),
                num(file.len() as f64 / 1e6, 1),
                num(fetch, 2)
            ));
        }
        let answer_max = answers.iter().copied().max().unwrap_or(0);
        if answer_max > ANSWER_MAX {
            return Err(format!("run {run}: an answer of {answer_max} bytes, over the 5 MB bound"));
        }
        println!(
            "{}",
            json!({"bench": "exports", "run": run, "urls": urls, "report_seconds": waited, "first_page_seconds": first, "page_of_1000_seconds": full_page,
                   "pages": pages, "largest_page_bytes": page_max, "largest_answer_bytes": answer_max})
        );
        report_wait.push(waited);
        first_page.push(first);
        largest.push(answer_max as f64 / 1e6);
        table.row(vec![
            run.to_string(),
            format!("{} s", num(waited, 1)),
            format!("{} s", num(first, 2)),
            format!("{} s", num(full_page, 2)),
            format!("{} MB", num(page_max as f64 / 1e6, 2)),
            pages.to_string(),
            cells[0].clone(),
            cells[1].clone(),
            format!("{} MB", num(answer_max as f64 / 1e6, 2)),
        ]);
    }
    let markdown = format!(
        "## Results of a {urls}-URL job within AWS's limits (`speedbatch-bench exports`)\n\n\
         A {urls}-URL job (http engine, `batch_size` 20, a local site) on the deployed stack (`make up`), then, \
         as a client: `GET /results/{{id}}?limit=1` until its summary is `complete` (the exporter has written the \
         report: time from the first progress poll that read the job finished), the first page as a client gets it \
         by default (`GET /results/{{id}}`: 100 rows), every JSON page at `limit=1000`, \
         and the whole-job CSV and JSON Lines (`303` to the file, then the file through its link, no key). Every \
         file is checked to hold one line per URL. \"Largest answer\" is the largest body the API sent in the run \
         (the bound is 5 MB; API Gateway allows 6 MB from a Lambda).\n\n{table}\n",
        table = table.render()
    );
    Ok(Section {
        markdown,
        figures: vec![
            Figure::new(
                &format!("{urls} URLs: first JSON page of the finished job (default 100 rows)"),
                format!("{} s", spread(&first_page, 2)),
                "< 1 s",
                Some(median(&first_page) < 1.0),
            ),
            Figure::new(
                &format!("{urls} URLs: largest API answer"),
                format!("{} MB", spread(&largest, 2)),
                "≤ 5 MB",
                Some(largest.iter().all(|mb| *mb * 1e6 <= ANSWER_MAX as f64)),
            ),
            Figure::new(
                &format!("{urls} URLs: whole-job CSV (303, then the file)"),
                format!("{} MB in {} s", spread(&csv_sizes, 1), spread(&csv_times, 2)),
                "",
                None,
            ),
            Figure::new(
                &format!("{urls} URLs: job finished → report and files written"),
                format!("{} s", spread(&report_wait, 1)),
                "",
                None,
            ),
        ],
    })
}

//! `field`: a field-only job (engine `none`) of 1 000 URLs on the deployed stack, against the
//! fake Chrome UX Report at the stack's `CRUX_ENDPOINT` (Google's quota of 150 requests a
//! minute, answers in 20–60 ms): the time to completed, the CrUX requests made per URL and the
//! 429s met, and the AWS requests per URL. The quota sets the pace: 1 000 URLs with their own
//! record are 1 000 requests, at 98 % of 150 a minute at least 6.8 minutes.

use serde_json::json;
use testkit::fake_crux::local::for_local_stack;

use crate::report::{Figure, Section, Table, num, spread};
use crate::stack::{client, run_job_of};

pub async fn run(runs: usize, urls: usize) -> Result<Section, String> {
    let client = client()?;
    let fake = for_local_stack(&client.stack)?;
    let (mut seconds, mut crux_per_url, mut refused, mut aws_per_url, mut units_per_url, mut rate) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut table = Table::new(&[
        "run",
        "URLs",
        "submit → completed",
        "CrUX requests (per URL)",
        "CrUX 429s",
        "CrUX requests per minute",
        "functions' AWS requests per URL",
        "write units per URL",
    ]);
    for run in 1..=runs {
        // A host per URL, each with a record of its own: the lead-generation scan.
        let list: Vec<String> = (0..urls).map(|n| format!("https://business-{run}-{n:05}.example/")).collect();
        fake.reset_stats();
        let body = json!({"urls": list, "engine": "none", "batch_size": 20, "name": format!("bench field {run}")});
        let job = run_job_of(&client, body).await?;
        let stats = fake.stats();
        let n = urls as f64;
        let requests = stats.requests as f64;
        seconds.push(job.seconds);
        crux_per_url.push(requests / n);
        refused.push(stats.status(429) as f64);
        aws_per_url.push(job.tally.total() / n);
        units_per_url.push(job.tally.write_units / n);
        rate.push(requests / job.seconds * 60.0);
        println!(
            "{}",
            json!({"bench": "field", "run": run, "urls": urls, "seconds": job.seconds, "crux_requests": stats.requests,
                   "crux_429": stats.status(429), "aws_requests": job.tally.requests, "write_units_per_url": job.tally.write_units / n})
        );
        table.row(vec![
            run.to_string(),
            urls.to_string(),
            format!("{} s", num(job.seconds, 1)),
            format!("{} ({})", stats.requests, num(requests / n, 3)),
            stats.status(429).to_string(),
            num(requests / job.seconds * 60.0, 1),
            num(job.tally.total() / n, 3),
            num(job.tally.write_units / n, 2),
        ]);
    }
    let markdown = format!(
        "## Field data: a {urls}-URL field-only job (`speedbatch-bench field`)\n\n\
         Engine `none` (field data only, no page loaded), strategy mobile, `batch_size` 20, a host per URL, on the \
         deployed stack; its analyzers ask the fake Chrome UX Report this bench serves at the stack's \
         `CRUX_ENDPOINT` (`testkit::fake_crux`: Google's response shapes and its quota of 150 requests a minute \
         in fixed windows, answers in 20–60 ms), each request after a place in the fleet-wide limiter (its own \
         quota item, at 98 % of the rate). Every URL has its own record, so the ideal is one CrUX request per URL; \
         a URL with only its origin's costs two, and `field_history` one more. AWS requests are the functions' \
         own counts (EMF), as in the end-to-end section.\n\n{table}\n\
         The quota sets the pace: {rate} CrUX requests a minute against the 150 allowed, {crux} requests per URL, \
         {refused} answered 429. Without a PSI key or a page load, a 10 000-URL scan takes about 10 000 / 147 ≈ \
         68 minutes on one key; the AWS side is not the limit.\n",
        table = table.render(),
        rate = spread(&rate, 1),
        crux = spread(&crux_per_url, 3),
        refused = spread(&refused, 0),
    );
    Ok(Section {
        markdown,
        figures: vec![
            Figure::new(
                "field-only job, 1 000 URLs: CrUX requests per URL (one per URL and form factor)",
                spread(&crux_per_url, 3),
                "1.000, no 429",
                Some(crux_per_url.iter().all(|r| (*r - 1.0).abs() < 1e-9) && refused.iter().all(|r| *r == 0.0)),
            ),
            Figure::new(
                "field-only job, 1 000 URLs: submit → completed",
                format!("{} s", spread(&seconds, 1)),
                "",
                None,
            ),
            Figure::new("field-only job: functions' AWS requests per URL", spread(&aws_per_url, 3), "", None),
        ],
    })
}

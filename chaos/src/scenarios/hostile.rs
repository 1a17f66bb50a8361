//! Hostile input through the deployed API and analyzer: bodies built to break a parser,
//! sitemaps built to exhaust memory or loop, and pages that never end or lie about their
//! length. Every answer is a clear 4xx or a finished URL; nothing crashes or hangs.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::api::{counts, counts_exact};
use testkit::processes::function_processes;

use crate::hostile_site::PAGES;
use crate::report::Section;
use crate::rig::Rig;
use crate::scenarios;

pub async fn run(rig: &Rig) -> Section {
    let mut section = Section::new(
        "Hostile input",
        "Raw requests to the deployed API with bodies built to hurt a parser (each answer must be a 4xx with \
         a JSON error that says what was wrong, never a 5xx); sitemaps built to exhaust memory or loop, \
         submitted as dry runs; and a job of pages that misbehave on purpose, served as raw HTTP by the suite \
         (the URL timeout on the chaos stack is 10 s, `max_retries` 0). The analyzer's peak memory is read \
         from /proc afterwards.",
    );
    bodies(rig, &mut section).await;
    sitemaps(rig, &mut section).await;
    if let Err(err) = pages(rig, &mut section).await {
        section.broke("a job of misbehaving pages", err);
    }
    section
}

/// What a request with `body` (and `content_type`) to `POST /start` answered.
async fn post_raw(rig: &Rig, body: Vec<u8>, content_type: &str) -> Result<(u16, Value), String> {
    let response = rig
        .api
        .http
        .post(rig.api.url("/start"))
        .header("x-api-key", &rig.api.key)
        .header("content-type", content_type)
        .body(body)
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let text = response.text().await.map_err(|e| e.to_string())?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
}

/// An error answer's message, with the fields its details name.
fn said(answer: &Value) -> String {
    let error = &answer["error"];
    let fields: Vec<&str> =
        error["details"].as_array().into_iter().flatten().filter_map(|d| d["field"].as_str()).collect();
    let message = error["message"].as_str().unwrap_or("(no error message)");
    if fields.is_empty() { message.to_owned() } else { format!("{message} [{}]", fields.join(", ")) }
}

async fn bodies(rig: &Rig, section: &mut Section) {
    let many: Vec<String> = (0..10_001).map(|i| format!("https://example.com/{i}")).collect();
    let cases: Vec<(&str, Vec<u8>, &str, &[u16])> = vec![
        ("a 7 MB body", format!("{{\"urls\": [\"https://example.com/{}\"]}}", "a".repeat(7 << 20)).into_bytes(), "application/json", &[413]),
        ("JSON nested 100 000 deep", format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes(), "application/json", &[400]),
        ("invalid UTF-8 inside a string", b"{\"urls\": [\"https://example.com/\xff\xfe\"]}".to_vec(), "application/json", &[400, 422]),
        ("10 001 URLs", json!({"urls": many}).to_string().into_bytes(), "application/json", &[413, 422]),
        ("a form body, not JSON", b"urls=https://example.com".to_vec(), "application/x-www-form-urlencoded", &[400, 415]),
        ("JSON with every field of the wrong type", json!({"urls": "x", "batch_size": "big", "priority": 7, "engine": [], "timeout_seconds": -1}).to_string().into_bytes(), "application/json", &[422]),
        ("URLs that are all hostile (NUL, javascript:, 3 000 characters, credentials)", json!({"urls": ["http://exa\u{0}mple.com/", "javascript:alert(1)", format!("https://example.com/{}", "a".repeat(3000)), "https://user:pw@example.com/"]}).to_string().into_bytes(), "application/json", &[422]),
        ("an empty body", Vec::new(), "application/json", &[400]),
    ];
    for (what, body, content_type, expected) in cases {
        let tried = format!("`POST /start` with {what}");
        match post_raw(rig, body, content_type).await {
            Ok((status, answer)) => {
                let clear = answer["error"]["message"].as_str().is_some_and(|m| !m.is_empty());
                section.check(
                    tried,
                    "1",
                    format!("HTTP {status}: {}", said(&answer)),
                    expected.contains(&status) && clear,
                );
            }
            Err(err) => section.broke(tried, err),
        }
    }
    let paths = [
        (reqwest::Method::GET, "/progress/..%2F..%2Fetc%2Fpasswd".to_owned(), 404),
        (reqwest::Method::GET, format!("/progress/{}", "9".repeat(4096)), 404),
        (reqwest::Method::GET, "/results/00000000-0000-7000-8000-000000000000?limit=-5".to_owned(), 422),
        (reqwest::Method::GET, "/jobs?cursor=%00%ff%fe".to_owned(), 400),
    ];
    for (method, path, expected) in paths {
        let tried = format!("`{method} {}`", if path.len() > 60 { format!("{}…", &path[..60]) } else { path.clone() });
        match rig.api.call(method, &path, None).await {
            Ok((status, answer)) => {
                section.check(tried, "1", format!("HTTP {status}: {}", said(&answer)), status == expected)
            }
            Err(err) => section.broke(tried, err),
        }
    }
}

async fn sitemaps(rig: &Rig, section: &mut Section) {
    let cases = [
        ("a gzip bomb (60 MB of spaces in 60 KB)", "/bomb.xml.gz", 422, "larger than"),
        ("an index that lists itself and a sibling twice", "/sitemap-index.xml", 200, ""),
        ("indexes nested without end", "/deep/0", 422, "deeper"),
    ];
    for (what, path, expected, words) in cases {
        let tried = format!("`sitemap_url`: {what} (dry run)");
        let started = Instant::now();
        let body = json!({"sitemap_url": rig.site.url(path), "dry_run": true});
        match rig.api.call(reqwest::Method::POST, "/start", Some(&body)).await {
            Ok((status, answer)) => {
                let happened = if status == 200 {
                    format!(
                        "HTTP 200 in {:.1} s: {} URLs accepted",
                        started.elapsed().as_secs_f64(),
                        answer["accepted"]
                    )
                } else {
                    format!("HTTP {status} in {:.1} s: {}", started.elapsed().as_secs_f64(), said(&answer))
                };
                section.check(tried, "1", happened, status == expected && said(&answer).contains(words));
            }
            Err(err) => section.broke(tried, err),
        }
    }
}

async fn pages(rig: &Rig, section: &mut Section) -> Result<(), String> {
    let mut urls: Vec<String> = PAGES.iter().map(|(path, _)| rig.hostile.url(path)).collect();
    urls.push(rig.site.url("/page/1"));
    let n = urls.len();
    let started = Instant::now();
    let id = rig
        .api
        .submit(&json!({"urls": urls, "engine": "http", "max_retries": 0, "batch_size": 20, "name": "chaos: hostile pages"}))
        .await?;
    let (progress, _) = scenarios::watch(&rig.api, &id, Duration::from_secs(600), async |_| Ok(())).await?;
    let rows = scenarios::all_results(&rig.api, &id).await?;
    section.check(
        format!("a job of {} misbehaving pages and one good one", PAGES.len()),
        format!("{n} URLs"),
        format!("job {} in {:.0} s: {}", progress["status"], started.elapsed().as_secs_f64(), counts(&progress)),
        counts_exact(&progress, n as u64) && progress["succeeded"].as_u64() >= Some(1),
    );
    for (path, what) in PAGES {
        let url = rig.hostile.url(path);
        let row = rows.iter().find(|r| r["url"].as_str() == Some(url.as_str()));
        let happened = match row {
            Some(r) => match r["error"].as_str() {
                Some(error) => format!("{}: {error}", r["status"].as_str().unwrap_or("?")),
                None => format!("{}, score {}", r["status"].as_str().unwrap_or("?"), r["score"]),
            },
            None => "no result row".to_owned(),
        };
        let finished = row.is_some_and(|r| matches!(r["status"].as_str(), Some("succeeded" | "failed")));
        section.check(format!("a page that {what}"), "1", happened, finished);
    }
    let analyzer = rig.analyzer()?;
    let peak = function_processes().into_iter().filter(|p| p.function == analyzer).filter_map(|p| p.peak_rss_kb).max();
    section.check(
        "the analyzer's memory after these pages",
        "every live analyzer process",
        match peak {
            Some(kb) => format!("peak RSS {:.1} MB (the function has 256 MB)", kb as f64 / 1024.0),
            None => "no analyzer process left to read".to_owned(),
        },
        peak.is_some_and(|kb| kb < 128 * 1024),
    );
    Ok(())
}

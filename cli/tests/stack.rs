//! The `speedbatch` binary against the deployed local stack (`make up`), run as a user would:
//! a process with arguments, reading `.local/stack.env` from the repository's root, judged by
//! its exit code and what it prints.

// A test fails by panicking with what it expected.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Output;
use std::time::Duration;

use serde_json::Value;
use testkit::site::Site;

fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs the CLI in the repository root (where `.local/stack.env` is) without a key or URL in
/// the environment, off the test's runtime so the site it serves keeps answering.
async fn speedbatch(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_speedbatch"))
            .args(&args)
            .current_dir(repo_root())
            .env_remove("SPEEDBATCH_API_URL")
            .env_remove("SPEEDBATCH_API_KEY")
            .env_remove("SPEEDBATCH_WS_URL")
            .output()
            .expect("the CLI runs")
    })
    .await
    .expect("the CLI's thread")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn url_file(name: &str, urls: &[String]) -> String {
    let path = std::env::temp_dir().join(format!("speedbatch-cli-{name}-{}.txt", std::process::id()));
    std::fs::write(&path, urls.join("\n")).unwrap();
    path.to_string_lossy().into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_watch_ends_with_a_summary_and_exit_2_when_urls_failed() {
    let site = Site::start().await;
    let mut urls: Vec<String> = (1..=4).map(|n| site.url(&format!("/page/{n}"))).collect();
    urls.push(site.url("/missing"));
    urls.push("ftp://example.com/file".into());
    let file = url_file("watch", &urls);
    let out = speedbatch(&["submit", &file, "--name", "cli watch", "--batch-size", "3", "--watch"]).await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(2), "some URLs failed\n{stdout}\n{stderr}");
    assert!(stdout.contains("5 URLs accepted, 1 rejected, 0 duplicates removed"), "{stdout}");
    assert!(stderr.contains("rejected ftp://example.com/file: only http and https"), "{stderr}");
    // Progress lines (stderr is not a terminal here), the last one the finished job.
    let last = stderr.lines().rfind(|l| l.starts_with('[')).unwrap_or_default();
    assert!(last.contains("100.0% 5/5  ok 4  failed 1") && last.ends_with("completed with errors"), "{stderr}");
    assert!(stdout.contains("(cli watch): completed with errors"), "{stdout}");
    assert!(stdout.contains("http 4xx"), "the failure's cause is summarised: {stdout}");
    assert!(stdout.contains("delivery score p50"), "the http engine's number by its name: {stdout}");
    assert_eq!(site.hits(), 5);
    assert!(!stderr.contains("polling instead"), "followed over the WebSocket the API names: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_polls_when_the_websocket_cannot_be_reached() {
    let site = Site::start().await;
    let urls: Vec<String> = (1..=2).map(|n| site.url(&format!("/page/{n}"))).collect();
    let file = url_file("nows", &urls);
    // Port 9 (discard) has no listener here: the connection is refused at once.
    let args = ["submit", &file, "--name", "cli no socket", "--watch", "--ws-url", "ws://127.0.0.1:9/live"];
    let out = speedbatch(&args).await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stderr.contains("live progress unavailable (connecting to 127.0.0.1:9"), "{stderr}");
    assert!(stderr.contains("polling instead"), "{stderr}");
    assert!(stdout.contains("(cli no socket): completed"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_get_json_and_exit_0_when_everything_succeeded() {
    let site = Site::start().await;
    let urls: Vec<String> = (1..=3).map(|n| site.url(&format!("/page/{n}"))).collect();
    let file = url_file("json", &urls);
    let out = speedbatch(&["submit", &file, "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let created: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let id = created["batch_job_id"].as_str().unwrap().to_owned();
    assert_eq!(created["accepted"], 3);

    let out = speedbatch(&["status", &id, "--watch", "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "every URL succeeded: {}", text(&out.stderr));
    let end: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(end["job"]["status"], "completed");
    assert_eq!(end["summary"]["by_status"]["succeeded"], 3);

    let out = speedbatch(&["results", &id, "--json"]).await;
    let results: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(results["results"].as_array().map(Vec::len), Some(3));
    let out = speedbatch(&["results", &id, "--csv"]).await;
    let csv = text(&out.stdout);
    assert!(csv.starts_with("url,status,attempts,"), "{csv}");
    assert_eq!(csv.lines().count(), 4, "a header and 3 rows");
    let out = speedbatch(&["results", &id]).await;
    let table = text(&out.stdout);
    let header: Vec<&str> = table.lines().next().unwrap_or_default().split_whitespace().collect();
    assert_eq!(header, ["status", "delivery", "ttfb_ms", "url", "error"], "no performance score column: {table}");
    assert!(
        table
            .lines()
            .nth(1)
            .is_some_and(|row| row.contains(" sound ") || row.contains(" mixed ") || row.contains(" weak ")),
        "{table}"
    );

    let out = speedbatch(&["jobs", "--limit", "100", "--json"]).await;
    let jobs: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(jobs["jobs"].as_array().unwrap().iter().any(|j| j["batch_job_id"] == id.as_str()));
    let out = speedbatch(&["jobs", "--limit", "100"]).await;
    assert!(text(&out.stdout).lines().any(|l| l.starts_with(&id) && l.contains("3/3")), "{}", text(&out.stdout));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csvs_other_columns_come_back_as_each_urls_reference_and_labels() {
    let site = Site::start().await;
    let path = std::env::temp_dir().join(format!("speedbatch-cli-labels-{}.csv", std::process::id()));
    let csv = format!(
        "company_id,url,city,segment\r\nB-17,{},Lyon,bakery\r\nB-18,{},\"Paris, 11e\",\r\n",
        site.url("/page/1"),
        site.url("/page/2")
    );
    std::fs::write(&path, csv).unwrap();
    let out = speedbatch(&["submit", &path.to_string_lossy(), "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let created: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let id = created["batch_job_id"].as_str().unwrap().to_owned();
    let out = speedbatch(&["status", &id, "--watch", "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // The whole-job CSV: each URL with the columns it came with, as labels.
    let out = speedbatch(&["results", &id, "--csv"]).await;
    let export = text(&out.stdout);
    let lines: Vec<&str> = export.lines().collect();
    assert!(lines[0].starts_with("url,label.city,label.company_id,label.segment,status,"), "{export}");
    assert!(lines[1].starts_with(&format!("{},Lyon,B-17,bakery,succeeded,", site.url("/page/1"))), "{export}");
    assert!(lines[2].starts_with(&format!("{},\"Paris, 11e\",B-18,,succeeded,", site.url("/page/2"))), "{export}");
    // And in JSON, filtered by a label.
    let out = speedbatch(&["results", &id, "--json"]).await;
    let rows: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(rows["results"][0]["labels"]["company_id"], "B-17", "{rows}");
    std::fs::remove_file(&path).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_job_exits_2_when_watched() {
    let site = Site::start().await;
    let urls: Vec<String> = (1..=40).map(|n| site.url(&format!("/held/{n}"))).collect();
    let file = url_file("cancel", &urls);
    let out = speedbatch(&["submit", &file, "--batch-size", "1", "--json"]).await;
    let id = serde_json::from_slice::<Value>(&out.stdout).unwrap()["batch_job_id"].as_str().unwrap().to_owned();
    let out = speedbatch(&["cancel", &id]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with(&format!("{id}: cancel")), "{}", text(&out.stdout));
    let out = tokio::time::timeout(Duration::from_secs(300), speedbatch(&["status", &id, "--watch"])).await.unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains(": cancelled"), "{}", text(&out.stdout));
    // Cancelling again is a conflict, said in words.
    let out = speedbatch(&["cancel", &id]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).starts_with("error: "), "{}", text(&out.stderr));
}

#[tokio::test]
async fn errors_are_plain_words_and_exit_1() {
    let file = url_file("bad", &["https://example.com".to_owned()]);
    let out = speedbatch(&["submit", &file, "--batch-size", "50", "--strategy", "tablet"]).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.starts_with("error: 2 invalid fields\n"), "{stderr}");
    assert!(stderr.contains("  batch_size: must be a whole number from 1 to 20"), "{stderr}");
    assert!(stderr.contains("  strategy: \"tablet\" is not one of mobile, desktop, both"), "{stderr}");

    let out = speedbatch(&["status", "no-such-job"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).starts_with("error: "), "{}", text(&out.stderr));

    let out = speedbatch(&["jobs", "--api-key", "sb_wrong"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).to_lowercase().contains("key"), "{}", text(&out.stderr));

    let out = speedbatch(&["submit", "/nonexistent/urls.txt"]).await;
    assert_eq!((out.status.code(), text(&out.stderr).contains("/nonexistent/urls.txt: ")), (Some(1), true));
    let out = speedbatch(&["submit"]).await;
    assert_eq!(out.status.code(), Some(1), "a usage error is 1, not clap's 2: {}", text(&out.stderr));
    let out = speedbatch(&["--help"]).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("submit"));
}

/// Submits `urls` through the CLI and follows the job to its end; returns its id.
async fn watched_job(name: &str, urls: &[String]) -> String {
    let out =
        speedbatch(&["submit", &url_file(name, urls), "--engine", "http", "--batch-size", "2", "--watch", "--json"])
            .await;
    // The submission's answer, then the finished job: the last document is the end.
    let documents = serde_json::Deserializer::from_slice(&out.stdout).into_iter::<Value>();
    let end = documents.filter_map(Result::ok).last().unwrap_or_else(|| panic!("JSON: {}", text(&out.stderr)));
    assert_eq!(end["job"]["status"], "completed", "{end}");
    end["job"]["batch_job_id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_exits_2_on_a_regression_for_ci_and_history_shows_each_run() {
    let site = Site::start().await;
    let urls: Vec<String> = (0..2).map(|n| site.url(&format!("/tunable/{n}"))).collect();
    let before = watched_job("compare-before", &urls).await;
    site.set_delay(1, Duration::from_millis(800));
    let after = watched_job("compare-after", &urls).await;

    // --watch waited for the summary, so both digests are written.
    let out = speedbatch(&["compare", &before, &after]).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "a regression fails the pipeline\n{stdout}{}", text(&out.stderr));
    assert!(stdout.starts_with("1 regressed, 0 improved, 0 new, 0 gone, 1 unchanged\n"), "{stdout}");
    let regressed = stdout.lines().find(|l| l.starts_with("regressed")).unwrap_or_default();
    assert!(regressed.contains("/tunable/1") && regressed.contains("ttfb_ms +"), "{stdout}");
    assert!(!stdout.contains("/tunable/0"), "unchanged URLs only with --all: {stdout}");
    let out = speedbatch(&["compare", &before, &before]).await;
    assert_eq!(out.status.code(), Some(0), "nothing regressed: {}", text(&out.stdout));

    let out = speedbatch(&["history", &urls[1], "--metric", "ttfb_ms"]).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let rows: Vec<&str> = stdout.lines().skip(2).collect();
    assert_eq!(rows.len(), 2, "one point per job, oldest first: {stdout}");
    assert!(rows[0].ends_with(&before) && rows[1].ends_with(&after), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_monitor_is_created_run_watched_against_its_budget_and_deleted() {
    let site = Site::start().await;
    let path = std::env::temp_dir().join(format!("speedbatch-cli-monitor-{}.csv", std::process::id()));
    let (watched, other) = (site.url("/tunable/0"), site.url("/tunable/1"));
    std::fs::write(&path, format!("url,tier\n{watched},gold\n{other},silver\n")).unwrap();
    let file = path.to_string_lossy().into_owned();
    // Every gold page is over a budget no page meets: the run breaks it.
    let out = speedbatch(&[
        "monitor",
        "create",
        &file,
        "--schedule",
        "rate(1 day)",
        "--engine",
        "http",
        "--budget",
        "ttfb_ms<=0@tier:gold",
        "--json",
    ])
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = created["monitor_id"].as_str().unwrap().to_owned();
    assert_eq!(created["accepted"], 2, "{created}");

    let listed = text(&speedbatch(&["monitor", "list"]).await.stdout);
    assert!(listed.lines().any(|l| l.starts_with(&id) && l.contains("rate(1 day)")), "{listed}");
    let shown = text(&speedbatch(&["monitor", "show", &id]).await.stdout);
    assert!(
        shown.contains("2 URLs on rate(1 day), enabled") && shown.contains("budget ttfb_ms <= 0 (labels tier:gold)"),
        "{shown}"
    );
    let out = speedbatch(&["monitor", "budgets", &id]).await;
    assert_eq!(out.status.code(), Some(0), "nothing over budget before a run: {}", text(&out.stdout));

    let out = speedbatch(&["monitor", "run", &id]).await;
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let job = stdout.trim().rsplit(' ').next().unwrap().to_owned();
    let out = speedbatch(&["status", &job, "--watch"]).await;
    assert_eq!(out.status.code(), Some(0), "the run's job: {}", text(&out.stderr));

    // The budgets are checked when the run's report is written, just after it finishes.
    let started = std::time::Instant::now();
    let out = loop {
        let out = speedbatch(&["monitor", "budgets", &id]).await;
        if out.status.code() == Some(2) || started.elapsed() > Duration::from_secs(60) {
            break out;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "over budget fails a pipeline: {stdout}{}", text(&out.stderr));
    let rows: Vec<&str> = stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "only the gold page: {stdout}");
    assert!(
        rows[0].starts_with("ttfb_ms <= 0 (labels tier:gold)  breached") && rows[0].ends_with(&watched),
        "{stdout}"
    );

    let out = speedbatch(&["monitor", "delete", &id]).await;
    assert_eq!(
        (out.status.code(), text(&out.stdout).trim().to_owned()),
        (Some(0), format!("{id}: deleted")),
        "{}",
        text(&out.stderr)
    );
    let out = speedbatch(&["monitor", "show", &id]).await;
    assert_eq!(out.status.code(), Some(1), "gone: {}", text(&out.stderr));
    assert!(text(&out.stderr).contains("no monitor"), "{}", text(&out.stderr));
}

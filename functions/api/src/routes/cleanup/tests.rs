use std::collections::HashSet;

use aws::exports::{ExportFiles, MemoryExports};
use domain::{EngineKind, Job, JobSettings, JobStatus};
use store::MemoryStore;
use store::prelude::*;

use super::EXAMINE_MAX;
use crate::test_app::{Answer, app, app_with_exports, call, every_page, store, tenant};

/// `n` jobs of the fixture's tenant, finished unless `running`.
async fn jobs(store: &MemoryStore, n: usize, running: bool) {
    for _ in 0..n {
        let mut job = Job::new(tenant(), "n".into(), JobSettings::default(), 0, 0);
        if !running {
            job.status = JobStatus::Completed;
            job.finished_at = Some(1);
        }
        store.create_job(&job, &[]).await.unwrap();
    }
}

#[tokio::test]
async fn cleanup_looks_at_a_bounded_page_of_jobs_and_says_where_to_go_on() {
    let store = store().await;
    jobs(&store, 230, false).await;
    jobs(&store, 20, true).await;
    let app = app(store);

    // A preview pages the same way and deletes nothing.
    let preview = call(&app, "DELETE", "/cleanup?older_than_days=0&dry_run=true").await.json();
    assert_eq!(
        (preview["jobs_examined"].as_u64(), preview["jobs_deleted"].as_u64()),
        (Some(EXAMINE_MAX as u64), Some(0))
    );
    assert!(preview["next_cursor"].is_string());

    let mut deleted = HashSet::new();
    let pages = every_page(&app, "DELETE", "/cleanup?older_than_days=0").await;
    for body in pages.iter().map(Answer::json) {
        assert!(body["jobs_examined"].as_u64().unwrap() <= EXAMINE_MAX as u64, "{body}");
        assert!(body["batch_job_ids"].as_array().unwrap().len() <= EXAMINE_MAX, "a bounded list");
        assert_eq!(body["jobs_deleted"], body["jobs_matched"]);
        deleted.extend(body["batch_job_ids"].as_array().unwrap().iter().map(|id| id.as_str().unwrap().to_owned()));
    }
    let requests = pages.len();
    assert_eq!((deleted.len(), requests), (230, 2), "every finished job once, in two requests");
    let rest = call(&app, "GET", "/jobs?limit=100").await.json();
    let left = rest["jobs"].as_array().unwrap();
    assert_eq!(left.len(), 20);
    assert!(left.iter().all(|job| job["status"] == "pending"), "running jobs stay");
    assert_eq!(call(&app, "DELETE", "/cleanup?older_than_days=0&cursor=zz").await.status, 400);
}

#[tokio::test]
async fn cleanup_deletes_a_browser_jobs_screenshots_with_its_files_and_nothing_of_other_jobs() {
    let store = store().await;
    let finished = |engine: EngineKind| {
        let settings = JobSettings { engine, ..JobSettings::default() };
        let mut job = Job::new(tenant(), "n".into(), settings, 0, 0);
        (job.status, job.finished_at) = (JobStatus::Completed, Some(1));
        job
    };
    let (browser, http) = (finished(EngineKind::Browser), finished(EngineKind::Http));
    let running =
        Job::new(tenant(), "n".into(), JobSettings { engine: EngineKind::Browser, ..JobSettings::default() }, 0, 0);
    for job in [&browser, &http, &running] {
        store.create_job(job, &[]).await.unwrap();
    }
    let files = MemoryExports::default();
    let shot = |job: &Job, n: usize| {
        domain::screenshots::object_key(&domain::screenshots::name(job.id.as_str(), &n.to_string()))
    };
    for n in 0..3 {
        files.put(&shot(&browser, n), vec![0xff], "image/jpeg").await.unwrap();
        files.put(&shot(&running, n), vec![0xff], "image/jpeg").await.unwrap();
    }
    let csv = domain::report::ExportFormat::Csv.object_key(&browser.id);
    files.put(&csv, b"url".to_vec(), "text/csv").await.unwrap();
    let app = app_with_exports(store, files.clone());

    let answer = call(&app, "DELETE", "/cleanup?older_than_days=0").await;
    assert_eq!((answer.status.as_u16(), answer.json()["jobs_deleted"].as_u64()), (200, Some(2)), "{}", answer.text());
    assert!(files.object(&csv).is_none(), "the export file went");
    assert!((0..3).all(|n| files.object(&shot(&browser, n)).is_none()), "the finished browser job's screenshots went");
    assert_eq!(files.len(), 3, "the running job's screenshots stay");
}

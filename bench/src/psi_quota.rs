//! How close the PSI engine runs to its quota. Real PageSpeed Insights allows 400 requests per
//! 100 s and takes 10–20 s per analysis; here time is scaled by 10: Q = 40 requests per 10 s
//! window, 1–2 s per analysis. Five analyzer instances (each with its own engine and limiter
//! handle, sharing the one DynamoDB quota item on ministack) run eight URLs at a time each,
//! as the queue's concurrency would. A URL told to wait waits (on the queue, in production)
//! and tries again; nothing is failed by a 429.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use shared::config::PsiConfig;
use shared::domain::Strategy;
use shared::engine::psi::{ApiKey, KeyProvider};
use shared::engine::{Admission, Engine, PsiEngine};
use shared::quota::{DynamoQuota, QuotaLimits};
use shared::time::now_millis;
use support::aws::TestEnv;
use support::fake_psi::{FakePsi, FakePsiConfig, QuotaKind, QuotaWindow, lighthouse_fixture};

use crate::stats::{round, summary};

const QUOTA: u32 = 40;
const WINDOW: Duration = Duration::from_secs(10);
const INSTANCES: usize = 5;
const PER_INSTANCE: usize = 8;

pub async fn run(runs: usize, urls: usize) -> Result<(), String> {
    let env = TestEnv::new().await;
    let mut shares = Vec::new();
    let mut rejected_total = 0;
    for run in 1..=runs {
        let fake = FakePsi::start(FakePsiConfig {
            latency: Duration::from_millis(1000),
            jitter: Duration::from_millis(1000),
            quota: vec![QuotaWindow { limit: QUOTA, window: WINDOW, kind: QuotaKind::Per100Seconds }],
            ..FakePsiConfig::new(lighthouse_fixture())
        });
        let limits = QuotaLimits { per_window: QUOTA, window: WINDOW, per_day: 1_000_000, utilisation: 0.98 };
        let config = PsiConfig { key: "ssm:/unused".parse()?, endpoint: fake.endpoint(), quota: limits };
        let pending: Arc<Mutex<VecDeque<String>>> =
            Arc::new(Mutex::new((0..urls).map(|n| format!("https://example.com/run-{run}/page-{n}")).collect()));
        let done = Arc::new(Mutex::new(0usize));
        let mut workers = Vec::new();
        for _ in 0..INSTANCES {
            // Each instance is a Lambda container: its own engine, the shared quota item.
            let quota = DynamoQuota::new(env.dynamo.clone(), &env.table, format!("psi-bench-{run}"), limits);
            let engine = Arc::new(
                PsiEngine::new(&config, KeyProvider::Fixed(ApiKey::new("AIza-bench")), quota)
                    .map_err(|e| e.to_string())?,
            );
            for _ in 0..PER_INSTANCE {
                let (engine, pending, done) = (engine.clone(), pending.clone(), done.clone());
                workers.push(tokio::spawn(async move {
                    loop {
                        let Some(url) = pending.lock().ok().and_then(|mut p| p.pop_front()) else { return };
                        match engine.admit(now_millis()).await {
                            Ok(Admission::At(at)) => sleep_until(at).await,
                            Ok(Admission::Wait { until, .. }) => {
                                sleep_until(until).await;
                                requeue(&pending, url);
                                continue;
                            }
                            Err(e) => {
                                eprintln!("quota: {e}");
                                requeue(&pending, url);
                                continue;
                            }
                        }
                        match engine.analyze(&url, Strategy::Mobile, Duration::from_secs(60)).await {
                            Ok(_) => *done.lock().unwrap_or_else(|p| p.into_inner()) += 1,
                            Err(err) => {
                                if let Some(until) = err.defer_until {
                                    sleep_until(until.min(now_millis() + 10_000)).await;
                                }
                                requeue(&pending, url);
                            }
                        }
                    }
                }));
            }
        }
        for worker in workers {
            worker.await.map_err(|e| e.to_string())?;
        }
        let stats = fake.stats();
        let accepted = fake.accepted_timestamps();
        let (Some(first), Some(last)) = (accepted.first(), accepted.last()) else {
            return Err("the fake accepted no request".into());
        };
        // The rate between the first and the last accepted request, against Q per window.
        let span = (*last - *first).as_secs_f64();
        let rate = (accepted.len() - 1) as f64 / span;
        let share = rate / (f64::from(QUOTA) / WINDOW.as_secs_f64());
        let completed = *done.lock().unwrap_or_else(|p| p.into_inner());
        println!(
            "{}",
            json!({
                "bench": "psi-quota", "run": run, "urls": urls, "completed": completed,
                "quota": format!("{QUOTA} per {} s", WINDOW.as_secs()), "instances": INSTANCES,
                "concurrency": INSTANCES * PER_INSTANCE, "accepted": stats.accepted,
                "rejected_429": stats.rejected_quota, "max_in_window": stats.max_in_window,
                "seconds": round(span), "requests_per_second": round(rate), "share_of_quota": round(share),
            })
        );
        rejected_total += stats.rejected_quota;
        shares.push(share);
    }
    println!(
        "{}",
        json!({"bench": "psi-quota", "summary": true, "runs": runs, "share_of_quota": summary(&shares),
               "rejected_429_total": rejected_total})
    );
    env.cleanup().await;
    Ok(())
}

fn requeue(pending: &Mutex<VecDeque<String>>, url: String) {
    if let Ok(mut pending) = pending.lock() {
        pending.push_back(url);
    }
}

async fn sleep_until(at: i64) {
    let wait = u64::try_from(at - now_millis()).unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(wait)).await;
}

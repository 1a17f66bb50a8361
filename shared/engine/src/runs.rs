//! What one URL's analysis is made of: its field data first when the job asks for it (a
//! quick read of the Chrome UX Report, so a URL that must wait for that quota has spent no
//! lab analysis), then each form factor the job asked for (`both` is mobile and desktop), each
//! analysed `runs` times. The median run is kept and the spread between runs reported, since
//! one page load is a noisy sample.

use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::time::Instant;

use crate::{Admission, EngineError, Engines, FieldRequest, Request};
use domain::field::{self, FieldAsk};
use domain::quota::Asker;
use domain::time::{Millis, now_millis};
use domain::{Analysis, Category, EngineKind, ErrorKind, Strategy};

/// What a job asks for each of its URLs.
#[derive(Clone, Copy, Debug)]
pub struct Plan<'a> {
    pub engine: EngineKind,
    pub job: &'a str,
    pub url: &'a str,
    pub strategy: Strategy,
    /// 1 to 5.
    pub runs: u32,
    pub categories: &'a [Category],
    /// Whose URL it is, for the engine's quota: each run asks for its own place.
    pub asker: Asker<'a>,
    /// The Chrome UX Report's data too (or alone, with engine `none`).
    pub field: FieldAsk,
}

/// Takes a URL's first places before it is claimed: the field data's (when asked) and then
/// the lab engine's, so `measure` starts with both in hand. It may start at the later of the
/// two; if either must wait, so does the URL.
pub async fn admit<E: Engines>(
    engines: &E,
    engine: EngineKind,
    field: FieldAsk,
    asker: Asker<'_>,
    now: Millis,
) -> Result<Admission, domain::Error> {
    let field_at = match field.data {
        true => match engines.admit_field(asker, now).await? {
            Admission::At(at) => at,
            wait => return Ok(wait),
        },
        false => now,
    };
    if !engine.is_lab() {
        return Ok(Admission::At(field_at));
    }
    Ok(match engines.admit(engine, asker, now).await? {
        Admission::At(at) => Admission::At(at.max(field_at)),
        wait => wait,
    })
}

/// Measures `plan` before `deadline`, its first places taken by [`admit`]. Field data never
/// fails a URL that has a lab engine: what could not be read is said in `field_error` beside
/// the lab result; only a wait for its quota holds the URL back. With engine `none` it is the
/// whole result, and its failure the URL's.
pub async fn measure<E: Engines>(engines: &E, plan: &Plan<'_>, deadline: Instant) -> Result<Analysis, EngineError> {
    let field = match plan.field.data {
        false => None,
        true => {
            let request = FieldRequest {
                url: plan.url,
                strategy: plan.strategy,
                history: plan.field.history,
                asker: plan.asker,
                prepaid: true,
            };
            match engines.field(request).await {
                Ok(found) => Some(Ok(found)),
                Err(err) if err.defer_until.is_some() || !plan.engine.is_lab() => return Err(err),
                Err(err) => {
                    tracing::info!(url = plan.url, reason = %err.reason, "no field data; the lab result stands");
                    Some(Err(err.reason))
                }
            }
        }
    };
    let mut analysis = match plan.engine.is_lab() {
        true => measure_lab(engines, plan, deadline).await?,
        false => Analysis {
            engine: EngineKind::FieldOnly.as_str().into(),
            strategy: plan.strategy,
            score: None,
            metrics: Map::new(),
            cached_from: None,
        },
    };
    match field {
        Some(Ok(found)) => field::add_to(&mut analysis.metrics, &found),
        Some(Err(reason)) => field::add_error(&mut analysis.metrics, &reason),
        None => {}
    }
    Ok(analysis)
}

/// The lab engine's part. The first run of every form factor must succeed (its error is the
/// URL's); a later run that fails, finds no quota or no time left only makes the result rest
/// on fewer runs, which it says.
async fn measure_lab<E: Engines>(engines: &E, plan: &Plan<'_>, deadline: Instant) -> Result<Analysis, EngineError> {
    let form_factors = plan.strategy.form_factors();
    let mut result: Option<Analysis> = None;
    for (index, &strategy) in form_factors.iter().enumerate() {
        let request = Request { job: plan.job, url: plan.url, strategy, categories: plan.categories };
        // The analyzer took the quota slot of the very first run before claiming the URL.
        let already_admitted = index == 0;
        let runs = runs_of(engines, plan, request, already_admitted, deadline).await.map_err(|mut err| {
            if form_factors.len() > 1 {
                err.reason = format!("{strategy}: {}", err.reason);
            }
            err
        })?;
        let kept = median(runs, plan.runs);
        match result.as_mut() {
            None => result = Some(kept),
            // `both`: the mobile result leads (as in PageSpeed Insights); desktop sits beside it.
            Some(lead) => {
                // `desktop_score`, or for the http engine `desktop_delivery_score`.
                let (name, score) = match kept.headline_score() {
                    Some((name, score)) => (name, Some(score)),
                    None => (domain::history::SCORE, None),
                };
                lead.metrics.insert(format!("{strategy}_{name}"), json!(score));
                lead.metrics.insert(strategy.to_string(), Value::Object(kept.metrics));
            }
        }
    }
    let mut analysis = result.ok_or_else(|| EngineError::new(ErrorKind::InvalidUrl, "no form factor to analyse"))?;
    analysis.strategy = plan.strategy;
    Ok(analysis)
}

async fn runs_of<E: Engines>(
    engines: &E,
    plan: &Plan<'_>,
    request: Request<'_>,
    admitted: bool,
    deadline: Instant,
) -> Result<Vec<Analysis>, EngineError> {
    let mut runs = Vec::with_capacity(plan.runs as usize);
    for run in 0..plan.runs.max(1) {
        if run > 0 || !admitted {
            match engines.admit(plan.engine, plan.asker, now_millis()).await {
                Ok(Admission::At(at)) => {
                    let wait = Duration::from_millis(u64::try_from(at - now_millis()).unwrap_or(0));
                    if Instant::now() + wait >= deadline && !runs.is_empty() {
                        break;
                    }
                    tokio::time::sleep(wait).await;
                }
                // No place for another run: the runs made so far are the result.
                Ok(Admission::Wait { .. }) | Err(_) if !runs.is_empty() => break,
                Ok(Admission::Wait { until, reason }) => {
                    return Err(EngineError::deferred(ErrorKind::RateLimited, reason, until));
                }
                Err(err) => {
                    return Err(EngineError::new(ErrorKind::EngineUnavailable, err.to_string()));
                }
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() && !runs.is_empty() {
            break;
        }
        match engines.analyze(plan.engine, request, left).await {
            Ok(analysis) => runs.push(analysis),
            Err(err) if runs.is_empty() => return Err(err),
            Err(err) => {
                tracing::info!(url = plan.url, run, reason = %err.reason, "an extra run failed; keeping the others");
                if err.defer_until.is_some() {
                    break;
                }
            }
        }
    }
    Ok(runs)
}

/// The run with the median score (the lower middle one for an even count; the http engine's
/// runs by their delivery score), with the runs' scores and the spread of the score and of
/// every timing between them, each under its own name.
fn median(mut runs: Vec<Analysis>, requested: u32) -> Analysis {
    if requested <= 1 && runs.len() == 1 {
        return runs.remove(0);
    }
    let headlines: Vec<Option<(&'static str, f64)>> = runs.iter().map(Analysis::headline_score).collect();
    let name = headlines.iter().flatten().map(|(name, _)| *name).next().unwrap_or(domain::history::SCORE);
    let scores: Vec<Option<f64>> = headlines.iter().map(|h| h.map(|(_, score)| score)).collect();
    let mut order: Vec<usize> = (0..runs.len()).collect();
    order.sort_by(|&a, &b| scores[a].unwrap_or(f64::NEG_INFINITY).total_cmp(&scores[b].unwrap_or(f64::NEG_INFINITY)));
    let kept = order[(runs.len() - 1) / 2];

    let mut spread = Map::new();
    let present: Vec<f64> = scores.iter().flatten().copied().collect();
    if let Some(range) = range(&present) {
        spread.insert(name.into(), json!(range));
    }
    for name in runs[kept].metrics.keys().filter(|name| name.ends_with("_ms")) {
        let values: Vec<f64> = runs.iter().filter_map(|run| run.metrics.get(name)?.as_f64()).collect();
        if let Some(range) = range(&values).filter(|_| values.len() > 1) {
            spread.insert(name.clone(), json!(range));
        }
    }
    let completed = runs.len();
    let mut analysis = runs.swap_remove(kept);
    if let Some(score_spread) = spread.get(name).cloned() {
        analysis.metrics.insert(format!("{name}_spread"), score_spread);
    }
    analysis.metrics.insert(
        "runs".into(),
        json!({
            "requested": requested,
            "completed": completed,
            "kept": kept + 1,
            "scores": scores,
            "spread": spread,
        }),
    );
    analysis
}

/// max − min, rounded to a tenth.
fn range(values: &[f64]) -> Option<f64> {
    let min = values.iter().copied().reduce(f64::min)?;
    let max = values.iter().copied().reduce(f64::max)?;
    Some(((max - min) * 10.0).round() / 10.0)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use domain::Error;
    use domain::field::{FieldMetric, FieldRecord, FieldSource, FormFactorField};

    /// Scores each call from a script; records the strategies asked for.
    struct Scripted {
        scores: Vec<Result<f64, ErrorKind>>,
        calls: AtomicU32,
        asked: Mutex<Vec<Strategy>>,
        quota_left: AtomicU32,
        /// Results as the http engine gives them: a delivery score, no performance score.
        delivery: bool,
        /// What field data answers (`None`: the engines have none).
        field: Option<Result<Vec<FormFactorField>, EngineError>>,
        field_calls: AtomicU32,
    }

    impl Scripted {
        fn new(scores: Vec<Result<f64, ErrorKind>>) -> Self {
            Scripted {
                scores,
                calls: AtomicU32::new(0),
                asked: Mutex::new(Vec::new()),
                quota_left: AtomicU32::new(99),
                delivery: false,
                field: None,
                field_calls: AtomicU32::new(0),
            }
        }

        fn http(scores: Vec<Result<f64, ErrorKind>>) -> Self {
            Scripted { delivery: true, ..Scripted::new(scores) }
        }
    }

    impl Engines for Scripted {
        async fn admit(&self, _: EngineKind, _: Asker<'_>, now: Millis) -> Result<Admission, Error> {
            if self.quota_left.fetch_sub(1, Ordering::SeqCst) == 0 {
                return Ok(Admission::Wait { until: now + 60_000, reason: "quota".into() });
            }
            Ok(Admission::At(now))
        }

        async fn analyze(&self, _: EngineKind, request: Request<'_>, _: Duration) -> Result<Analysis, EngineError> {
            self.asked.lock().unwrap().push(request.strategy);
            let call = self.calls.fetch_add(1, Ordering::SeqCst) as usize;
            match self.scores[call % self.scores.len()] {
                Ok(score) => {
                    let mut metrics = Map::new();
                    metrics.insert("ttfb_ms".into(), json!(score * 2.0));
                    metrics.insert("status_code".into(), json!(200));
                    let mut analysis = Analysis {
                        engine: if self.delivery { "http" } else { "psi" }.into(),
                        strategy: request.strategy,
                        score: Some(score),
                        metrics,
                        cached_from: None,
                    };
                    domain::delivery::name_delivery_score(&mut analysis);
                    Ok(analysis)
                }
                Err(kind) => Err(EngineError::new(kind, "scripted failure")),
            }
        }

        async fn field(&self, request: FieldRequest<'_>) -> Result<Vec<FormFactorField>, EngineError> {
            assert!(request.prepaid, "admit took the first place");
            self.field_calls.fetch_add(1, Ordering::SeqCst);
            self.field.clone().expect("field data asked of engines without it")
        }
    }

    fn record(lcp: f64) -> FieldRecord {
        FieldRecord {
            source: FieldSource::Url,
            period: Some(("2026-11-01".into(), "2026-11-28".into())),
            p75: [(FieldMetric::Lcp, lcp), (FieldMetric::Cls, 0.01)].into_iter().collect(),
        }
    }

    fn with_field(engine: EngineKind, strategy: Strategy) -> Plan<'static> {
        Plan { engine, field: FieldAsk { data: true, history: false }, ..plan(strategy, 1) }
    }

    #[tokio::test]
    async fn field_data_sits_beside_the_lab_result_per_form_factor() {
        let mut engines = Scripted::new(vec![Ok(60.0), Ok(95.0)]);
        engines.field = Some(Ok(vec![
            FormFactorField { strategy: Strategy::Mobile, record: Some(record(4_500.0)), history: None },
            FormFactorField { strategy: Strategy::Desktop, record: None, history: None },
        ]));
        let analysis = measure(&engines, &with_field(EngineKind::Psi, Strategy::Both), later()).await.unwrap();
        assert_eq!(analysis.score, Some(60.0));
        let m = &analysis.metrics;
        assert_eq!(
            (m["field_status"].as_str(), m["field_overall_category"].as_str()),
            (Some("available"), Some("poor"))
        );
        assert_eq!(m["field_lcp_ms"], 4_500.0);
        assert_eq!(m["desktop"]["field_status"], "unavailable", "desktop's beside its lab numbers");
        assert_eq!(m["desktop"]["ttfb_ms"], 190.0);
        assert!(m.get("desktop_field_overall_category").is_none(), "no verdict without a record");
        assert_eq!(engines.field_calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn engine_none_is_field_data_alone_and_its_failure_the_urls() {
        let mut engines = Scripted::new(vec![Ok(60.0)]);
        engines.field = Some(Ok(vec![FormFactorField {
            strategy: Strategy::Mobile,
            record: Some(record(1_200.0)),
            history: None,
        }]));
        let plan = with_field(EngineKind::FieldOnly, Strategy::Mobile);
        let analysis = measure(&engines, &plan, later()).await.unwrap();
        assert_eq!((analysis.engine.as_str(), analysis.score), ("none", None));
        assert_eq!(analysis.metrics["field_overall_category"], "good");
        assert_eq!(engines.calls.load(Ordering::SeqCst), 0, "no page loaded");

        engines.field = Some(Err(EngineError::new(ErrorKind::Http5xx, "HTTP 503 from the Chrome UX Report")));
        let err = measure(&engines, &plan, later()).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Http5xx);
    }

    #[tokio::test]
    async fn a_field_failure_leaves_the_lab_result_and_a_quota_wait_holds_the_url_back() {
        let mut engines = Scripted::http(vec![Ok(70.0)]);
        engines.field = Some(Err(EngineError::new(ErrorKind::EngineUnavailable, "the key was refused")));
        let analysis = measure(&engines, &with_field(EngineKind::Http, Strategy::Mobile), later()).await.unwrap();
        assert_eq!(analysis.metrics["delivery_score"], 70.0);
        assert_eq!(
            (analysis.metrics["field_status"].as_str(), analysis.metrics["field_error"].as_str()),
            (Some("error"), Some("the key was refused"))
        );

        engines.field = Some(Err(EngineError::deferred(ErrorKind::RateLimited, "booked", 99)));
        let err = measure(&engines, &with_field(EngineKind::Http, Strategy::Mobile), later()).await.unwrap_err();
        assert_eq!(err.defer_until, Some(99));
        assert_eq!(engines.calls.load(Ordering::SeqCst), 1, "no lab run spent on a URL that waits");
    }

    #[tokio::test]
    async fn admission_takes_the_field_place_then_the_lab_one() {
        let engines = Scripted::new(vec![Ok(1.0)]);
        let asker = plan(Strategy::Mobile, 1).asker;
        let field = FieldAsk { data: true, history: false };
        assert_eq!(admit(&engines, EngineKind::FieldOnly, field, asker, 5).await.unwrap(), Admission::At(5));
        assert_eq!(engines.quota_left.load(Ordering::SeqCst), 99, "engine none takes no lab place");
        engines.quota_left.store(0, Ordering::SeqCst);
        let waits = admit(&engines, EngineKind::Psi, field, asker, 5).await.unwrap();
        assert!(matches!(waits, Admission::Wait { .. }), "{waits:?}");
    }

    fn plan(strategy: Strategy, runs: u32) -> Plan<'static> {
        let asker = Asker { tenant: "t", weight: 1, priority: domain::Priority::Normal };
        Plan {
            engine: EngineKind::Http,
            job: "job-1",
            url: "https://example.com",
            strategy,
            runs,
            categories: &[],
            asker,
            field: FieldAsk::NONE,
        }
    }

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(60)
    }

    #[tokio::test]
    async fn one_run_is_the_analysis_as_it_came() {
        let engines = Scripted::new(vec![Ok(80.0)]);
        let analysis = measure(&engines, &plan(Strategy::Mobile, 1), later()).await.unwrap();
        assert_eq!(analysis.score, Some(80.0));
        assert!(analysis.metrics.get("runs").is_none());
        assert_eq!(engines.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn the_median_run_is_kept_and_the_spread_reported() {
        let engines = Scripted::new(vec![Ok(90.0), Ok(40.0), Ok(70.0), Ok(75.0), Ok(60.0)]);
        let analysis = measure(&engines, &plan(Strategy::Desktop, 5), later()).await.unwrap();
        assert_eq!(analysis.score, Some(70.0));
        assert_eq!(analysis.metrics["ttfb_ms"], 140.0, "the kept run's own metrics");
        assert_eq!(analysis.metrics["score_spread"], 50.0);
        let runs = &analysis.metrics["runs"];
        assert_eq!(
            (runs["requested"].as_u64(), runs["completed"].as_u64(), runs["kept"].as_u64()),
            (Some(5), Some(5), Some(3))
        );
        assert_eq!(runs["scores"], json!([90.0, 40.0, 70.0, 75.0, 60.0]));
        assert_eq!(runs["spread"]["ttfb_ms"], 100.0);
        // An even count keeps the lower middle run: the cautious reading.
        let engines = Scripted::new(vec![Ok(90.0), Ok(40.0)]);
        let analysis = measure(&engines, &plan(Strategy::Mobile, 2), later()).await.unwrap();
        assert_eq!(analysis.score, Some(40.0));
    }

    #[tokio::test]
    async fn a_failed_extra_run_leaves_the_others_and_a_failed_first_run_fails_the_url() {
        let engines = Scripted::new(vec![Ok(50.0), Err(ErrorKind::Timeout), Ok(70.0)]);
        let analysis = measure(&engines, &plan(Strategy::Mobile, 3), later()).await.unwrap();
        assert_eq!(analysis.metrics["runs"]["completed"], 2);
        assert_eq!(analysis.score, Some(50.0));

        let engines = Scripted::new(vec![Err(ErrorKind::Http4xx), Ok(70.0)]);
        let err = measure(&engines, &plan(Strategy::Mobile, 3), later()).await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::Http4xx);
        assert_eq!(engines.calls.load(Ordering::SeqCst), 1, "no further runs of a failed URL");
    }

    #[tokio::test]
    async fn extra_runs_stop_when_the_quota_is_full() {
        let engines = Scripted::new(vec![Ok(50.0)]);
        engines.quota_left.store(1, Ordering::SeqCst);
        let analysis = measure(&engines, &plan(Strategy::Mobile, 4), later()).await.unwrap();
        assert_eq!(analysis.metrics["runs"]["completed"], 2);
        assert_eq!(engines.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn both_measures_mobile_then_desktop_and_stores_both() {
        let engines = Scripted::new(vec![Ok(60.0), Ok(95.0)]);
        let analysis = measure(&engines, &plan(Strategy::Both, 1), later()).await.unwrap();
        assert_eq!(*engines.asked.lock().unwrap(), [Strategy::Mobile, Strategy::Desktop]);
        assert_eq!(analysis.strategy, Strategy::Both);
        assert_eq!(analysis.score, Some(60.0));
        assert_eq!(analysis.metrics["desktop_score"], 95.0);
        assert_eq!(analysis.metrics["desktop"]["ttfb_ms"], 190.0);

        // A desktop failure is the URL's, and says which form factor failed.
        let engines = Scripted::new(vec![Ok(60.0), Err(ErrorKind::Http5xx)]);
        let err = measure(&engines, &plan(Strategy::Both, 1), later()).await.unwrap_err();
        assert_eq!((err.kind, err.reason.as_str()), (ErrorKind::Http5xx, "desktop: scripted failure"));
    }

    #[tokio::test]
    async fn both_with_runs_keeps_a_median_per_form_factor() {
        let engines = Scripted::new(vec![Ok(10.0), Ok(30.0), Ok(20.0), Ok(90.0), Ok(70.0), Ok(80.0)]);
        let analysis = measure(&engines, &plan(Strategy::Both, 3), later()).await.unwrap();
        assert_eq!(analysis.score, Some(20.0));
        assert_eq!(analysis.metrics["desktop_score"], 80.0);
        assert_eq!(analysis.metrics["desktop"]["runs"]["completed"], 3);
    }

    #[tokio::test]
    async fn the_http_engines_runs_are_ranked_and_spread_by_their_delivery_score() {
        let engines = Scripted::http(vec![Ok(90.0), Ok(40.0), Ok(70.0)]);
        let analysis = measure(&engines, &plan(Strategy::Mobile, 3), later()).await.unwrap();
        assert_eq!(analysis.score, None, "never a performance score");
        assert_eq!(analysis.metrics["delivery_score"], 70.0, "the median run");
        assert_eq!(analysis.metrics["delivery_score_spread"], 50.0);
        assert_eq!(analysis.metrics["runs"]["spread"]["delivery_score"], 50.0);
        assert!(analysis.metrics.get("score_spread").is_none());

        let engines = Scripted::http(vec![Ok(60.0), Ok(95.0)]);
        let analysis = measure(&engines, &plan(Strategy::Both, 1), later()).await.unwrap();
        assert_eq!(analysis.metrics["desktop_delivery_score"], 95.0);
        assert!(analysis.metrics.get("desktop_score").is_none());
    }
}

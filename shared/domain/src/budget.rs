//! Budgets on a monitor: a limit on one number of every URL (`max` for what should stay low,
//! `min` for what should stay high), optionally only for URLs with a label. After each run
//! every URL is checked against every budget; what is kept is each (URL, budget)'s state, and
//! only a change of state is announced.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::callback::CallbackDelivery;
use crate::history::{Headline, MetricName, url_hash};
use crate::job::JobId;
use crate::labels::{LabelFilter, Tags};
use crate::monitor::MonitorId;
use crate::task::{UrlStatus, UrlTask};
use crate::time::Millis;

/// The most budgets a monitor may have.
pub const MAX_BUDGETS: usize = 20;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Budget {
    /// `score` or a metric's name.
    pub metric: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Only URLs with this label (`name`) or this value of it (`name:value`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<String>,
}

crate::named_enum! {
    /// Where one URL stands against one budget after a run.
    BudgetState {
        Within => "within",
        Breached => "breached",
    }
}

impl Budget {
    /// One item of a monitor's `budgets`, every problem named.
    pub fn parse(value: &Value) -> Result<Budget, String> {
        let Value::Object(fields) = value else {
            return Err("must be an object {\"metric\", \"max\" or \"min\", \"labels\"?}".into());
        };
        if let Some(unknown) = fields.keys().find(|k| !["metric", "max", "min", "labels"].contains(&k.as_str())) {
            return Err(format!("{unknown:?} is not a budget field (metric, max, min, labels)"));
        }
        let metric = match fields.get("metric") {
            Some(Value::String(name)) => MetricName::parse(name)?.as_str().to_owned(),
            _ => return Err("metric is required: `score` or a metric's name such as lcp_ms".into()),
        };
        let number = |name: &str| match fields.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => value.as_f64().filter(|v| v.is_finite()).map(Some).ok_or(format!("{name} must be a number")),
        };
        let (max, min) = (number("max")?, number("min")?);
        if max.is_some() == min.is_some() {
            return Err("give exactly one of max (the number must stay at or below it) and min (at or above it)".into());
        }
        let labels = match fields.get("labels") {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Some(LabelFilter::parse(text).map(|_| text.clone())?),
            Some(_) => return Err("labels must be a label name, or name:value".into()),
        };
        Ok(Budget { metric, max, min, labels })
    }

    /// Whether the budget speaks of a URL with these tags.
    pub fn applies_to(&self, tags: &Tags) -> bool {
        self.labels.as_deref().and_then(|l| LabelFilter::parse(l).ok()).is_none_or(|filter| tags.matches(&filter))
    }

    /// A measured URL against the budget; `None` when the URL does not have the number (it
    /// is neither within nor over a budget it was not measured for).
    pub fn check(&self, headline: &Headline) -> Option<BudgetState> {
        let value = *headline.values.get(&self.metric)?;
        let over = self.max.is_some_and(|max| value > max) || self.min.is_some_and(|min| value < min);
        Some(if over { BudgetState::Breached } else { BudgetState::Within })
    }

    /// The budget in words, for events and tables: `lcp_ms <= 2500`.
    pub fn describe(&self) -> String {
        let limit = match (self.max, self.min) {
            (Some(max), _) => format!("<= {max}"),
            (_, Some(min)) => format!(">= {min}"),
            _ => String::new(),
        };
        match &self.labels {
            Some(labels) => format!("{} {limit} (labels {labels})", self.metric),
            None => format!("{} {limit}", self.metric),
        }
    }
}

/// A budget's identity for its kept states: its definition, hashed (a budget that is changed
/// is a new budget, and starts with no state).
pub fn budget_id(budget: &Budget) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(budget.describe().as_bytes())[..8])
}

/// One URL against one budget after a run.
#[derive(Clone, Debug, PartialEq)]
pub struct Check {
    pub url: String,
    pub budget: Budget,
    pub budget_id: String,
    pub state: BudgetState,
    pub value: f64,
}

/// Every measured URL of a run against every budget that applies to it. Each budget's id (a
/// hash) is worked out once, not once per URL.
pub fn check_run<'a>(budgets: &[Budget], tasks: impl IntoIterator<Item = &'a UrlTask>) -> Vec<Check> {
    let prepared: Vec<(&Budget, String)> = budgets.iter().map(|b| (b, budget_id(b))).collect();
    let mut checks = Vec::new();
    for task in tasks {
        let Some(analysis) = task.analysis.as_ref().filter(|_| task.status == UrlStatus::Succeeded) else { continue };
        let headline = Headline::of(analysis);
        for (budget, id) in prepared.iter().filter(|(b, _)| b.applies_to(&task.tags)) {
            if let (Some(state), Some(value)) = (budget.check(&headline), headline.values.get(&budget.metric)) {
                let (budget, budget_id) = ((*budget).clone(), id.clone());
                checks.push(Check { url: task.url.clone(), budget, budget_id, state, value: *value });
            }
        }
    }
    checks
}

/// What a check changes: `Breached` where the URL was not over the budget (or never checked),
/// `Recovered` where it was; nothing while a state holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Breached,
    Recovered,
}

impl Change {
    pub fn of(previous: Option<BudgetState>, now: BudgetState) -> Option<Change> {
        match (previous, now) {
            (Some(BudgetState::Breached), BudgetState::Within) => Some(Change::Recovered),
            (None | Some(BudgetState::Within), BudgetState::Breached) => Some(Change::Breached),
            _ => None,
        }
    }

    /// The event's `detail-type`.
    pub fn detail_type(self) -> &'static str {
        match self {
            Change::Breached => "Budget Breached",
            Change::Recovered => "Budget Recovered",
        }
    }
}

/// Where one URL stands against one budget, as kept between runs: since when, the value and
/// job that put it there, and how the callback announcing it went. Only changes are kept: a
/// URL that has always been within a budget has no standing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Standing {
    pub url: String,
    pub budget_id: String,
    pub budget: Budget,
    pub state: BudgetState,
    /// When the URL entered this state.
    pub since: Millis,
    pub value: f64,
    pub job_id: JobId,
    /// The callback announcing this state, when the monitor names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback: Option<CallbackDelivery>,
}

impl Standing {
    /// The change that put the URL in this state: a kept state is always one, since a URL that
    /// was never over a budget has none.
    pub fn change(&self) -> Change {
        match self.state {
            BudgetState::Breached => Change::Breached,
            BudgetState::Within => Change::Recovered,
        }
    }

    pub fn key(&self) -> StandingKey {
        StandingKey::new(&self.budget_id, &self.url)
    }
}

/// A standing's place in its monitor's list: by budget, then by the URL's hash (a fixed size
/// whatever the URL's length). A page of standings ends at one.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct StandingKey {
    pub budget_id: String,
    pub url_hash: String,
}

impl StandingKey {
    pub fn new(budget_id: &str, url: &str) -> StandingKey {
        StandingKey { budget_id: budget_id.to_owned(), url_hash: url_hash(url) }
    }

    pub fn encode(&self) -> String {
        format!("{}/{}", self.budget_id, self.url_hash)
    }

    pub fn decode(text: &str) -> Option<StandingKey> {
        let (budget_id, url_hash) = text.split_once('/')?;
        let hex = |s: &str| !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
        (hex(budget_id) && hex(url_hash))
            .then(|| StandingKey { budget_id: budget_id.to_owned(), url_hash: url_hash.to_owned() })
    }
}

/// Which standing a budget's callback announces, so its delivery is kept there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StandingRef {
    pub monitor_id: MonitorId,
    pub budget_id: String,
    pub url: String,
}

impl StandingRef {
    pub fn key(&self) -> StandingKey {
        StandingKey::new(&self.budget_id, &self.url)
    }
}

/// What a run changes: the standings to write and the changes to announce (the same, plus
/// any this run's export wrote before it was interrupted, announced again: at least once).
#[derive(Debug, Default, PartialEq)]
pub struct Evaluation {
    pub writes: Vec<Standing>,
    pub changes: Vec<(Change, Standing)>,
}

/// A run's checks against what was kept. A kept standing is looked up by (URL, budget), so a
/// 10 000-URL run against 20 budgets costs one pass, not a search per check.
pub fn evaluate(checks: Vec<Check>, kept: &[Standing], job: &JobId, now: Millis) -> Evaluation {
    let kept: HashMap<(&str, &str), &Standing> =
        kept.iter().map(|s| ((s.url.as_str(), s.budget_id.as_str()), s)).collect();
    let mut evaluation = Evaluation::default();
    for check in checks {
        let previous = kept.get(&(check.url.as_str(), check.budget_id.as_str())).copied();
        if let Some(previous) = previous.filter(|p| p.job_id == *job) {
            // Written by an earlier attempt at this run's export, which may not have announced it.
            evaluation.changes.push((previous.change(), previous.clone()));
            continue;
        }
        let Some(change) = Change::of(previous.map(|p| p.state), check.state) else { continue };
        let standing = Standing {
            url: check.url,
            budget_id: check.budget_id,
            budget: check.budget,
            state: check.state,
            since: now,
            value: check.value,
            job_id: job.clone(),
            callback: None,
        };
        evaluation.changes.push((change, standing.clone()));
        evaluation.writes.push(standing);
    }
    evaluation
}

/// A monitor's `budgets`: at most `MAX_BUDGETS`, each valid; every problem at once, by index.
pub fn parse_budgets(value: &Value) -> Result<Vec<Budget>, Vec<String>> {
    let Value::Array(items) = value else { return Err(vec!["budgets must be an array".into()]) };
    if items.len() > MAX_BUDGETS {
        return Err(vec![format!("budgets: at most {MAX_BUDGETS}, not {}", items.len())]);
    }
    let mut budgets = Vec::new();
    let mut problems = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match Budget::parse(item) {
            Ok(budget) => budgets.push(budget),
            Err(problem) => problems.push(format!("budgets[{i}]: {problem}")),
        }
    }
    if problems.is_empty() { Ok(budgets) } else { Err(problems) }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::settings::Strategy;

    fn headline(values: &[(&str, f64)]) -> Headline {
        Headline {
            engine: "http".into(),
            strategy: Strategy::Mobile,
            values: values.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
            spread: Default::default(),
        }
    }

    #[test]
    fn a_budget_is_a_limit_on_one_number_either_way() {
        let lcp = Budget::parse(&json!({"metric": "lcp_ms", "max": 2500})).unwrap();
        assert_eq!(lcp.check(&headline(&[("lcp_ms", 2_500.0)])), Some(BudgetState::Within), "at the limit is within");
        assert_eq!(lcp.check(&headline(&[("lcp_ms", 2_501.0)])), Some(BudgetState::Breached));
        assert_eq!(lcp.check(&headline(&[("ttfb_ms", 9.0)])), None, "not measured: no state");
        let score = Budget::parse(&json!({"metric": "score", "min": 90})).unwrap();
        assert_eq!(score.check(&headline(&[("score", 89.0)])), Some(BudgetState::Breached));
        assert_eq!(score.describe(), "score >= 90");
    }

    #[test]
    fn a_labelled_budget_speaks_only_of_its_urls() {
        let budget = Budget::parse(&json!({"metric": "score", "min": 50, "labels": "tier:gold"})).unwrap();
        let gold = Tags { labels: [("tier".into(), "gold".into())].into(), ..Tags::default() };
        assert!(budget.applies_to(&gold));
        assert!(!budget.applies_to(&Tags::default()));
        assert_eq!(budget.describe(), "score >= 50 (labels tier:gold)");
    }

    #[test]
    fn only_a_change_of_state_is_announced() {
        use BudgetState::{Breached, Within};
        assert_eq!(Change::of(None, Breached), Some(Change::Breached), "over on its first check");
        assert_eq!(Change::of(Some(Within), Breached), Some(Change::Breached));
        assert_eq!(Change::of(Some(Breached), Breached), None, "never again while it holds");
        assert_eq!(Change::of(Some(Breached), Within), Some(Change::Recovered));
        assert_eq!((Change::of(None, Within), Change::of(Some(Within), Within)), (None, None));
    }

    #[test]
    fn a_run_is_checked_url_by_url_against_the_budgets_that_apply() {
        use crate::job::JobId;
        use crate::task::Analysis;
        let task = |url: &str, status: UrlStatus, lcp: f64, tier: &str| UrlTask {
            job_id: JobId::generate(),
            seq: 0,
            url: url.into(),
            status,
            attempts: 1,
            error: None,
            error_kind: None,
            analysis: Some(Analysis {
                engine: "psi".into(),
                strategy: Strategy::Mobile,
                score: Some(90.0),
                metrics: json!({"lcp_ms": lcp}).as_object().cloned().unwrap_or_default(),
                cached_from: None,
            }),
            analyzed_at: Some(1),
            lease_until: None,
            tags: Tags { labels: [("tier".into(), tier.into())].into(), ..Tags::default() },
        };
        let budgets = parse_budgets(
            &json!([{"metric": "lcp_ms", "max": 2500}, {"metric": "score", "min": 95, "labels": "tier:gold"}]),
        )
        .unwrap();
        let tasks = [
            task("https://a", UrlStatus::Succeeded, 3_000.0, "gold"),
            task("https://b", UrlStatus::Succeeded, 1_000.0, "silver"),
            task("https://c", UrlStatus::Failed, 9_000.0, "gold"),
        ];
        let run = check_run(&budgets, &tasks);
        let checks: Vec<(&str, &str, BudgetState)> =
            run.iter().map(|c| (c.url.as_str(), c.budget.metric.as_str(), c.state)).collect();
        assert_eq!(
            checks,
            [
                ("https://a", "lcp_ms", BudgetState::Breached),
                ("https://a", "score", BudgetState::Breached),
                ("https://b", "lcp_ms", BudgetState::Within)
            ],
            "a failed URL is not measured; the gold budget skips silver"
        );
        assert_ne!(budget_id(&budgets[0]), budget_id(&Budget { max: Some(3_000.0), ..budgets[0].clone() }));
    }

    #[test]
    fn a_run_keeps_and_announces_only_changes() {
        let budget = Budget::parse(&json!({"metric": "lcp_ms", "max": 2500})).unwrap();
        let id = budget_id(&budget);
        let check = |url: &str, state| Check {
            url: url.into(),
            budget: budget.clone(),
            budget_id: id.clone(),
            state,
            value: 1.0,
        };
        let announced = |e: &Evaluation| e.changes.iter().map(|(c, s)| (*c, s.url.clone())).collect::<Vec<_>>();
        let (first, second, third) = (JobId::generate(), JobId::generate(), JobId::generate());
        let run = evaluate(
            vec![check("https://a", BudgetState::Breached), check("https://b", BudgetState::Within)],
            &[],
            &first,
            10,
        );
        assert_eq!(run.writes.iter().map(|s| s.url.as_str()).collect::<Vec<_>>(), ["https://a"], "b was never over");
        assert_eq!(announced(&run), [(Change::Breached, "https://a".into())]);
        let mut kept = run.writes;
        // The next run: a still over (nothing), b now over.
        let run = evaluate(
            vec![check("https://a", BudgetState::Breached), check("https://b", BudgetState::Breached)],
            &kept,
            &second,
            20,
        );
        assert_eq!(run.writes.iter().map(|s| (s.url.as_str(), s.since)).collect::<Vec<_>>(), [("https://b", 20)]);
        assert_eq!(announced(&run), [(Change::Breached, "https://b".into())]);
        kept.extend(run.writes);
        // Its export again after it wrote b but before it announced: b is announced again, not kept again.
        let again = evaluate(
            vec![check("https://a", BudgetState::Breached), check("https://b", BudgetState::Breached)],
            &kept,
            &second,
            25,
        );
        assert_eq!((again.writes.len(), announced(&again)), (0, vec![(Change::Breached, "https://b".into())]));
        assert_eq!(again.changes[0].1.since, 20, "since the first attempt");
        let run = evaluate(vec![check("https://a", BudgetState::Within)], &kept, &third, 30);
        assert_eq!(announced(&run), [(Change::Recovered, "https://a".into())]);
        assert_eq!(run.writes[0].change(), Change::Recovered);
    }

    #[test]
    fn a_standing_key_round_trips_and_refuses_anything_else() {
        let key = StandingKey { budget_id: "0123abcd".into(), url_hash: url_hash("https://a") };
        assert_eq!(StandingKey::decode(&key.encode()), Some(key));
        for bad in ["", "abc", "abc/", "/abc", "ab/zz", "a b/cd"] {
            assert_eq!(StandingKey::decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn bad_budgets_say_what_is_wrong_each_by_its_place() {
        let problems = parse_budgets(&json!([
            {"metric": "lcp_ms", "max": 2500},
            {"metric": "LCP", "max": 1},
            {"metric": "score"},
            {"metric": "score", "max": 1, "min": 0},
            {"metric": "score", "max": "fast"},
            {"metric": "score", "max": 1, "colour": "red"},
            {"metric": "score", "max": 1, "labels": ""},
            "score < 50",
        ]))
        .unwrap_err();
        let expected = [
            "budgets[1]: \"LCP\" is not a metric name",
            "budgets[2]: give exactly one of max",
            "budgets[3]: give exactly one of max",
            "budgets[4]: max must be a number",
            "budgets[5]: \"colour\" is not a budget field",
            "budgets[6]: must be a label name",
            "budgets[7]: must be an object",
        ];
        assert_eq!(problems.len(), expected.len(), "{problems:?}");
        for (problem, start) in problems.iter().zip(expected) {
            assert!(problem.starts_with(start), "{problem} / {start}");
        }
        let many = json!((0..21).map(|_| json!({"metric": "score", "min": 1})).collect::<Vec<_>>());
        assert_eq!(parse_budgets(&many).unwrap_err(), ["budgets: at most 20, not 21"]);
    }
}

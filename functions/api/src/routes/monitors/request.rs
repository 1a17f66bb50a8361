//! What `POST /monitors` and `PATCH /monitors/{id}` take: a job's fields as `/start` takes
//! them (validated by the same code), and `schedule`, `budgets`, `enabled`. A change is the
//! monitor's definition with the change's fields over it, validated whole.

use domain::budget::{Budget, parse_budgets};
use domain::monitor::Monitor;
use domain::schedule::Schedule;
use domain::{AddressPolicy, JobSettings, Offered};
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::routes::start::request::{JOB_FIELDS, JobFields, Problems, Source, job_fields, with_fields};

/// The fields a monitor takes; anything else is reported as unknown.
pub const MONITOR_FIELDS: [&str; 19] = with_fields(JOB_FIELDS, ["schedule", "budgets", "enabled"]);

/// A monitor's definition, every field valid.
pub(super) struct Definition {
    pub name: Option<String>,
    /// `None` on a change that keeps the monitor's URLs.
    pub source: Option<Source>,
    pub settings: JobSettings,
    pub schedule: (Schedule, String),
    pub budgets: Vec<Budget>,
    pub enabled: bool,
}

/// A new monitor's body.
pub(super) fn new_monitor(
    body: &Map<String, Value>,
    policy: AddressPolicy,
    offered: Offered,
) -> Result<Definition, ApiError> {
    definition(body, policy, offered, true)
}

/// `monitor` with `change` over it: the change's fields replace the monitor's, URLs or a
/// sitemap replace the other.
pub(super) fn changed(
    monitor: &Monitor,
    change: &Map<String, Value>,
    policy: AddressPolicy,
    offered: Offered,
) -> Result<Definition, ApiError> {
    let mut problems = Problems::default();
    problems.unknown_fields(change, &MONITOR_FIELDS);
    problems.finish()?;
    let mut body = as_body(monitor);
    if change.contains_key("urls") {
        body.remove("sitemap_url");
    }
    if change.contains_key("sitemap_url") {
        body.remove("urls");
    }
    body.extend(change.clone());
    definition(&body, policy, offered, false)
}

fn definition(
    body: &Map<String, Value>,
    policy: AddressPolicy,
    offered: Offered,
    creating: bool,
) -> Result<Definition, ApiError> {
    let mut problems = Problems::default();
    problems.unknown_fields(body, &MONITOR_FIELDS);
    let JobFields { name, source, settings } = job_fields(body, policy, offered, creating, &mut problems);
    let schedule = match body.get("schedule") {
        Some(Value::String(text)) => match Schedule::parse(text) {
            Ok(schedule) => Some((schedule, text.trim().to_owned())),
            Err(message) => {
                problems.add("schedule", message);
                None
            }
        },
        None | Some(Value::Null) => {
            problems.add("schedule", "is required: rate(N minutes|hours|days), at least 15 minutes, or cron(...)");
            None
        }
        Some(_) => {
            problems.add("schedule", "must be a string such as rate(1 hour) or cron(0 6 * * ? *)");
            None
        }
    };
    let budgets = match body.get("budgets") {
        None | Some(Value::Null) => Vec::new(),
        Some(value) => parse_budgets(value).unwrap_or_else(|list| {
            for problem in list {
                let (field, message) = problem.split_once(": ").unwrap_or(("budgets", problem.as_str()));
                problems.add(field, message);
            }
            Vec::new()
        }),
    };
    // A budget on the performance score would never be checked on the http engine's runs.
    if !settings.engine.scores_performance() {
        for (i, budget) in budgets.iter().enumerate() {
            if let Some(instead) = domain::delivery::delivery_name(&budget.metric) {
                problems.add(
                    &format!("budgets[{i}]"),
                    format!("the http engine gives no performance score ({}): use {instead}", budget.metric),
                );
            }
        }
    }
    let enabled = match body.get("enabled") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(enabled)) => *enabled,
        Some(_) => {
            problems.add("enabled", "must be true or false");
            true
        }
    };
    problems.finish()?;
    let schedule = schedule.ok_or_else(|| ApiError::invalid_field("schedule", "is required"))?;
    Ok(Definition { name, source, settings, schedule, budgets, enabled })
}

/// A monitor's definition as a body (its URLs stay where they are kept).
fn as_body(monitor: &Monitor) -> Map<String, Value> {
    let s = &monitor.settings;
    let mut body = json!({
        "name": monitor.name,
        "schedule": monitor.schedule,
        "priority": s.priority,
        "strategy": s.strategy,
        "engine": s.engine,
        "batch_size": s.batch_size,
        "timeout_seconds": s.timeout_seconds,
        "max_retries": s.max_retries,
        "runs": s.runs,
        "cache_ttl_seconds": s.cache_ttl_seconds,
        "categories": s.categories,
        "budgets": monitor.budgets,
        "enabled": monitor.enabled,
    });
    let fields = body.as_object_mut().map(std::mem::take).unwrap_or_default();
    let mut fields = fields;
    if let Some(url) = &s.callback_url {
        fields.insert("callback_url".into(), json!(url));
    }
    if let Some(host) = s.host_concurrency {
        fields.insert("host_concurrency".into(), json!(host));
    }
    if let Some(sitemap) = &monitor.sitemap_url {
        fields.insert("sitemap_url".into(), json!(sitemap));
    }
    fields
}

//! What `POST /start` takes: the documented body (`StartRequest`) and the validation that
//! reports every problem of a submission at once. Bounds and defaults are `domain::settings`'s;
//! the OpenAPI document takes them from there too.

use domain::field::FieldAsk;
use domain::labels;
use domain::politeness::HOST_CONCURRENCY;
use domain::settings::{
    BATCH_SIZE, Bounds, CACHE_TTL_SECONDS, MAX_NAME_CHARS, MAX_RETRIES, MAX_URLS, RUNS, TIMEOUT_SECONDS,
};
use domain::{
    AddressPolicy, Category, CleanUrl, EngineChoice, EngineKind, JobSettings, Offered, Priority, Strategy, Tags,
};
use serde_json::{Map, Value, json};

use crate::error::ApiError;

/// The fields of a job's definition, which `POST /start` and a monitor both take.
pub const JOB_FIELDS: [&str; 16] = [
    "name",
    "urls",
    "sitemap_url",
    "priority",
    "strategy",
    "batch_size",
    "timeout_seconds",
    "max_retries",
    "engine",
    "callback_url",
    "runs",
    "cache_ttl_seconds",
    "categories",
    "host_concurrency",
    "field_data",
    "field_history",
];

/// The fields `POST /start` takes; anything else is reported as unknown.
pub const START_FIELDS: [&str; 17] = with_fields(JOB_FIELDS, ["dry_run"]);

/// `fields` and then `more`, as one list (`N` is their sum, checked when compiled).
pub const fn with_fields<const A: usize, const B: usize, const N: usize>(
    fields: [&'static str; A],
    more: [&'static str; B],
) -> [&'static str; N] {
    assert!(A + B == N, "N must be the two lists' lengths together");
    let mut out = [""; N];
    let mut i = 0;
    while i < A {
        out[i] = fields[i];
        i += 1;
    }
    while i < N {
        out[i] = more[i - A];
        i += 1;
    }
    out
}

/// The body of `POST /start`, for the OpenAPI document. The handler validates the JSON field
/// by field itself (to report every problem at once); a test keeps the two in step, and the
/// document's bounds are added from `domain::settings` (`openapi::Bounds`).
// `Deserialize` is derived only for `deny_unknown_fields`, which utoipa documents as
// `additionalProperties: false`: the handler refuses unknown fields.
#[allow(dead_code)]
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"urls": ["example.com", "https://example.org/about/"], "priority": "high", "batch_size": 2}))]
pub struct StartRequest {
    /// Not blank; generated from the time when absent.
    name: Option<String>,
    /// The URLs to analyse; give this or `sitemap_url`. Each a URL, or an object with the
    /// client's own `ref` and `labels` for it, carried to its result.
    urls: Option<Vec<UrlItem>>,
    /// A sitemap or sitemap index (gzip too), expanded server-side.
    sitemap_url: Option<String>,
    /// Default `normal`; `urgent` and `high` use the high queue.
    priority: Option<Priority>,
    /// Default `mobile`.
    strategy: Option<Strategy>,
    /// The most URLs of this job analysed at once, fleet-wide.
    batch_size: Option<u32>,
    /// Seconds per URL; the response states the effective value.
    timeout_seconds: Option<u32>,
    /// Retries of a URL after a retryable failure.
    max_retries: Option<u32>,
    /// Default `auto`: `psi` where the deployment has a PageSpeed Insights key, else `http`.
    /// `none` loads no page: field data only (implies `field_data`), the fastest and cheapest
    /// scan.
    engine: Option<EngineChoice>,
    /// An http(s) URL that receives a signed POST when the job finishes or is cancelled
    /// (the signing secret is at `GET /callback-secret`).
    callback_url: Option<String>,
    /// Analyses per URL and form factor; the median run is kept and the spread between runs
    /// reported.
    runs: Option<u32>,
    /// Reuse the tenant's result for the same URL, engine and strategy when it is at most
    /// this old (0: never); the result is marked as cached.
    cache_ttl_seconds: Option<u32>,
    /// PageSpeed Insights categories, default `["performance"]`; the `http` engine measures
    /// how pages are delivered (a delivery score, not a performance score) and takes no other.
    categories: Option<Vec<Category>>,
    /// The most URLs of one host analysed at once while this job's URLs run, fleet-wide and
    /// with every other job's: fewer than the deployment's (4 by default) to be gentler with
    /// a fragile site; more than the deployment's changes nothing.
    host_concurrency: Option<u32>,
    /// Real users' experience from the Chrome UX Report (the last 28 days' p75 of LCP, INP,
    /// CLS, FCP and TTFB with their categories and the Core Web Vitals verdict), the URL's own
    /// or its origin's, beside the lab result; needs a deployment with a CrUX key. Default
    /// false (true with engine `none` or `field_history`).
    field_data: Option<bool>,
    /// Each URL's weekly p75 series of the last 40 weeks too (`field_history` in its result).
    /// Default false.
    field_history: Option<bool>,
    /// Validate and clean only: answer 200 with what would be accepted and rejected, and
    /// create nothing (the dashboard shows this before submitting).
    dry_run: Option<bool>,
}

/// One `urls` item, for the OpenAPI document (`domain::labels::parse_item` reads it).
#[allow(dead_code)]
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum UrlItem {
    Url(String),
    Tagged {
        url: String,
        /// The client's reference for the URL (at most 200 characters; a number is kept as
        /// written).
        #[serde(rename = "ref")]
        reference: Option<String>,
        /// At most 10 labels, names and values of at most 100 characters.
        labels: Option<std::collections::BTreeMap<String, String>>,
    },
}

/// A submission whose every field passed validation.
#[derive(Debug)]
pub(super) struct Submission {
    pub name: Option<String>,
    pub source: Source,
    pub settings: JobSettings,
    pub dry_run: bool,
}

/// Where the URLs come from.
#[derive(Debug)]
pub(crate) enum Source {
    /// As given, each with its tags.
    Urls(Vec<(String, Tags)>),
    Sitemap(String),
}

/// The field-by-field problems of a submission, reported together.
#[derive(Default)]
pub(crate) struct Problems(Vec<Value>);

impl Problems {
    pub(crate) fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(json!({"field": field, "message": message.into()}));
    }

    /// Fields the body has that are not `known`.
    pub(crate) fn unknown_fields(&mut self, body: &Map<String, Value>, known: &[&str]) {
        for field in body.keys().filter(|k| !known.contains(&k.as_str())) {
            self.add(field, format!("unknown field; expected one of {}", known.join(", ")));
        }
    }

    /// Every problem as one 422, or nothing.
    pub(crate) fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            return Ok(());
        }
        let count = self.0.len();
        Err(ApiError::Invalid {
            message: format!("{count} invalid field{}", if count == 1 { "" } else { "s" }),
            details: Value::Array(self.0),
        })
    }
}

/// What a job is made of, as a submission or a monitor gives it.
pub(crate) struct JobFields {
    pub name: Option<String>,
    /// `None` when neither `urls` nor `sitemap_url` was given and `urls_required` was false.
    pub source: Option<Source>,
    pub settings: JobSettings,
}

fn integer(body: &Map<String, Value>, bounds: &Bounds, problems: &mut Problems) -> u32 {
    match body.get(bounds.field) {
        None | Some(Value::Null) => bounds.default,
        Some(value) => match value.as_u64() {
            Some(n) if bounds.contains(n) => n as u32,
            _ => {
                problems.add(bounds.field, bounds.expected());
                bounds.default
            }
        },
    }
}

/// An integer within `bounds` that has no default of its own (absent: `None`).
fn optional_integer(body: &Map<String, Value>, bounds: &Bounds, problems: &mut Problems) -> Option<u32> {
    match body.get(bounds.field) {
        None | Some(Value::Null) => None,
        Some(value) => match value.as_u64() {
            Some(n) if bounds.contains(n) => Some(n as u32),
            _ => {
                problems.add(bounds.field, bounds.expected());
                None
            }
        },
    }
}

/// A list of distinct named values, performance always among them.
fn categories(body: &Map<String, Value>, problems: &mut Problems) -> Vec<Category> {
    let mut chosen = vec![Category::Performance];
    match body.get("categories") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                match item.as_str().map(str::parse::<Category>) {
                    Some(Ok(category)) if !chosen.contains(&category) => chosen.push(category),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => problems.add(&format!("categories[{i}]"), e),
                    None => problems.add(&format!("categories[{i}]"), "must be a string"),
                }
            }
        }
        Some(_) => problems.add("categories", "must be a list of strings"),
    }
    chosen
}

/// A true-or-false field, absent as `None`.
fn flag(body: &Map<String, Value>, field: &str, problems: &mut Problems) -> Option<bool> {
    match body.get(field) {
        None | Some(Value::Null) => None,
        Some(Value::Bool(flag)) => Some(*flag),
        Some(_) => {
            problems.add(field, "must be true or false");
            None
        }
    }
}

fn choice<T: std::str::FromStr<Err = String>>(
    body: &Map<String, Value>,
    field: &str,
    default: T,
    problems: &mut Problems,
) -> T {
    match body.get(field) {
        None | Some(Value::Null) => default,
        Some(Value::String(text)) => text.parse().unwrap_or_else(|e| {
            problems.add(field, e);
            default
        }),
        Some(_) => {
            problems.add(field, "must be a string");
            default
        }
    }
}

pub(super) fn validate(
    body: Map<String, Value>,
    policy: AddressPolicy,
    offered: Offered,
) -> Result<Submission, ApiError> {
    let mut problems = Problems::default();
    problems.unknown_fields(&body, &START_FIELDS);
    let fields = job_fields(&body, policy, offered, true, &mut problems);
    let dry_run = flag(&body, "dry_run", &mut problems).unwrap_or(false);
    problems.finish()?;
    let source = fields.source.unwrap_or(Source::Urls(Vec::new()));
    Ok(Submission { name: fields.name, source, settings: fields.settings, dry_run })
}

/// The fields of a job (its name, URLs or sitemap, and settings), each problem added to
/// `problems`; without `urls_required`, a body with neither `urls` nor `sitemap_url` is fine
/// (a monitor's change that keeps its URLs).
pub(crate) fn job_fields(
    body: &Map<String, Value>,
    policy: AddressPolicy,
    offered: Offered,
    urls_required: bool,
    problems: &mut Problems,
) -> JobFields {
    let name = match body.get("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) if name.trim().is_empty() => {
            problems.add("name", "must not be blank");
            None
        }
        Some(Value::String(name)) if name.chars().count() > MAX_NAME_CHARS => {
            problems.add("name", format!("must be at most {MAX_NAME_CHARS} characters"));
            None
        }
        Some(Value::String(name)) => Some(name.trim().to_owned()),
        Some(_) => {
            problems.add("name", "must be a string");
            None
        }
    };
    let sitemap = match body.get("sitemap_url") {
        None | Some(Value::Null) => None,
        Some(Value::String(url)) => Some(url.clone()),
        Some(_) => {
            problems.add("sitemap_url", "must be a string");
            None
        }
    };
    let urls = match body.get("urls") {
        None | Some(Value::Null) if sitemap.is_some() || !urls_required => None,
        None | Some(Value::Null) => {
            problems.add("urls", format!("is required: a list of 1 to {MAX_URLS} URLs (or give sitemap_url)"));
            None
        }
        Some(_) if sitemap.is_some() => {
            problems.add("urls", "give urls or sitemap_url, not both");
            None
        }
        Some(Value::Array(items)) if items.is_empty() => {
            problems.add("urls", "must contain at least one URL");
            None
        }
        Some(Value::Array(items)) if items.len() > MAX_URLS => {
            problems.add("urls", format!("has {} entries; at most {MAX_URLS} are allowed", items.len()));
            None
        }
        Some(Value::Array(items)) => {
            let mut urls = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                match labels::parse_item(item) {
                    Ok(tagged) => urls.push(tagged),
                    Err(message) => problems.add(&format!("urls[{i}]"), message),
                }
            }
            Some(urls)
        }
        Some(_) => {
            problems.add("urls", "must be a list of URLs (strings, or objects {\"url\", \"ref\", \"labels\"})");
            None
        }
    };
    let callback_url = match body.get("callback_url") {
        None | Some(Value::Null) => None,
        Some(Value::String(url)) => match CleanUrl::parse(url, policy) {
            Ok(url) => Some(url.as_str().to_owned()),
            Err(reason) => {
                problems.add("callback_url", reason.to_string());
                None
            }
        },
        Some(_) => {
            problems.add("callback_url", "must be a string");
            None
        }
    };
    let default = JobSettings::default();
    let priority = choice(body, "priority", default.priority, problems);
    let strategy = choice(body, "strategy", default.strategy, problems);
    // The job records the engine it runs on: `auto` is resolved here, once.
    let engine = choice(body, "engine", EngineChoice::Auto, problems).resolve(offered).unwrap_or_else(|why| {
        problems.add("engine", why);
        default.engine
    });
    let field = FieldAsk::resolve(
        engine,
        flag(body, "field_data", problems),
        flag(body, "field_history", problems),
        offered.crux,
    )
    .unwrap_or_else(|found| {
        for (field, message) in found {
            problems.add(field, message);
        }
        FieldAsk::NONE
    });
    let settings = JobSettings {
        priority,
        strategy,
        engine,
        batch_size: integer(body, &BATCH_SIZE, problems),
        timeout_seconds: integer(body, &TIMEOUT_SECONDS, problems),
        max_retries: integer(body, &MAX_RETRIES, problems),
        callback_url,
        runs: integer(body, &RUNS, problems),
        cache_ttl_seconds: integer(body, &CACHE_TTL_SECONDS, problems),
        categories: categories(body, problems),
        host_concurrency: optional_integer(body, &HOST_CONCURRENCY, problems),
        field,
    };
    if !settings.engine.is_lab() && settings.runs > 1 {
        problems.add("runs", "engine none loads no page, so there is nothing to run again: leave runs out or set 1");
    }
    if settings.engine != EngineKind::Psi && settings.categories.len() > 1 {
        problems.add(
            "categories",
            "only the psi engine scores accessibility, best-practices and seo (the browser engine scores performance alone, the http engine delivery)",
        );
    }
    let source = match (sitemap, urls) {
        (Some(sitemap), _) => Some(Source::Sitemap(sitemap)),
        (None, urls) => urls.map(Source::Urls),
    };
    JobFields { name, source, settings }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems_of(body: Value) -> Vec<String> {
        let Value::Object(body) = body else { unreachable!() };
        match validate(body, AddressPolicy::default(), Offered::default()) {
            Err(ApiError::Invalid { details: Value::Array(list), .. }) => list
                .iter()
                .map(|p| format!("{}: {}", p["field"].as_str().unwrap(), p["message"].as_str().unwrap()))
                .collect(),
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn a_job_may_ask_its_hosts_for_fewer_places_within_bounds() {
        let Value::Object(body) = json!({"urls": ["a.com"], "host_concurrency": 2}) else { unreachable!() };
        let submission = validate(body, AddressPolicy::default(), Offered::default()).unwrap();
        assert_eq!(submission.settings.host_concurrency, Some(2));
        let Value::Object(body) = json!({"urls": ["a.com"]}) else { unreachable!() };
        assert_eq!(
            validate(body, AddressPolicy::default(), Offered::default()).unwrap().settings.host_concurrency,
            None
        );
        assert_eq!(
            problems_of(json!({"urls": ["a.com"], "host_concurrency": 0})),
            ["host_concurrency: must be a whole number from 1 to 20"]
        );
    }

    #[test]
    fn the_documented_body_has_exactly_the_accepted_fields() {
        use utoipa::PartialSchema;
        let schema = serde_json::to_value(StartRequest::schema()).unwrap();
        let mut documented: Vec<&str> = schema["properties"].as_object().unwrap().keys().map(String::as_str).collect();
        let mut accepted = START_FIELDS.to_vec();
        documented.sort_unstable();
        accepted.sort_unstable();
        assert_eq!(documented, accepted);
    }

    #[test]
    fn defaults_fill_every_optional_field() {
        let Value::Object(body) = json!({"urls": ["a.com"]}) else { unreachable!() };
        let submission = validate(body, AddressPolicy::default(), Offered::default()).unwrap();
        let s = submission.settings;
        // SPEC §2's defaults, spelled out: a change to JobSettings::default must show up here.
        assert_eq!((s.priority, s.strategy), (Priority::Normal, Strategy::Mobile));
        assert_eq!(s.engine, EngineKind::Http, "auto, resolved: this deployment has no PSI key");
        assert_eq!((s.batch_size, s.timeout_seconds, s.max_retries), (5, 300, 3));
        assert_eq!((s.runs, s.cache_ttl_seconds, s.categories), (1, 0, vec![Category::Performance]));
        assert_eq!(submission.name, None);
    }

    #[test]
    fn reports_every_invalid_field_at_once() {
        let problems = problems_of(json!({
            "urls": ["a.com", 7],
            "priority": "asap",
            "strategy": 3,
            "batch_size": 21,
            "timeout_seconds": 59,
            "max_retries": -1,
            "dry_run": "yes",
            "runs": 6,
            "cache_ttl_seconds": 86_401,
            "categories": ["seo", "speed", 4],
            "name": "x".repeat(201),
            "colour": "blue",
        }));
        assert_eq!(
            problems,
            [
                "colour: unknown field; expected one of name, urls, sitemap_url, priority, strategy, batch_size, timeout_seconds, max_retries, engine, callback_url, runs, cache_ttl_seconds, categories, host_concurrency, field_data, field_history, dry_run",
                "name: must be at most 200 characters",
                "urls[1]: must be a URL string or an object {\"url\", \"ref\", \"labels\"}",
                "priority: \"asap\" is not one of low, normal, high, urgent",
                "strategy: must be a string",
                "batch_size: must be a whole number from 1 to 20",
                "timeout_seconds: must be a whole number from 60 to 1800",
                "max_retries: must be a whole number from 0 to 5",
                "runs: must be a whole number from 1 to 5",
                "cache_ttl_seconds: must be a whole number from 0 to 86400",
                "categories[1]: \"speed\" is not one of performance, accessibility, best-practices, seo",
                "categories[2]: must be a string",
                "categories: only the psi engine scores accessibility, best-practices and seo (the browser engine scores performance alone, the http engine delivery)",
                "dry_run: must be true or false",
            ]
        );
    }

    #[test]
    fn categories_are_for_psi_and_always_include_performance() {
        let Value::Object(body) =
            json!({"urls": ["a.com"], "engine": "psi", "categories": ["seo", "seo", "accessibility"], "runs": 3})
        else {
            unreachable!()
        };
        let s = validate(body, AddressPolicy::default(), Offered { psi: true, browser: true, crux: true })
            .unwrap()
            .settings;
        assert_eq!(s.categories, [Category::Performance, Category::Seo, Category::Accessibility]);
        assert_eq!((s.runs, s.cache_ttl_seconds), (3, 0));
        let Value::Object(body) = json!({"urls": ["a.com"], "categories": ["performance"]}) else { unreachable!() };
        assert!(
            validate(body, AddressPolicy::default(), Offered::default()).is_ok(),
            "performance alone suits the http engine"
        );
    }

    #[test]
    fn url_list_bounds() {
        assert_eq!(problems_of(json!({})), ["urls: is required: a list of 1 to 10000 URLs (or give sitemap_url)"]);
        assert_eq!(
            problems_of(json!({"urls": ["a.com"], "sitemap_url": "a.com/sitemap.xml"})),
            ["urls: give urls or sitemap_url, not both"]
        );
        assert_eq!(
            problems_of(json!({"sitemap_url": 5})),
            ["sitemap_url: must be a string", "urls: is required: a list of 1 to 10000 URLs (or give sitemap_url)"]
        );
        assert_eq!(problems_of(json!({"urls": []})), ["urls: must contain at least one URL"]);
        let too_many: Vec<String> = (0..10_001).map(|i| format!("a.com/{i}")).collect();
        assert_eq!(problems_of(json!({"urls": too_many})), ["urls: has 10001 entries; at most 10000 are allowed"]);
        assert_eq!(
            problems_of(json!({"urls": "a.com"})),
            ["urls: must be a list of URLs (strings, or objects {\"url\", \"ref\", \"labels\"})"]
        );
    }

    #[test]
    fn url_items_may_carry_a_reference_and_labels_and_each_bad_one_is_named() {
        let Value::Object(body) =
            json!({"urls": ["a.com", {"url": "b.com", "ref": "B-1", "labels": {"city": "Lyon"}}]})
        else {
            unreachable!()
        };
        let Source::Urls(urls) = validate(body, AddressPolicy::default(), Offered::default()).unwrap().source else {
            panic!("urls");
        };
        assert_eq!(urls[0], ("a.com".to_owned(), Tags::default()));
        assert_eq!((urls[1].0.as_str(), urls[1].1.reference.as_deref()), ("b.com", Some("B-1")));
        assert_eq!(urls[1].1.labels["city"], "Lyon");
        let problems = problems_of(json!({"urls": [{"url": "a.com", "ref": "r".repeat(201)}, {"ref": "x"}]}));
        assert_eq!(problems, ["urls[0]: ref has 201 characters; at most 200 are allowed", "urls[1]: needs a url"]);
    }

    #[test]
    fn boundaries_are_inclusive() {
        let Value::Object(body) = json!({"urls": ["a.com"], "batch_size": 20, "timeout_seconds": 1800, "max_retries": 0, "priority": "urgent"})
        else {
            unreachable!()
        };
        let settings = validate(body, AddressPolicy::default(), Offered::default()).unwrap().settings;
        assert_eq!((settings.batch_size, settings.timeout_seconds, settings.max_retries), (20, 1800, 0));
    }

    #[test]
    fn auto_resolves_to_psi_where_there_is_a_key() {
        let body = |engine: &str| {
            let Value::Object(body) = json!({"urls": ["a.com"], "engine": engine}) else { unreachable!() };
            body
        };
        let resolved = |engine: &str, offered: bool| {
            let offered = Offered { psi: offered, browser: offered, crux: offered };
            validate(body(engine), AddressPolicy::default(), offered).map(|s| s.settings.engine)
        };
        assert_eq!(resolved("auto", true).unwrap(), EngineKind::Psi);
        assert_eq!(resolved("auto", false).unwrap(), EngineKind::Http);
        assert_eq!(resolved("http", true).unwrap(), EngineKind::Http);
        assert_eq!(resolved("psi", true).unwrap(), EngineKind::Psi);
        assert!(resolved("psi", false).is_err());
        assert_eq!(resolved("browser", true).unwrap(), EngineKind::Browser);
        let refused = resolved("browser", false).expect_err("refused");
        assert!(format!("{refused:?}").contains("no browser analyzer"), "{refused:?}");
    }

    #[test]
    fn field_data_is_asked_for_alone_or_beside_a_lab_engine_and_each_contradiction_named() {
        let with_crux = Offered { crux: true, ..Offered::default() };
        let field = |body: Value, offered: Offered| {
            let Value::Object(body) = body else { unreachable!() };
            validate(body, AddressPolicy::default(), offered).map(|s| (s.settings.engine, s.settings.field))
        };
        let (yes, history) = (FieldAsk { data: true, history: false }, FieldAsk { data: true, history: true });
        assert_eq!(field(json!({"urls": ["a.com"]}), with_crux).unwrap(), (EngineKind::Http, FieldAsk::NONE));
        assert_eq!(field(json!({"urls": ["a.com"], "field_data": true}), with_crux).unwrap(), (EngineKind::Http, yes));
        assert_eq!(
            field(json!({"urls": ["a.com"], "engine": "none"}), with_crux).unwrap(),
            (EngineKind::FieldOnly, yes)
        );
        assert_eq!(
            field(json!({"urls": ["a.com"], "engine": "none", "field_history": true}), with_crux).unwrap(),
            (EngineKind::FieldOnly, history)
        );
        assert_eq!(field(json!({"urls": ["a.com"], "field_history": true}), with_crux).unwrap().1, history);
        assert_eq!(
            problems_of(
                json!({"urls": ["a.com"], "engine": "none", "field_data": false, "runs": 2, "field_history": "yes"})
            ),
            [
                "field_history: must be true or false",
                "field_data: engine none measures field data only: leave field_data out or set it true",
                "runs: engine none loads no page, so there is nothing to run again: leave runs out or set 1",
            ]
        );
        assert_eq!(
            problems_of(json!({"urls": ["a.com"], "field_data": false, "field_history": true})),
            ["field_history: needs field_data: leave field_data out or set it true"]
        );
        let Value::Object(body) = json!({"urls": ["a.com"], "field_data": true}) else { unreachable!() };
        let refused = format!("{:?}", validate(body, AddressPolicy::default(), Offered::default()).unwrap_err());
        assert!(refused.contains("field_data") && refused.contains("no Chrome UX Report key"), "{refused}");
        assert!(
            problems_of(json!({"urls": ["a.com"], "engine": "none"}))[0]
                .starts_with("engine: this deployment has no Chrome UX Report key")
        );
    }
}

//! Configuration read once per container from the environment the SAM template sets.

use domain::{EngineKind, Priority};
use domain::{Error, timeouts};

#[derive(Clone, Debug)]
pub struct Config {
    pub table_name: String,
    pub queues: QueueUrls,
    /// The priority queues' dead-letter queues, where the deployment names them.
    pub dead_letters: Option<QueueUrls>,
    /// Local development only: lets the analyzer fetch private and loopback addresses.
    pub allow_private_targets: bool,
    /// Local testing only: one address fetched whatever its range, the policy otherwise
    /// unchanged (the chaos suite's site on a strict stack).
    pub exempt_target: Option<std::net::IpAddr>,
    /// The AWS endpoint to call instead of the real one (the local emulator); `None` on AWS.
    pub aws_endpoint: Option<String>,
    /// Days a finished job and its results are kept before DynamoDB's TTL removes them.
    pub retention_days: u32,
    /// The longest a single URL may be analysed: the analyzer's own timeout less a margin to
    /// record the result.
    pub max_url_timeout_seconds: u32,
    /// The EventBridge bus job events go to; `None` publishes none.
    pub event_bus: Option<String>,
    /// How long a released URL may sit without progress before the reconciler sends its
    /// message again.
    pub reconcile_after_seconds: u32,
    /// PageSpeed Insights, when the deployment has a key: `None` analyses with `http` only.
    pub psi: Option<GoogleApi>,
    /// The Chrome UX Report, when the deployment has a key: `None` offers no field data.
    pub crux: Option<GoogleApi>,
    /// The bucket finished jobs' whole-job exports are written to; `None` writes none.
    pub exports_bucket: Option<String>,
    /// The queue the tracker hands finished jobs to, for the exporter.
    pub export_queue_url: Option<String>,
    /// The queue the tracker hands callback deliveries to, for the callbacks function.
    pub callback_queue_url: Option<String>,
    /// The queue the scheduler hands monitors' due ticks to, to be run.
    pub monitor_run_queue_url: Option<String>,
    /// What each tenant may use unless its own item says otherwise.
    pub tenant_limits: domain::tenancy::Limits,
    /// URLs of one host analysed at once, fleet-wide (a job may ask for fewer).
    pub host_concurrency: u32,
    /// The browser engine, in the analyzer function that has Chromium; `None` elsewhere.
    pub browser: Option<BrowserConfig>,
    /// The WebSocket API clients connect to for live progress (`WS_URL`): `None` when the
    /// deployment has none, and then the dashboard polls.
    pub ws_url: Option<String>,
    /// Where the live function posts to its clients' connections (`WS_MANAGEMENT_URL`, the
    /// `@connections` API's base: `https://{api}.execute-api.{region}.amazonaws.com/{stage}`).
    pub ws_management_url: Option<String>,
}

/// Where Chromium is and what it needs to run there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrowserConfig {
    /// `CHROMIUM_PATH`: the executable (the layer's on AWS, Debian's locally).
    pub binary: std::path::PathBuf,
    /// `CHROMIUM_SWITCHES`, space-separated: what the platform needs beyond the engine's own
    /// switches (on Lambda `--single-process --no-zygote`: its sandbox forbids the zygote's
    /// process tricks).
    pub switches: Vec<String>,
}

/// Where the PageSpeed Insights key is kept, never the key itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// An SSM parameter (a SecureString), by name.
    Ssm(String),
    /// A Secrets Manager secret, by name or ARN.
    SecretsManager(String),
}

impl std::str::FromStr for KeySource {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.split_once(':') {
            Some(("ssm", name)) if !name.is_empty() => Ok(KeySource::Ssm(name.to_owned())),
            Some(("secretsmanager", id)) if !id.is_empty() => Ok(KeySource::SecretsManager(id.to_owned())),
            // The value is not echoed: someone may have put the key itself here.
            _ => Err("neither ssm:<parameter name> nor secretsmanager:<secret id> (the value is not shown)".into()),
        }
    }
}

/// A Google API the deployment calls with its key: PageSpeed Insights (`psi`), the Chrome UX
/// Report (`crux`).
#[derive(Clone, Debug, PartialEq)]
pub struct GoogleApi {
    pub key: KeySource,
    /// Where it is called: PSI's `runPagespeed` URL, CrUX's base (`.../v1`); tests point it at
    /// a local fake.
    pub endpoint: String,
    /// What the key may ask, within which the deployment stays.
    pub quota: domain::quota::QuotaLimits,
}

/// Google's Chrome UX Report API; `CRUX_ENDPOINT` points a deployment (or a test) elsewhere.
pub const CRUX_ENDPOINT: &str = "https://chromeuxreport.googleapis.com/v1";

/// Google's endpoint.
pub const PSI_ENDPOINT: &str = "https://www.googleapis.com/pagespeedonline/v5/runPagespeed";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueUrls {
    pub high: String,
    pub normal: String,
    pub low: String,
    /// The browser analyzer's queue, where the deployment has one. Its URLs are not split by
    /// priority: a browser instance is too costly to keep three pollers warm for.
    pub browser: Option<String>,
}

impl QueueUrls {
    pub fn for_priority(&self, priority: Priority) -> &str {
        match priority {
            Priority::Urgent | Priority::High => &self.high,
            Priority::Normal => &self.normal,
            Priority::Low => &self.low,
        }
    }

    /// The queue a URL of `engine` at `priority` waits on: the browser's for the browser
    /// engine (the priority queue's analyzer, which has no browser, would only fail it),
    /// otherwise its priority's.
    pub fn for_task(&self, priority: Priority, engine: EngineKind) -> &str {
        match (&self.browser, engine) {
            (Some(browser), EngineKind::Browser) => browser,
            _ => self.for_priority(priority),
        }
    }
}

impl QueueUrls {
    /// The URL of the queue an event source ARN (`arn:aws:sqs:<region>:<account>:<name>`)
    /// names, if it is one of ours.
    pub fn for_arn(&self, arn: &str) -> Option<&str> {
        let name = arn.rsplit(':').next()?;
        [&self.high, &self.normal, &self.low]
            .into_iter()
            .chain(self.browser.as_ref())
            .find(|url| url.rsplit('/').next() == Some(name))
            .map(String::as_str)
    }
}

impl Config {
    /// What the functions may fetch: strict unless a local deployment says otherwise.
    pub fn address_policy(&self) -> domain::AddressPolicy {
        let policy = domain::AddressPolicy::new(self.allow_private_targets);
        match self.exempt_target {
            Some(ip) => policy.exempting(ip),
            None => policy,
        }
    }

    pub fn from_env() -> Result<Self, Error> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads through `lookup` so tests can configure without touching the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let optional = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let required = |name: &str| {
            lookup(name).filter(|v| !v.trim().is_empty()).ok_or_else(|| Error::Config(format!("{name} is not set")))
        };
        let allow_private_targets = match lookup("ALLOW_PRIVATE_TARGETS").as_deref().map(str::trim) {
            None | Some("") | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(Error::Config(format!("ALLOW_PRIVATE_TARGETS must be true or false, not {other:?}")));
            }
        };
        Ok(Config {
            table_name: required("TABLE_NAME")?,
            queues: QueueUrls {
                high: required("QUEUE_HIGH_URL")?,
                normal: required("QUEUE_NORMAL_URL")?,
                low: required("QUEUE_LOW_URL")?,
                browser: optional("QUEUE_BROWSER_URL"),
            },
            dead_letters: match (lookup("DLQ_HIGH_URL"), lookup("DLQ_NORMAL_URL"), lookup("DLQ_LOW_URL")) {
                (Some(high), Some(normal), Some(low)) => {
                    Some(QueueUrls { high, normal, low, browser: optional("DLQ_BROWSER_URL") })
                }
                _ => None,
            },
            allow_private_targets,
            exempt_target: match lookup("EXEMPT_TARGET").as_deref().map(str::trim) {
                None | Some("") => None,
                Some(ip) => Some(
                    ip.parse()
                        .map_err(|_| Error::Config(format!("EXEMPT_TARGET must be one IP address, not {ip:?}")))?,
                ),
            },
            aws_endpoint: lookup("SPEEDBATCH_AWS_ENDPOINT").filter(|v| !v.trim().is_empty()),
            retention_days: number(&lookup, "RETENTION_DAYS", 30, 1..=3650)?,
            // Shorter than the record margin plus a little, no URL could be analysed at all.
            max_url_timeout_seconds: timeouts::max_url_timeout(number(
                &lookup,
                "ANALYZER_TIMEOUT_SECONDS",
                timeouts::DEFAULT_FUNCTION_SECONDS,
                timeouts::RECORD_MARGIN_SECONDS + 10..=timeouts::DEFAULT_FUNCTION_SECONDS,
            )?),
            event_bus: lookup("EVENT_BUS_NAME").filter(|v| !v.trim().is_empty()),
            exports_bucket: lookup("EXPORTS_BUCKET").filter(|v| !v.trim().is_empty()),
            export_queue_url: lookup("EXPORT_QUEUE_URL").filter(|v| !v.trim().is_empty()),
            callback_queue_url: lookup("CALLBACK_QUEUE_URL").filter(|v| !v.trim().is_empty()),
            monitor_run_queue_url: lookup("MONITOR_RUN_QUEUE_URL").filter(|v| !v.trim().is_empty()),
            reconcile_after_seconds: number(&lookup, "RECONCILE_AFTER_SECONDS", 600, 1..=86_400)?,
            tenant_limits: tenant_limits(&lookup)?,
            host_concurrency: {
                let bounds = domain::politeness::HOST_CONCURRENCY;
                number(&lookup, "HOST_CONCURRENCY", bounds.default, bounds.min..=bounds.max)?
            },
            ws_url: optional("WS_URL").map(|url| url.trim().to_owned()),
            ws_management_url: optional("WS_MANAGEMENT_URL").map(|url| url.trim().to_owned()),
            browser: lookup("CHROMIUM_PATH").filter(|v| !v.trim().is_empty()).map(|binary| BrowserConfig {
                binary: binary.trim().into(),
                switches: lookup("CHROMIUM_SWITCHES")
                    .unwrap_or_default()
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect(),
            }),
            crux: google_api(&lookup, "CRUX", CRUX_ENDPOINT, || {
                Ok(domain::quota::QuotaLimits {
                    per_window: number(&lookup, "CRUX_QUOTA_PER_MINUTE", 150, 1..=1_000_000)?,
                    window: std::time::Duration::from_secs(60),
                    // CrUX has no daily quota: the minute's, all day.
                    per_day: u32::MAX,
                    utilisation: domain::quota::QuotaLimits::PSI_DEFAULT.utilisation,
                })
            })?,
            psi: google_api(&lookup, "PSI", PSI_ENDPOINT, || {
                Ok(domain::quota::QuotaLimits {
                    per_window: number(&lookup, "PSI_QUOTA_PER_100_SECONDS", 400, 1..=1_000_000)?,
                    window: std::time::Duration::from_secs(100),
                    per_day: number(&lookup, "PSI_QUOTA_PER_DAY", 25_000, 1..=100_000_000)?,
                    utilisation: domain::quota::QuotaLimits::PSI_DEFAULT.utilisation,
                })
            })?,
        })
    }
}

/// The deployment's per-tenant defaults, each from its variable.
/// The Google API `prefix` names (`<prefix>_API_KEY_SOURCE`, `<prefix>_ENDPOINT`, its quota's
/// variables), or `None` when the deployment has no key for it: its quota is read only then.
fn google_api(
    lookup: &impl Fn(&str) -> Option<String>,
    prefix: &str,
    google: &str,
    quota: impl FnOnce() -> Result<domain::quota::QuotaLimits, Error>,
) -> Result<Option<GoogleApi>, Error> {
    let Some(source) = lookup(&format!("{prefix}_API_KEY_SOURCE")).filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    let key = source.trim().parse().map_err(|e| Error::Config(format!("{prefix}_API_KEY_SOURCE: {e}")))?;
    let endpoint = lookup(&format!("{prefix}_ENDPOINT"))
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| google.to_owned());
    Ok(Some(GoogleApi { key, endpoint, quota: quota()? }))
}

fn tenant_limits(lookup: &impl Fn(&str) -> Option<String>) -> Result<domain::tenancy::Limits, Error> {
    use domain::tenancy::{Limit, Limits};
    let read = |limit: Limit| number(lookup, limit.env_name(), Limits::DEFAULT.value(limit), limit.range());
    let small = |limit: Limit| read(limit).map(|n| u32::try_from(n).unwrap_or(u32::MAX));
    Ok(Limits {
        max_active_jobs: small(Limit::ActiveJobs)?,
        max_urls_per_day: read(Limit::UrlsPerDay)?,
        max_in_flight: small(Limit::InFlight)?,
        quota_weight: small(Limit::QuotaWeight)?,
    })
}

fn number<N: std::str::FromStr + PartialOrd + std::fmt::Debug>(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: N,
    range: std::ops::RangeInclusive<N>,
) -> Result<N, Error> {
    match lookup(name).as_deref().map(str::trim) {
        None | Some("") => Ok(default),
        Some(text) => text
            .parse()
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| Error::Config(format!("{name} must be a whole number in {range:?}, not {text:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    const BASE: [(&str, &str); 4] =
        [("TABLE_NAME", "jobs"), ("QUEUE_HIGH_URL", "h"), ("QUEUE_NORMAL_URL", "n"), ("QUEUE_LOW_URL", "l")];

    #[test]
    fn reads_required_values_and_safe_defaults() {
        let config = Config::from_lookup(env(&BASE)).unwrap();
        assert_eq!(config.table_name, "jobs");
        assert!(!config.allow_private_targets);
        assert_eq!(config.aws_endpoint, None);
        assert_eq!(config.queues.for_priority(Priority::Urgent), "h");
        assert_eq!(config.queues.for_priority(Priority::High), "h");
        assert_eq!(config.queues.for_priority(Priority::Normal), "n");
        assert_eq!(config.queues.for_priority(Priority::Low), "l");
        assert_eq!((config.retention_days, config.max_url_timeout_seconds), (30, 840));
        assert_eq!((config.event_bus, config.reconcile_after_seconds), (None, 600));
        assert_eq!(config.psi, None, "no key source: no PageSpeed Insights");
        assert_eq!((config.exports_bucket, config.export_queue_url), (None, None), "no exports");
        assert_eq!(config.browser, None, "no browser");
        assert_eq!(config.queues.browser, None, "no browser queue");
        assert_eq!(config.callback_queue_url, None, "no callbacks");
        assert_eq!(config.tenant_limits, domain::tenancy::Limits::DEFAULT);
        assert_eq!(config.host_concurrency, 4);
    }

    #[test]
    fn reads_the_tenants_default_limits_within_their_ranges() {
        let mut pairs = BASE.to_vec();
        pairs.push(("TENANT_MAX_ACTIVE_JOBS", "3"));
        pairs.push(("TENANT_MAX_URLS_PER_DAY", "5000000000"));
        let err = Config::from_lookup(env(&pairs)).unwrap_err().to_string();
        assert!(err.contains("TENANT_MAX_URLS_PER_DAY must be a whole number in 1..=1000000000"), "{err}");
        pairs.pop();
        pairs.push(("TENANT_MAX_IN_FLIGHT", "7"));
        pairs.push(("TENANT_QUOTA_WEIGHT", "101"));
        let err = Config::from_lookup(env(&pairs)).unwrap_err().to_string();
        assert!(err.contains("TENANT_QUOTA_WEIGHT must be a whole number in 1..=100"), "{err}");
        pairs.pop();
        pairs.push(("TENANT_QUOTA_WEIGHT", "2"));
        let limits = Config::from_lookup(env(&pairs)).unwrap().tenant_limits;
        let read = (limits.max_active_jobs, limits.max_urls_per_day, limits.max_in_flight, limits.quota_weight);
        assert_eq!(read, (3, 250_000, 7, 2));
    }

    #[test]
    fn the_browser_analyzer_reads_where_chromium_is_and_its_queue() {
        let mut pairs = BASE.to_vec();
        pairs.push(("CHROMIUM_PATH", "/opt/chromium/chromium"));
        pairs.push(("CHROMIUM_SWITCHES", " --single-process  --no-zygote "));
        pairs.push(("QUEUE_BROWSER_URL", "q/browser"));
        let config = Config::from_lookup(env(&pairs)).unwrap();
        let browser = config.browser.unwrap();
        assert_eq!(browser.binary, std::path::PathBuf::from("/opt/chromium/chromium"));
        assert_eq!(browser.switches, ["--single-process", "--no-zygote"]);
        assert_eq!(config.queues.for_task(Priority::Normal, EngineKind::Browser), "q/browser");
    }

    #[test]
    fn reads_where_the_crux_key_is_with_its_quota_and_endpoint() {
        let mut pairs = BASE.to_vec();
        assert_eq!(Config::from_lookup(env(&pairs)).unwrap().crux, None, "no key source: no field data");
        pairs.push(("CRUX_API_KEY_SOURCE", "secretsmanager:speedbatch/crux"));
        let crux = Config::from_lookup(env(&pairs)).unwrap().crux.unwrap();
        assert_eq!(crux.key, KeySource::SecretsManager("speedbatch/crux".into()));
        assert_eq!(
            (crux.endpoint.as_str(), crux.quota.per_window, crux.quota.window.as_secs()),
            (CRUX_ENDPOINT, 150, 60)
        );
        pairs.push(("CRUX_ENDPOINT", "http://127.0.0.1:4597/v1"));
        pairs.push(("CRUX_QUOTA_PER_MINUTE", "600"));
        let crux = Config::from_lookup(env(&pairs)).unwrap().crux.unwrap();
        assert_eq!((crux.endpoint.as_str(), crux.quota.per_window), ("http://127.0.0.1:4597/v1", 600));
        pairs.push(("CRUX_API_KEY_SOURCE", "AIzaTheKeyItself"));
        let err = Config::from_lookup(env(&pairs)).unwrap_err().to_string();
        assert!(err.contains("CRUX_API_KEY_SOURCE") && !err.contains("AIza"), "{err}");
    }

    #[test]
    fn reads_where_the_psi_key_is_and_refuses_anything_else() {
        let mut pairs = BASE.to_vec();
        pairs.push(("PSI_API_KEY_SOURCE", "ssm:/speedbatch/psi-key"));
        pairs.push(("PSI_QUOTA_PER_100_SECONDS", "100"));
        let psi = Config::from_lookup(env(&pairs)).unwrap().psi.unwrap();
        assert_eq!(psi.key, KeySource::Ssm("/speedbatch/psi-key".into()));
        assert_eq!(psi.endpoint, PSI_ENDPOINT);
        assert_eq!((psi.quota.per_window, psi.quota.per_day), (100, 25_000));
        assert_eq!(
            "secretsmanager:arn:aws:secretsmanager:us-east-1:1:secret:psi".parse::<KeySource>(),
            Ok(KeySource::SecretsManager("arn:aws:secretsmanager:us-east-1:1:secret:psi".into()))
        );
        let mut bad = BASE.to_vec();
        bad.push(("PSI_API_KEY_SOURCE", "AIzaSyTheKeyItself"));
        let err = Config::from_lookup(env(&bad)).unwrap_err().to_string();
        assert!(err.contains("neither ssm:") && !err.contains("AIza"), "the value is never echoed: {err}");
    }

    #[test]
    fn finds_a_queue_by_its_arn() {
        let queues = QueueUrls {
            high: "http://q/000000000000/sb-high".into(),
            normal: "http://q/000000000000/sb-normal".into(),
            low: "http://q/000000000000/sb-low".into(),
            browser: Some("http://q/000000000000/sb-browser".into()),
        };
        assert_eq!(
            queues.for_arn("arn:aws:sqs:us-east-1:000000000000:sb-normal"),
            Some("http://q/000000000000/sb-normal")
        );
        assert_eq!(queues.for_arn("arn:aws:sqs:us-east-1:000000000000:sb-norm"), None);
        assert_eq!(
            queues.for_arn("arn:aws:sqs:us-east-1:000000000000:sb-browser"),
            Some("http://q/000000000000/sb-browser")
        );
        assert_eq!(queues.for_task(Priority::Low, EngineKind::Browser), "http://q/000000000000/sb-browser");
        assert_eq!(queues.for_task(Priority::Low, EngineKind::Http), "http://q/000000000000/sb-low");
        let without = QueueUrls { browser: None, ..queues };
        assert_eq!(without.for_task(Priority::High, EngineKind::Browser), "http://q/000000000000/sb-high");
    }

    #[test]
    fn numbers_are_range_checked() {
        let mut pairs = BASE.to_vec();
        pairs.push(("RETENTION_DAYS", "0"));
        let err = Config::from_lookup(env(&pairs)).unwrap_err();
        assert_eq!(err.to_string(), "configuration: RETENTION_DAYS must be a whole number in 1..=3650, not \"0\"");
        pairs.pop();
        pairs.push(("ANALYZER_TIMEOUT_SECONDS", "300"));
        assert_eq!(Config::from_lookup(env(&pairs)).unwrap().max_url_timeout_seconds, 240, "a minute to record");
        pairs.pop();
        pairs.push(("ANALYZER_TIMEOUT_SECONDS", "69"));
        assert!(Config::from_lookup(env(&pairs)).is_err(), "no timeout shorter than the margin");
    }

    #[test]
    fn empty_endpoint_means_real_aws() {
        let mut pairs = BASE.to_vec();
        pairs.push(("SPEEDBATCH_AWS_ENDPOINT", ""));
        pairs.push(("ALLOW_PRIVATE_TARGETS", "true"));
        let config = Config::from_lookup(env(&pairs)).unwrap();
        assert_eq!(config.aws_endpoint, None);
        assert!(config.allow_private_targets);
    }

    #[test]
    fn one_exempt_address_keeps_the_policy_strict_for_the_rest() {
        let mut pairs = BASE.to_vec();
        pairs.push(("EXEMPT_TARGET", "127.0.0.2"));
        let policy = Config::from_lookup(env(&pairs)).unwrap().address_policy();
        assert!(policy.check("127.0.0.2".parse().unwrap()).is_ok());
        assert!(policy.check("127.0.0.1".parse().unwrap()).is_err());
        assert!(policy.check("169.254.169.254".parse().unwrap()).is_err());
        pairs.pop();
        pairs.push(("EXEMPT_TARGET", "localhost"));
        let err = Config::from_lookup(env(&pairs)).unwrap_err().to_string();
        assert!(err.contains("EXEMPT_TARGET must be one IP address"), "{err}");
        assert_eq!(Config::from_lookup(env(&BASE)).unwrap().address_policy(), domain::AddressPolicy::STRICT);
    }

    #[test]
    fn names_the_missing_variable() {
        let err = Config::from_lookup(env(&BASE[..3])).unwrap_err();
        assert_eq!(err.to_string(), "configuration: QUEUE_LOW_URL is not set");
    }

    #[test]
    fn rejects_a_misspelt_flag() {
        let mut pairs = BASE.to_vec();
        pairs.push(("ALLOW_PRIVATE_TARGETS", "yes"));
        assert!(Config::from_lookup(env(&pairs)).is_err());
    }
}

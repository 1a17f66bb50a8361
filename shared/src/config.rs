//! Configuration read once per container from the environment the SAM template sets.

use crate::domain::Priority;
use crate::error::Error;

#[derive(Clone, Debug)]
pub struct Config {
    pub table_name: String,
    pub queues: QueueUrls,
    /// The priority queues' dead-letter queues, where the deployment names them.
    pub dead_letters: Option<QueueUrls>,
    /// Local development only: lets the analyzer fetch private and loopback addresses.
    pub allow_private_targets: bool,
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
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueUrls {
    pub high: String,
    pub normal: String,
    pub low: String,
}

impl QueueUrls {
    pub fn for_priority(&self, priority: Priority) -> &str {
        match priority {
            Priority::Urgent | Priority::High => &self.high,
            Priority::Normal => &self.normal,
            Priority::Low => &self.low,
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
            .find(|url| url.rsplit('/').next() == Some(name))
            .map(String::as_str)
    }
}

impl Config {
    pub fn from_env() -> Result<Self, Error> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads through `lookup` so tests can configure without touching the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
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
            },
            dead_letters: match (lookup("DLQ_HIGH_URL"), lookup("DLQ_NORMAL_URL"), lookup("DLQ_LOW_URL")) {
                (Some(high), Some(normal), Some(low)) => Some(QueueUrls { high, normal, low }),
                _ => None,
            },
            allow_private_targets,
            aws_endpoint: lookup("SPEEDBATCH_AWS_ENDPOINT").filter(|v| !v.trim().is_empty()),
            retention_days: number(&lookup, "RETENTION_DAYS", 30, 1..=3650)?,
            max_url_timeout_seconds: number(&lookup, "MAX_URL_TIMEOUT_SECONDS", 840, 10..=900)?,
            event_bus: lookup("EVENT_BUS_NAME").filter(|v| !v.trim().is_empty()),
            reconcile_after_seconds: number(&lookup, "RECONCILE_AFTER_SECONDS", 600, 1..=86_400)?,
        })
    }
}

fn number(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: u32,
    range: std::ops::RangeInclusive<u32>,
) -> Result<u32, Error> {
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
    }

    #[test]
    fn finds_a_queue_by_its_arn() {
        let queues = QueueUrls {
            high: "http://q/000000000000/sb-high".into(),
            normal: "http://q/000000000000/sb-normal".into(),
            low: "http://q/000000000000/sb-low".into(),
        };
        assert_eq!(
            queues.for_arn("arn:aws:sqs:us-east-1:000000000000:sb-normal"),
            Some("http://q/000000000000/sb-normal")
        );
        assert_eq!(queues.for_arn("arn:aws:sqs:us-east-1:000000000000:sb-norm"), None);
    }

    #[test]
    fn numbers_are_range_checked() {
        let mut pairs = BASE.to_vec();
        pairs.push(("RETENTION_DAYS", "0"));
        let err = Config::from_lookup(env(&pairs)).unwrap_err();
        assert_eq!(err.to_string(), "configuration: RETENTION_DAYS must be a whole number in 1..=3650, not \"0\"");
        pairs.pop();
        pairs.push(("MAX_URL_TIMEOUT_SECONDS", "240"));
        assert_eq!(Config::from_lookup(env(&pairs)).unwrap().max_url_timeout_seconds, 240);
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

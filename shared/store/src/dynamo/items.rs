//! The single-table layout (documented in the README):
//!
//! | item | `pk` | `sk` | GSI `by_tenant` |
//! |---|---|---|---|
//! | job | `JOB#<job id>` | `JOB` | `gsi1pk = TENANT#<tenant>`, `gsi1sk = <job id>` (UUIDv7: time order); while unfinished also `gsi2pk = ACTIVE`, `gsi2sk = <job id>` (GSI `by_activity`) |
//! | a job's URLs as submitted, fifty to an item | `JOB#<job id>` | `LIST#<first seq / 50, 5 digits>` | — (`urls`: a list of `url`, `ref`, `labels`; written at submission, never changed) |
//! | URL task, from its first change on (a result, a retry, a cancel, a resend: a URL with no item is queued, as listed) | `JOB#<job id>` | `URL#<seq, 6 digits>` | once newly analysed with success, `hist_pk = HIST#<tenant>#<hash of URL>`, `hist_sk = <analysed at>`, `hist` = its headline numbers and its reuse variant (GSI `by_url_history`, projecting `job_id`, `seq`, `hist`: history and reuse) |
//! | job report | `JOB#<job id>` | `JOB#REPORT` | — (`report`: the finished job's summary and exports, as JSON) |
//! | API key | `KEY#<sha-256 of the key>` | `KEY` | — |
//! | callback secret | `TENANT#<tenant>` | `SECRET` | — |
//! | tenant's limits | `TENANT#<tenant>` | `LIMITS` | — (`max_active_jobs`, `max_urls_per_day`, `max_in_flight`: where it differs from the deployment) |
//! | tenant's jobs | `TENANT#<tenant>` | `USAGE` | — (`active`: the string set of its unfinished jobs' ids) |
//! | a host's places | `HOST#<host>` | `LEASES` | — (`holders`: a string set of `<job>#<seq>@<lease end>`; `paused_until`; `expires_at`) |
//! | a shard of a tenant's places | `TENANT#<tenant>` | `IN_FLIGHT#<shard>` | — (`holders`, `expires_at`, as a host's) |
//! | tenant's day | `TENANT#<tenant>` | `DAY#<yyyy-mm-dd>` | — (`analyses` submitted that UTC day; expires two days later) |
//! | live subscription | `LIVE#JOB#<job id>` or `LIVE#TENANT#<tenant>` (all its jobs) | `<WebSocket connection id>` | — (`expires_at`: the connection's longest life) |
//! | live connection | `LIVE#CONN#<connection id>` | `CONN` | — (`scopes`: the string set of its subscriptions' `pk`s, bounded; `expires_at`) |
//!
//! A job somebody follows live carries `live_gen` (a number each subscription raises), which
//! the live function's stream filter asks for.
//!
//! A job's URLs are its lists (a BatchGetItem) overlaid by its URLs' items (one Query on `pk`
//! between two `URL#` keys), a tenant's jobs one Query on the GSI, newest first. `expires_at` is the TTL attribute.

use serde::{Deserialize, Serialize};

use domain::Error;
use domain::callback::CallbackDelivery;
use domain::field::FieldAsk;
use domain::monitor::MonitorId;
use domain::places::Place;
use domain::tally::{ResultChange, StreamPosition};
use domain::time::Millis;
use domain::timeouts;
use domain::window::Frontiers;
use domain::{
    Analysis, Category, Counters, EngineKind, ErrorKind, Job, JobId, JobSettings, JobStatus, Priority, Strategy, Tags,
    Tenant, UrlStatus, UrlTask,
};

pub const JOB_SK: &str = "JOB";
pub const TASK_SK_PREFIX: &str = "URL#";
/// The largest position a task key can hold in its six digits.
pub const MAX_SEQ: u32 = 999_999;
/// The GSI that lists a tenant's jobs.
pub const TENANT_INDEX: &str = "by_tenant";
/// The sparse GSI that lists unfinished jobs (keys only), for the reconciler.
pub const ACTIVE_INDEX: &str = "by_activity";
/// Sparse: each tenant's new analyses of a URL (`hist_pk`) by when they ran (`hist_sk`),
/// projecting only their small headline (`hist`): a URL's history is one Query.
pub const HISTORY_INDEX: &str = "by_url_history";
/// The name, inside a history entry's projected headline, of the variant (engine, strategy,
/// options) a result is reused for: reuse reads the history index.
pub const REUSE_VARIANT: &str = "reuse";

/// The job attribute holding window chain `chain`'s open URL (`domain::window`), written by the
/// result that releases it; absent while no URL of the chain has finished.
pub fn frontier_attribute(chain: u32) -> String {
    format!("w{chain}")
}
/// The one item that says where the reconciler's last sweep stopped.
pub const SWEEP_PK: &str = "SWEEP";
pub const SWEEP_SK: &str = "RECONCILER";
/// `gsi2pk` of every unfinished job; removed when the job finishes.
pub const ACTIVE_PK: &str = "ACTIVE";

pub fn job_pk(id: &JobId) -> String {
    format!("JOB#{id}")
}

pub fn task_sk(seq: u32) -> String {
    format!("{TASK_SK_PREFIX}{seq:06}")
}

/// A finished job's report sits beside the job: `JOB#` sorts after `JOB` and before every
/// `URL#`, so it is deleted with the job and never read as a URL.
pub const REPORT_SK: &str = "JOB#REPORT";

pub const KEY_SK: &str = "KEY";
/// A tenant's callback signing secret lives at `TENANT#<tenant>` / `SECRET`.
pub const SECRET_SK: &str = "SECRET";

/// A tenant's own limits, its unfinished jobs, and each day's count sit beside its secret.
pub const LIMITS_SK: &str = "LIMITS";
pub const USAGE_SK: &str = "USAGE";

/// Where a set of places lives ([`domain::places`]): a host's beside the pause it asked for,
/// a tenant's shards beside its limits.
pub fn place_key(place: &Place) -> (String, String) {
    match place {
        Place::Host(host) => (format!("HOST#{host}"), "LEASES".to_owned()),
        Place::Tenant { tenant, shard } => (format!("TENANT#{tenant}"), format!("IN_FLIGHT#{shard}")),
    }
}

pub fn day_sk(day: &str) -> String {
    format!("DAY#{day}")
}

pub fn key_pk(hash: &str) -> String {
    format!("KEY#{hash}")
}

pub fn monitor_pk(id: &MonitorId) -> String {
    format!("MON#{id}")
}

pub fn tenant_pk(tenant: &Tenant) -> String {
    format!("TENANT#{}", tenant.0)
}

/// The job attribute that says somebody follows it live (its watch generation).
pub const LIVE_GENERATION: &str = "live_gen";
pub const CONNECTION_SK: &str = "CONN";
const LIVE_JOB: &str = "LIVE#JOB#";
const LIVE_TENANT: &str = "LIVE#TENANT#";

pub fn connection_pk(connection: &str) -> String {
    format!("LIVE#CONN#{connection}")
}

/// Where the subscriptions to `scope` live, one item per connection.
pub fn scope_pk(scope: &crate::Scope) -> String {
    match scope {
        crate::Scope::Job(id) => format!("{LIVE_JOB}{id}"),
        crate::Scope::Tenant(tenant) => format!("{LIVE_TENANT}{}", tenant.0),
    }
}

pub fn scope_from_pk(pk: &str) -> Option<crate::Scope> {
    if let Some(id) = pk.strip_prefix(LIVE_JOB) {
        return JobId::parse(id).map(crate::Scope::Job);
    }
    pk.strip_prefix(LIVE_TENANT).map(|tenant| crate::Scope::Tenant(Tenant(tenant.to_owned())))
}

/// A job stream image's watch generation: `None` when nobody follows the job.
pub fn watch_generation(image: &serde_dynamo::Item) -> Option<u64> {
    match image.get(LIVE_GENERATION) {
        Some(serde_dynamo::AttributeValue::N(n)) => n.parse().ok(),
        _ => None,
    }
}

/// A job item exactly as stored (and as a DynamoDB stream image carries it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobItem {
    pub pk: String,
    pub sk: String,
    pub gsi1pk: String,
    pub gsi1sk: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gsi2pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gsi2sk: Option<String>,
    pub job_id: JobId,
    pub tenant: Tenant,
    pub name: String,
    pub status: JobStatus,
    pub priority: Priority,
    pub strategy: Strategy,
    #[serde(deserialize_with = "resolved_engine")]
    pub engine: EngineKind,
    pub batch_size: u32,
    pub timeout_seconds: u32,
    /// Absent on jobs written before it was kept: the default deployment's cap applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effective_timeout_seconds: Option<u32>,
    pub max_retries: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    #[serde(default = "domain::settings::one")]
    pub runs: u32,
    #[serde(default)]
    pub cache_ttl_seconds: u32,
    #[serde(default = "domain::settings::performance_only")]
    pub categories: Vec<Category>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_concurrency: Option<u32>,
    /// `field_data` and `field_history`, each only when true.
    #[serde(default, flatten)]
    pub field: FieldAsk,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_weight: Option<u32>,
    /// A monitor's run: `MON#<monitor id>`, the key of GSI `by_monitor` (with `gsi1sk`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mon_pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor_id: Option<MonitorId>,
    pub total_urls: u64,
    pub queued: i64,
    pub in_progress: i64,
    pub succeeded: i64,
    pub failed: i64,
    pub cancelled: i64,
    pub created_at: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Millis>,
    pub updated_at: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// Written by the callbacks function alone (`record_callback`), never with the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback: Option<CallbackDelivery>,
    /// The last stream position whose results the tracker counted ([`domain::tally`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counted_to: Option<StreamPosition>,
    /// The window's frontiers, one attribute per chain that has moved ([`frontier_attribute`]).
    #[serde(default, flatten)]
    pub frontiers: FrontierAttributes,
}

/// A job's [`Frontiers`] as its item holds them: `w<chain>` attributes beside the others,
/// each set by the result that moves it (no map to create first, on any job).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FrontierAttributes(pub Frontiers);

impl Serialize for FrontierAttributes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        for (chain, seq) in self.0.iter() {
            map.serialize_entry(&frontier_attribute(chain), &seq)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for FrontierAttributes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Chains;
        impl<'de> serde::de::Visitor<'de> for Chains {
            type Value = FrontierAttributes;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a job item's attributes")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut chains = Vec::new();
                while let Some(name) = map.next_key::<String>()? {
                    match name.strip_prefix('w').and_then(|chain| chain.parse::<u32>().ok()) {
                        Some(chain) => chains.push((chain, map.next_value::<u32>()?)),
                        None => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(FrontierAttributes(chains.into_iter().collect()))
            }
        }
        deserializer.deserialize_map(Chains)
    }
}

impl JobItem {
    pub fn from_job(job: &Job, now: Millis) -> Self {
        let c = job.counters;
        JobItem {
            pk: job_pk(&job.id),
            sk: JOB_SK.to_owned(),
            gsi1pk: tenant_pk(&job.tenant),
            gsi1sk: job.id.to_string(),
            gsi2pk: (!job.status.is_finished()).then(|| ACTIVE_PK.to_owned()),
            gsi2sk: (!job.status.is_finished()).then(|| job.id.to_string()),
            job_id: job.id.clone(),
            tenant: job.tenant.clone(),
            name: job.name.clone(),
            status: job.status,
            priority: job.settings.priority,
            strategy: job.settings.strategy,
            engine: job.settings.engine,
            batch_size: job.settings.batch_size,
            timeout_seconds: job.settings.timeout_seconds,
            effective_timeout_seconds: Some(job.effective_timeout_seconds),
            max_retries: job.settings.max_retries,
            callback_url: job.settings.callback_url.clone(),
            runs: job.settings.runs,
            cache_ttl_seconds: job.settings.cache_ttl_seconds,
            categories: job.settings.categories.clone(),
            host_concurrency: job.settings.host_concurrency,
            field: job.settings.field,
            max_in_flight: job.max_in_flight,
            quota_weight: job.quota_weight,
            mon_pk: job.monitor_id.as_ref().map(monitor_pk),
            monitor_id: job.monitor_id.clone(),
            total_urls: c.total,
            queued: c.queued as i64,
            in_progress: c.in_progress as i64,
            succeeded: c.succeeded as i64,
            failed: c.failed as i64,
            cancelled: c.cancelled as i64,
            created_at: job.created_at,
            started_at: job.started_at,
            finished_at: job.finished_at,
            updated_at: job.updated_at.max(now),
            expires_at: None,
            callback: job.callback.clone(),
            counted_to: job.counted_to.clone(),
            frontiers: FrontierAttributes(job.frontiers.clone()),
        }
    }

    pub fn into_job(self) -> Result<Job, Error> {
        let count = |name: &str, value: i64| {
            u64::try_from(value).map_err(|_| Error::Corrupt(format!("job {} has {name} = {value}", self.job_id)))
        };
        let counters = Counters {
            total: self.total_urls,
            queued: count("queued", self.queued)?,
            in_progress: count("in_progress", self.in_progress)?,
            succeeded: count("succeeded", self.succeeded)?,
            failed: count("failed", self.failed)?,
            cancelled: count("cancelled", self.cancelled)?,
        };
        Ok(Job {
            id: self.job_id,
            tenant: self.tenant,
            name: self.name,
            status: self.status,
            settings: JobSettings {
                priority: self.priority,
                strategy: self.strategy,
                engine: self.engine,
                batch_size: self.batch_size,
                timeout_seconds: self.timeout_seconds,
                max_retries: self.max_retries,
                callback_url: self.callback_url,
                runs: self.runs,
                cache_ttl_seconds: self.cache_ttl_seconds,
                categories: self.categories,
                host_concurrency: self.host_concurrency,
                field: self.field,
            },
            counters,
            created_at: self.created_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            updated_at: self.updated_at,
            effective_timeout_seconds: self.effective_timeout_seconds.unwrap_or_else(|| {
                timeouts::effective(self.timeout_seconds, timeouts::max_url_timeout(timeouts::DEFAULT_FUNCTION_SECONDS))
            }),
            max_in_flight: self.max_in_flight,
            quota_weight: self.quota_weight,
            callback: self.callback,
            frontiers: self.frontiers.0,
            counted_to: self.counted_to,
            monitor_id: self.monitor_id,
        })
    }
}

/// A job's engine as stored. Jobs written before `auto` was resolved at submission hold
/// `auto`, which then ran the built-in engine: they read as `http` rather than as corrupt
/// (a stream record that cannot be read would hold up every later one of its shard).
fn resolved_engine<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<EngineKind, D::Error> {
    match String::deserialize(deserializer)?.as_str() {
        "auto" => Ok(EngineKind::Http),
        other => other.parse().map_err(serde::de::Error::custom),
    }
}

/// A URL task item as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskItem {
    pub pk: String,
    pub sk: String,
    pub job_id: JobId,
    pub seq: u32,
    /// Empty on an item its first change wrote: the URL and its tags are then its list's
    /// ([`super::url_lists`]).
    #[serde(default)]
    pub url: String,
    pub status: UrlStatus,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<ErrorKind>,
    /// Deflated into a binary attribute ([`super::packed`]).
    #[serde(default, with = "super::packed::serde_packed", skip_serializing_if = "Option::is_none")]
    pub analysis: Option<Analysis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analyzed_at: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until: Option<Millis>,
    /// When the reconciler last sent this URL's message again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resent_at: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    /// `ref` and `labels` (a map), when the client gave them.
    #[serde(flatten)]
    pub tags: Tags,
}

impl TaskItem {
    pub fn into_task(self) -> UrlTask {
        UrlTask {
            job_id: self.job_id,
            seq: self.seq,
            url: self.url,
            status: self.status,
            attempts: self.attempts,
            error: self.error,
            error_kind: self.error_kind,
            analysis: self.analysis,
            analyzed_at: self.analyzed_at,
            lease_until: self.lease_until,
            tags: self.tags,
        }
    }
}

/// Reads a job from a DynamoDB stream image (the tracker's input).
pub fn job_from_stream_image(image: serde_dynamo::Item) -> Result<Job, Error> {
    let item: JobItem = serde_dynamo::from_item(image).map_err(|e| Error::Corrupt(format!("job stream image: {e}")))?;
    item.into_job()
}

/// Whether a stream record's keys are a job item's (the tracker reads its URLs' records too).
pub fn is_job_key(keys: &serde_dynamo::Item) -> bool {
    matches!(keys.get("sk"), Some(serde_dynamo::AttributeValue::S(sk)) if sk == JOB_SK)
}

/// The result a stream record of a URL's item reports ([`ResultChange::of`]): `None` for a
/// record of another item, or of a change that is not a result.
pub fn result_from_stream(
    old_image: &serde_dynamo::Item,
    new_image: &serde_dynamo::Item,
    sequence_number: &str,
) -> Result<Option<(JobId, ResultChange)>, Error> {
    /// The few attributes of a URL's item a result is read from.
    #[derive(Deserialize)]
    struct Task {
        job_id: JobId,
        seq: u32,
        status: UrlStatus,
    }
    let read = |image: &serde_dynamo::Item| -> Result<Option<Task>, Error> {
        let is_task =
            matches!(image.get("sk"), Some(serde_dynamo::AttributeValue::S(sk)) if sk.starts_with(TASK_SK_PREFIX));
        if !is_task {
            return Ok(None);
        }
        let task: Task =
            serde_dynamo::from_item(image.clone()).map_err(|e| Error::Corrupt(format!("URL stream image: {e}")))?;
        Ok(Some(task))
    };
    let Some(new) = read(new_image)? else { return Ok(None) };
    // A URL's first change creates its item (`super::url_lists`): it was queued.
    let was =
        if old_image.is_empty() { UrlStatus::Queued } else { read(old_image)?.map_or(new.status, |old| old.status) };
    let at = StreamPosition::parse(sequence_number)
        .ok_or_else(|| Error::Corrupt(format!("stream sequence number {sequence_number:?}")))?;
    Ok(ResultChange::of(new.seq, was, new.status, at).map(|change| (new.job_id, change)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_survives_its_key_and_nothing_else_is_one() {
        let id = JobId::generate();
        for scope in [crate::Scope::Job(id.clone()), crate::Scope::Tenant(Tenant("acme#1".into()))] {
            assert_eq!(scope_from_pk(&scope_pk(&scope)), Some(scope));
        }
        assert_eq!(scope_from_pk(&job_pk(&id)), None);
        assert_eq!(scope_from_pk("LIVE#JOB#JOB#1"), None);
    }

    #[test]
    fn keys_sort_tasks_in_submission_order() {
        assert_eq!(task_sk(7), "URL#000007");
        assert!(task_sk(9) < task_sk(10));
        assert!(task_sk(9_999) < task_sk(10_000));
    }

    use domain::callback::{CallbackDelivery, DeliveryState};

    #[test]
    fn job_survives_a_round_trip_through_an_item() {
        let job = Job {
            id: JobId::generate(),
            tenant: Tenant("acme".into()),
            name: "nightly".into(),
            status: JobStatus::Processing,
            settings: JobSettings {
                priority: Priority::Urgent,
                strategy: Strategy::Both,
                engine: EngineKind::Psi,
                batch_size: 7,
                timeout_seconds: 120,
                max_retries: 2,
                callback_url: Some("https://hooks.example/done".into()),
                runs: 3,
                cache_ttl_seconds: 3600,
                categories: vec![Category::Performance, Category::Seo],
                host_concurrency: Some(2),
                field: FieldAsk { data: true, history: true },
            },
            counters: Counters { total: 10, queued: 5, in_progress: 2, succeeded: 2, failed: 1, cancelled: 0 },
            created_at: 1_000,
            started_at: Some(2_000),
            finished_at: None,
            updated_at: 3_000,
            effective_timeout_seconds: 120,
            max_in_flight: Some(100),
            quota_weight: Some(3),
            callback: Some(CallbackDelivery {
                event: "Job Completed".into(),
                state: DeliveryState::Retrying,
                attempts: 2,
                last_error: Some("timed out after 5 s".into()),
                next_attempt_at: Some(90_000),
                updated_at: 30_000,
            }),
            monitor_id: Some(domain::monitor::MonitorId::generate()),
            frontiers: [(0, 7), (3, 17)].into_iter().collect(),
            counted_to: domain::tally::StreamPosition::parse("000000017965021247380000000012"),
        };
        let item: serde_dynamo::Item = serde_dynamo::to_item(JobItem::from_job(&job, 3_000)).unwrap();
        assert_eq!(item.get("w3"), Some(&serde_dynamo::AttributeValue::N("17".into())), "one attribute per chain");
        assert_eq!(item.get("counted_to"), Some(&serde_dynamo::AttributeValue::S("17965021247380000000012".into())));
        assert_eq!(job_from_stream_image(item).unwrap(), job);
    }

    #[test]
    fn a_job_stored_before_engines_were_resolved_reads_as_http() {
        let job = Job::new(Tenant("t".into()), "n".into(), JobSettings::default(), 1, 0);
        let mut item: serde_dynamo::Item = serde_dynamo::to_item(JobItem::from_job(&job, 0)).unwrap();
        item.insert("engine".into(), serde_dynamo::AttributeValue::S("auto".into()));
        assert_eq!(job_from_stream_image(item.clone()).unwrap().settings.engine, EngineKind::Http);
        item.insert("engine".into(), serde_dynamo::AttributeValue::S("lighthouse".into()));
        assert!(matches!(job_from_stream_image(item), Err(Error::Corrupt(_))), "no other name");
    }

    #[test]
    fn negative_counters_are_reported_as_corrupt() {
        let mut item = JobItem::from_job(&Job::new(Tenant("t".into()), "n".into(), JobSettings::default(), 1, 0), 0);
        item.in_progress = -1;
        assert!(matches!(item.into_job(), Err(Error::Corrupt(_))));
    }
}

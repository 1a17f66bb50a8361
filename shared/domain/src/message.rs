//! The SQS message of one URL: everything the analyzer needs to analyse it and to release the
//! next URL of the window, without reading the job.

use serde::{Deserialize, Serialize};

use crate::cache::CacheKey;
use crate::field::FieldAsk;
use crate::history::HistoryKey;
use crate::job::{Job, JobId, Tenant};
use crate::places::{Lease, Place};
use crate::politeness::host_key;
use crate::quota::Asker;
use crate::settings::{Category, EngineKind, Priority, Strategy, one};
use crate::window::{Release, Window};

/// The SQS message body for one URL: everything the analyzer needs without a read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskMessage {
    pub job_id: JobId,
    pub seq: u32,
    pub url: String,
    pub strategy: Strategy,
    /// A name no engine has makes the message unreadable (it ends in the dead-letter queue)
    /// rather than quietly running another engine.
    pub engine: EngineKind,
    /// The job's effective timeout.
    pub timeout_seconds: u32,
    pub max_retries: u32,
    pub priority: Priority,
    /// The job's window: finishing this URL lets URL `seq + batch_size` start.
    pub batch_size: u32,
    pub total_urls: u32,
    #[serde(default = "one")]
    pub runs: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<Category>,
    /// Reuse a result of the tenant's at most this old (0: never); needs `tenant`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub cache_ttl_seconds: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<Tenant>,
    /// The job's own limit of URLs of one host analysed at once (0: the deployment's).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub host_concurrency: u32,
    /// The tenant's `max_in_flight` when the job was submitted (0: no limit kept).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub max_in_flight: u32,
    /// The tenant's weight in the PSI quota when the job was submitted (0: weight 1).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub quota_weight: u32,
    /// The job's field data (`field_data`, `field_history`).
    #[serde(default, flatten)]
    pub field: FieldAsk,
    /// Times its host asked for a pause while this URL was being analysed
    /// ([`crate::politeness::MAX_HOST_PAUSES`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub pauses: u32,
    /// Times this URL found its places taken: how long it waits next ([`crate::politeness`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub waits: u32,
    /// Analyses of this URL before this copy of its message was sent: SQS counts receives per
    /// copy, and a copy sent to wait carries the earlier copy's on ([`Self::attempt`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempts: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl TaskMessage {
    /// The message for URL `seq` of `job`: the one constructor, whoever sends it (the API
    /// for the first window, the reconciler for a lost message).
    pub fn new(job: &Job, seq: u32, url: String) -> Self {
        TaskMessage {
            job_id: job.id.clone(),
            seq,
            url,
            strategy: job.settings.strategy,
            engine: job.settings.engine,
            timeout_seconds: job.effective_timeout_seconds,
            max_retries: job.settings.max_retries,
            priority: job.settings.priority,
            batch_size: job.settings.batch_size,
            total_urls: u32::try_from(job.counters.total).unwrap_or(u32::MAX),
            runs: job.settings.runs,
            categories: job.settings.categories.clone(),
            cache_ttl_seconds: job.settings.cache_ttl_seconds,
            tenant: Some(job.tenant.clone()),
            host_concurrency: job.settings.host_concurrency.unwrap_or(0),
            max_in_flight: job.max_in_flight.unwrap_or(0),
            quota_weight: job.quota_weight.unwrap_or(0),
            field: job.settings.field,
            pauses: 0,
            waits: 0,
            attempts: 0,
        }
    }

    /// Which attempt the delivery of this copy received for the `receive_count`th time is:
    /// every earlier receive of the same copy was an analysis that retried (the copy comes back
    /// after its backoff) or never reported (it comes back after its visibility timeout).
    pub fn attempt(&self, receive_count: u32) -> u32 {
        self.attempts.saturating_add(receive_count.max(1))
    }

    /// The copy sent to wait, for a URL whose `receive_count`th delivery did not analyse it:
    /// the attempts the earlier receives made go with it.
    pub fn to_wait(&self, receive_count: u32) -> TaskMessage {
        TaskMessage { attempts: self.attempt(receive_count) - 1, ..self.clone() }
    }

    /// The URL that may start once this one has finished ([`Window`]).
    pub fn releases(&self) -> Option<Release> {
        Window::new(self.batch_size, self.total_urls).release_after(self.seq)
    }

    /// Where this URL's result is indexed for reuse by later jobs of the tenant.
    pub fn cache_key(&self) -> Option<CacheKey> {
        let tenant = self.tenant.as_ref()?;
        Some(CacheKey::new(tenant, self.engine, self.strategy, &self.categories, self.field, &self.url))
    }

    /// Where this URL's new results are kept in its tenant's history of the URL.
    pub fn history_key(&self) -> Option<HistoryKey> {
        Some(HistoryKey::new(self.tenant.as_ref()?, &self.url))
    }

    /// The message for URL `seq` of the same job: what the analyzer sends for the URL a
    /// finished one releases, without reading the job.
    pub fn for_seq(&self, seq: u32, url: String) -> Self {
        TaskMessage { seq, url, waits: 0, pauses: 0, attempts: 0, ..self.clone() }
    }

    /// Who asks for the URL's places in an engine's quota.
    pub fn asker(&self) -> Asker<'_> {
        Asker {
            tenant: self.tenant.as_ref().map_or("", |tenant| tenant.0.as_str()),
            weight: self.quota_weight.max(1),
            priority: self.priority,
        }
    }

    /// The places the URL's analysis holds until `until` ([`crate::places`]): one of its
    /// tenant's `max_in_flight` and one at its host under the job's limit within the
    /// deployment's `host_concurrency` (none for a URL without a host: it fails anyway; none
    /// for engine `none`, which loads no page).
    pub fn places(&self, until: crate::time::Millis, host_concurrency: u32) -> Vec<Lease> {
        let (job, seq) = (self.job_id.as_str(), self.seq);
        let tenant = self
            .tenant
            .as_ref()
            .filter(|_| self.max_in_flight > 0)
            .map(|tenant| Lease::tenant(tenant, self.max_in_flight, job, seq, self.waits, until));
        let limit = match self.host_concurrency {
            0 => host_concurrency,
            own => own.min(host_concurrency),
        };
        // Field data alone loads nothing from the site: no place at its host to take.
        let host = host_key(&self.url)
            .filter(|_| self.engine.is_lab())
            .map(|host| Lease::new(Place::Host(host), job, seq, until, limit));
        tenant.into_iter().chain(host).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::JobSettings;

    #[test]
    fn task_message_round_trips_as_json() {
        let message = TaskMessage {
            job_id: JobId::generate(),
            seq: 7,
            url: "https://example.com".into(),
            strategy: Strategy::Desktop,
            engine: EngineKind::Http,
            timeout_seconds: 60,
            max_retries: 2,
            priority: Priority::High,
            batch_size: 3,
            total_urls: 10,
            runs: 3,
            categories: vec![Category::Performance, Category::Seo],
            cache_ttl_seconds: 600,
            tenant: Some(Tenant("acme".into())),
            host_concurrency: 2,
            max_in_flight: 40,
            quota_weight: 2,
            field: FieldAsk { data: true, history: true },
            pauses: 0,
            waits: 1,
            attempts: 2,
        };
        let json = serde_json::to_string(&message).unwrap();
        assert!(json.contains("\"strategy\":\"desktop\""), "{json}");
        assert!(json.contains("\"field_data\":true,\"field_history\":true"), "{json}");
        assert_eq!(serde_json::from_str::<TaskMessage>(&json).unwrap(), message);
        // Messages queued before runs and categories existed still read.
        let older: TaskMessage = serde_json::from_str(
            r#"{"job_id":"j","seq":1,"url":"https://a.com","strategy":"mobile","engine":"http","timeout_seconds":60,
                "max_retries":1,"priority":"low","batch_size":1,"total_urls":2}"#,
        )
        .unwrap();
        assert_eq!((older.runs, older.categories.len(), older.cache_ttl_seconds), (1, 0, 0));
        assert_eq!(older.field, FieldAsk::NONE, "no field data unless asked");
        assert_eq!(older.cache_key(), None, "no tenant, no cache");
        assert_eq!((older.host_concurrency, older.max_in_flight, older.waits, older.attempts), (0, 0, 0, 0));
        assert_eq!((older.asker().tenant, older.asker().weight), ("", 1), "weight 1 in the quota");
        assert_eq!(
            (message.asker().tenant, message.asker().weight, message.asker().priority),
            ("acme", 2, Priority::High)
        );
        let [lease] = older.places(9, 4).try_into().expect("only a place at its host");
        assert_eq!((lease.place, lease.holder.as_str(), lease.limit), (Place::Host("a.com".into()), "j#1@9", 4));
        let [tenant, host] = message.places(9, 4).try_into().expect("the tenant's place and the host's");
        assert_eq!(host.limit, 2, "the job asked for fewer");
        assert_eq!(message.places(9, 1)[1].limit, 1, "never more than the deployment");
        assert!(matches!(tenant.place, Place::Tenant { ref tenant, .. } if tenant == "acme"), "{tenant:?}");
        assert_eq!(tenant.holder, host.holder, "one name for the URL in both");
        let field_only = TaskMessage { engine: EngineKind::FieldOnly, ..message.clone() };
        let [tenant] = field_only.places(9, 4).try_into().expect("only the tenant's place");
        assert!(matches!(tenant.place, Place::Tenant { .. }), "no page loaded, no place at the host: {tenant:?}");
    }

    #[test]
    fn a_urls_attempts_count_every_receive_of_every_copy_but_those_that_only_waited() {
        let job = Job::new(Tenant("t".into()), "n".into(), JobSettings::default(), 8, 0);
        let first = TaskMessage::new(&job, 0, "https://a.example".into());
        assert_eq!((first.attempt(1), first.attempt(0)), (1, 1), "a count SQS did not give is the first");
        assert_eq!(first.attempt(3), 3, "two analyses retried or never reported");
        // Received a third time, it found its host busy: the copy that waits has had two.
        let waiting = first.to_wait(3);
        assert_eq!((waiting.attempts, waiting.attempt(1)), (2, 3));
        assert_eq!(waiting.to_wait(1).attempts, 2, "waiting again adds none");
        assert_eq!(waiting.for_seq(3, String::new()).attempts, 0, "the URL it releases starts afresh");
    }

    #[test]
    fn each_url_releases_the_one_a_window_ahead_until_the_end() {
        let job = Job::new(Tenant("t".into()), "n".into(), JobSettings { batch_size: 3, ..Default::default() }, 8, 0);
        let message = TaskMessage::new(&job, 0, "https://a.example".into());
        let released: Vec<Option<u32>> =
            (0..8).map(|seq| message.for_seq(seq, String::new()).releases().map(|r| r.next)).collect();
        assert_eq!(released, [Some(3), Some(4), Some(5), Some(6), Some(7), None, None, None]);
    }

    #[test]
    fn a_jobs_urls_carry_its_tenants_limits_as_they_were_at_submission() {
        let limits = crate::tenancy::Limits { max_in_flight: 7, quota_weight: 3, ..crate::tenancy::Limits::DEFAULT };
        let settings = JobSettings { priority: Priority::Urgent, ..Default::default() };
        let job = Job::new(Tenant("acme".into()), "n".into(), settings, 2, 0).held_to(&limits);
        let message = TaskMessage::new(&job, 1, "https://a.example".into());
        assert_eq!((message.max_in_flight, message.quota_weight), (7, 3));
        assert_eq!(message.asker(), Asker { tenant: "acme", weight: 3, priority: Priority::Urgent });
        assert_eq!(message.for_seq(2, "https://b.example".into()).asker(), message.asker(), "and the URLs it releases");
    }
}

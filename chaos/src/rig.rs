//! What every scenario works with: the chaos stack's API and queues, SDK clients for the
//! parts a client never sees (queues, table), the local sites the analyzer measures, and the
//! secrets handed out, which the log scan later looks for.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use domain::tenancy::LimitOverrides;
use domain::{JobId, TaskMessage, Tenant};
use store::DynamoStore;
use store::prelude::*;
use testkit::api::ApiClient;
use testkit::site::Site;
use testkit::stack::DeployedStack;

use crate::hostile_site::HostileSite;

/// The one address the chaos stack's analyzer may fetch (`ExemptTarget`): every page the
/// suite serves is here, and every other private address stays refused.
pub const EXEMPT: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

pub struct Rig {
    pub stack: DeployedStack,
    pub api: ApiClient,
    pub sqs: aws_sdk_sqs::Client,
    pub dynamo: aws_sdk_dynamodb::Client,
    pub store: DynamoStore,
    pub site: Site,
    pub hostile: HostileSite,
    /// (what it is, the value): every key and secret this run handed out or read.
    secrets: Mutex<Vec<(String, String)>>,
    /// When the run started (ms since the epoch): the log scan reads from here on.
    pub started_ms: i64,
}

impl Rig {
    pub async fn new() -> Result<Rig, String> {
        let stack = DeployedStack::chaos()?;
        let sdk = testkit::emulator::sdk_config().await;
        let table = stack.value("TABLE_NAME")?.to_owned();
        let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
        let rig = Rig {
            api: ApiClient::new(&stack),
            sqs: aws_sdk_sqs::Client::new(&sdk),
            store: DynamoStore::new(dynamo.clone(), table, 30),
            dynamo,
            site: Site::start_on(EXEMPT).await,
            hostile: HostileSite::start(EXEMPT).await?,
            secrets: Mutex::new(vec![("the dev tenant's API key".into(), stack.api_key.clone())]),
            started_ms: domain::time::now_millis(),
            stack,
        };
        Ok(rig)
    }

    /// The API as a new tenant of its own held to its own limits `own`, as `make limits` sets.
    pub async fn limited_tenant(&self, name: &str, own: &LimitOverrides) -> Result<ApiClient, String> {
        let (tenant, api) = self.new_tenant(name).await?;
        self.store.set_limit_overrides(&tenant, own).await.map_err(|e| e.to_string())?;
        Ok(api)
    }

    /// The API as a new tenant of its own (its key stored hashed, as `make key` does).
    pub async fn tenant(&self, name: &str) -> Result<ApiClient, String> {
        Ok(self.new_tenant(name).await?.1)
    }

    async fn new_tenant(&self, name: &str) -> Result<(Tenant, ApiClient), String> {
        let key = domain::auth::generate_key();
        let tenant = Tenant(format!("chaos-{name}-{}", uuid::Uuid::new_v4().simple()));
        self.store.put_key_hash(&domain::auth::hash_key(&key), &tenant).await.map_err(|e| e.to_string())?;
        self.remember_secret(&format!("tenant {name}'s API key"), &key);
        Ok((tenant, self.api.with_key(&key)))
    }

    pub fn remember_secret(&self, what: &str, value: &str) {
        self.secrets.lock().unwrap_or_else(|p| p.into_inner()).push((what.to_owned(), value.to_owned()));
    }

    pub fn secrets(&self) -> Vec<(String, String)> {
        self.secrets.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The queue of a priority (`high`, `normal`, `low`) or its dead-letter queue.
    pub fn queue(&self, priority: &str) -> Result<&str, String> {
        self.stack.value(&format!("{}_QUEUE_URL", priority.to_uppercase()))
    }

    pub fn dead_letters(&self, priority: &str) -> Result<&str, String> {
        self.stack.value(&format!("{}_DLQ_URL", priority.to_uppercase()))
    }

    /// Messages in a queue: visible, in flight and delayed together.
    pub async fn depth(&self, queue_url: &str) -> Result<u64, String> {
        use aws::queue::TaskQueue;
        let depth = self.queue_client().depth(queue_url).await.map_err(|e| e.to_string())?;
        Ok(depth.visible + depth.in_flight + depth.delayed)
    }

    fn queue_client(&self) -> aws::queue::SqsQueue {
        aws::queue::SqsQueue::new(self.sqs.clone())
    }

    /// Waits until the queue holds `count` messages; how long that took.
    pub async fn wait_depth(&self, queue_url: &str, count: u64, limit: Duration) -> Result<Duration, String> {
        let started = Instant::now();
        loop {
            let depth = self.depth(queue_url).await?;
            if depth == count {
                return Ok(started.elapsed());
            }
            if started.elapsed() > limit {
                return Err(format!("the queue still holds {depth} messages (not {count}) after {limit:?}"));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The messages the API sent for a job's URLs, rebuilt from its stored tasks: what a
    /// redelivery of each would carry.
    pub async fn messages_of(&self, id: &str) -> Result<Vec<TaskMessage>, String> {
        let job_id = JobId::parse(id).ok_or_else(|| format!("{id} is not a job id"))?;
        let job = self.store.get_job(&job_id).await.map_err(|e| e.to_string())?.ok_or("the job is not stored")?;
        let mut messages = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .store
                .list_tasks(&job_id, &domain::TaskFilter::default(), 100, after)
                .await
                .map_err(|e| e.to_string())?;
            messages.extend(page.items.into_iter().map(|task| TaskMessage::new(&job, task.seq, task.url)));
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(messages),
            }
        }
    }

    /// Sends messages to a queue as the API would (SendMessageBatch).
    pub async fn send(&self, queue_url: &str, messages: &[TaskMessage]) -> Result<(), String> {
        use aws::queue::TaskQueue;
        self.queue_client().send(queue_url, messages).await.map_err(|e| e.to_string())
    }

    /// A function's name in this stack, as the emulator runs it.
    pub fn analyzer(&self) -> Result<&str, String> {
        self.stack.value("ANALYZER_FUNCTION")
    }

    pub fn stack_name(&self) -> &str {
        self.stack.values.get("STACK_NAME").map_or("speedbatch-chaos", String::as_str)
    }
}

/// `n` URLs of the site's `path_prefix` pages, numbered from `first`.
pub fn pages(site: &Site, path_prefix: &str, first: usize, n: usize) -> Vec<String> {
    (first..first + n).map(|i| site.url(&format!("{path_prefix}/{i}"))).collect()
}

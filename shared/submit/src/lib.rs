//! Submitting a job: what `POST /start` does once the request is understood, and what a
//! monitor's run does on its schedule. The tenant's limits are checked before anything is
//! written (a refused job costs one read) and again by the write that creates the job; then
//! only the job's first window of URLs is sent, each URL that finishes releasing the next.

mod run_urls;

pub use run_urls::{NoUrls, run_urls};

use aws::config::QueueUrls;
use aws::queue::TaskQueue;
use domain::tenancy::{self, Limits, OverLimit};
use domain::time::Millis;
use domain::{Error, Job, JobSettings, JobUrl, TaskMessage, Tenant};
use store::{Jobs, Tenancy};

/// What the deployment gives every job.
#[derive(Clone, Debug)]
pub struct Deployment {
    pub queues: QueueUrls,
    /// What each tenant may use unless its own item says otherwise.
    pub tenant_limits: Limits,
    /// The longest analysis a URL can get from the analyzer function.
    pub max_url_timeout_seconds: u32,
}

/// The tenant's limits at `now`, and whether `settings` over `urls` URLs fits them.
pub async fn admission<S: Tenancy>(
    store: &S,
    deployment: &Deployment,
    tenant: &Tenant,
    settings: &JobSettings,
    urls: u64,
    now: Millis,
) -> Result<(Limits, Result<(), OverLimit>), Error> {
    let own = store.tenant_usage(tenant, now).await?;
    let limits = deployment.tenant_limits.with(&own.overrides);
    let fits = tenancy::admit(&limits, &own.usage, tenancy::analyses(settings, urls), now);
    Ok((limits, fits))
}

/// Creates `job` (new, of `urls.len()` URLs) within its tenant's `limits`, and sends its first
/// window. A crash after the job is written and before its messages are sent leaves released,
/// queued URLs that the reconciler sends.
pub async fn create<S: Jobs, Q: TaskQueue>(
    store: &S,
    queue: &Q,
    deployment: &Deployment,
    job: Job,
    urls: &[JobUrl],
    limits: &Limits,
) -> Result<Result<Job, OverLimit>, Error> {
    let job = job.cap_timeout(deployment.max_url_timeout_seconds).held_to(limits);
    if let Err(over) = store.create_job_within(&job, urls, limits).await? {
        return Ok(Err(over));
    }
    let messages: Vec<TaskMessage> = urls
        .iter()
        .take(job.initial_window() as usize)
        .zip(0..)
        .map(|(url, seq)| TaskMessage::new(&job, seq, url.url.as_str().to_owned()))
        .collect();
    queue.send(deployment.queues.for_task(job.settings.priority, job.settings.engine), &messages).await?;
    tracing::info!(job_id = %job.id, urls = urls.len(), started = messages.len(), "job created");
    Ok(Ok(job))
}

/// `admission`, then `create` of a new job named `name`: the whole of a submission.
pub async fn submit<S: Jobs + Tenancy, Q: TaskQueue>(
    store: &S,
    queue: &Q,
    deployment: &Deployment,
    job: Job,
    urls: &[JobUrl],
    now: Millis,
) -> Result<Result<Job, OverLimit>, Error> {
    let (limits, fits) = admission(store, deployment, &job.tenant, &job.settings, urls.len() as u64, now).await?;
    if let Err(over) = fits {
        return Ok(Err(over));
    }
    create(store, queue, deployment, job, urls, &limits).await
}

#[cfg(test)]
mod tests {
    use aws::queue::MemoryQueue;
    use domain::{AddressPolicy, CleanUrl};
    use store::MemoryStore;
    use store::prelude::*;

    use super::*;

    fn deployment(max_active_jobs: u32) -> Deployment {
        Deployment {
            queues: QueueUrls { high: "q/high".into(), normal: "q/normal".into(), low: "q/low".into(), browser: None },
            tenant_limits: Limits { max_active_jobs, ..Limits::DEFAULT },
            max_url_timeout_seconds: 840,
        }
    }

    fn urls(n: usize) -> Vec<JobUrl> {
        (0..n)
            .map(|i| JobUrl::from(CleanUrl::parse(&format!("https://a.example/{i}"), AddressPolicy::STRICT).unwrap()))
            .collect()
    }

    #[tokio::test]
    async fn a_job_is_written_with_its_urls_and_only_its_first_window_is_sent() {
        let (store, queue) = (MemoryStore::new(), MemoryQueue::new());
        let settings = JobSettings { batch_size: 3, timeout_seconds: 1_800, ..JobSettings::default() };
        let job = Job::new(Tenant("t".into()), "j".into(), settings, 10, 1);
        let created = submit(&store, &queue, &deployment(5), job, &urls(10), 1).await.unwrap().unwrap();
        assert_eq!(created.effective_timeout_seconds, 840, "held to what the deployment gives a URL");
        assert_eq!(created.max_in_flight, Some(Limits::DEFAULT.max_in_flight), "carries its tenant's limits");
        assert_eq!(store.get_job(&created.id).await.unwrap().map(|j| j.counters.total), Some(10));
        let sent: Vec<(String, u32)> = queue.sent().into_iter().map(|(q, m)| (q, m.seq)).collect();
        assert_eq!(sent, [("q/normal".to_owned(), 0), ("q/normal".to_owned(), 1), ("q/normal".to_owned(), 2)]);
    }

    #[tokio::test]
    async fn a_job_over_its_tenants_limit_writes_and_sends_nothing() {
        let (store, queue) = (MemoryStore::new(), MemoryQueue::new());
        let tenant = Tenant("t".into());
        let first = Job::new(tenant.clone(), "a".into(), JobSettings::default(), 1, 1);
        submit(&store, &queue, &deployment(1), first, &urls(1), 1).await.unwrap().unwrap();
        let second = Job::new(tenant, "b".into(), JobSettings::default(), 1, 2);
        let over = submit(&store, &queue, &deployment(1), second.clone(), &urls(1), 2).await.unwrap().unwrap_err();
        assert_eq!(over.limit, domain::tenancy::Limit::ActiveJobs);
        assert_eq!(store.get_job(&second.id).await.unwrap(), None);
        assert_eq!(queue.sent().len(), 1, "only the first job's URL");
    }
}

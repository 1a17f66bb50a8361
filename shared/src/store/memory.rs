//! An in-memory `JobStore` with the same conditional semantics as the DynamoDB one, for unit
//! tests of the handlers. `set_unavailable` simulates an outage.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{Cancel, Claim, JobStore, Outcome, Page, Recorded};
use crate::auth::KeyStore;
use crate::domain::{
    Analysis, CacheKey, CachedFrom, CleanUrl, ErrorKind, Job, JobId, JobStatus, Tenant, UrlStatus, UrlTask,
};
use crate::error::Error;
use crate::time::Millis;

#[derive(Default)]
struct State {
    jobs: HashMap<JobId, Job>,
    tasks: HashMap<(JobId, u32), UrlTask>,
    keys: HashMap<String, Tenant>,
    secrets: HashMap<Tenant, String>,
    resent: HashMap<(JobId, u32), Millis>,
    /// Cache key → (analysed at, job, seq) of each result indexed under it.
    cache: HashMap<String, Vec<(Millis, JobId, u32)>>,
}

#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    unavailable: AtomicBool,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// While set, every call fails as DynamoDB would during an outage.
    pub fn set_unavailable(&self, unavailable: bool) {
        self.unavailable.store(unavailable, Ordering::SeqCst);
    }

    fn state(&self) -> Result<std::sync::MutexGuard<'_, State>, Error> {
        if self.unavailable.load(Ordering::SeqCst) {
            return Err(Error::Store { operation: "memory", message: "service unavailable".into() });
        }
        Ok(self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }
}

impl JobStore for MemoryStore {
    async fn create_job(&self, job: &Job, urls: &[CleanUrl]) -> Result<(), Error> {
        let mut state = self.state()?;
        if state.jobs.contains_key(&job.id) {
            return Err(Error::Conflict(format!("job {} exists", job.id)));
        }
        let window = job.initial_window();
        for (seq, url) in urls.iter().enumerate() {
            let seq = seq as u32;
            state.tasks.insert(
                (job.id.clone(), seq),
                UrlTask {
                    job_id: job.id.clone(),
                    seq,
                    url: url.as_str().to_owned(),
                    status: UrlStatus::Queued,
                    attempts: 0,
                    error: None,
                    error_kind: None,
                    analysis: None,
                    analyzed_at: None,
                    released_at: (seq < window).then_some(job.created_at),
                    lease_until: None,
                },
            );
        }
        state.jobs.insert(job.id.clone(), job.clone());
        Ok(())
    }

    async fn get_job(&self, id: &JobId) -> Result<Option<Job>, Error> {
        Ok(self.state()?.jobs.get(id).cloned())
    }

    async fn get_task(&self, id: &JobId, seq: u32) -> Result<Option<UrlTask>, Error> {
        Ok(self.state()?.tasks.get(&(id.clone(), seq)).cloned())
    }

    async fn claim_task(&self, id: &JobId, seq: u32, now: Millis, lease: std::time::Duration) -> Result<Claim, Error> {
        let until = now.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX));
        let mut state = self.state()?;
        let State { jobs, tasks, .. } = &mut *state;
        let job = jobs.get_mut(id).ok_or(Error::NotFound)?;
        let task = tasks.get_mut(&(id.clone(), seq)).ok_or(Error::NotFound)?;
        if task.status.is_terminal() {
            return Ok(Claim::AlreadyFinished(task.status));
        }
        if !matches!(job.status, JobStatus::Pending | JobStatus::Processing) {
            return Ok(Claim::JobCancelling(task.status));
        }
        match task.status {
            UrlStatus::Queued => {
                task.status = UrlStatus::Processing;
                task.attempts += 1;
                task.lease_until = Some(until);
                job.counters.queued -= 1;
                job.counters.in_progress += 1;
                job.started_at.get_or_insert(now);
                job.updated_at = now;
                Ok(Claim::Claimed)
            }
            _ => match task.lease_until.filter(|lease| *lease > now) {
                Some(lease) => Ok(Claim::Busy { until: lease }),
                None => {
                    task.attempts += 1;
                    task.lease_until = Some(until);
                    Ok(Claim::Reclaimed { attempt: task.attempts })
                }
            },
        }
    }

    async fn record_retry(
        &self,
        id: &JobId,
        seq: u32,
        kind: ErrorKind,
        reason: &str,
        now: Millis,
    ) -> Result<(), Error> {
        let mut state = self.state()?;
        if let Some(task) = state.tasks.get_mut(&(id.clone(), seq)).filter(|t| t.status == UrlStatus::Processing) {
            task.error = Some(reason.to_owned());
            task.error_kind = Some(kind);
            task.lease_until = Some(now);
        }
        Ok(())
    }

    async fn release_claim(&self, id: &JobId, seq: u32, now: Millis) -> Result<(), Error> {
        let mut state = self.state()?;
        if let Some(task) = state.tasks.get_mut(&(id.clone(), seq)).filter(|t| t.status == UrlStatus::Processing) {
            task.attempts = task.attempts.saturating_sub(1);
            task.lease_until = Some(now);
        }
        Ok(())
    }

    async fn record_outcome(
        &self,
        id: &JobId,
        seq: u32,
        outcome: &Outcome,
        release: Option<u32>,
        cache_key: Option<&CacheKey>,
        now: Millis,
    ) -> Result<Recorded, Error> {
        let mut state = self.state()?;
        let State { jobs, tasks, cache, .. } = &mut *state;
        let job = jobs.get_mut(id).ok_or(Error::NotFound)?;
        let task = tasks.get_mut(&(id.clone(), seq)).ok_or(Error::NotFound)?;
        if task.status != UrlStatus::Processing {
            return Ok(Recorded::Duplicate);
        }
        job.counters.in_progress -= 1;
        job.updated_at = now;
        task.analyzed_at = Some(now);
        match outcome {
            Outcome::Succeeded(analysis) => {
                task.status = UrlStatus::Succeeded;
                task.analysis = Some(analysis.clone());
                job.counters.succeeded += 1;
                if let Some(key) = cache_key.filter(|_| analysis.cached_from.is_none()) {
                    cache.entry(key.as_str().to_owned()).or_default().push((now, id.clone(), seq));
                }
            }
            Outcome::Failed { kind, reason, analysis } => {
                task.status = UrlStatus::Failed;
                task.error = Some(reason.clone());
                task.error_kind = Some(*kind);
                task.analysis = analysis.clone();
                job.counters.failed += 1;
            }
        }
        if let Some(next) = release.and_then(|next| tasks.get_mut(&(id.clone(), next))) {
            next.released_at.get_or_insert(now);
        }
        Ok(Recorded::Counted)
    }

    async fn cached_result(&self, key: &CacheKey, since: Millis) -> Result<Option<Analysis>, Error> {
        let state = self.state()?;
        let newest = state
            .cache
            .get(key.as_str())
            .and_then(|entries| entries.iter().filter(|(at, _, _)| *at >= since).max_by_key(|(at, _, _)| *at));
        Ok(newest.and_then(|(at, job_id, seq)| {
            let analysis = state.tasks.get(&(job_id.clone(), *seq))?.analysis.clone()?;
            Some(Analysis { cached_from: Some(CachedFrom { job_id: job_id.clone(), analyzed_at: *at }), ..analysis })
        }))
    }

    async fn cancel_task(&self, id: &JobId, seq: u32, from: UrlStatus, now: Millis) -> Result<bool, Error> {
        let mut state = self.state()?;
        let State { jobs, tasks, .. } = &mut *state;
        let (Some(job), Some(task)) = (jobs.get_mut(id), tasks.get_mut(&(id.clone(), seq))) else {
            return Ok(false);
        };
        if task.status != from {
            return Ok(false);
        }
        match task.status {
            UrlStatus::Queued => job.counters.queued -= 1,
            UrlStatus::Processing => job.counters.in_progress -= 1,
            _ => return Ok(false),
        }
        task.status = UrlStatus::Cancelled;
        task.analyzed_at = Some(now);
        job.counters.cancelled += 1;
        job.updated_at = now;
        Ok(true)
    }

    async fn task_urls(&self, keys: &[(JobId, u32)]) -> Result<HashMap<(JobId, u32), String>, Error> {
        let state = self.state()?;
        Ok(keys.iter().filter_map(|key| state.tasks.get(key).map(|task| (key.clone(), task.url.clone()))).collect())
    }

    async fn list_active_jobs(&self, limit: usize, after: Option<&JobId>) -> Result<Page<JobId, JobId>, Error> {
        let state = self.state()?;
        let mut ids: Vec<JobId> =
            state.jobs.values().filter(|job| !job.status.is_finished()).map(|job| job.id.clone()).collect();
        ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        let matching = ids.into_iter().filter(|id| after.is_none_or(|after| id.as_str() > after.as_str()));
        Ok(page(matching, limit, JobId::clone))
    }

    async fn stalled_tasks(&self, id: &JobId, before: Millis, limit: usize) -> Result<Vec<UrlTask>, Error> {
        let state = self.state()?;
        let mut stalled: Vec<UrlTask> = state
            .tasks
            .values()
            .filter(|task| &task.job_id == id)
            .filter(|task| match task.status {
                UrlStatus::Queued => task.released_at.is_some_and(|at| at < before),
                UrlStatus::Processing => task.lease_until.is_none_or(|lease| lease < before),
                _ => false,
            })
            .filter(|task| state.resent.get(&(id.clone(), task.seq)).is_none_or(|at| *at < before))
            .cloned()
            .collect();
        stalled.sort_by_key(|task| task.seq);
        stalled.truncate(limit);
        Ok(stalled)
    }

    async fn note_resent(&self, id: &JobId, seq: u32, now: Millis) -> Result<(), Error> {
        self.state()?.resent.insert((id.clone(), seq), now);
        Ok(())
    }

    async fn cancel_queued(&self, id: &JobId, now: Millis, _budget: std::time::Duration) -> Result<u64, Error> {
        let mut state = self.state()?;
        let State { jobs, tasks, .. } = &mut *state;
        let job = jobs.get_mut(id).ok_or(Error::NotFound)?;
        let mut cancelled = 0;
        let mut queued: Vec<&mut UrlTask> =
            tasks.values_mut().filter(|t| &t.job_id == id && t.status == UrlStatus::Queued).collect();
        queued.sort_by_key(|t| t.seq);
        for task in queued {
            task.status = UrlStatus::Cancelled;
            task.analyzed_at = Some(now);
            cancelled += 1;
        }
        job.counters.queued -= cancelled;
        job.counters.cancelled += cancelled;
        if cancelled > 0 {
            job.updated_at = now;
        }
        Ok(cancelled)
    }

    async fn request_cancel(&self, id: &JobId, now: Millis) -> Result<Cancel, Error> {
        let mut state = self.state()?;
        let job = state.jobs.get_mut(id).ok_or(Error::NotFound)?;
        match job.status {
            JobStatus::Pending | JobStatus::Processing => {
                job.status = JobStatus::Cancelling;
                job.updated_at = now;
                Ok(Cancel::Requested)
            }
            JobStatus::Cancelling => Ok(Cancel::Requested),
            status => Ok(Cancel::AlreadyFinished(status)),
        }
    }

    async fn list_jobs(
        &self,
        tenant: &Tenant,
        status: Option<JobStatus>,
        limit: usize,
        after: Option<&JobId>,
    ) -> Result<Page<Job, JobId>, Error> {
        let state = self.state()?;
        let mut jobs: Vec<&Job> = state.jobs.values().filter(|job| &job.tenant == tenant).collect();
        // Newest first, as the GSI orders UUIDv7 ids.
        jobs.sort_by(|a, b| b.id.as_str().cmp(a.id.as_str()));
        let matching = jobs
            .into_iter()
            .filter(|job| after.is_none_or(|after| job.id.as_str() < after.as_str()))
            .filter(|job| status.is_none_or(|status| job.status == status));
        Ok(page(matching.cloned(), limit, |job| job.id.clone()))
    }

    async fn list_tasks(
        &self,
        id: &JobId,
        status: Option<UrlStatus>,
        limit: usize,
        after: Option<u32>,
    ) -> Result<Page<UrlTask, u32>, Error> {
        let state = self.state()?;
        let mut tasks: Vec<&UrlTask> = state.tasks.values().filter(|task| &task.job_id == id).collect();
        tasks.sort_by_key(|task| task.seq);
        let matching = tasks
            .into_iter()
            .filter(|task| after.is_none_or(|after| task.seq > after))
            .filter(|task| status.is_none_or(|status| task.status == status));
        Ok(page(matching.cloned(), limit, |task| task.seq))
    }

    async fn delete_job(&self, id: &JobId) -> Result<usize, Error> {
        let mut state = self.state()?;
        let before = state.tasks.len();
        state.tasks.retain(|(job, _), _| job != id);
        let tasks = before - state.tasks.len();
        Ok(tasks + usize::from(state.jobs.remove(id).is_some()))
    }

    async fn ping(&self) -> Result<(), Error> {
        self.state().map(|_| ())
    }

    async fn transition_job(&self, id: &JobId, from: JobStatus, to: JobStatus, now: Millis) -> Result<bool, Error> {
        if !from.can_become(to) {
            return Err(Error::Conflict(format!("a job cannot go from {from} to {to}")));
        }
        let mut state = self.state()?;
        let Some(job) = state.jobs.get_mut(id).filter(|job| job.status == from) else {
            return Ok(false);
        };
        job.status = to;
        job.updated_at = now;
        if to == JobStatus::Processing || to.is_finished() {
            job.started_at.get_or_insert(now);
        }
        if to.is_finished() {
            job.finished_at = Some(now);
        }
        Ok(true)
    }
}

/// The first `limit` items, and the cursor of the last one when more follow.
fn page<T, C>(mut items: impl Iterator<Item = T>, limit: usize, cursor: impl Fn(&T) -> C) -> Page<T, C> {
    let taken: Vec<T> = items.by_ref().take(limit).collect();
    let next = if items.next().is_some() { taken.last().map(cursor) } else { None };
    Page { items: taken, next }
}

impl KeyStore for MemoryStore {
    async fn tenant_for_key_hash(&self, hash: &str) -> Result<Option<Tenant>, Error> {
        Ok(self.state()?.keys.get(hash).cloned())
    }

    async fn callback_secret(&self, tenant: &Tenant) -> Result<String, Error> {
        let mut state = self.state()?;
        Ok(state.secrets.entry(tenant.clone()).or_insert_with(crate::auth::generate_callback_secret).clone())
    }

    async fn put_key_hash(&self, hash: &str, tenant: &Tenant) -> Result<(), Error> {
        self.state()?.keys.insert(hash.to_owned(), tenant.clone());
        Ok(())
    }
}

//! An in-memory `JobStore` with the same conditional semantics as the DynamoDB one, for unit
//! tests of the handlers. `set_unavailable` simulates an outage.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{Claim, JobStore, Outcome, Recorded};
use crate::auth::KeyStore;
use crate::domain::{CleanUrl, Job, JobId, JobStatus, Tenant, UrlStatus, UrlTask};
use crate::error::Error;
use crate::time::Millis;

#[derive(Default)]
struct State {
    jobs: HashMap<JobId, Job>,
    tasks: HashMap<(JobId, u32), UrlTask>,
    keys: HashMap<String, Tenant>,
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
                    analysis: None,
                    analyzed_at: None,
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

    async fn claim_task(&self, id: &JobId, seq: u32, now: Millis) -> Result<Claim, Error> {
        let mut state = self.state()?;
        let State { jobs, tasks, .. } = &mut *state;
        let job = jobs.get_mut(id).ok_or(Error::NotFound)?;
        let task = tasks.get_mut(&(id.clone(), seq)).ok_or(Error::NotFound)?;
        match task.status {
            UrlStatus::Queued => {
                task.status = UrlStatus::Processing;
                task.attempts += 1;
                job.counters.queued -= 1;
                job.counters.in_progress += 1;
                job.started_at.get_or_insert(now);
                Ok(Claim::Claimed)
            }
            UrlStatus::Processing => {
                task.attempts += 1;
                Ok(Claim::Reclaimed)
            }
            status => Ok(Claim::AlreadyFinished(status)),
        }
    }

    async fn record_outcome(&self, id: &JobId, seq: u32, outcome: &Outcome, now: Millis) -> Result<Recorded, Error> {
        let mut state = self.state()?;
        let State { jobs, tasks, .. } = &mut *state;
        let job = jobs.get_mut(id).ok_or(Error::NotFound)?;
        let task = tasks.get_mut(&(id.clone(), seq)).ok_or(Error::NotFound)?;
        if task.status != UrlStatus::Processing {
            return Ok(Recorded::Duplicate);
        }
        job.counters.in_progress -= 1;
        task.analyzed_at = Some(now);
        match outcome {
            Outcome::Succeeded(analysis) => {
                task.status = UrlStatus::Succeeded;
                task.analysis = Some(analysis.clone());
                job.counters.succeeded += 1;
            }
            Outcome::Failed { reason, analysis } => {
                task.status = UrlStatus::Failed;
                task.error = Some(reason.clone());
                task.analysis = analysis.clone();
                job.counters.failed += 1;
            }
        }
        Ok(Recorded::Counted)
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
        if to == JobStatus::Processing || to.is_finished() {
            job.started_at.get_or_insert(now);
        }
        if to.is_finished() {
            job.finished_at = Some(now);
        }
        Ok(true)
    }
}

impl KeyStore for MemoryStore {
    async fn tenant_for_key_hash(&self, hash: &str) -> Result<Option<Tenant>, Error> {
        Ok(self.state()?.keys.get(hash).cloned())
    }

    async fn put_key_hash(&self, hash: &str, tenant: &Tenant) -> Result<(), Error> {
        self.state()?.keys.insert(hash.to_owned(), tenant.clone());
        Ok(())
    }
}

//! Live subscriptions in memory, as the table keeps them: a subscription per connection and
//! scope, the scopes each connection holds (bounded), and a watch generation per followed job.

use std::collections::{BTreeSet, HashMap};

use domain::live::{MAX_SUBSCRIPTIONS_PER_CONNECTION, Watch};
use domain::time::Millis;
use domain::{Error, Job, JobId, Tenant};

use super::MemoryStore;
use crate::{Refused, Scope, Subscriptions, Watcher};

#[derive(Default)]
pub(super) struct Live {
    subscriptions: BTreeSet<Watcher>,
    connections: HashMap<String, BTreeSet<Scope>>,
    generations: HashMap<JobId, u64>,
}

impl Live {
    fn follow(&mut self, id: &JobId) {
        *self.generations.entry(id.clone()).or_default() += 1;
    }
}

impl MemoryStore {
    /// A job's watch generation, as its stream image would carry it: `None` while nobody
    /// follows it.
    pub fn watch_generation(&self, id: &JobId) -> Option<u64> {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).live.generations.get(id).copied()
    }
}

impl Subscriptions for MemoryStore {
    async fn subscribe(
        &self,
        connection: &str,
        tenant: &Tenant,
        watch: &Watch,
        _now: Millis,
    ) -> Result<Result<(), Refused>, Error> {
        let mut state = self.state()?;
        let scope = match watch {
            Watch::Job(id) => match state.jobs.get(id) {
                Some(job) if &job.tenant == tenant => Scope::Job(id.clone()),
                _ => return Ok(Err(Refused::NotFound)),
            },
            Watch::AllJobs => Scope::Tenant(tenant.clone()),
        };
        let held = state.live.connections.entry(connection.to_owned()).or_default();
        if !held.contains(&scope) && held.len() >= MAX_SUBSCRIPTIONS_PER_CONNECTION {
            return Ok(Err(Refused::TooMany));
        }
        held.insert(scope.clone());
        state.live.subscriptions.insert(Watcher { connection: connection.to_owned(), scope: scope.clone() });
        let followed: Vec<JobId> = match scope {
            Scope::Job(id) => vec![id],
            Scope::Tenant(tenant) => {
                state.active.get(&tenant).map(|ids| ids.iter().cloned().collect()).unwrap_or_default()
            }
        };
        for id in followed {
            state.live.follow(&id);
        }
        Ok(Ok(()))
    }

    async fn watchers(&self, job: &Job) -> Result<Vec<Watcher>, Error> {
        let state = self.state()?;
        let scopes = [Scope::Job(job.id.clone()), Scope::Tenant(job.tenant.clone())];
        Ok(state.live.subscriptions.iter().filter(|w| scopes.contains(&w.scope)).cloned().collect())
    }

    async fn follow_new_job(&self, job: &Job, _now: Millis) -> Result<bool, Error> {
        let mut state = self.state()?;
        let scope = Scope::Tenant(job.tenant.clone());
        let followed = state.live.subscriptions.iter().any(|w| w.scope == scope);
        if followed && state.jobs.contains_key(&job.id) {
            state.live.follow(&job.id);
        }
        Ok(followed)
    }

    async fn unfollow_job(&self, id: &JobId, generation: u64) -> Result<bool, Error> {
        let mut state = self.state()?;
        if state.live.generations.get(id) != Some(&generation) {
            return Ok(false);
        }
        state.live.generations.remove(id);
        Ok(true)
    }

    async fn drop_subscriptions(&self, watchers: &[Watcher]) -> Result<(), Error> {
        let mut state = self.state()?;
        for watcher in watchers {
            state.live.subscriptions.remove(watcher);
            if let Some(held) = state.live.connections.get_mut(&watcher.connection) {
                held.remove(&watcher.scope);
            }
        }
        Ok(())
    }

    async fn disconnect(&self, connection: &str) -> Result<usize, Error> {
        let mut state = self.state()?;
        let held = state.live.connections.remove(connection).unwrap_or_default();
        for scope in &held {
            state.live.subscriptions.remove(&Watcher { connection: connection.to_owned(), scope: scope.clone() });
        }
        Ok(held.len())
    }
}

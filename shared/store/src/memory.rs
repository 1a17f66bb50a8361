//! An in-memory store for the handlers' tests. It makes the moves `domain::lifecycle` defines,
//! as the DynamoDB store's conditions do, and the contract suite holds the two to the same
//! cases. `set_unavailable` simulates an outage.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

mod subscriptions;

use domain::lifecycle::{CANCEL, RETRY, Refusal};
use domain::{
    Analysis, CacheKey, CachedFrom, ErrorKind, Job, JobId, JobStatus, JobUrl, TaskFilter, Tenant, UrlStatus, UrlTask,
};

use domain::analytics::DayTally;
use domain::budget::{BudgetState, Standing, StandingKey, StandingRef};
use domain::callback::CallbackDelivery;
use domain::history::{Headline, HistoryCursor, HistoryEntry, HistoryKey, Span};
use domain::monitor::{Monitor, MonitorId, TickRecord};
use domain::places::{self, Full, Lease, Place};
use domain::report::JobReport;
use domain::tenancy::{self, LimitOverrides, Limits, OverLimit, TenantUsage, Usage};
use domain::waits::{WaitNote, Waiting};

use crate::{
    CallbackLog, Cancel, DueTick, History, JobTallies, Jobs, KeyStore, Lookup, Monitors, OpenUrls, Outcome,
    OutcomeRecord, Page, Recorded, Reports, Sighting, TaskWork, Tenancy, Tracking, WaitLog,
};
use domain::Error;
use domain::tally::{self, ResultChange, StreamPosition, Tally};
use domain::time::Millis;

#[derive(Default)]
struct State {
    jobs: HashMap<JobId, Job>,
    tasks: HashMap<(JobId, u32), UrlTask>,
    keys: HashMap<String, Tenant>,
    secrets: HashMap<Tenant, String>,
    resent: HashMap<(JobId, u32), Millis>,
    /// The results recorded and not yet handed to the tracker, as the table's stream holds
    /// them, and the last stream position given.
    results: Vec<(JobId, ResultChange)>,
    stream_position: u64,
    reports: HashMap<JobId, JobReport>,
    /// Each tenant's monitors with their URLs.
    monitors: HashMap<(Tenant, MonitorId), (Monitor, Vec<JobUrl>)>,
    monitor_runs: HashMap<(Tenant, MonitorId), Vec<JobId>>,
    standings: HashMap<(Tenant, MonitorId), BTreeMap<StandingKey, Standing>>,
    /// Each tenant's days, as the reports written added them up.
    days_tallied: HashMap<(Tenant, String), DayTally>,
    /// History key → each new analysis indexed under it, with the variant it is reused for:
    /// one index serves history and reuse, as in the DynamoDB store.
    history: HashMap<String, Vec<(HistoryEntry, Option<String>)>>,
    sweep_cursor: Option<JobId>,
    /// Each tenant's unfinished jobs, its analyses per UTC day, and its own limits.
    active: HashMap<Tenant, std::collections::HashSet<JobId>>,
    days: HashMap<(Tenant, String), u64>,
    overrides: HashMap<Tenant, LimitOverrides>,
    /// Each set's places taken, and the pause a host asked for.
    places: HashMap<Place, Places>,
    /// Every note of waiting URLs.
    waits: Vec<WaitNote>,
    /// Live subscriptions, each connection's, and each followed job's watch generation.
    live: subscriptions::Live,
}

#[derive(Default)]
struct Places {
    holders: std::collections::HashSet<String>,
    paused_until: Option<Millis>,
}

impl State {
    fn give_places_back(&mut self, leases: &[Lease]) {
        for lease in leases {
            if let Some(set) = self.places.get_mut(&lease.place) {
                set.holders.remove(&lease.holder);
            }
        }
    }

    /// Takes every place of `leases`, or none when one set is full: what it found there.
    fn take_places(&mut self, leases: &[Lease], now: Millis) -> Result<(), Full> {
        for lease in leases {
            let set = self.places.entry(lease.place.clone()).or_default();
            // Places whose lease has ended are taken back, as the table's claim does.
            for ended in places::ended(&set.holders, now) {
                set.holders.remove(&ended);
            }
            // Two copies of one message may name the same holder, and share its place.
            let wanted = usize::from(!set.holders.contains(&lease.holder));
            if !places::has_room(set.holders.len(), set.paused_until, lease.limit, wanted, now) {
                let paused_until = set.paused_until.filter(|until| *until > now);
                return Err(Full { reason: lease.place.wait_reason(paused_until.is_some()), paused_until });
            }
        }
        for lease in leases {
            self.places.entry(lease.place.clone()).or_default().holders.insert(lease.holder.clone());
        }
        Ok(())
    }

    fn usage(&self, tenant: &Tenant, now: Millis) -> Usage {
        Usage {
            active_jobs: self.active.get(tenant).map_or(0, |ids| u32::try_from(ids.len()).unwrap_or(u32::MAX)),
            urls_today: self.days.get(&(tenant.clone(), tenancy::usage_day(now))).copied().unwrap_or(0),
        }
    }
}

/// Cancels an unfinished URL of `job` and counts it; `false` when it had finished.
fn cancel(task: &mut UrlTask, job: &mut Job, now: Millis) -> bool {
    if CANCEL.check(task, true).is_err() {
        return false;
    }
    if let Some(shift) = CANCEL.counters(task.status) {
        job.counters.shift(shift, 1);
        job.updated_at = now;
    }
    CANCEL.apply(task, now, task.attempts);
    true
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

    /// Drops a job's report, as if the export that wrote it had stopped just before: for
    /// tests of what an export does when its message comes back.
    pub fn forget_report(&self, id: &JobId) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).reports.remove(id);
    }

    /// The results recorded since the last call, in order, as the table's stream reports
    /// them to the tracker.
    pub fn take_results(&self) -> Vec<(JobId, ResultChange)> {
        std::mem::take(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()).results)
    }

    /// Counts the results recorded so far into their jobs, as the tracker does from the
    /// stream ([`Tracking::count_results`]): where no tracker runs beside the store (tests, a
    /// process on its own). How many it counted.
    pub async fn count_recorded(&self, now: Millis) -> Result<usize, Error> {
        let results = self.take_results().into_iter().enumerate().map(|(i, (id, change))| (i, id, change));
        let mut counted = 0;
        for job in tally::by_job(results) {
            counted += self.count_results(&job.job_id, &job.changes, now).await?;
        }
        Ok(counted)
    }

    fn state(&self) -> Result<std::sync::MutexGuard<'_, State>, Error> {
        if self.unavailable.load(Ordering::SeqCst) {
            return Err(Error::Store { operation: "memory", message: "service unavailable".into() });
        }
        Ok(self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }
}

impl Lookup for MemoryStore {
    async fn get_job(&self, id: &JobId) -> Result<Option<Job>, Error> {
        Ok(self.state()?.jobs.get(id).cloned())
    }

    async fn get_task(&self, id: &JobId, seq: u32) -> Result<Option<UrlTask>, Error> {
        Ok(self.state()?.tasks.get(&(id.clone(), seq)).cloned())
    }
}

impl Jobs for MemoryStore {
    async fn create_job_within(
        &self,
        job: &Job,
        urls: &[JobUrl],
        limits: &Limits,
    ) -> Result<Result<(), OverLimit>, Error> {
        let mut state = self.state()?;
        if state.jobs.contains_key(&job.id) {
            return Err(Error::Conflict(format!("job {} exists", job.id)));
        }
        let analyses = tenancy::analyses(&job.settings, job.counters.total);
        if let Err(over) = tenancy::admit(limits, &state.usage(&job.tenant, job.created_at), analyses, job.created_at) {
            return Ok(Err(over));
        }
        for (seq, url) in (0..).zip(urls) {
            state.tasks.insert((job.id.clone(), seq), UrlTask::queued(job, seq, url));
        }
        state.jobs.insert(job.id.clone(), job.clone());
        state.active.entry(job.tenant.clone()).or_default().insert(job.id.clone());
        *state.days.entry((job.tenant.clone(), tenancy::usage_day(job.created_at))).or_default() += analyses;
        Ok(Ok(()))
    }

    async fn get_jobs(&self, ids: &[JobId]) -> Result<Vec<Job>, Error> {
        let state = self.state()?;
        Ok(ids.iter().filter_map(|id| state.jobs.get(id).cloned()).collect())
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
        filter: &TaskFilter,
        limit: usize,
        after: Option<u32>,
    ) -> Result<Page<UrlTask, u32>, Error> {
        let state = self.state()?;
        let mut tasks: Vec<&UrlTask> = state.tasks.values().filter(|task| &task.job_id == id).collect();
        tasks.sort_by_key(|task| task.seq);
        let matching = tasks
            .into_iter()
            .filter(|task| after.is_none_or(|after| task.seq > after))
            .filter(|task| filter.matches(task));
        Ok(page(matching.cloned(), limit, |task| task.seq))
    }

    async fn get_tasks(&self, id: &JobId, seqs: &[u32]) -> Result<Vec<UrlTask>, Error> {
        let state = self.state()?;
        let mut seen = std::collections::HashSet::with_capacity(seqs.len());
        Ok(seqs
            .iter()
            .filter(|seq| seen.insert(**seq))
            .filter_map(|seq| state.tasks.get(&(id.clone(), *seq)).cloned())
            .collect())
    }

    async fn request_cancel(&self, id: &JobId, now: Millis) -> Result<Cancel, Error> {
        let mut state = self.state()?;
        let job = state.jobs.get_mut(id).ok_or(Error::NotFound)?;
        match job.status {
            status if status.can_become(JobStatus::Cancelling) => {
                job.enter(JobStatus::Cancelling, now);
                Ok(Cancel::Requested)
            }
            JobStatus::Cancelling => Ok(Cancel::Requested),
            status => Ok(Cancel::AlreadyFinished(status)),
        }
    }

    async fn delete_job(&self, id: &JobId) -> Result<usize, Error> {
        let mut state = self.state()?;
        let before = state.tasks.len();
        state.tasks.retain(|(job, _), _| job != id);
        let tasks = before - state.tasks.len();
        let report = state.reports.remove(id).is_some();
        // As the index loses a task's entry with the task.
        for entries in state.history.values_mut() {
            entries.retain(|(entry, _)| entry.job_id != *id);
        }
        Ok(tasks + usize::from(state.jobs.remove(id).is_some()) + usize::from(report))
    }

    async fn ping(&self) -> Result<(), Error> {
        self.state().map(|_| ())
    }
}

impl TaskWork for MemoryStore {
    async fn look_up(&self, keys: &[(JobId, u32)]) -> Result<Vec<Option<Sighting>>, Error> {
        let state = self.state()?;
        let sighting = |(id, seq): &(JobId, u32)| {
            let (job, task) = (state.jobs.get(id)?, state.tasks.get(&(id.clone(), *seq))?);
            Some(Sighting { task: task.status, job: job.status, started: job.started_at.is_some() })
        };
        Ok(keys.iter().map(sighting).collect())
    }

    async fn start_job(&self, id: &JobId, now: Millis) -> Result<(), Error> {
        let mut state = self.state()?;
        if let Some(job) = state.jobs.get_mut(id).filter(|job| job.started_at.is_none()) {
            job.started_at = Some(now);
            job.updated_at = now;
        }
        Ok(())
    }

    async fn take_places(&self, asks: &[Vec<Lease>], now: Millis) -> Result<Vec<Result<(), Full>>, Error> {
        let mut state = self.state()?;
        Ok(asks.iter().map(|leases| state.take_places(leases, now)).collect())
    }

    async fn give_places_back(&self, leases: &[Lease]) -> Result<(), Error> {
        self.state()?.give_places_back(leases);
        Ok(())
    }

    async fn record_retry(
        &self,
        id: &JobId,
        seq: u32,
        kind: ErrorKind,
        reason: &str,
        attempt: u32,
        now: Millis,
    ) -> Result<(), Error> {
        let mut state = self.state()?;
        if let Some(task) = state.tasks.get_mut(&(id.clone(), seq)).filter(|t| RETRY.check(t, false).is_ok()) {
            RETRY.apply(task, now, attempt);
            task.error = Some(reason.to_owned());
            task.error_kind = Some(kind);
        }
        Ok(())
    }

    async fn record(&self, record: &OutcomeRecord, now: Millis) -> Result<Recorded, Error> {
        let (id, seq, outcome) = (&record.job_id, record.seq, &record.outcome);
        let mut state = self.state()?;
        state.give_places_back(&record.places);
        let State { jobs, tasks, history, results, stream_position, .. } = &mut *state;
        let job_exists = jobs.contains_key(id);
        let task = tasks.get_mut(&(id.clone(), seq)).ok_or(Error::NotFound)?;
        let step = outcome.task_move();
        match step.check(task, job_exists) {
            Ok(()) => {}
            Err(Refusal::Status(_)) => return Ok(Recorded::Duplicate),
            Err(Refusal::NoJob) => return Err(Error::NotFound),
        }
        let from = task.status;
        // The URL's item alone: the tracker counts the result from the stream.
        step.apply(task, now, record.attempt);
        if let Some(to) = step.to {
            *stream_position += 1;
            let at =
                StreamPosition::parse(&format!("{stream_position:030}")).ok_or(Error::Corrupt("position".into()))?;
            results.extend(ResultChange::of(seq, from, to, at).map(|change| (id.clone(), change)));
        }
        task.analysis = outcome.analysis().cloned();
        if let Outcome::Failed { kind, reason, .. } = outcome {
            task.error = Some(reason.clone());
            task.error_kind = Some(*kind);
        }
        if let (Some(key), Some(analysis)) =
            (record.history_key(), outcome.analysis().filter(|_| outcome.is_fresh_success()))
        {
            let entry = HistoryEntry { job_id: id.clone(), seq, analyzed_at: now, headline: Headline::of(analysis) };
            let variant = record.cache_key.as_ref().map(|cache| cache.variant().to_owned());
            history.entry(key.as_str().to_owned()).or_default().push((entry, variant));
        }
        Ok(Recorded::Counted)
    }

    async fn pause_host(&self, host: &str, until: Millis) -> Result<(), Error> {
        let mut state = self.state()?;
        let paused = &mut state.places.entry(Place::Host(host.to_owned())).or_default().paused_until;
        *paused = Some(paused.map_or(until, |already| already.max(until)));
        Ok(())
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
        Ok(cancel(task, job, now))
    }

    async fn task_urls(&self, keys: &[(JobId, u32)]) -> Result<HashMap<(JobId, u32), String>, Error> {
        let state = self.state()?;
        Ok(keys.iter().filter_map(|key| state.tasks.get(key).map(|task| (key.clone(), task.url.clone()))).collect())
    }

    async fn cached_result(&self, key: &CacheKey, since: Millis) -> Result<Option<Analysis>, Error> {
        let state = self.state()?;
        // The URL's newest results, as the DynamoDB store reads them, then the variant's.
        let mut recent: Vec<_> = state
            .history
            .get(key.history().as_str())
            .into_iter()
            .flatten()
            .filter(|(entry, _)| entry.analyzed_at >= since)
            .collect();
        recent.sort_by_key(|(entry, _)| std::cmp::Reverse(entry.analyzed_at));
        let newest = recent
            .into_iter()
            .take(crate::REUSE_LOOKS_AT)
            .find(|(_, variant)| variant.as_deref() == Some(key.variant()));
        Ok(newest.and_then(|(entry, _)| {
            let analysis = state.tasks.get(&(entry.job_id.clone(), entry.seq))?.analysis.clone()?;
            let cached_from = CachedFrom { job_id: entry.job_id.clone(), analyzed_at: entry.analyzed_at };
            Some(Analysis { cached_from: Some(cached_from), ..analysis })
        }))
    }
}

impl Tracking for MemoryStore {
    async fn transition_job(&self, job: &Job, to: JobStatus, now: Millis) -> Result<bool, Error> {
        let from = job.status;
        if !from.can_become(to) {
            return Err(Error::Conflict(format!("a job cannot go from {from} to {to}")));
        }
        let mut state = self.state()?;
        let Some(stored) = state.jobs.get_mut(&job.id).filter(|stored| stored.status == from) else {
            return Ok(false);
        };
        stored.enter(to, now);
        if let Some(active) = state.active.get_mut(&job.tenant).filter(|_| to.is_finished()) {
            active.remove(&job.id);
        }
        Ok(true)
    }

    async fn cancel_queued(&self, id: &JobId, now: Millis, _budget: std::time::Duration) -> Result<u64, Error> {
        let mut state = self.state()?;
        let State { jobs, tasks, .. } = &mut *state;
        let job = jobs.get_mut(id).ok_or(Error::NotFound)?;
        let mut cancelled = 0;
        // Queued ones only, as the table's listing by status finds them: an item a release
        // before this one claimed is cancelled by its own delivery.
        for task in tasks.values_mut().filter(|t| &t.job_id == id && t.status == UrlStatus::Queued) {
            cancelled += u64::from(cancel(task, job, now));
        }
        Ok(cancelled)
    }

    async fn list_active_jobs(&self, limit: usize, after: Option<&JobId>) -> Result<Page<JobId, JobId>, Error> {
        let state = self.state()?;
        let mut ids: Vec<JobId> =
            state.jobs.values().filter(|job| !job.status.is_finished()).map(|job| job.id.clone()).collect();
        ids.sort_by(|a, b| a.as_str().cmp(b.as_str()));
        let matching = ids.into_iter().filter(|id| after.is_none_or(|after| id.as_str() > after.as_str()));
        Ok(page(matching, limit, JobId::clone))
    }

    async fn open_urls(&self, job: &Job, before: Millis, limit: usize) -> Result<OpenUrls, Error> {
        let state = self.state()?;
        // The job's window as kept, not as the caller read it.
        let Some(job) = state.jobs.get(&job.id) else { return Ok(OpenUrls::default()) };
        let (id, window) = (&job.id, job.window());
        let task = |seq| state.tasks.get(&(id.clone(), seq));
        let mut found = OpenUrls::default();
        for seq in window.open(&job.frontiers) {
            let Some(open) = task(seq) else { continue };
            found.unfinished += usize::from(!open.status.is_terminal());
            let released_at = window.released_at(seq, job.created_at, |p| task(p).and_then(|p| p.analyzed_at));
            if open.is_stalled(before, released_at, state.resent.get(&(id.clone(), seq)).copied()) {
                found.stalled.push(open.clone());
            }
        }
        found.stalled.sort_by_key(|task| task.seq);
        found.stalled.truncate(limit);
        Ok(found)
    }

    async fn note_resent(&self, id: &JobId, seq: u32, now: Millis) -> Result<(), Error> {
        self.state()?.resent.insert((id.clone(), seq), now);
        Ok(())
    }

    async fn task_statuses(&self, job: &Job) -> Result<Vec<(u32, UrlStatus)>, Error> {
        let (state, id) = (self.state()?, &job.id);
        let mut statuses: Vec<(u32, UrlStatus)> =
            state.tasks.iter().filter(|((job, _), _)| job == id).map(|((_, seq), task)| (*seq, task.status)).collect();
        statuses.sort_unstable_by_key(|(seq, _)| *seq);
        Ok(statuses)
    }

    async fn set_counts(&self, job: &Job, now: Millis) -> Result<bool, Error> {
        let mut state = self.state()?;
        let Some(stored) = state.jobs.get_mut(&job.id).filter(|stored| stored.updated_at == job.updated_at) else {
            return Ok(false);
        };
        stored.counters = job.counters;
        stored.frontiers = job.frontiers.clone();
        stored.updated_at = now;
        Ok(true)
    }

    async fn add_tally(&self, id: &JobId, tally: &Tally, now: Millis) -> Result<bool, Error> {
        let mut state = self.state()?;
        let Some(job) = state.jobs.get_mut(id).filter(|job| job.counted_to == tally.seen) else { return Ok(false) };
        tally.apply(job, now);
        Ok(true)
    }

    async fn sweep_cursor(&self) -> Result<Option<JobId>, Error> {
        Ok(self.state()?.sweep_cursor.clone())
    }

    async fn save_sweep_cursor(&self, after: Option<&JobId>) -> Result<(), Error> {
        self.state()?.sweep_cursor = after.cloned();
        Ok(())
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
        Ok(state.secrets.entry(tenant.clone()).or_insert_with(domain::auth::generate_callback_secret).clone())
    }

    async fn put_key_hash(&self, hash: &str, tenant: &Tenant) -> Result<(), Error> {
        self.state()?.keys.insert(hash.to_owned(), tenant.clone());
        Ok(())
    }
}

impl Reports for MemoryStore {
    async fn get_report(&self, id: &JobId) -> Result<Option<JobReport>, Error> {
        Ok(self.state()?.reports.get(id).cloned())
    }

    async fn put_report(&self, id: &JobId, report: &JobReport, tallies: Option<&JobTallies>) -> Result<bool, Error> {
        let mut state = self.state()?;
        if state.reports.contains_key(id) {
            return Ok(false);
        }
        state.reports.insert(id.clone(), report.clone());
        if let Some(tallies) = tallies {
            for (day, tally) in &tallies.days {
                state.days_tallied.entry((tallies.tenant.clone(), day.clone())).or_default().merge(tally);
            }
        }
        Ok(true)
    }

    async fn day_tallies(&self, tenant: &Tenant, from: &str, to: &str) -> Result<BTreeMap<String, DayTally>, Error> {
        let state = self.state()?;
        Ok(state
            .days_tallied
            .iter()
            .filter(|((t, day), _)| t == tenant && (from..=to).contains(&day.as_str()))
            .map(|((_, day), tally)| (day.clone(), tally.clone()))
            .collect())
    }
}

impl CallbackLog for MemoryStore {
    async fn record_callback(&self, id: &JobId, delivery: &CallbackDelivery) -> Result<(), Error> {
        if let Some(job) = self.state()?.jobs.get_mut(id)
            && job.callback.as_ref().is_none_or(|kept| kept.attempts <= delivery.attempts)
        {
            job.callback = Some(delivery.clone());
        }
        Ok(())
    }

    async fn record_budget_callback(
        &self,
        tenant: &Tenant,
        standing: &StandingRef,
        job: &JobId,
        delivery: &CallbackDelivery,
    ) -> Result<(), Error> {
        let key = standing.key();
        let mut state = self.state()?;
        if let Some(kept) =
            state.standings.get_mut(&(tenant.clone(), standing.monitor_id.clone())).and_then(|s| s.get_mut(&key))
            && kept.job_id == *job
            && kept.callback.as_ref().is_none_or(|c| c.attempts <= delivery.attempts)
        {
            kept.callback = Some(delivery.clone());
        }
        Ok(())
    }
}

impl Tenancy for MemoryStore {
    async fn tenant_usage(&self, tenant: &Tenant, now: Millis) -> Result<TenantUsage, Error> {
        let state = self.state()?;
        let overrides = state.overrides.get(tenant).copied().unwrap_or_default();
        Ok(TenantUsage { overrides, usage: state.usage(tenant, now) })
    }

    async fn set_limit_overrides(&self, tenant: &Tenant, overrides: &LimitOverrides) -> Result<(), Error> {
        self.state()?.overrides.insert(tenant.clone(), *overrides);
        Ok(())
    }
}

impl WaitLog for MemoryStore {
    async fn note_waits(&self, notes: &[WaitNote]) -> Result<(), Error> {
        self.state()?.waits.extend_from_slice(notes);
        Ok(())
    }

    async fn waiting(&self, now: Millis) -> Result<Waiting, Error> {
        let mut waiting = Waiting::default();
        for note in self.state()?.waits.iter().filter(|note| note.bucket_end > now) {
            waiting.add(note.reason, u64::from(note.urls));
        }
        Ok(waiting)
    }
}

/// The contract every store keeps, on this one.
impl History for MemoryStore {
    async fn url_history(
        &self,
        key: &HistoryKey,
        span: Span,
        limit: usize,
        after: Option<&HistoryCursor>,
    ) -> Result<Page<HistoryEntry, HistoryCursor>, Error> {
        let state = self.state()?;
        let place = |e: &HistoryEntry| (e.analyzed_at, e.job_id.as_str().to_owned(), e.seq);
        let after = after.map(|c| (c.analyzed_at, c.job_id.as_str().to_owned(), c.seq));
        let mut entries: Vec<HistoryEntry> = state
            .history
            .get(key.as_str())
            .into_iter()
            .flatten()
            .map(|(entry, _)| entry)
            .filter(|e| span.contains(e.analyzed_at) && after.as_ref().is_none_or(|a| place(e) > *a))
            .cloned()
            .collect();
        entries.sort_by_key(place);
        let more = entries.len() > limit;
        entries.truncate(limit);
        let next = entries.last().filter(|_| more).map(HistoryCursor::of);
        Ok(Page { items: entries, next })
    }
}

impl Monitors for MemoryStore {
    async fn create_monitor(&self, monitor: &Monitor, urls: &[JobUrl]) -> Result<(), Error> {
        let mut state = self.state()?;
        let key = (monitor.tenant.clone(), monitor.id.clone());
        if state.monitors.contains_key(&key) {
            return Err(Error::Conflict(format!("monitor {} exists", monitor.id)));
        }
        state.monitors.insert(key, (monitor.clone(), urls.to_vec()));
        Ok(())
    }

    async fn get_monitor(&self, tenant: &Tenant, id: &MonitorId) -> Result<Option<Monitor>, Error> {
        Ok(self.state()?.monitors.get(&(tenant.clone(), id.clone())).map(|(m, _)| m.clone()))
    }

    async fn monitor_urls(&self, tenant: &Tenant, id: &MonitorId) -> Result<Vec<JobUrl>, Error> {
        Ok(self.state()?.monitors.get(&(tenant.clone(), id.clone())).map(|(_, urls)| urls.clone()).unwrap_or_default())
    }

    async fn list_monitors(
        &self,
        tenant: &Tenant,
        limit: usize,
        after: Option<&MonitorId>,
    ) -> Result<Page<Monitor, MonitorId>, Error> {
        let state = self.state()?;
        let mut mine: Vec<Monitor> = state
            .monitors
            .values()
            .map(|(m, _)| m)
            .filter(|m| &m.tenant == tenant && after.is_none_or(|a| m.id.as_str() < a.as_str()))
            .cloned()
            .collect();
        mine.sort_by(|a, b| b.id.as_str().cmp(a.id.as_str()));
        let more = mine.len() > limit;
        mine.truncate(limit);
        let next = mine.last().filter(|_| more).map(|m| m.id.clone());
        Ok(Page { items: mine, next })
    }

    async fn replace_monitor(&self, monitor: &Monitor, version: u64, urls: Option<&[JobUrl]>) -> Result<bool, Error> {
        let mut state = self.state()?;
        let Some((kept, kept_urls)) = state.monitors.get_mut(&(monitor.tenant.clone(), monitor.id.clone())) else {
            return Ok(false);
        };
        if kept.version != version {
            return Ok(false);
        }
        *kept = Monitor { version: version + 1, ..monitor.clone() };
        if let Some(urls) = urls {
            *kept_urls = urls.to_vec();
        }
        let budgets: Vec<String> = monitor.budgets.iter().map(domain::budget::budget_id).collect();
        if let Some(standings) = state.standings.get_mut(&(monitor.tenant.clone(), monitor.id.clone())) {
            standings.retain(|key, _| budgets.contains(&key.budget_id));
        }
        Ok(true)
    }

    async fn delete_monitor(&self, tenant: &Tenant, id: &MonitorId) -> Result<bool, Error> {
        let mut state = self.state()?;
        state.monitor_runs.remove(&(tenant.clone(), id.clone()));
        state.standings.remove(&(tenant.clone(), id.clone()));
        Ok(state.monitors.remove(&(tenant.clone(), id.clone())).is_some())
    }

    async fn monitor_runs(
        &self,
        tenant: &Tenant,
        id: &MonitorId,
        limit: usize,
        after: Option<&JobId>,
    ) -> Result<Page<JobId, JobId>, Error> {
        let state = self.state()?;
        let mut runs: Vec<JobId> = state
            .monitor_runs
            .get(&(tenant.clone(), id.clone()))
            .into_iter()
            .flatten()
            .filter(|job| after.is_none_or(|a| job.as_str() < a.as_str()))
            .cloned()
            .collect();
        runs.sort_by(|a, b| b.as_str().cmp(a.as_str()));
        let more = runs.len() > limit;
        runs.truncate(limit);
        let next = runs.last().filter(|_| more).cloned();
        Ok(Page { items: runs, next })
    }

    async fn due_monitors(&self, now: Millis, limit: usize) -> Result<Vec<DueTick>, Error> {
        let state = self.state()?;
        let mut due: Vec<DueTick> = state
            .monitors
            .values()
            .filter_map(|(m, _)| {
                let tick = m.next_run_at.filter(|at| m.enabled && *at <= now)?;
                Some(DueTick { tenant: m.tenant.clone(), monitor_id: m.id.clone(), tick, swept_at: None })
            })
            .collect();
        due.sort_by_key(|d| d.tick);
        due.truncate(limit);
        Ok(due)
    }

    async fn budget_standings(&self, tenant: &Tenant, id: &MonitorId) -> Result<Vec<Standing>, Error> {
        let state = self.state()?;
        Ok(state
            .standings
            .get(&(tenant.clone(), id.clone()))
            .map(|s| s.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn put_budget_standings(&self, tenant: &Tenant, id: &MonitorId, standings: &[Standing]) -> Result<(), Error> {
        let mut state = self.state()?;
        let kept = state.standings.entry((tenant.clone(), id.clone())).or_default();
        for standing in standings {
            kept.insert(standing.key(), standing.clone());
        }
        Ok(())
    }

    async fn budget_page(
        &self,
        tenant: &Tenant,
        id: &MonitorId,
        wanted: Option<BudgetState>,
        limit: usize,
        after: Option<&StandingKey>,
    ) -> Result<Page<Standing, StandingKey>, Error> {
        let state = self.state()?;
        let mut items: Vec<Standing> = state
            .standings
            .get(&(tenant.clone(), id.clone()))
            .into_iter()
            .flatten()
            .filter(|(key, s)| after.is_none_or(|a| *key > a) && wanted.is_none_or(|w| s.state == w))
            .map(|(_, s)| s.clone())
            .take(limit + 1)
            .collect();
        let more = items.len() > limit;
        items.truncate(limit);
        let next = items.last().filter(|_| more).map(Standing::key);
        Ok(Page { items, next })
    }

    async fn record_run_now(&self, monitor: &Monitor, job: &JobId, now: Millis) -> Result<bool, Error> {
        let mut state = self.state()?;
        let key = (monitor.tenant.clone(), monitor.id.clone());
        match state.monitors.get_mut(&key) {
            Some((kept, _)) if kept.version == monitor.version => {
                let next = kept.next_run_at;
                kept.settle(next, &TickRecord::Ran(job.clone()), now);
            }
            _ => return Ok(false),
        }
        state.monitor_runs.entry(key).or_default().push(job.clone());
        Ok(true)
    }

    async fn settle_tick(
        &self,
        due: &DueTick,
        next: Option<Millis>,
        record: &TickRecord,
        now: Millis,
    ) -> Result<bool, Error> {
        let mut state = self.state()?;
        match state.monitors.get_mut(&(due.tenant.clone(), due.monitor_id.clone())) {
            Some((monitor, _)) if monitor.next_run_at == Some(due.tick) => monitor.settle(next, record, now),
            _ => return Ok(false),
        }
        if let TickRecord::Ran(job) = record {
            state.monitor_runs.entry((due.tenant.clone(), due.monitor_id.clone())).or_default().push(job.clone());
        }
        Ok(true)
    }
}

#[cfg(test)]
mod contract {
    crate::store_contract!(crate::contract::memory());
}

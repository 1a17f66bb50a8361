//! The scheduler function runs monitors when their time comes.
//!
//! - Every minute (an EventBridge rule) it sweeps: the monitors due at the event's `time` are
//!   one Query, and each due tick is handed to the run queue. The event's time is the clock,
//!   so a test runs a monitor's tick by invoking the sweep with a chosen time.
//! - From the run queue it runs each tick: the monitor's tick is claimed once (a conditional
//!   write on the monitor still being at that tick), then the run's job is created under the
//!   id the tick names, so every delivery of one tick comes to one job. A tick whose previous
//!   run is still going, or whose tenant is over a limit, is skipped and the skip recorded.
//!   After an outage, a missed tick runs once and the next is back on the schedule's grid.

use aws::queue::{Outbox, TaskQueue};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use domain::monitor::{DueTick, SkipReason, Skipped, TickOutcome, TickRecord};
use domain::time::{Millis, now_millis, parse_rfc3339};
use domain::{AddressPolicy, Error, Job};
use serde::{Deserialize, Serialize};
use store::{Jobs, Lookup, Monitors, Tenancy};
use submit::Deployment;

/// Due ticks read per page of a sweep, and pages per sweep: a sweep hands on at most 1 000
/// ticks; the next minute's takes the rest.
const SWEEP_PAGE: usize = 100;
const SWEEP_PAGES: usize = 10;

pub struct Scheduler<S, Q> {
    pub store: S,
    pub queue: Q,
    pub settings: SchedulerSettings,
}

#[derive(Clone, Debug)]
pub struct SchedulerSettings {
    pub deployment: Deployment,
    /// Where due ticks go to be run.
    pub run_queue: String,
    pub policy: AddressPolicy,
    /// The policy-enforcing client, for sitemap monitors.
    pub http: reqwest::Client,
}

/// What invokes the scheduler: the minute's rule, or its run queue.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum SchedulerEvent {
    // First: an SQS batch has no `detail-type`.
    Sweep(ScheduledEvent),
    Runs(SqsEvent),
}

/// An EventBridge scheduled event: its `time` is when the rule fired.
#[derive(Debug, Deserialize)]
pub struct ScheduledEvent {
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub time: String,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum SchedulerResponse {
    Swept { due: usize },
    Runs(SqsBatchResponse),
}

/// What one due tick came to.
#[derive(Clone, Debug, PartialEq)]
pub enum Ran {
    Started(domain::JobId),
    /// The job of this tick was there already (an earlier delivery created it).
    AlreadyStarted,
    Skipped(SkipReason),
    /// Another delivery settled the tick, or the monitor changed or went.
    Stale,
}

impl<S, Q> Scheduler<S, Q>
where
    S: Monitors + Jobs + Lookup + Tenancy,
    Q: TaskQueue + Outbox,
{
    pub async fn handle(&self, event: SchedulerEvent) -> Result<SchedulerResponse, Error> {
        match event {
            SchedulerEvent::Sweep(event) => {
                let now = parse_rfc3339(&event.time).unwrap_or_else(now_millis);
                Ok(SchedulerResponse::Swept { due: self.sweep(now).await? })
            }
            SchedulerEvent::Runs(event) => Ok(SchedulerResponse::Runs(self.runs(event).await)),
        }
    }

    /// Hands every tick due at `now` to the run queue; how many.
    pub async fn sweep(&self, now: Millis) -> Result<usize, Error> {
        let mut handed = 0;
        for _ in 0..SWEEP_PAGES {
            let due = self.store.due_monitors(now, SWEEP_PAGE).await?;
            let ticks: Vec<DueTick> = due.into_iter().map(|d| DueTick { swept_at: Some(now), ..d }).collect();
            self.queue.post(&self.settings.run_queue, &ticks).await?;
            handed += ticks.len();
            // A tick stays due until its run settles it: the page is all there is for now.
            if ticks.len() < SWEEP_PAGE {
                break;
            }
        }
        tracing::info!(now, handed, "sweep");
        Ok(handed)
    }

    async fn runs(&self, event: SqsEvent) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        for record in &event.records {
            if let Err(err) = self.run_record(record).await {
                tracing::error!(error = %err, message_id = record.message_id.as_deref(), "a monitor's run failed; will be retried");
                response.add_failure(record.message_id.clone().unwrap_or_default());
            }
        }
        response
    }

    async fn run_record(&self, record: &SqsMessage) -> Result<Ran, Error> {
        let body = record.body.as_deref().unwrap_or_default();
        let due: DueTick =
            serde_json::from_str(body).map_err(|e| Error::Corrupt(format!("unreadable due tick: {e}")))?;
        let ran = self.run(&due, now_millis()).await?;
        tracing::info!(monitor_id = %due.monitor_id, tick = due.tick, ?ran, "tick");
        Ok(ran)
    }

    /// Runs tick `due` at `now`. Whether it is due, and when the next is, are judged by the
    /// sweep's clock when that is later (a test moved it); what is written carries `now`.
    pub async fn run(&self, due: &DueTick, now: Millis) -> Result<Ran, Error> {
        let clock = now.max(due.swept_at.unwrap_or(now));
        let Some(monitor) = self.store.get_monitor(&due.tenant, &due.monitor_id).await? else { return Ok(Ran::Stale) };
        let timing = monitor.timing().map_err(Error::Corrupt)?;
        let job_of_tick = monitor.id.job_for_tick(due.tick);
        let previous_finished = match &monitor.running_job {
            Some(previous) if *previous != job_of_tick => {
                Some(self.store.get_job(previous).await?.is_none_or(|job| job.status.is_finished()))
            }
            _ => None,
        };
        let (job_id, next) = match timing.decide(&monitor.id, due.tick, clock, previous_finished) {
            TickOutcome::Stale => return Ok(Ran::Stale),
            TickOutcome::Skip { reason, next } => return self.skip(due, next, reason, now).await,
            TickOutcome::Run { job, next } => (job, next),
        };
        if self.store.get_job(&job_id).await?.is_some() {
            return Ok(Ran::AlreadyStarted);
        }
        let urls = match submit::run_urls(&self.store, &self.settings.http, self.settings.policy, &monitor).await? {
            Ok(urls) => urls,
            Err(no_urls) => {
                tracing::warn!(monitor_id = %monitor.id, reason = %no_urls, "a monitor's run has no URL");
                return self.skip(due, next, SkipReason::SitemapUnreadable, now).await;
            }
        };
        let (limits, fits) = submit::admission(
            &self.store,
            &self.settings.deployment,
            &monitor.tenant,
            &monitor.settings,
            urls.len() as u64,
            now,
        )
        .await?;
        if fits.is_err() {
            return self.skip(due, next, SkipReason::OverLimit, now).await;
        }
        // Claimed first: of two deliveries of the tick, one creates the job.
        if monitor.running_job.as_ref() != Some(&job_id)
            && !self.store.settle_tick(due, next, &TickRecord::Ran(job_id.clone()), now).await?
        {
            return Ok(Ran::Stale);
        }
        let name = format!("{} {}", monitor.name, domain::time::rfc3339(due.tick));
        let job = Job::new(monitor.tenant.clone(), name, monitor.settings.clone(), urls.len() as u64, now)
            .of_monitor(monitor.id.clone(), job_id);
        match submit::create(&self.store, &self.queue, &self.settings.deployment, job, &urls, &limits).await? {
            Ok(job) => Ok(Ran::Started(job.id)),
            // Taken by a submission of the same moment: the tick ran out of room; the next
            // tick finds no job under this one's id and runs.
            Err(over) => {
                tracing::warn!(monitor_id = %monitor.id, reason = %over.message(), "a monitor's run found its tenant over a limit");
                Ok(Ran::Skipped(SkipReason::OverLimit))
            }
        }
    }

    async fn skip(&self, due: &DueTick, next: Option<Millis>, reason: SkipReason, now: Millis) -> Result<Ran, Error> {
        let skipped = Skipped { tick: due.tick, at: now, reason };
        if self.store.settle_tick(due, next, &TickRecord::Skipped(skipped), now).await? {
            Ok(Ran::Skipped(reason))
        } else {
            Ok(Ran::Stale)
        }
    }
}

#[cfg(test)]
mod tests;

//! A monitor: a set of URLs analysed again on a schedule, each run an ordinary job carrying
//! the monitor's id. This module holds the rules of its runs: which tick is due, what a due
//! tick comes to (a run, a skip because the previous run is still going, or nothing because
//! another delivery handled it), and the id of the job a tick creates, the same for every
//! delivery of the tick so that creating it twice is refused by the store.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::budget::Budget;
use crate::job::{JobId, Tenant};
use crate::schedule::Schedule;
use crate::settings::JobSettings;
use crate::time::Millis;

/// A monitor's id: a UUIDv7 in canonical form, like a job's.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MonitorId(String);

impl MonitorId {
    pub fn generate() -> MonitorId {
        MonitorId(uuid::Uuid::now_v7().to_string())
    }

    /// Only the canonical form we generate: a path segment cannot smuggle a key delimiter.
    pub fn parse(text: &str) -> Option<MonitorId> {
        let uuid = uuid::Uuid::try_parse(text).ok()?;
        (uuid.to_string() == text).then(|| MonitorId(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The job that the run of `tick` creates: a UUIDv7 of the tick's time whose other bits
    /// come from the monitor and the tick, so every delivery of a tick names the same job.
    pub fn job_for_tick(&self, tick: Millis) -> JobId {
        let hash = Sha256::new().chain_update(self.0.as_bytes()).chain_update(tick.to_be_bytes()).finalize();
        let mut random = [0u8; 10];
        random.copy_from_slice(&hash[..10]);
        let uuid = uuid::Builder::from_unix_timestamp_millis(u64::try_from(tick).unwrap_or(0), &random).into_uuid();
        JobId::parse(&uuid.to_string()).unwrap_or_else(JobId::generate)
    }
}

impl std::fmt::Display for MonitorId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A monitor as kept: what each run submits, when it runs, and how its runs went.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Monitor {
    pub id: MonitorId,
    pub tenant: Tenant,
    pub name: String,
    /// As given: `rate(...)` or `cron(...)`, valid.
    pub schedule: String,
    /// Rates count from here: when the schedule was set.
    pub anchor: Millis,
    pub enabled: bool,
    pub next_run_at: Option<Millis>,
    /// Each run's job settings (`auto` resolved when the monitor was created).
    pub settings: JobSettings,
    /// Expanded again at every run; else the monitor's own URLs, kept beside it.
    pub sitemap_url: Option<String>,
    pub url_count: u32,
    pub budgets: Vec<Budget>,
    pub created_at: Millis,
    pub updated_at: Millis,
    /// The last run's job, while it may be going.
    pub running_job: Option<JobId>,
    pub last_run_at: Option<Millis>,
    pub runs: u64,
    pub skipped_runs: u64,
    pub last_skip: Option<Skipped>,
    /// Every write moves it on; a write is conditional on the version its writer read.
    pub version: u64,
}

/// A monitor's tick that is due: what the scheduler's sweep hands its runs (with when it
/// swept, the clock the run is judged by).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DueTick {
    pub tenant: Tenant,
    pub monitor_id: MonitorId,
    pub tick: Millis,
    /// When the sweep found it due (absent straight from the store).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swept_at: Option<Millis>,
}

/// What became of a due tick.
#[derive(Clone, Debug, PartialEq)]
pub enum TickRecord {
    Ran(JobId),
    Skipped(Skipped),
}

/// The last tick that did not run, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Skipped {
    pub tick: Millis,
    pub at: Millis,
    pub reason: SkipReason,
}

impl Monitor {
    /// A new monitor, its first run the schedule's first tick after `now`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        tenant: Tenant,
        name: String,
        schedule: (&Schedule, String),
        settings: JobSettings,
        sitemap_url: Option<String>,
        url_count: u32,
        budgets: Vec<Budget>,
        enabled: bool,
        now: Millis,
    ) -> Monitor {
        let (parsed, text) = schedule;
        Monitor {
            id: MonitorId::generate(),
            tenant,
            name,
            schedule: text,
            anchor: now,
            enabled,
            next_run_at: if enabled { parsed.next_after(now, now) } else { None },
            settings,
            sitemap_url,
            url_count,
            budgets,
            created_at: now,
            updated_at: now,
            running_job: None,
            last_run_at: None,
            runs: 0,
            skipped_runs: 0,
            last_skip: None,
            version: 0,
        }
    }

    /// The monitor once its due tick is settled: moved on to `next`, with the run or the
    /// skip recorded (the stores write exactly this).
    pub fn settle(&mut self, next: Option<Millis>, record: &TickRecord, now: Millis) {
        self.next_run_at = next;
        match record {
            TickRecord::Ran(job) => {
                self.running_job = Some(job.clone());
                self.last_run_at = Some(now);
                self.runs += 1;
            }
            TickRecord::Skipped(skipped) => {
                self.skipped_runs += 1;
                self.last_skip = Some(skipped.clone());
            }
        }
        self.version += 1;
    }

    /// Its schedule's state, as the scheduler decides with it.
    pub fn timing(&self) -> Result<Timing, String> {
        Ok(Timing {
            schedule: Schedule::parse(&self.schedule)?,
            anchor: self.anchor,
            enabled: self.enabled,
            next_run_at: self.next_run_at,
            running_job: self.running_job.clone(),
        })
    }
}

/// Where a monitor's schedule stands, as the scheduler reads and moves it.
#[derive(Clone, Debug, PartialEq)]
pub struct Timing {
    pub schedule: Schedule,
    /// Rates count whole periods from here (when the schedule was last set).
    pub anchor: Millis,
    pub enabled: bool,
    /// The tick to run next; `None` while disabled (or a cron with no run ahead).
    pub next_run_at: Option<Millis>,
    /// The job of the last run, while it may still be going.
    pub running_job: Option<JobId>,
}

/// Why a due tick did not run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// The previous run had not finished: runs never overlap.
    PreviousRunning,
    /// The tenant was over one of its limits.
    OverLimit,
    /// The monitor's sitemap could not be read.
    SitemapUnreadable,
}

/// What one due tick comes to.
#[derive(Clone, Debug, PartialEq)]
pub enum TickOutcome {
    /// Create job `job` (its id fixed by the tick) and move on to `next`.
    Run { job: JobId, next: Option<Millis> },
    /// Record the skip and move on to `next`.
    Skip { reason: SkipReason, next: Option<Millis> },
    /// Nothing to do: another delivery ran this tick, or the monitor changed since.
    Stale,
}

impl Timing {
    /// The next tick after `now`: one run for a tick missed during an outage, however many
    /// were missed, then back on the schedule's grid.
    pub fn next_after(&self, now: Millis) -> Option<Millis> {
        if !self.enabled {
            return None;
        }
        self.schedule.next_after(now, self.anchor)
    }

    /// What `tick` of `monitor` comes to at `now`, given whether its previous run's job has
    /// finished (`None`: there is none, or it is gone).
    pub fn decide(
        &self,
        monitor: &MonitorId,
        tick: Millis,
        now: Millis,
        previous_finished: Option<bool>,
    ) -> TickOutcome {
        let job = monitor.job_for_tick(tick);
        // A delivery of a tick that was claimed but whose job may not have been written (the
        // claiming delivery failed after the claim): create it again, under the same id.
        if self.running_job.as_ref() == Some(&job) {
            return TickOutcome::Run { job, next: self.next_run_at };
        }
        if !self.enabled || self.next_run_at != Some(tick) || tick > now {
            return TickOutcome::Stale;
        }
        let next = self.next_after(now);
        if self.running_job.is_some() && previous_finished == Some(false) {
            return TickOutcome::Skip { reason: SkipReason::PreviousRunning, next };
        }
        TickOutcome::Run { job, next }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_rfc3339;

    const MINUTE: Millis = 60_000;

    fn at(text: &str) -> Millis {
        parse_rfc3339(text).unwrap()
    }

    fn every_15_minutes(anchor: Millis) -> Timing {
        Timing {
            schedule: Schedule::parse("rate(15 minutes)").unwrap(),
            anchor,
            enabled: true,
            next_run_at: Some(anchor + 15 * MINUTE),
            running_job: None,
        }
    }

    #[test]
    fn a_tick_names_the_same_job_on_every_delivery_and_a_time_ordered_one() {
        let monitor = MonitorId::generate();
        let tick = at("2026-12-04T10:15:00Z");
        assert_eq!(monitor.job_for_tick(tick), monitor.job_for_tick(tick));
        assert_ne!(monitor.job_for_tick(tick), monitor.job_for_tick(tick + 15 * MINUTE));
        assert_ne!(monitor.job_for_tick(tick), MonitorId::generate().job_for_tick(tick));
        let (earlier, later) = (monitor.job_for_tick(tick), monitor.job_for_tick(tick + 1));
        assert!(earlier.as_str() < later.as_str(), "job ids sort by their tick, as listings expect");
        assert!(JobId::parse(earlier.as_str()).is_some(), "a canonical UUID");
    }

    #[test]
    fn a_due_tick_runs_once_and_moves_to_the_next_on_the_grid() {
        let monitor = MonitorId::generate();
        let anchor = at("2026-12-04T10:00:00Z");
        let timing = every_15_minutes(anchor);
        let tick = anchor + 15 * MINUTE;
        let job = monitor.job_for_tick(tick);
        // Started 40 s late: the next is still 10:30, not 10:30:40.
        assert_eq!(
            timing.decide(&monitor, tick, tick + 40_000, None),
            TickOutcome::Run { job: job.clone(), next: Some(anchor + 30 * MINUTE) }
        );
        assert_eq!(timing.decide(&monitor, tick, tick - 1, None), TickOutcome::Stale, "not due yet");
        // The tick was claimed: another delivery of it creates the same job (if it is not
        // there yet); a delivery of an older tick does nothing.
        let claimed =
            Timing { next_run_at: Some(anchor + 30 * MINUTE), running_job: Some(job.clone()), ..timing.clone() };
        assert_eq!(
            claimed.decide(&monitor, tick, tick + 50_000, Some(false)),
            TickOutcome::Run { job, next: Some(anchor + 30 * MINUTE) }
        );
        assert_eq!(claimed.decide(&monitor, anchor, tick, Some(false)), TickOutcome::Stale);
        let disabled = Timing { enabled: false, ..timing };
        assert_eq!(disabled.decide(&monitor, tick, tick, None), TickOutcome::Stale);
    }

    #[test]
    fn a_new_monitor_runs_first_at_its_schedules_first_tick() {
        let now = at("2026-12-04T10:03:00Z");
        let schedule = Schedule::parse("cron(0 * * * ? *)").unwrap();
        let new = |enabled| {
            let text = "cron(0 * * * ? *)".to_owned();
            Monitor::new(
                Tenant("t".into()),
                "m".into(),
                (&schedule, text),
                JobSettings::default(),
                None,
                3,
                Vec::new(),
                enabled,
                now,
            )
        };
        let monitor = new(true);
        assert_eq!(monitor.next_run_at, Some(at("2026-12-04T11:00:00Z")));
        assert_eq!(monitor.timing().unwrap().next_run_at, monitor.next_run_at);
        assert_eq!(new(false).next_run_at, None, "a disabled monitor has no next run");
    }

    #[test]
    fn a_run_never_overlaps_the_previous_one_and_a_missed_tick_runs_once() {
        let monitor = MonitorId::generate();
        let anchor = at("2026-12-04T10:00:00Z");
        let tick = anchor + 15 * MINUTE;
        let busy = Timing { running_job: Some(JobId::generate()), ..every_15_minutes(anchor) };
        assert_eq!(
            busy.decide(&monitor, tick, tick, Some(false)),
            TickOutcome::Skip { reason: SkipReason::PreviousRunning, next: Some(anchor + 30 * MINUTE) }
        );
        assert!(matches!(busy.decide(&monitor, tick, tick, Some(true)), TickOutcome::Run { .. }), "it finished");
        assert!(matches!(busy.decide(&monitor, tick, tick, None), TickOutcome::Run { .. }), "it is gone");
        // Down from 10:14 to 11:02: the 10:15 tick runs once, the next is 11:15.
        let outcome = every_15_minutes(anchor).decide(&monitor, tick, at("2026-12-04T11:02:00Z"), None);
        assert_eq!(
            outcome,
            TickOutcome::Run { job: monitor.job_for_tick(tick), next: Some(at("2026-12-04T11:15:00Z")) }
        );
    }
}

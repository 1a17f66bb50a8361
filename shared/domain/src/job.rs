//! A job: its identity, its status and how the status moves, its URL counters, and the
//! rates a client watches.

use serde::{Deserialize, Serialize};

use super::named_enum;
use crate::callback::CallbackDelivery;
use crate::settings::JobSettings;
use crate::task::{TaskFilter, UrlStatus, UrlTask};
use crate::time::Millis;
use crate::timeouts;
use crate::window::{Frontiers, Window};

/// A job's id: a UUIDv7, so ids sort by creation time.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(String);

impl JobId {
    pub fn generate() -> Self {
        JobId(uuid::Uuid::now_v7().to_string())
    }

    /// Accepts only the canonical form we generate, so a path segment can never smuggle a
    /// key delimiter into a DynamoDB key.
    pub fn parse(text: &str) -> Option<Self> {
        let uuid = uuid::Uuid::try_parse(text).ok()?;
        (uuid.to_string() == text).then(|| JobId(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The owner of a job: every read and write of a job is scoped to one tenant.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Tenant(pub String);

named_enum!(
    /// Where a job is in its life. Transitions are driven by the tracker from the counters.
    JobStatus {
        Pending => "pending",
        Processing => "processing",
        Cancelling => "cancelling",
        Cancelled => "cancelled",
        Completed => "completed",
        CompletedWithErrors => "completed_with_errors",
        Failed => "failed",
    }
);

impl JobStatus {
    pub fn is_finished(self) -> bool {
        matches!(self, JobStatus::Completed | JobStatus::CompletedWithErrors | JobStatus::Failed | JobStatus::Cancelled)
    }

    /// The lifecycle as code. A job whose URLs all finish between two observations may go
    /// from `pending` straight to an outcome.
    pub fn can_become(self, next: JobStatus) -> bool {
        use JobStatus::*;
        matches!(
            (self, next),
            (Pending, Processing | Cancelling)
                | (Pending | Processing, Completed | CompletedWithErrors | Failed)
                | (Processing, Cancelling)
                | (Cancelling, Cancelled)
        )
    }

    /// Whether entering this status marks the job as started (if nothing did before): a job
    /// can finish without the tracker ever seeing it `processing`.
    pub fn marks_started(self) -> bool {
        self == JobStatus::Processing || self.is_finished()
    }
}

/// The job's URL counters. Every accepted URL is in exactly one of the five buckets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Counters {
    #[serde(rename = "total_urls")]
    pub total: u64,
    pub queued: u64,
    pub in_progress: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub cancelled: u64,
}

impl Counters {
    pub fn new(total: u64) -> Self {
        Counters { total, queued: total, ..Counters::default() }
    }

    pub fn done(&self) -> u64 {
        self.succeeded + self.failed + self.cancelled
    }

    /// The counters of a job of `total` URLs whose URLs have these statuses.
    pub fn of_statuses(total: u64, statuses: impl IntoIterator<Item = UrlStatus>) -> Self {
        let mut counters = Counters { total, ..Counters::default() };
        for status in statuses {
            *counters.get_mut(crate::lifecycle::Counter::of(status)) += 1;
        }
        counters
    }

    pub fn all_terminal(&self) -> bool {
        self.done() >= self.total
    }

    pub fn started(&self) -> bool {
        self.in_progress > 0 || self.done() > 0
    }

    /// The status a job with these counters ends in, once every URL is terminal.
    pub fn outcome(&self) -> JobStatus {
        if self.cancelled > 0 {
            JobStatus::Cancelled
        } else if self.failed == 0 {
            JobStatus::Completed
        } else if self.succeeded == 0 {
            JobStatus::Failed
        } else {
            JobStatus::CompletedWithErrors
        }
    }

    pub fn percent(&self) -> f64 {
        if self.total == 0 {
            return 100.0;
        }
        let raw = self.done() as f64 * 100.0 / self.total as f64;
        (raw * 10.0).round() / 10.0
    }
}

/// A job as stored: identity, settings, counters and timestamps.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: JobId,
    pub tenant: Tenant,
    pub name: String,
    pub status: JobStatus,
    pub settings: JobSettings,
    pub counters: Counters,
    pub created_at: Millis,
    pub started_at: Option<Millis>,
    pub finished_at: Option<Millis>,
    /// The last change to the job: counters, status or settings.
    pub updated_at: Millis,
    /// `settings.timeout_seconds` as it runs: within what the deployment can give a URL.
    pub effective_timeout_seconds: u32,
    /// Its tenant's `max_in_flight` when it was submitted: the most URLs of all the tenant's
    /// jobs its URLs start beside. `None` on jobs submitted before the limit was kept.
    pub max_in_flight: Option<u32>,
    /// Its tenant's `quota_weight` when it was submitted: its URLs' share of the PSI quota.
    /// `None` on jobs submitted before the weight was kept (weight 1).
    pub quota_weight: Option<u32>,
    /// Where the call to `settings.callback_url` stands, once the callbacks function tried it.
    pub callback: Option<CallbackDelivery>,
    /// The monitor whose run this job is.
    pub monitor_id: Option<crate::monitor::MonitorId>,
    /// Where its window stands: each chain's open URL ([`Window`]). Kept by the store, not
    /// part of what the job is shown or announced as.
    #[serde(skip)]
    pub frontiers: Frontiers,
    /// The last place in the table's stream whose results the tracker added to the counters
    /// ([`crate::tally`]); kept by the store.
    #[serde(skip)]
    pub counted_to: Option<crate::tally::StreamPosition>,
}

impl Job {
    /// A new job of `total_urls` URLs, all queued, on a deployment with the default analyzer
    /// timeout (`cap_timeout` says otherwise).
    pub fn new(tenant: Tenant, name: String, settings: JobSettings, total_urls: u64, now: Millis) -> Job {
        let max_url_timeout = timeouts::max_url_timeout(timeouts::DEFAULT_FUNCTION_SECONDS);
        Job {
            effective_timeout_seconds: timeouts::effective(settings.timeout_seconds, max_url_timeout),
            id: JobId::generate(),
            tenant,
            name,
            status: JobStatus::Pending,
            settings,
            counters: Counters::new(total_urls),
            created_at: now,
            started_at: None,
            finished_at: None,
            updated_at: now,
            max_in_flight: None,
            quota_weight: None,
            callback: None,
            monitor_id: None,
            frontiers: Frontiers::default(),
            counted_to: None,
        }
    }

    /// The job of a monitor's run: its id fixed by the run's tick (`MonitorId::job_for_tick`).
    pub fn of_monitor(mut self, monitor: crate::monitor::MonitorId, id: JobId) -> Job {
        self.id = id;
        self.monitor_id = Some(monitor);
        self
    }

    /// The job on a deployment that gives a URL at most `max_url_timeout` seconds.
    pub fn cap_timeout(mut self, max_url_timeout: u32) -> Job {
        self.effective_timeout_seconds = timeouts::effective(self.settings.timeout_seconds, max_url_timeout);
        self
    }

    /// The job of a tenant with `limits`: what its URLs carry of them (`max_in_flight`, its
    /// weight in the PSI quota).
    pub fn held_to(mut self, limits: &crate::tenancy::Limits) -> Job {
        self.max_in_flight = Some(limits.max_in_flight);
        self.quota_weight = Some(limits.quota_weight);
        self
    }

    /// Throughput from the first URL's start to the job's last change, in URLs per minute.
    /// Measured to the last change rather than to "now", so the figure (and the ETag of a
    /// progress response) changes only when the job does.
    pub fn urls_per_minute(&self) -> Option<f64> {
        let started = self.started_at?;
        let end = self.finished_at.unwrap_or(self.updated_at);
        let minutes = (end - started).max(1) as f64 / 60_000.0;
        let done = self.counters.done();
        (done > 0).then(|| ((done as f64 / minutes) * 10.0).round() / 10.0)
    }

    /// Seconds until every URL is done at the current throughput.
    pub fn eta_seconds(&self) -> Option<u64> {
        if self.status.is_finished() {
            return Some(0);
        }
        let rate = self.urls_per_minute()?;
        let remaining = self.counters.total.saturating_sub(self.counters.done());
        Some((remaining as f64 / rate * 60.0).ceil() as u64)
    }

    /// The job's window ([`Window`]): which URLs start at submission and which each releases.
    pub fn window(&self) -> Window {
        Window::new(self.settings.batch_size, u32::try_from(self.counters.total).unwrap_or(u32::MAX))
    }

    /// How many URLs start at submission: the first window.
    pub fn initial_window(&self) -> u32 {
        self.window().chains()
    }

    /// The counters as a client sees them: of the unfinished URLs, those released into the
    /// window are in progress once the job has started (nothing is stored when an analysis
    /// starts, `crate::lifecycle`), the rest queued. Items a release before this one claimed
    /// are counted in progress where they are stored.
    pub fn progress(&self) -> Counters {
        let mut counters = self.counters;
        if self.started_at.is_some() {
            let released = counters.queued.saturating_sub(self.window().unreleased(&self.frontiers));
            counters.queued -= released;
            counters.in_progress += released;
        }
        counters
    }

    /// A URL's status as a client sees it ([`progress`](Self::progress)): an unfinished URL
    /// of a started job that is open in its window is `processing`.
    pub fn shown_status(&self, seq: u32, stored: UrlStatus) -> UrlStatus {
        let open = self.started_at.is_some() && self.window().is_open(seq, &self.frontiers);
        if stored == UrlStatus::Queued && open { UrlStatus::Processing } else { stored }
    }

    /// The filter a listing of what `filter` keeps reads from the store: `processing` is
    /// stored as `queued` ([`shown_status`](Self::shown_status)).
    pub fn stored_filter(&self, filter: &TaskFilter) -> TaskFilter {
        let status = match filter.status {
            Some(UrlStatus::Processing) if self.started_at.is_some() => Some(UrlStatus::Queued),
            status => status,
        };
        TaskFilter { status, ..filter.clone() }
    }

    /// Whether `filter`'s status keeps URL `task` as it is shown, once read through
    /// [`stored_filter`](Self::stored_filter).
    pub fn shows(&self, filter: &TaskFilter, task: &UrlTask) -> bool {
        filter.status.is_none_or(|status| self.shown_status(task.seq, task.status) == status)
    }

    /// Whether a listing of what `filter` keeps may find any more after URL `seq`: the URLs in
    /// progress are the window's open ones, none after the last of them.
    pub fn lists_after(&self, filter: &TaskFilter, seq: u32) -> bool {
        filter.status != Some(UrlStatus::Processing)
            || self.window().open(&self.frontiers).iter().any(|open| *open > seq)
    }

    /// Moves the job to `to`, stamping when it started and finished; the caller has checked
    /// that the job was in a status that `can_become` it.
    pub fn enter(&mut self, to: JobStatus, now: Millis) {
        self.status = to;
        self.updated_at = now;
        if to.marks_started() {
            self.started_at.get_or_insert(now);
        }
        if to.is_finished() {
            self.finished_at = Some(now);
        }
    }

    /// The status the tracker should move this job to, if any.
    pub fn next_status(&self) -> Option<JobStatus> {
        let next = match self.status {
            JobStatus::Pending | JobStatus::Processing if self.counters.all_terminal() => self.counters.outcome(),
            JobStatus::Pending if self.started_at.is_some() || self.counters.started() => JobStatus::Processing,
            JobStatus::Cancelling if self.counters.in_progress == 0 && self.counters.all_terminal() => {
                JobStatus::Cancelled
            }
            _ => return None,
        };
        self.status.can_become(next).then_some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Priority;
    use JobStatus::*;

    fn job(status: JobStatus, counters: Counters) -> Job {
        let mut job = Job::new(Tenant("t".into()), "n".into(), JobSettings::default(), counters.total, 0);
        job.status = status;
        job.counters = counters;
        job
    }

    fn counters(total: u64, queued: u64, in_progress: u64, succeeded: u64, failed: u64) -> Counters {
        Counters { total, queued, in_progress, succeeded, failed, cancelled: 0 }
    }

    #[test]
    fn lifecycle_allows_only_the_documented_moves() {
        for from in JobStatus::ALL {
            for to in JobStatus::ALL {
                let expected = matches!(
                    (from, to),
                    (Pending, Processing | Cancelling | Completed | CompletedWithErrors | Failed)
                        | (Processing, Cancelling | Completed | CompletedWithErrors | Failed)
                        | (Cancelling, Cancelled)
                );
                assert_eq!(from.can_become(*to), expected, "{from} -> {to}");
            }
        }
    }

    #[test]
    fn finished_statuses_never_move() {
        for status in JobStatus::ALL.iter().filter(|s| s.is_finished()) {
            assert!(JobStatus::ALL.iter().all(|to| !status.can_become(*to)), "{status}");
        }
    }

    #[test]
    fn tracker_decisions_follow_the_counters() {
        assert_eq!(job(Pending, counters(3, 3, 0, 0, 0)).next_status(), None);
        assert_eq!(job(Pending, counters(3, 2, 1, 0, 0)).next_status(), Some(Processing));
        assert_eq!(job(Processing, counters(3, 1, 1, 1, 0)).next_status(), None);
        assert_eq!(job(Processing, counters(3, 0, 0, 3, 0)).next_status(), Some(Completed));
        assert_eq!(job(Processing, counters(3, 0, 0, 2, 1)).next_status(), Some(CompletedWithErrors));
        assert_eq!(job(Processing, counters(3, 0, 0, 0, 3)).next_status(), Some(Failed));
        assert_eq!(job(Pending, counters(1, 0, 0, 1, 0)).next_status(), Some(Completed));
        assert_eq!(job(Completed, counters(3, 0, 0, 3, 0)).next_status(), None);
        let cancelled = Counters { total: 3, succeeded: 1, cancelled: 2, ..Counters::default() };
        assert_eq!(job(Cancelling, cancelled).next_status(), Some(Cancelled));
    }

    #[test]
    fn a_started_jobs_unfinished_urls_in_its_window_are_in_progress() {
        let settings = JobSettings { batch_size: 3, ..JobSettings::default() };
        let mut j = Job::new(Tenant("t".into()), "n".into(), settings, 8, 0);
        assert_eq!(j.progress(), j.counters, "nothing has started");
        assert_eq!(j.shown_status(0, UrlStatus::Queued), UrlStatus::Queued);
        j.started_at = Some(1);
        assert_eq!((j.progress().queued, j.progress().in_progress), (5, 3));
        assert_eq!(j.shown_status(0, UrlStatus::Queued), UrlStatus::Processing);
        assert_eq!(j.shown_status(3, UrlStatus::Queued), UrlStatus::Queued, "not released");
        // 0, 3 and 1 counted: chains at 6, 4 and 2; the last of chain 2 (5) not yet released.
        j.frontiers = [(0, 6), (1, 4)].into_iter().collect();
        j.counters = Counters { total: 8, queued: 5, succeeded: 3, ..Counters::default() };
        let seen = j.progress();
        assert_eq!((seen.queued, seen.in_progress, seen.succeeded), (2, 3, 3), "5 and 7 wait");
        assert_eq!(j.shown_status(3, UrlStatus::Succeeded), UrlStatus::Succeeded);
        j.counters = Counters { total: 8, queued: 1, succeeded: 7, ..Counters::default() };
        j.frontiers = [(0, 6), (1, 7), (2, 5)].into_iter().collect();
        assert_eq!((j.progress().queued, j.progress().in_progress), (0, 1), "the last one");
        j.counters = Counters { total: 8, queued: 1, in_progress: 2, succeeded: 5, ..Counters::default() };
        assert_eq!(j.progress().in_progress, 3, "with two a release before this claimed");
    }

    #[test]
    fn a_listing_by_status_reads_processing_as_queued_and_keeps_the_windows_open_urls() {
        let settings = JobSettings { batch_size: 3, ..JobSettings::default() };
        let mut j = Job::new(Tenant("t".into()), "n".into(), settings, 8, 0);
        let processing = TaskFilter::status(UrlStatus::Processing);
        assert_eq!(j.stored_filter(&processing), processing, "nothing started: nothing is in progress");
        j.started_at = Some(1);
        j.frontiers = [(0, 3)].into_iter().collect();
        assert_eq!(j.stored_filter(&processing).status, Some(UrlStatus::Queued));
        let task = |seq: u32, status| UrlTask { status, ..UrlTask::queued(&j, seq, &url(seq)) };
        let kept: Vec<u32> = (0..8).filter(|seq| j.shows(&processing, &task(*seq, UrlStatus::Queued))).collect();
        assert_eq!(kept, [1, 2, 3]);
        let queued = TaskFilter::status(UrlStatus::Queued);
        let kept: Vec<u32> = (1..8).filter(|seq| j.shows(&queued, &task(*seq, UrlStatus::Queued))).collect();
        assert_eq!(kept, [4, 5, 6, 7], "the rest wait for their turn (0 has finished)");
        assert!(!j.shows(&processing, &task(0, UrlStatus::Succeeded)));
        assert!(j.lists_after(&processing, 2) && !j.lists_after(&processing, 3), "none after the last open one");
        assert!(j.lists_after(&queued, 3) && j.lists_after(&TaskFilter::default(), 7));
    }

    fn url(seq: u32) -> crate::labels::JobUrl {
        let url = crate::CleanUrl::parse(&format!("https://a.example/{seq}"), Default::default()).unwrap();
        crate::labels::JobUrl { url, tags: Default::default() }
    }

    #[test]
    fn rates_come_from_timestamps() {
        let mut j = job(Processing, counters(100, 40, 10, 45, 5));
        j.updated_at = 120_000;
        assert_eq!(j.urls_per_minute(), None, "not started yet");
        assert_eq!(j.eta_seconds(), None);
        j.started_at = Some(0);
        // 50 URLs in 2 minutes: 25 per minute; 50 left: 120 s.
        assert_eq!(j.urls_per_minute(), Some(25.0));
        assert_eq!(j.eta_seconds(), Some(120));
        assert_eq!(j.counters.percent(), 50.0);
    }

    #[test]
    fn job_ids_parse_only_in_canonical_form() {
        let id = JobId::generate();
        assert_eq!(JobId::parse(id.as_str()), Some(id.clone()));
        assert_eq!(JobId::parse(&id.as_str().to_uppercase()), None);
        assert_eq!(JobId::parse("JOB#x"), None);
        assert_eq!(JobId::parse(""), None);
    }

    #[test]
    fn enums_parse_their_names_and_explain_bad_ones() {
        assert_eq!("urgent".parse::<Priority>(), Ok(Priority::Urgent));
        assert_eq!("fast".parse::<Priority>().unwrap_err(), "\"fast\" is not one of low, normal, high, urgent");
    }
}

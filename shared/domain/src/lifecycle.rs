//! The state machine of a URL task, written once.
//!
//! A task moves only by one of the [`TaskMove`]s below. Each says which statuses it starts
//! from, where it ends, what it asks of the job and of the lease, and what it does to the
//! attempt count and the lease; the job counters it shifts follow from the statuses. The
//! in-memory store applies these definitions ([`TaskMove::apply`]); the DynamoDB store builds
//! its condition and update expressions from them; and one contract suite runs the same cases
//! against both stores.
//!
//! What a delivery's claim finds is decided here too ([`claim_step`]), from the task and the
//! job as they are: the in-memory store reads them, the DynamoDB store gets them back from the
//! condition that failed.

use crate::job::{Counters, Job, JobStatus};
use crate::task::{Analysis, ErrorKind, UrlStatus, UrlTask};
use crate::time::Millis;

/// The job counter a URL in a given status is counted in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    Queued,
    InProgress,
    Succeeded,
    Failed,
    Cancelled,
}

impl Counter {
    pub fn of(status: UrlStatus) -> Counter {
        match status {
            UrlStatus::Queued => Counter::Queued,
            UrlStatus::Processing => Counter::InProgress,
            UrlStatus::Succeeded => Counter::Succeeded,
            UrlStatus::Failed => Counter::Failed,
            UrlStatus::Cancelled => Counter::Cancelled,
        }
    }

    /// The counter's name as stored and as clients see it.
    pub fn name(self) -> &'static str {
        match self {
            Counter::Queued => "queued",
            Counter::InProgress => "in_progress",
            Counter::Succeeded => "succeeded",
            Counter::Failed => "failed",
            Counter::Cancelled => "cancelled",
        }
    }
}

impl Counters {
    pub fn get_mut(&mut self, counter: Counter) -> &mut u64 {
        match counter {
            Counter::Queued => &mut self.queued,
            Counter::InProgress => &mut self.in_progress,
            Counter::Succeeded => &mut self.succeeded,
            Counter::Failed => &mut self.failed,
            Counter::Cancelled => &mut self.cancelled,
        }
    }

    /// Moves `count` URLs from one counter to another.
    pub fn shift(&mut self, (from, to): (Counter, Counter), count: u64) {
        let source = self.get_mut(from);
        *source = source.saturating_sub(count);
        *self.get_mut(to) += count;
    }
}

impl JobStatus {
    /// The statuses in which a job takes work: its URLs may be claimed, and it may be cancelled.
    pub const TAKING_WORK: &'static [JobStatus] = &[JobStatus::Pending, JobStatus::Processing];

    pub fn takes_work(self) -> bool {
        Self::TAKING_WORK.contains(&self)
    }
}

/// What a move asks of the task's job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobGate {
    /// Nothing: the move touches the task alone.
    None,
    /// The job exists (its counters move with the task).
    Exists,
    /// The job takes work: `pending` or `processing`.
    TakesWork,
}

/// What a move asks of the task's lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseGate {
    Any,
    /// No lease, or one that ended at or before now: its holder is gone.
    Ended,
}

/// What a move does to the task's attempt count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempts {
    Keep,
    /// This delivery's analysis is an attempt.
    Count,
    /// The claim was premature: the attempt is given back (there must be one to give back).
    GiveBack,
}

/// What a move does to the task's lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseAfter {
    Keep,
    /// This delivery holds the URL until the lease it asked for ends.
    Hold,
    /// The lease ends now: the next delivery may claim the URL at once.
    End,
}

/// One move of a URL task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskMove {
    pub name: &'static str,
    /// The statuses the task may be in.
    pub from: &'static [UrlStatus],
    /// Where it ends; `None` when its status stays.
    pub to: Option<UrlStatus>,
    pub job: JobGate,
    pub lease: LeaseGate,
    pub attempts: Attempts,
    pub lease_after: LeaseAfter,
}

use UrlStatus::{Cancelled, Failed, Processing, Queued, Succeeded};

/// A queued URL is claimed for analysis by one delivery.
pub const CLAIM: TaskMove = TaskMove {
    name: "claim",
    from: &[Queued],
    to: Some(Processing),
    job: JobGate::TakesWork,
    lease: LeaseGate::Any,
    attempts: Attempts::Count,
    lease_after: LeaseAfter::Hold,
};

/// A URL whose analysis ended without a result (a crash, a timeout, a retry's backoff) is
/// claimed again once its lease is over.
pub const TAKE_OVER: TaskMove = TaskMove {
    name: "take over",
    from: &[Processing],
    to: None,
    job: JobGate::TakesWork,
    lease: LeaseGate::Ended,
    attempts: Attempts::Count,
    lease_after: LeaseAfter::Hold,
};

/// A retryable failure keeps its error on the URL and gives up the lease, so the delayed
/// redelivery can take it over.
pub const RETRY: TaskMove = TaskMove {
    name: "retry",
    from: &[Processing],
    to: None,
    job: JobGate::None,
    lease: LeaseGate::Any,
    attempts: Attempts::Keep,
    lease_after: LeaseAfter::End,
};

/// A claim that had to wait through no fault of the URL's (a provider's rate limit): the
/// attempt is not counted and the lease ends.
pub const GIVE_BACK: TaskMove = TaskMove {
    name: "give back",
    from: &[Processing],
    to: None,
    job: JobGate::None,
    lease: LeaseGate::Any,
    attempts: Attempts::GiveBack,
    lease_after: LeaseAfter::End,
};

/// An analysis's result.
pub const SUCCEED: TaskMove = TaskMove {
    name: "succeed",
    from: &[Processing],
    to: Some(Succeeded),
    job: JobGate::Exists,
    lease: LeaseGate::Any,
    attempts: Attempts::Keep,
    lease_after: LeaseAfter::Keep,
};

/// An analysis's terminal failure.
pub const FAIL: TaskMove = TaskMove { name: "fail", to: Some(Failed), ..SUCCEED };

/// A URL of a cancelling job that had not started.
pub const CANCEL_QUEUED: TaskMove = TaskMove {
    name: "cancel a queued URL",
    from: &[Queued],
    to: Some(Cancelled),
    job: JobGate::Exists,
    lease: LeaseGate::Any,
    attempts: Attempts::Keep,
    lease_after: LeaseAfter::Keep,
};

/// A URL of a cancelling job that a delivery had claimed and not started.
pub const CANCEL_CLAIMED: TaskMove = TaskMove { name: "cancel a claimed URL", from: &[Processing], ..CANCEL_QUEUED };

/// Every move there is.
pub const MOVES: &[TaskMove] = &[CLAIM, TAKE_OVER, RETRY, GIVE_BACK, SUCCEED, FAIL, CANCEL_QUEUED, CANCEL_CLAIMED];

/// Why a move could not be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The task was in another status.
    Status(UrlStatus),
    /// The job does not exist.
    NoJob,
    /// The job no longer takes work.
    JobStopped(JobStatus),
    /// Another delivery holds the lease until then.
    Leased(Millis),
    /// There is no attempt to give back.
    NoAttempt,
}

impl TaskMove {
    /// The counters this move shifts one URL between, for a task in `from`; `None` when its
    /// status stays.
    pub fn counters(&self, from: UrlStatus) -> Option<(Counter, Counter)> {
        self.to.filter(|to| *to != from).map(|to| (Counter::of(from), Counter::of(to)))
    }

    /// Whether this move stamps the job's `started_at` (when not yet set): its first URL started.
    pub fn starts_job(&self) -> bool {
        self.to == Some(Processing) && self.from.contains(&Queued)
    }

    /// Whether the move may be made on `task` of `job` at `now`.
    pub fn check(&self, task: &UrlTask, job: Option<JobStatus>, now: Millis) -> Result<(), Refusal> {
        if !self.from.contains(&task.status) {
            return Err(Refusal::Status(task.status));
        }
        match (self.job, job) {
            (JobGate::None, _) => {}
            (_, None) => return Err(Refusal::NoJob),
            (JobGate::TakesWork, Some(status)) if !status.takes_work() => return Err(Refusal::JobStopped(status)),
            _ => {}
        }
        if self.lease == LeaseGate::Ended
            && let Some(lease) = task.lease_until.filter(|lease| *lease > now)
        {
            return Err(Refusal::Leased(lease));
        }
        if self.attempts == Attempts::GiveBack && task.attempts == 0 {
            return Err(Refusal::NoAttempt);
        }
        Ok(())
    }

    /// Makes the move on a task and its job (when the move concerns the job), after
    /// [`check`](Self::check) allowed it. `lease_until` is the lease a `Hold` takes.
    pub fn apply(&self, task: &mut UrlTask, job: Option<&mut Job>, now: Millis, lease_until: Millis) {
        let from = task.status;
        if let Some(to) = self.to {
            task.status = to;
            if to.is_terminal() {
                task.analyzed_at = Some(now);
            }
        }
        match self.attempts {
            Attempts::Keep => {}
            Attempts::Count => task.attempts += 1,
            Attempts::GiveBack => task.attempts = task.attempts.saturating_sub(1),
        }
        match self.lease_after {
            LeaseAfter::Keep => {}
            LeaseAfter::Hold => task.lease_until = Some(lease_until),
            LeaseAfter::End => task.lease_until = Some(now),
        }
        if task.status.is_terminal() && self.to.is_some() {
            // A finished URL keeps nothing of its claim.
            task.lease_until = None;
        }
        let Some(job) = job.filter(|_| self.job != JobGate::None) else { return };
        if let Some(shift) = self.counters(from) {
            job.counters.shift(shift, 1);
            job.updated_at = now;
        }
        if self.starts_job() {
            job.started_at.get_or_insert(now);
        }
    }
}

impl UrlStatus {
    /// Whether some move takes a task from this status to `next`.
    pub fn can_become(self, next: UrlStatus) -> bool {
        MOVES.iter().any(|m| m.from.contains(&self) && m.to.unwrap_or(self) == next)
    }
}

/// When a lease taken at `now` for `lease` ends.
pub fn lease_end(now: Millis, lease: std::time::Duration) -> Millis {
    now.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX))
}

/// What claiming a URL for analysis found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The URL was queued and is now ours (attempt 1); counters moved from `queued` to
    /// `in_progress`.
    Claimed,
    /// An earlier delivery claimed it and did not finish (a retry after its backoff, or a
    /// crash or timeout whose lease ran out): analyse again; the counters already say
    /// `in_progress`. `attempt` counts this one (the first claim is attempt 1).
    Reclaimed { attempt: u32 },
    /// The URL already has its terminal status: this delivery is a duplicate.
    AlreadyFinished(UrlStatus),
    /// The job is being cancelled: the URL, still in this status, must not start.
    JobCancelling(UrlStatus),
    /// Another delivery is analysing the URL and holds it until then (milliseconds): try
    /// again after that, when it has either finished or is known to have died.
    Busy { until: Millis },
    /// The URL's host or its tenant has no place for it now, or its host asked for a pause
    /// ([`crate::places`]): nothing was written; the URL waits without an attempt.
    Full(crate::places::Full),
}

/// What a claim comes to, given the task and its job as they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimStep {
    /// Make this move ([`CLAIM`] or [`TAKE_OVER`]).
    Move(TaskMove),
    /// Nothing to write: this is the answer.
    Found(Claim),
}

/// The job as a claim sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobState {
    TakesWork,
    Stopped(JobStatus),
}

impl JobState {
    pub fn of(status: JobStatus) -> JobState {
        if status.takes_work() { JobState::TakesWork } else { JobState::Stopped(status) }
    }
}

/// A job that no longer takes work while one of its URLs is still unfinished is being
/// cancelled; any other stopped status would mean the counters and the URLs disagree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the job is {job} but its URL is {task}")]
pub struct Inconsistent {
    pub job: JobStatus,
    pub task: UrlStatus,
}

/// Decides a claim: a finished URL is a duplicate, a stopped job starts nothing, a queued URL
/// is claimed, and one being analysed is taken over only once its lease has ended.
pub fn claim_step(
    status: UrlStatus,
    lease_until: Option<Millis>,
    job: JobState,
    now: Millis,
) -> Result<ClaimStep, Inconsistent> {
    if status.is_terminal() {
        return Ok(ClaimStep::Found(Claim::AlreadyFinished(status)));
    }
    match job {
        JobState::Stopped(JobStatus::Cancelling | JobStatus::Cancelled) => {
            return Ok(ClaimStep::Found(Claim::JobCancelling(status)));
        }
        JobState::Stopped(job) => return Err(Inconsistent { job, task: status }),
        JobState::TakesWork => {}
    }
    Ok(match (status, lease_until) {
        (Queued, _) => ClaimStep::Move(CLAIM),
        (_, Some(lease)) if lease > now => ClaimStep::Found(Claim::Busy { until: lease }),
        _ => ClaimStep::Move(TAKE_OVER),
    })
}

/// How one analysis ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Succeeded(Analysis),
    Failed { kind: ErrorKind, reason: String, analysis: Option<Analysis> },
}

impl Outcome {
    /// The move that records it.
    pub fn task_move(&self) -> TaskMove {
        match self {
            Outcome::Succeeded(_) => SUCCEED,
            Outcome::Failed { .. } => FAIL,
        }
    }

    pub fn analysis(&self) -> Option<&Analysis> {
        match self {
            Outcome::Succeeded(analysis) => Some(analysis),
            Outcome::Failed { analysis, .. } => analysis.as_ref(),
        }
    }

    /// A new successful analysis (not a reused one) is what later jobs may reuse.
    pub fn is_fresh_success(&self) -> bool {
        matches!(self, Outcome::Succeeded(analysis) if analysis.cached_from.is_none())
    }
}

/// Whether recording a result wrote it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// Written, once: it counts on the job when the tracker reads it from the table's stream.
    Counted,
    /// Another delivery recorded this URL first; nothing changed.
    Duplicate,
}

/// What asking to cancel a job found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cancel {
    /// The job is now (or already was) `cancelling`.
    Requested,
    /// The job had already finished with this status.
    AlreadyFinished(JobStatus),
}

/// The cancelling move for a URL found in `status`, if it can still be cancelled.
pub fn cancel_move(status: UrlStatus) -> Option<TaskMove> {
    [CANCEL_QUEUED, CANCEL_CLAIMED].into_iter().find(|m| m.from.contains(&status))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{JobId, Tenant};
    use crate::settings::JobSettings;

    fn task(status: UrlStatus, attempts: u32, lease_until: Option<Millis>) -> UrlTask {
        UrlTask {
            job_id: JobId::generate(),
            seq: 0,
            url: "https://a.example".into(),
            status,
            attempts,
            error: None,
            error_kind: None,
            analysis: None,
            analyzed_at: None,
            lease_until,
            tags: Default::default(),
        }
    }

    #[test]
    fn terminal_statuses_are_final_and_a_url_is_claimed_before_it_ends() {
        for from in UrlStatus::ALL.iter().filter(|s| s.is_terminal()) {
            assert!(UrlStatus::ALL.iter().all(|to| !from.can_become(*to)), "{from}");
        }
        assert!(Queued.can_become(Processing));
        assert!(Processing.can_become(Processing), "a take-over");
        assert!(!Queued.can_become(Succeeded), "must be claimed first");
        assert!(!Processing.can_become(Queued), "no move puts a URL back in the queue");
    }

    #[test]
    fn every_status_change_moves_one_url_between_its_counters() {
        for m in MOVES {
            for from in m.from {
                let shift = m.counters(*from);
                match m.to {
                    Some(to) if to != *from => {
                        assert_eq!(shift, Some((Counter::of(*from), Counter::of(to))), "{}", m.name)
                    }
                    _ => assert_eq!(shift, None, "{}", m.name),
                }
                assert!(shift.is_none() || m.job != JobGate::None, "{}: counters need the job", m.name);
            }
        }
    }

    #[test]
    fn a_claim_is_decided_from_the_task_and_the_job() {
        let now = 1_000;
        let step = |status, lease, job| claim_step(status, lease, job, now).unwrap();
        assert_eq!(step(Queued, None, JobState::TakesWork), ClaimStep::Move(CLAIM));
        assert_eq!(
            step(Processing, Some(now + 1), JobState::TakesWork),
            ClaimStep::Found(Claim::Busy { until: now + 1 })
        );
        assert_eq!(
            step(Processing, Some(now), JobState::TakesWork),
            ClaimStep::Move(TAKE_OVER),
            "a lease ending now has ended"
        );
        assert_eq!(step(Processing, None, JobState::TakesWork), ClaimStep::Move(TAKE_OVER));
        assert_eq!(step(Failed, None, JobState::TakesWork), ClaimStep::Found(Claim::AlreadyFinished(Failed)));
        let cancelling = JobState::of(JobStatus::Cancelling);
        assert_eq!(step(Queued, None, cancelling), ClaimStep::Found(Claim::JobCancelling(Queued)));
        assert_eq!(step(Succeeded, None, cancelling), ClaimStep::Found(Claim::AlreadyFinished(Succeeded)));
        assert!(
            claim_step(Queued, None, JobState::of(JobStatus::Completed), now).is_err(),
            "counters and URLs disagree"
        );
    }

    #[test]
    fn moves_check_the_task_the_job_and_the_lease() {
        let now = 1_000;
        assert_eq!(CLAIM.check(&task(Queued, 0, None), Some(JobStatus::Pending), now), Ok(()));
        assert_eq!(
            CLAIM.check(&task(Processing, 1, None), Some(JobStatus::Pending), now),
            Err(Refusal::Status(Processing))
        );
        assert_eq!(
            CLAIM.check(&task(Queued, 0, None), Some(JobStatus::Cancelling), now),
            Err(Refusal::JobStopped(JobStatus::Cancelling))
        );
        assert_eq!(SUCCEED.check(&task(Processing, 1, None), None, now), Err(Refusal::NoJob));
        assert_eq!(
            TAKE_OVER.check(&task(Processing, 1, Some(now + 5)), Some(JobStatus::Processing), now),
            Err(Refusal::Leased(now + 5))
        );
        assert_eq!(GIVE_BACK.check(&task(Processing, 0, None), None, now), Err(Refusal::NoAttempt));
        assert_eq!(RETRY.check(&task(Processing, 1, Some(now + 5)), None, now), Ok(()), "the holder itself retries");
    }

    #[test]
    fn applying_a_move_keeps_the_counters_adding_up() {
        let mut job = Job::new(Tenant("t".into()), "n".into(), JobSettings::default(), 2, 0);
        let mut t = task(Queued, 0, None);
        CLAIM.apply(&mut t, Some(&mut job), 10, 70);
        assert_eq!((t.status, t.attempts, t.lease_until), (Processing, 1, Some(70)));
        assert_eq!((job.counters.queued, job.counters.in_progress, job.started_at), (1, 1, Some(10)));
        RETRY.apply(&mut t, Some(&mut job), 20, 0);
        assert_eq!((t.lease_until, job.counters.in_progress), (Some(20), 1), "a retry moves no counter");
        TAKE_OVER.apply(&mut t, Some(&mut job), 30, 90);
        assert_eq!((t.attempts, t.lease_until, job.started_at), (2, Some(90), Some(10)));
        FAIL.apply(&mut t, Some(&mut job), 40, 0);
        assert_eq!((t.status, t.analyzed_at), (Failed, Some(40)));
        let c = job.counters;
        assert_eq!((c.queued, c.in_progress, c.failed, c.queued + c.in_progress + c.done()), (1, 0, 1, c.total));
        let mut other = task(Queued, 0, None);
        cancel_move(Queued).unwrap().apply(&mut other, Some(&mut job), 50, 0);
        assert_eq!((job.counters.cancelled, job.counters.queued, other.analyzed_at), (1, 0, Some(50)));
        assert_eq!(cancel_move(Succeeded), None);
    }
}

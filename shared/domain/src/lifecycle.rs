//! The state machine of a URL task, written once.
//!
//! A URL is stored `queued` until it ends: nothing is written when its analysis starts (a
//! claim would cost every URL two more write units, docs/scale.md). A delivery reads the URL
//! and its job ([`Delivery`]), analyses it, and records the result from `queued`, once: a
//! duplicate delivery analysing at the same time finds the URL moved on and writes nothing.
//! That a URL is being analysed is what its job's window says: released into it and not
//! finished ([`crate::job::Job::progress`]).
//!
//! A task moves only by one of the [`TaskMove`]s below. Each says which statuses it starts
//! from, where it ends, what it asks of the job and what it does to the attempt count; the
//! job counters it shifts follow from the statuses. The in-memory store applies these
//! definitions ([`TaskMove::apply`]); the DynamoDB store builds its condition and update
//! expressions from them; and one contract suite runs the same cases against both stores.

use crate::job::{Counters, JobStatus};
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
    pub fn get(&self, counter: Counter) -> u64 {
        *self.clone().get_mut(counter)
    }

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
    /// The job exists (its counters move with the task, in the same write or in the tracker's
    /// count of the result).
    Exists,
}

/// What a move does to the task's attempt count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempts {
    Keep,
    /// The delivery's attempt (its message's count, [`crate::message::TaskMessage::attempt`])
    /// is stored: how many analyses the URL has had.
    Record,
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
    pub attempts: Attempts,
}

use UrlStatus::{Cancelled, Failed, Processing, Queued, Succeeded};

/// The statuses of a URL that has not finished: `queued`, and `processing` on items a
/// release before this one claimed (no move writes it now).
pub const UNFINISHED: &[UrlStatus] = &[Queued, Processing];

/// A retryable failure keeps its error and attempt on the URL, which stays unfinished: the
/// same message comes back after its backoff.
pub const RETRY: TaskMove =
    TaskMove { name: "retry", from: UNFINISHED, to: None, job: JobGate::None, attempts: Attempts::Record };

/// An analysis's result.
pub const SUCCEED: TaskMove = TaskMove {
    name: "succeed",
    from: UNFINISHED,
    to: Some(Succeeded),
    job: JobGate::Exists,
    attempts: Attempts::Record,
};

/// An analysis's terminal failure.
pub const FAIL: TaskMove = TaskMove { name: "fail", to: Some(Failed), ..SUCCEED };

/// A URL of a cancelling job that has not finished.
pub const CANCEL: TaskMove =
    TaskMove { name: "cancel", from: UNFINISHED, to: Some(Cancelled), job: JobGate::Exists, attempts: Attempts::Keep };

/// Every move there is.
pub const MOVES: &[TaskMove] = &[RETRY, SUCCEED, FAIL, CANCEL];

/// Why a move could not be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The task was in another status.
    Status(UrlStatus),
    /// The job does not exist.
    NoJob,
}

impl TaskMove {
    /// The counters this move shifts one URL between, for a task in `from`; `None` when its
    /// status stays.
    pub fn counters(&self, from: UrlStatus) -> Option<(Counter, Counter)> {
        self.to.filter(|to| *to != from).map(|to| (Counter::of(from), Counter::of(to)))
    }

    /// Whether the move may be made on `task` (of a job that exists when `job_exists`).
    pub fn check(&self, task: &UrlTask, job_exists: bool) -> Result<(), Refusal> {
        if !self.from.contains(&task.status) {
            return Err(Refusal::Status(task.status));
        }
        if self.job == JobGate::Exists && !job_exists {
            return Err(Refusal::NoJob);
        }
        Ok(())
    }

    /// Makes the move on a task, after [`check`](Self::check) allowed it: `attempt` is the
    /// delivery's. The job's counters move apart, by [`counters`](Self::counters).
    pub fn apply(&self, task: &mut UrlTask, now: Millis, attempt: u32) {
        if let Some(to) = self.to {
            task.status = to;
            if to.is_terminal() {
                task.analyzed_at = Some(now);
                // A finished URL keeps no lease of a release that claimed it.
                task.lease_until = None;
            }
        }
        if self.attempts == Attempts::Record {
            task.attempts = attempt;
        }
    }
}

impl UrlStatus {
    /// Whether some move takes a task from this status to `next`.
    pub fn can_become(self, next: UrlStatus) -> bool {
        MOVES.iter().any(|m| m.from.contains(&self) && m.to.unwrap_or(self) == next)
    }
}

/// What a delivery of a URL does, from the URL and its job as last read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Analyse it.
    Analyse,
    /// Nothing: the URL has finished (or its job has, and the URL's read was older).
    Duplicate,
    /// The job is being cancelled: the URL, still unfinished, is cancelled, not started.
    Cancel,
}

impl Delivery {
    pub fn of(task: UrlStatus, job: JobStatus) -> Delivery {
        if task.is_terminal() || job.is_finished() {
            Delivery::Duplicate
        } else if job == JobStatus::Cancelling {
            Delivery::Cancel
        } else {
            Delivery::Analyse
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{Job, JobId, Tenant};
    use crate::settings::JobSettings;

    fn task(status: UrlStatus, attempts: u32) -> UrlTask {
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
            lease_until: None,
            tags: Default::default(),
        }
    }

    #[test]
    fn terminal_statuses_are_final_and_nothing_stores_processing() {
        for from in UrlStatus::ALL.iter().filter(|s| s.is_terminal()) {
            assert!(UrlStatus::ALL.iter().all(|to| !from.can_become(*to)), "{from}");
        }
        assert!(Queued.can_become(Succeeded), "a result is written from queued");
        assert!(Processing.can_become(Failed), "an item a claim wrote finishes too");
        assert!(UrlStatus::ALL.iter().all(|from| !from.can_become(Processing) || *from == Processing));
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
    fn a_delivery_is_decided_from_the_url_and_the_job() {
        assert_eq!(Delivery::of(Queued, JobStatus::Pending), Delivery::Analyse);
        assert_eq!(Delivery::of(Processing, JobStatus::Processing), Delivery::Analyse, "a claimed item's message");
        assert_eq!(Delivery::of(Succeeded, JobStatus::Processing), Delivery::Duplicate);
        assert_eq!(Delivery::of(Failed, JobStatus::Cancelling), Delivery::Duplicate);
        assert_eq!(Delivery::of(Queued, JobStatus::Cancelling), Delivery::Cancel);
        assert_eq!(
            Delivery::of(Queued, JobStatus::Completed),
            Delivery::Duplicate,
            "a job finishes only once its URLs have: the URL's read was older"
        );
    }

    #[test]
    fn moves_check_the_task_and_the_job() {
        assert_eq!(SUCCEED.check(&task(Queued, 0), true), Ok(()));
        assert_eq!(SUCCEED.check(&task(Succeeded, 1), true), Err(Refusal::Status(Succeeded)));
        assert_eq!(SUCCEED.check(&task(Queued, 0), false), Err(Refusal::NoJob));
        assert_eq!(RETRY.check(&task(Queued, 1), false), Ok(()), "a retry touches the URL alone");
        assert_eq!(CANCEL.check(&task(Failed, 1), true), Err(Refusal::Status(Failed)));
    }

    #[test]
    fn applying_moves_keeps_the_counters_adding_up() {
        let mut job = Job::new(Tenant("t".into()), "n".into(), JobSettings::default(), 2, 0);
        let mut t = task(Queued, 0);
        RETRY.apply(&mut t, 20, 1);
        assert_eq!((t.status, t.attempts, t.analyzed_at), (Queued, 1, None), "a retry moves no counter");
        FAIL.apply(&mut t, 40, 2);
        job.counters.shift(FAIL.counters(Queued).unwrap(), 1);
        assert_eq!((t.status, t.attempts, t.analyzed_at), (Failed, 2, Some(40)));
        let mut other = task(Processing, 1);
        other.lease_until = Some(90);
        CANCEL.apply(&mut other, 50, 9);
        assert_eq!((other.attempts, other.analyzed_at, other.lease_until), (1, Some(50), None), "a claimed item's");
        let c = job.counters;
        assert_eq!((c.queued, c.failed, c.queued + c.in_progress + c.done()), (1, 1, c.total), "{c:?}");
    }
}

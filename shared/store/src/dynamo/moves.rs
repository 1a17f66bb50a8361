//! DynamoDB expressions derived from `domain::lifecycle`: a move's statuses, gates and effects
//! become an update's condition and its `SET`/`ADD` clauses, and the counters it shifts become
//! the job's `ADD`. Nothing here restates a rule; a move's payload (an error, an analysis) is
//! added by the caller.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::TransactWriteItem;
use domain::lifecycle::{Attempts, JobGate, LeaseAfter, LeaseGate, TaskMove};
use domain::time::Millis;
use domain::window::Release;
use domain::{Error, JobId, JobStatus, UrlStatus};

pub(crate) use super::expression::Expression;
use super::items::frontier_attribute;
use super::{DynamoStore, av_n, av_s};

/// The update of a task that makes move `m` at `now` (a `Hold` takes the lease until
/// `until`): its condition is where the move starts, its clauses what the move does.
pub(super) fn task_move(m: &TaskMove, now: Millis, until: Millis) -> Expression {
    let from: Vec<&str> = m.from.iter().map(|s| s.as_str()).collect();
    let mut e =
        Expression::default().name("#status", "status").value(":now", av_n(now)).status_in("#status", "from", &from);
    if m.lease == LeaseGate::Ended {
        e = e.condition("(attribute_not_exists(lease_until) OR lease_until <= :now)");
    }
    if let Some(to) = m.to {
        e = e.set("#status = :to").value(":to", av_s(to.as_str()));
        if to.is_terminal() {
            // Finished: nothing of its claim or of the reconciler's resending kept (the result
            // item stays under one write unit's KB).
            e = e.set("analyzed_at = :now");
            for mark in ["claimed_at", "lease_until", "resent_at"] {
                e = e.remove(mark);
            }
            return attempts(e, m.attempts);
        }
    }
    let e = attempts(e, m.attempts);
    match m.lease_after {
        LeaseAfter::Keep => e,
        LeaseAfter::Hold => e.set("claimed_at = :now, lease_until = :until").value(":until", av_n(until)),
        LeaseAfter::End => e.set("lease_until = :now"),
    }
}

/// The clauses of a move's attempt count.
fn attempts(e: Expression, attempts: Attempts) -> Expression {
    match attempts {
        Attempts::Keep => e,
        Attempts::Count => e.add("attempts :one").value(":one", av_n(1)),
        Attempts::GiveBack => e
            .condition("attempts > :zero")
            .value(":zero", av_n(0))
            .add("attempts :minus_one")
            .value(":minus_one", av_n(-1)),
    }
}

/// What a job must be for a move: the gate, as a condition on the job item.
fn job_gate(gate: JobGate) -> Expression {
    match gate {
        JobGate::None | JobGate::Exists => Expression::default().condition("attribute_exists(pk)"),
        JobGate::TakesWork => {
            let taking: Vec<&str> = JobStatus::TAKING_WORK.iter().map(|s| s.as_str()).collect();
            Expression::default().name("#job_status", "status").status_in("#job_status", "job", &taking)
        }
    }
}

/// The counter changes of several moves on one job, summed, so each counter appears once,
/// and the window's frontiers their results move.
#[derive(Default)]
pub(super) struct Shifts {
    gate: Option<JobGate>,
    deltas: BTreeMap<&'static str, i64>,
    starts: bool,
    releases: Vec<Release>,
}

impl Shifts {
    /// Adds `count` URLs making move `m` from `from`.
    pub(super) fn add(&mut self, m: &TaskMove, from: UrlStatus, count: u64) {
        // Moves of one batch share a gate; the strictest one applies.
        self.gate = Some(match (self.gate, m.job) {
            (Some(JobGate::TakesWork), _) | (_, JobGate::TakesWork) => JobGate::TakesWork,
            _ => JobGate::Exists,
        });
        if let Some((out, into)) = m.counters(from) {
            let count = i64::try_from(count).unwrap_or(i64::MAX);
            *self.deltas.entry(out.name()).or_default() -= count;
            *self.deltas.entry(into.name()).or_default() += count;
        }
        self.starts |= m.starts_job();
    }

    /// Moves a window chain's frontier to the URL a result releases (a chain has one open URL
    /// at a time, so a batch moves each chain once at most).
    pub(super) fn release(&mut self, release: Release) {
        self.releases.push(release);
    }

    /// The job update: its gate, the counters moved by their sums, when it last changed, when
    /// it started, and the window's frontiers (each released URL one of the job's).
    pub(super) fn update(self, now: Millis) -> Expression {
        let mut e = job_gate(self.gate.unwrap_or(JobGate::Exists)).set("updated_at = :now").value(":now", av_n(now));
        for (i, (counter, delta)) in self.deltas.into_iter().filter(|(_, delta)| *delta != 0).enumerate() {
            let placeholder = format!(":d{i}");
            e = e.add(format!("{counter} {placeholder}")).value(&placeholder, av_n(delta));
        }
        if self.starts {
            e = e.set("started_at = if_not_exists(started_at, :now)");
        }
        // Each release is one of the job's URLs: `Window::release_after` never names one past it.
        for release in self.releases {
            let placeholder = format!(":w{}", release.chain);
            e = e
                .set(format!("{} = {placeholder}", frontier_attribute(release.chain)))
                .value(&placeholder, av_n(release.next));
        }
        e
    }
}

/// The job update of one move of one URL.
pub(super) fn job_shift(m: &TaskMove, from: UrlStatus, now: Millis) -> Expression {
    let mut shifts = Shifts::default();
    shifts.add(m, from, 1);
    shifts.update(now)
}

/// The condition a move asks of the job, alone (a take-over moves no counter).
pub(super) fn job_condition(m: &TaskMove) -> Expression {
    job_gate(m.job)
}

impl DynamoStore {
    /// The transaction members that make move `m` on URL `seq` and shift the job's counters.
    pub(super) fn move_with_job(
        &self,
        id: &JobId,
        seq: u32,
        m: &TaskMove,
        from: UrlStatus,
        task: Expression,
        now: Millis,
    ) -> Result<Vec<TransactWriteItem>, Error> {
        let job = job_shift(m, from, now);
        Ok(vec![task.update(&self.table, Self::task_key(id, seq))?, job.update(&self.table, Self::job_key(id))?])
    }
}

#[cfg(test)]
mod tests {
    use domain::lifecycle::{CANCEL_QUEUED, CLAIM, Counter, FAIL, GIVE_BACK, SUCCEED, TAKE_OVER};

    use super::*;

    #[test]
    fn a_claim_is_conditional_on_a_queued_url_and_a_job_that_takes_work() {
        let task = task_move(&CLAIM, 10, 70);
        assert_eq!(task.condition_expression().as_deref(), Some("#status IN (:from0)"));
        assert_eq!(task.values[":from0"], av_s("queued"));
        assert_eq!(
            task.update_expression(),
            "SET #status = :to, claimed_at = :now, lease_until = :until ADD attempts :one"
        );
        let job = job_shift(&CLAIM, UrlStatus::Queued, 10);
        assert_eq!(job.condition_expression().as_deref(), Some("#job_status IN (:job0, :job1)"));
        assert_eq!(
            job.update_expression(),
            "SET updated_at = :now, started_at = if_not_exists(started_at, :now) ADD in_progress :d0, queued :d1"
        );
        assert_eq!((job.values[":d0"].clone(), job.values[":d1"].clone()), (av_n(1), av_n(-1)));
    }

    #[test]
    fn a_take_over_waits_for_the_lease_and_a_give_back_needs_an_attempt() {
        let task = task_move(&TAKE_OVER, 10, 70);
        assert_eq!(
            task.condition_expression().as_deref(),
            Some("#status IN (:from0) AND (attribute_not_exists(lease_until) OR lease_until <= :now)")
        );
        assert_eq!(task.values[":from0"], av_s("processing"));
        let give_back = task_move(&GIVE_BACK, 10, 0);
        assert_eq!(give_back.condition_expression().as_deref(), Some("#status IN (:from0) AND attempts > :zero"));
        assert_eq!(give_back.update_expression(), "SET lease_until = :now ADD attempts :minus_one");
    }

    #[test]
    fn a_batch_of_results_moves_each_counter_once_by_the_sum() {
        let mut shifts = Shifts::default();
        shifts.add(&SUCCEED, UrlStatus::Processing, 3);
        shifts.add(&FAIL, UrlStatus::Processing, 2);
        let job = shifts.update(5);
        assert_eq!(job.condition_expression().as_deref(), Some("attribute_exists(pk)"));
        assert_eq!(job.update_expression(), "SET updated_at = :now ADD failed :d0, in_progress :d1, succeeded :d2");
        assert_eq!([&job.values[":d0"], &job.values[":d1"], &job.values[":d2"]], [&av_n(2), &av_n(-5), &av_n(3)]);
        let mut released = Shifts::default();
        released.add(&SUCCEED, UrlStatus::Processing, 2);
        released.release(Release { next: 21, chain: 1 });
        released.release(Release { next: 40, chain: 0 });
        let job = released.update(5);
        assert_eq!(job.condition_expression().as_deref(), Some("attribute_exists(pk)"));
        assert!(
            job.update_expression().starts_with("SET updated_at = :now, w1 = :w1, w0 = :w0 ADD"),
            "{}",
            job.update_expression()
        );
        assert_eq!((&job.values[":w0"], &job.values[":w1"]), (&av_n(40), &av_n(21)));
        let cancel = task_move(&CANCEL_QUEUED, 5, 0);
        assert_eq!(
            cancel.update_expression(),
            "SET #status = :to, analyzed_at = :now REMOVE claimed_at, lease_until, resent_at",
            "a finished URL keeps nothing of its window or its claim"
        );
    }

    #[test]
    fn every_counter_name_is_a_job_attribute() {
        let names: Vec<&str> =
            [Counter::Queued, Counter::InProgress, Counter::Succeeded, Counter::Failed, Counter::Cancelled]
                .iter()
                .map(|c| c.name())
                .collect();
        let item = serde_json::to_value(domain::Counters::default()).unwrap();
        for name in names {
            assert!(item.get(name).is_some(), "{name} is not a counter of the job");
        }
    }
}

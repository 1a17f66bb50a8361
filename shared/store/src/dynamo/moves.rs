//! DynamoDB expressions derived from `domain::lifecycle`: a move's statuses, gates and effects
//! become an update's condition and its `SET`/`ADD` clauses, and the counters it shifts become
//! the job's `ADD`. Nothing here restates a rule; a move's payload (an error, an analysis) is
//! added by the caller.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::TransactWriteItem;
use domain::lifecycle::{Attempts, Counter, TaskMove};
use domain::time::Millis;
use domain::window::Release;
use domain::{Error, JobId, UrlStatus};

pub(crate) use super::expression::Expression;
use super::items::frontier_attribute;
use super::{DynamoStore, av_n, av_s};

/// The update of a task that makes move `m` at `now` for a delivery's `attempt`: its
/// condition is where the move starts, its clauses what the move does.
pub(super) fn task_move(m: &TaskMove, now: Millis, attempt: u32) -> Expression {
    let from: Vec<&str> = m.from.iter().map(|s| s.as_str()).collect();
    let mut e =
        Expression::default().name("#status", "status").value(":now", av_n(now)).status_in("#status", "from", &from);
    if let Some(to) = m.to {
        e = e.set("#status = :to").value(":to", av_s(to.as_str()));
        if to.is_terminal() {
            // Finished: nothing of a claim (items a release before this one claimed) or of the
            // reconciler's resending kept (the result item stays under one write unit's KB).
            e = e.set("analyzed_at = :now");
            for mark in ["claimed_at", "lease_until", "resent_at"] {
                e = e.remove(mark);
            }
        }
    }
    match m.attempts {
        Attempts::Keep => e,
        Attempts::Record => e.set("attempts = :attempt").value(":attempt", av_n(attempt)),
    }
}

/// What a job must be for a move that counts on it: there.
fn job_exists() -> Expression {
    Expression::default().condition("attribute_exists(pk)")
}

/// The counter changes of several moves on one job, summed, so each counter appears once,
/// and the window's frontiers their results move.
#[derive(Default)]
pub(super) struct Shifts {
    deltas: BTreeMap<&'static str, i64>,
    releases: Vec<Release>,
}

impl Shifts {
    /// Adds `count` URLs moving from counter `out` to `into`.
    pub(super) fn shift(&mut self, (out, into): (Counter, Counter), count: u64) {
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        *self.deltas.entry(out.name()).or_default() -= count;
        *self.deltas.entry(into.name()).or_default() += count;
    }

    /// Adds `count` URLs making move `m` from `from`.
    pub(super) fn add(&mut self, m: &TaskMove, from: UrlStatus, count: u64) {
        if let Some(shift) = m.counters(from) {
            self.shift(shift, count);
        }
    }

    /// Moves a window chain's frontier to the URL a result releases (a chain has one open URL
    /// at a time, so a batch moves each chain once at most).
    pub(super) fn release(&mut self, release: Release) {
        self.releases.push(release);
    }

    /// The job update: its gate, the counters moved by their sums, when it last changed, when
    /// it started, and the window's frontiers (each released URL one of the job's).
    pub(super) fn update(self, now: Millis) -> Expression {
        let mut e = job_exists().set("updated_at = :now").value(":now", av_n(now));
        for (i, (counter, delta)) in self.deltas.into_iter().filter(|(_, delta)| *delta != 0).enumerate() {
            let placeholder = format!(":d{i}");
            e = e.add(format!("{counter} {placeholder}")).value(&placeholder, av_n(delta));
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
    use domain::lifecycle::{CANCEL, FAIL, RETRY, SUCCEED};

    use super::*;

    #[test]
    fn a_result_is_conditional_on_an_unfinished_url_and_stores_its_attempt() {
        let task = task_move(&SUCCEED, 10, 2);
        assert_eq!(task.condition_expression().as_deref(), Some("#status IN (:from0, :from1)"));
        assert_eq!((&task.values[":from0"], &task.values[":from1"]), (&av_s("queued"), &av_s("processing")));
        assert_eq!(
            task.update_expression(),
            "SET #status = :to, analyzed_at = :now, attempts = :attempt REMOVE claimed_at, lease_until, resent_at"
        );
        assert_eq!(task.values[":attempt"], av_n(2));
        let retry = task_move(&RETRY, 10, 3);
        assert_eq!(retry.update_expression(), "SET attempts = :attempt", "the URL stays unfinished");
        let job = job_shift(&SUCCEED, UrlStatus::Queued, 10);
        assert_eq!(job.condition_expression().as_deref(), Some("attribute_exists(pk)"));
        assert_eq!(job.update_expression(), "SET updated_at = :now ADD queued :d0, succeeded :d1");
        assert_eq!((job.values[":d0"].clone(), job.values[":d1"].clone()), (av_n(-1), av_n(1)));
    }

    #[test]
    fn a_batch_of_results_moves_each_counter_once_by_the_sum() {
        let mut shifts = Shifts::default();
        shifts.add(&SUCCEED, UrlStatus::Queued, 3);
        shifts.add(&FAIL, UrlStatus::Queued, 1);
        shifts.shift((Counter::Queued, Counter::Failed), 1);
        let job = shifts.update(5);
        assert_eq!(job.condition_expression().as_deref(), Some("attribute_exists(pk)"));
        assert_eq!(job.update_expression(), "SET updated_at = :now ADD failed :d0, queued :d1, succeeded :d2");
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
        let cancel = task_move(&CANCEL, 5, 0);
        assert_eq!(
            cancel.update_expression(),
            "SET #status = :to, analyzed_at = :now REMOVE claimed_at, lease_until, resent_at",
            "a finished URL keeps nothing of its window or its claim, nor its attempts changed"
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

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

/// Which URL's item a move writes: its first change creates it (a job's URLs are listed at
/// submission, [`super::url_lists`]), so every move names the URL and, for a new item, when
/// it expires.
pub(super) struct TaskItemId<'a> {
    pub(super) job: &'a JobId,
    pub(super) seq: u32,
    pub(super) expires_at: i64,
}

/// The update of a URL's item that makes move `m` at `now` for a delivery's `attempt`: its
/// condition is where the move starts (no item is a queued URL), its clauses what the move
/// does.
pub(super) fn task_move(m: &TaskMove, now: Millis, attempt: u32, id: &TaskItemId) -> Expression {
    let from: Vec<&str> = m.from.iter().map(|s| s.as_str()).collect();
    let mut e = Expression::default()
        .name("#status", "status")
        .name("#seq", "seq")
        .value(":now", av_n(now))
        .set("job_id = :job, #seq = :seq, expires_at = if_not_exists(expires_at, :expires)")
        .value(":job", av_s(id.job.as_str()))
        .value(":seq", av_n(id.seq))
        .value(":expires", av_n(id.expires_at));
    e = if m.from.contains(&UrlStatus::Queued) {
        e.status_in_or_absent("#status", "from", &from)
    } else {
        e.status_in("#status", "from", &from)
    };
    match m.to {
        Some(to) => {
            e = e.set("#status = :to").value(":to", av_s(to.as_str()));
            if to.is_terminal() {
                // Finished: nothing of a claim (items a release before this one claimed) or of
                // the reconciler's resending kept (the result item stays under one write
                // unit's KB).
                e = e.set("analyzed_at = :now");
                for mark in ["claimed_at", "lease_until", "resent_at"] {
                    e = e.remove(mark);
                }
            }
        }
        // A move that keeps the status keeps a new item's too: queued.
        None => {
            e = e.set("#status = if_not_exists(#status, :queued)").value(":queued", av_s(UrlStatus::Queued.as_str()))
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
    /// URL `seq` of job `job`'s item as a move at `now` writes it: kept, if the move creates
    /// it, as long as its job's URLs are ([`Self::expiry`] from submission).
    pub(super) fn task_item_id<'a>(&self, job: &'a JobId, seq: u32, now: Millis) -> TaskItemId<'a> {
        TaskItemId { job, seq, expires_at: self.expiry(now, 7) }
    }

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

    fn item(job: &JobId) -> TaskItemId<'_> {
        TaskItemId { job, seq: 4, expires_at: 99 }
    }

    #[test]
    fn a_result_is_conditional_on_an_unfinished_url_and_stores_its_attempt() {
        let id = JobId::generate();
        let task = task_move(&SUCCEED, 10, 2, &item(&id));
        assert_eq!(
            task.condition_expression().as_deref(),
            Some("(attribute_not_exists(#status) OR #status IN (:from0, :from1))"),
            "no item is a queued URL"
        );
        assert_eq!((&task.values[":from0"], &task.values[":from1"]), (&av_s("queued"), &av_s("processing")));
        assert_eq!(
            task.update_expression(),
            "SET job_id = :job, #seq = :seq, expires_at = if_not_exists(expires_at, :expires), #status = :to, \
             analyzed_at = :now, attempts = :attempt REMOVE claimed_at, lease_until, resent_at"
        );
        assert_eq!(
            (&task.values[":attempt"], &task.values[":seq"], &task.values[":expires"]),
            (&av_n(2), &av_n(4), &av_n(99))
        );
        assert_eq!(task.values[":job"], av_s(id.as_str()));
        let retry = task_move(&RETRY, 10, 3, &item(&id));
        assert_eq!(
            retry.update_expression(),
            "SET job_id = :job, #seq = :seq, expires_at = if_not_exists(expires_at, :expires), \
             #status = if_not_exists(#status, :queued), attempts = :attempt",
            "the URL stays unfinished, a new item queued"
        );
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
        let id = JobId::generate();
        let cancel = task_move(&CANCEL, 5, 0, &item(&id));
        assert_eq!(
            cancel.update_expression(),
            "SET job_id = :job, #seq = :seq, expires_at = if_not_exists(expires_at, :expires), #status = :to, \
             analyzed_at = :now REMOVE claimed_at, lease_until, resent_at",
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

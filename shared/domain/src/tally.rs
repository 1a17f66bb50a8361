//! Results counted from the table's stream. The analyzer writes a URL's result to its own
//! item only; the tracker reads the change from the stream and adds the results of each
//! stream batch to their job in one update, with the URLs they release into the window. So a
//! job's counters item has one writer, at the stream's pace, however fast its URLs finish.
//!
//! The stream delivers each change at least once (a failed batch is read again from the
//! failed record on, with whatever arrived since), so a job keeps `counted_to`, the last
//! stream position it has counted, and a tally takes only the changes after it. A job's items
//! share its partition key, so its changes come from one shard, in order.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::job::{Job, JobId};
use crate::lifecycle::{Counter, FAIL, SUCCEED, TaskMove, UNFINISHED};
use crate::task::UrlStatus;
use crate::window::Release;

/// A place in the table's stream: DynamoDB's sequence number, a string of decimal digits
/// (21 to 40 of them on AWS), ordered as the number it is.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StreamPosition(String);

impl StreamPosition {
    /// A sequence number as the stream gives it; `None` unless it is all decimal digits.
    pub fn parse(sequence_number: &str) -> Option<StreamPosition> {
        let digits = sequence_number.trim_start_matches('0');
        let valid = !sequence_number.is_empty() && sequence_number.bytes().all(|b| b.is_ascii_digit());
        valid.then(|| StreamPosition(if digits.is_empty() { "0".to_owned() } else { digits.to_owned() }))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Ord for StreamPosition {
    fn cmp(&self, other: &Self) -> Ordering {
        // Without leading zeros, a longer number is a larger one.
        self.0.len().cmp(&other.0.len()).then_with(|| self.0.cmp(&other.0))
    }
}

impl PartialOrd for StreamPosition {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl TryFrom<String> for StreamPosition {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        StreamPosition::parse(&value).ok_or_else(|| format!("stream position {value:?} is not a sequence number"))
    }
}

impl From<StreamPosition> for String {
    fn from(position: StreamPosition) -> String {
        position.0
    }
}

/// A URL's result as the stream reported it: URL `seq` went from `from` to `to`, at `at`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResultChange {
    pub seq: u32,
    pub from: UrlStatus,
    pub to: UrlStatus,
    pub at: StreamPosition,
}

impl ResultChange {
    /// The change of URL `seq` from `from` to `to`, if it is a result the tracker counts: an
    /// unfinished URL succeeding or failing. Every other change is either counted by the write
    /// that made it (cancellations) or moves no counter.
    pub fn of(seq: u32, from: UrlStatus, to: UrlStatus, at: StreamPosition) -> Option<ResultChange> {
        let counted = UNFINISHED.contains(&from) && matches!(to, UrlStatus::Succeeded | UrlStatus::Failed);
        counted.then_some(ResultChange { seq, from, to, at })
    }

    /// The move the result made.
    pub fn result_move(&self) -> &'static TaskMove {
        if self.to == UrlStatus::Succeeded { &SUCCEED } else { &FAIL }
    }
}

/// The results of one job among a batch's, in the order they came, and where in the batch
/// its first one was (a failed count is retried from there).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobResults {
    pub job_id: JobId,
    pub first: usize,
    pub changes: Vec<ResultChange>,
}

/// Groups results, each at its position in a batch, by job, the jobs in the order of their
/// first result.
pub fn by_job(results: impl IntoIterator<Item = (usize, JobId, ResultChange)>) -> Vec<JobResults> {
    let mut jobs: Vec<JobResults> = Vec::new();
    for (position, job_id, change) in results {
        match jobs.iter_mut().find(|job| job.job_id == job_id) {
            Some(job) => job.changes.push(change),
            None => jobs.push(JobResults { job_id, first: position, changes: vec![change] }),
        }
    }
    jobs
}

/// What a job's reported results add to it: those after its `counted_to`, the counters each
/// moves between, the furthest URL each window chain has released, and the position counted
/// to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tally {
    pub shifts: Vec<(Counter, Counter)>,
    pub releases: Vec<Release>,
    pub counted_to: StreamPosition,
    /// The job's `counted_to` when read: the update applies only while it still is.
    pub seen: Option<StreamPosition>,
}

impl Tally {
    /// The results among `changes` that `job` has not counted; `None` when there are none.
    pub fn new(job: &Job, changes: &[ResultChange]) -> Option<Tally> {
        let fresh: Vec<&ResultChange> =
            changes.iter().filter(|change| job.counted_to.as_ref().is_none_or(|to| change.at > *to)).collect();
        let counted_to = fresh.iter().map(|change| &change.at).max()?.clone();
        let window = job.window();
        // A chain's URLs finish one after the other, so a batch may release several of one
        // chain: its frontier is the furthest.
        let mut furthest: BTreeMap<u32, u32> = BTreeMap::new();
        for release in fresh.iter().filter_map(|change| window.release_after(change.seq)) {
            let next = furthest.entry(release.chain).or_insert(release.next);
            *next = (*next).max(release.next);
        }
        Some(Tally {
            shifts: fresh.iter().filter_map(|change| change.result_move().counters(change.from)).collect(),
            releases: furthest.into_iter().map(|(chain, next)| Release { next, chain }).collect(),
            counted_to,
            seen: job.counted_to.clone(),
        })
    }

    /// Adds the tally to `job` as the store keeps it, at `now` (the memory store; the DynamoDB
    /// store writes the same as one update).
    pub fn apply(&self, job: &mut Job, now: crate::time::Millis) {
        for shift in &self.shifts {
            job.counters.shift(*shift, 1);
        }
        for release in &self.releases {
            job.frontiers.advance(*release);
        }
        job.counted_to = Some(self.counted_to.clone());
        job.updated_at = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::Tenant;
    use crate::settings::JobSettings;

    fn at(n: u64) -> StreamPosition {
        StreamPosition::parse(&format!("{n:030}")).unwrap()
    }

    fn job(total: u64, batch_size: u32) -> Job {
        let settings = JobSettings { batch_size, ..JobSettings::default() };
        let mut job = Job::new(Tenant("t".into()), "tally".into(), settings, total, 0);
        // One URL (9) claimed by a release before this one.
        job.counters.queued = total - 1;
        job.counters.in_progress = 1;
        job
    }

    #[test]
    fn positions_order_as_numbers_whatever_their_length_or_leading_zeros() {
        let p = |s: &str| StreamPosition::parse(s).unwrap();
        assert!(p("000000017965021247380000000012") > p("17965021247080000000011"));
        assert!(p("100000000000000000000") > p("99999999999999999999"));
        assert_eq!(p("0042"), p("42"));
        assert_eq!(p("000").as_str(), "0");
        for bad in ["", "12a", "-1", " 1"] {
            assert_eq!(StreamPosition::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn only_an_analysis_ending_is_a_counted_result() {
        use UrlStatus::*;
        assert!(ResultChange::of(1, Queued, Succeeded, at(1)).is_some());
        assert!(ResultChange::of(1, Processing, Succeeded, at(1)).is_some(), "an item a claim wrote");
        assert_eq!(ResultChange::of(1, Queued, Failed, at(1)).unwrap().result_move(), &FAIL);
        for (from, to) in [(Queued, Queued), (Processing, Cancelled), (Queued, Cancelled), (Succeeded, Succeeded)] {
            assert_eq!(ResultChange::of(1, from, to, at(1)), None, "{from:?} → {to:?}");
        }
    }

    #[test]
    fn results_are_grouped_by_job_in_order_with_each_jobs_first_position() {
        let (a, b) = (JobId::generate(), JobId::generate());
        let change =
            |seq| ResultChange { seq, from: UrlStatus::Queued, to: UrlStatus::Succeeded, at: at(u64::from(seq)) };
        let grouped = by_job([(1, a.clone(), change(0)), (3, b.clone(), change(5)), (4, a.clone(), change(2))]);
        let seen: Vec<(&JobId, usize, Vec<u32>)> =
            grouped.iter().map(|j| (&j.job_id, j.first, j.changes.iter().map(|c| c.seq).collect())).collect();
        assert_eq!(seen, [(&a, 1, vec![0, 2]), (&b, 3, vec![5])]);
    }

    #[test]
    fn a_tally_takes_what_the_job_has_not_counted_and_each_chains_furthest_release() {
        let mut job = job(10, 3);
        let changes: Vec<ResultChange> = [(0, 5), (3, 6), (1, 7), (9, 8)]
            .into_iter()
            .map(|(seq, n)| {
                let from = if seq == 9 { UrlStatus::Processing } else { UrlStatus::Queued };
                ResultChange::of(seq, from, UrlStatus::Succeeded, at(n)).unwrap()
            })
            .collect();
        job.counted_to = Some(at(5));
        let tally = Tally::new(&job, &changes).unwrap();
        assert_eq!(
            tally.shifts,
            [
                (Counter::Queued, Counter::Succeeded),
                (Counter::Queued, Counter::Succeeded),
                (Counter::InProgress, Counter::Succeeded)
            ],
            "URL 0's result (at 5) was counted already; 9 was claimed by a release before this"
        );
        assert_eq!(
            tally.releases,
            [Release { next: 6, chain: 0 }, Release { next: 4, chain: 1 }],
            "URL 3 releases 6 (0 released 3 before); 9 is the last URL and releases nothing"
        );
        assert_eq!((tally.counted_to.clone(), tally.seen.clone()), (at(8), Some(at(5))));

        tally.apply(&mut job, 77);
        let c = job.counters;
        assert_eq!((c.succeeded, c.queued, c.in_progress, job.updated_at), (3, 7, 0, 77));
        assert_eq!(job.window().open(&job.frontiers), [6, 4, 2]);
        assert_eq!(Tally::new(&job, &changes), None, "read again, nothing is new");
    }
}

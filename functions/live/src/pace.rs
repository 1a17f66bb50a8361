//! A job's pace: at most one push every half second, never an image behind the last push
//! (a job read again after its wait may be further on than the next batch's images), and a
//! new subscriber always sent the state it has not seen.

use std::time::Duration;

use aws::connections::Connections;
use domain::live::wait_before_push;
use domain::time::{Millis, now_millis};
use domain::{Job, JobId};
use store::{KeyStore, Lookup, Subscriptions};

use crate::Live;
use crate::push::Change;

/// What was last pushed of a job, from this container: when, and how far the job had got.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pushed {
    at: Millis,
    progress: Progress,
    generation: u64,
}

/// How far a job has got, in the order its changes happen: URLs only ever finish, and a
/// change stamps `updated_at`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Progress {
    finished: bool,
    done: u64,
    updated_at: Millis,
}

impl Progress {
    fn of(job: &Job) -> Self {
        Progress { finished: job.status.is_finished(), done: job.counters.done(), updated_at: job.updated_at }
    }
}

/// Jobs whose pace is remembered; past this, those not pushed for a while are forgotten.
const PACE_MEMORY: usize = 10_000;

impl<S, C> Live<S, C>
where
    S: KeyStore + Subscriptions + Lookup,
    C: Connections,
{
    /// Whether the change shows watchers something they have not been sent: a job further on
    /// than its last push, or a new subscriber's.
    pub(crate) fn news(&self, change: &Change) -> bool {
        let last = self.last_push.lock().unwrap_or_else(|p| p.into_inner());
        match last.get(&change.job.id) {
            None => true,
            Some(pushed) => {
                let progress = Progress::of(&change.job);
                progress > pushed.progress || (progress == pushed.progress && change.generation != pushed.generation)
            }
        }
    }

    /// Sleeps until every job about to be pushed was last pushed at least half a second ago;
    /// whether it slept.
    pub(crate) async fn wait_for_pace<'a>(&self, jobs: impl Iterator<Item = &'a JobId>) -> bool {
        let now = now_millis();
        let wait = {
            let last = self.last_push.lock().unwrap_or_else(|p| p.into_inner());
            jobs.map(|id| wait_before_push(last.get(id).map(|pushed| pushed.at), now)).max().unwrap_or(0)
        };
        if wait > 0 {
            tokio::time::sleep(Duration::from_millis(u64::try_from(wait).unwrap_or(0))).await;
        }
        wait > 0
    }

    /// The job as it is now, after a wait, where that is further on than its image; the image
    /// when the read fails (it is still the newest the stream gave).
    pub(crate) async fn refresh(&self, change: &mut Change) {
        match self.store.get_job(&change.job.id).await {
            Ok(Some(now)) if Progress::of(&now) >= Progress::of(&change.job) => change.job = now,
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "a job was not read again after its wait; pushing its image"),
        }
    }

    pub(crate) fn note_push(&self, change: &Change, finished: bool) {
        let now = now_millis();
        let mut last = self.last_push.lock().unwrap_or_else(|p| p.into_inner());
        if finished {
            last.remove(&change.job.id);
            return;
        }
        if last.len() >= PACE_MEMORY {
            last.retain(|_, pushed| wait_before_push(Some(pushed.at), now) > 0);
        }
        let pushed = Pushed { at: now, progress: Progress::of(&change.job), generation: change.generation };
        last.insert(change.job.id.clone(), pushed);
    }
}

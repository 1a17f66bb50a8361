//! Group commit: the writes that an invocation's messages are ready to make at about the same
//! time go to the store together. DynamoDB bills per request and per item written, and the
//! items URLs share (a host's and a tenant's places) are then written once for all of them.

use std::future::Future;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, oneshot};

/// Gathers items from concurrent callers and writes them in batches: whoever arrives while no
/// write is under way writes for everyone who joins before the store answers, and then for
/// whoever joined meanwhile, until nobody is waiting.
///
/// With participants announced ([`GroupCommit::expecting`]), the first to arrive also waits,
/// at most `linger`, for the others still at work to arrive or [`leave`](Self::leave): pages
/// finish a few hundred milliseconds apart, and one write for all of them costs a fraction of
/// one each.
pub struct GroupCommit<T, R> {
    state: Mutex<State<T, R>>,
    arrived: Notify,
    linger: Duration,
}

struct State<T, R> {
    pending: Vec<(T, oneshot::Sender<R>)>,
    writing: bool,
    /// Participants that have neither submitted nor left.
    expected: usize,
}

impl<T, R> Default for GroupCommit<T, R> {
    fn default() -> Self {
        GroupCommit::expecting(0, Duration::ZERO)
    }
}

impl<T, R> GroupCommit<T, R> {
    /// A group commit for `participants` callers, each of which submits once or leaves; a
    /// write waits at most `linger` for those not yet arrived.
    pub fn expecting(participants: usize, linger: Duration) -> Self {
        GroupCommit {
            state: Mutex::new(State { pending: Vec::new(), writing: false, expected: participants }),
            arrived: Notify::new(),
            linger,
        }
    }

    /// A participant that will not submit: a write no longer waits for it.
    pub fn leave(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.expected = state.expected.saturating_sub(1);
        drop(state);
        self.arrived.notify_waiters();
    }

    /// Adds `item` to the next write and waits for its result; `write` takes a batch and
    /// returns one result per item, in order. `None` only if the writer stopped before
    /// answering (its future was dropped).
    pub async fn submit<F, Fut>(&self, item: T, write: F) -> Option<R>
    where
        F: Fn(Vec<T>) -> Fut,
        Fut: Future<Output = Vec<R>>,
    {
        let (sender, receiver) = oneshot::channel();
        let leads = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            state.pending.push((item, sender));
            state.expected = state.expected.saturating_sub(1);
            !std::mem::replace(&mut state.writing, true)
        };
        self.arrived.notify_waiters();
        if leads {
            // The invocation's other messages are polled in the same task: one yield lets
            // every one of them that is ready join this write instead of starting its own.
            tokio::task::yield_now().await;
            self.wait_for_the_others().await;
            self.write_until_drained(&write).await;
        }
        receiver.await.ok()
    }

    /// Until every participant has arrived or left, or `linger` has passed.
    async fn wait_for_the_others(&self) {
        let until = tokio::time::Instant::now() + self.linger;
        loop {
            let arrived = self.arrived.notified();
            tokio::pin!(arrived);
            // Registered before looking, so an arrival between the look and the wait wakes it.
            arrived.as_mut().enable();
            if self.state.lock().unwrap_or_else(PoisonError::into_inner).expected == 0 {
                return;
            }
            if tokio::time::timeout_at(until, arrived).await.is_err() {
                return;
            }
        }
    }

    async fn write_until_drained<F, Fut>(&self, write: &F)
    where
        F: Fn(Vec<T>) -> Fut,
        Fut: Future<Output = Vec<R>>,
    {
        loop {
            let batch = {
                let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                if state.pending.is_empty() {
                    state.writing = false;
                    return;
                }
                std::mem::take(&mut state.pending)
            };
            let (items, senders): (Vec<T>, Vec<oneshot::Sender<R>>) = batch.into_iter().unzip();
            let expected = items.len();
            let results = write(items).await;
            debug_assert_eq!(results.len(), expected, "one result per item");
            for (sender, result) in senders.into_iter().zip(results) {
                // A caller that stopped waiting needs no answer.
                let _ = sender.send(result);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures::future::join_all;

    use super::*;

    #[tokio::test]
    async fn callers_that_arrive_together_share_one_write() {
        let commit = GroupCommit::default();
        let writes = AtomicUsize::new(0);
        let write = |batch: Vec<u32>| {
            writes.fetch_add(1, Ordering::SeqCst);
            async move { batch.into_iter().map(|n| n * 10).collect::<Vec<_>>() }
        };
        let results = join_all((0..10).map(|n| commit.submit(n, write))).await;
        assert_eq!(results, (0..10).map(|n| Some(n * 10)).collect::<Vec<_>>(), "each caller gets its own result");
        assert_eq!(writes.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn callers_arriving_during_a_write_go_in_the_next_one() {
        let commit = GroupCommit::default();
        let batches = Mutex::new(Vec::new());
        let write = |batch: Vec<u32>| {
            batches.lock().unwrap().push(batch.clone());
            async move {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                batch
            }
        };
        let late = |n: u32, after_ms: u64| {
            let commit = &commit;
            async move {
                tokio::time::sleep(std::time::Duration::from_millis(after_ms)).await;
                commit.submit(n, write).await
            }
        };
        let results = join_all([late(0, 0), late(1, 5), late(2, 5), late(3, 100)]).await;
        assert_eq!(results, [Some(0), Some(1), Some(2), Some(3)]);
        // 1 and 2 arrive while 0 is being written; 3 arrives when nobody is writing.
        assert_eq!(*batches.lock().unwrap(), [vec![0], vec![1, 2], vec![3]]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_waits_for_the_participants_still_at_work() {
        let commit = GroupCommit::expecting(3, Duration::from_secs(1));
        let batches = Mutex::new(Vec::new());
        let write = |batch: Vec<u32>| {
            batches.lock().unwrap().push(batch.clone());
            async move { batch }
        };
        let at = |n: u32, after_ms: u64| {
            let commit = &commit;
            async move {
                tokio::time::sleep(Duration::from_millis(after_ms)).await;
                commit.submit(n, write).await
            }
        };
        let started = tokio::time::Instant::now();
        let results = join_all([at(0, 0), at(1, 300), at(2, 600)]).await;
        assert_eq!(results, [Some(0), Some(1), Some(2)]);
        assert_eq!(*batches.lock().unwrap(), [vec![0, 1, 2]], "one write for the three");
        assert_eq!(started.elapsed(), Duration::from_millis(600), "written when the last arrived, not later");
    }

    #[tokio::test(start_paused = true)]
    async fn a_participant_that_leaves_is_not_waited_for_and_a_late_one_only_as_long_as_the_linger() {
        let commit = GroupCommit::expecting(3, Duration::from_secs(1));
        let batches = Mutex::new(Vec::new());
        let write = |batch: Vec<u32>| {
            batches.lock().unwrap().push(batch.clone());
            async move { batch }
        };
        let started = tokio::time::Instant::now();
        let leaves = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            commit.leave();
        };
        let late = async {
            tokio::time::sleep(Duration::from_millis(5_000)).await;
            commit.submit(9, write).await
        };
        let first = async {
            let result = commit.submit(0, write).await;
            (result, started.elapsed())
        };
        let ((first, waited), (), late) = tokio::join!(first, leaves, late);
        assert_eq!((first, late), (Some(0), Some(9)));
        assert_eq!(waited, Duration::from_secs(1), "the linger, for the one still at work");
        assert_eq!(*batches.lock().unwrap(), [vec![0], vec![9]]);
    }
}

//! Group commit: the writes that an invocation's messages are ready to make at about the same
//! time go to the store as one request. DynamoDB bills per request (a transaction of ten URLs
//! costs one request where ten transactions cost ten), so this is most of what a URL costs.

use std::future::Future;
use std::sync::{Mutex, PoisonError};

use tokio::sync::oneshot;

/// Gathers items from concurrent callers and writes them in batches: whoever arrives while no
/// write is under way writes for everyone who joins before the store answers, and then for
/// whoever joined meanwhile, until nobody is waiting.
pub struct GroupCommit<T, R> {
    state: Mutex<State<T, R>>,
}

struct State<T, R> {
    pending: Vec<(T, oneshot::Sender<R>)>,
    writing: bool,
}

impl<T, R> Default for GroupCommit<T, R> {
    fn default() -> Self {
        GroupCommit { state: Mutex::new(State { pending: Vec::new(), writing: false }) }
    }
}

impl<T, R> GroupCommit<T, R> {
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
            !std::mem::replace(&mut state.writing, true)
        };
        if leads {
            // The invocation's other messages are polled in the same task: one yield lets
            // every one of them that is ready join this write instead of starting its own.
            tokio::task::yield_now().await;
            self.write_until_drained(&write).await;
        }
        receiver.await.ok()
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
}

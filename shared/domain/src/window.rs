//! A job's window: its first `size` URLs (`batch_size`) start at submission and each URL,
//! once finished, releases the one `size` places after it. So a job's URLs fall into `size`
//! chains (`seq mod size`), each with at most one URL open — released and not finished — at a
//! time: the chain's frontier. The store keeps each chain's frontier on the job, so a job's
//! open URLs are `size` known keys, and a release writes nothing of its own.

use std::collections::BTreeMap;

use crate::time::Millis;

/// The URL a finished one releases, and the chain both belong to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Release {
    pub next: u32,
    pub chain: u32,
}

/// Each window chain's open URL, once a URL of the chain has finished (absent: the chain's
/// first URL is open). Part of the job: the result that releases a URL moves it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontiers(BTreeMap<u32, u32>);

impl Frontiers {
    pub fn get(&self, chain: u32) -> Option<u32> {
        self.0.get(&chain).copied()
    }

    /// The chain's frontier moves to the URL released.
    pub fn advance(&mut self, release: Release) {
        self.0.insert(release.chain, release.next);
    }

    /// (chain, open URL) of each chain that has moved.
    pub fn iter(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.0.iter().map(|(chain, seq)| (*chain, *seq))
    }
}

impl FromIterator<(u32, u32)> for Frontiers {
    fn from_iter<I: IntoIterator<Item = (u32, u32)>>(chains: I) -> Self {
        Frontiers(chains.into_iter().collect())
    }
}

/// The window of a job of `total` URLs with a `batch_size`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    size: u32,
    total: u32,
}

impl Window {
    pub fn new(batch_size: u32, total: u32) -> Window {
        Window { size: batch_size.max(1), total }
    }

    /// How many URLs start at submission, one per chain.
    pub fn chains(&self) -> u32 {
        self.size.min(self.total)
    }

    /// The URL that may start once `seq` has finished: the window moves one place. No more
    /// than `batch_size` URLs of a job are ever in flight.
    pub fn release_after(&self, seq: u32) -> Option<Release> {
        let next = seq.checked_add(self.size)?;
        (next < self.total).then_some(Release { next, chain: seq % self.size })
    }

    /// The URL whose finishing released `seq`: none for the first window, which starts at
    /// submission.
    pub fn released_by(&self, seq: u32) -> Option<u32> {
        seq.checked_sub(self.size)
    }

    /// When URL `seq` entered the window: at submission (`created_at`) for the first window,
    /// else when the URL before it in its chain finished (`finished_at` of it); `None` while
    /// that one has not.
    pub fn released_at(
        &self,
        seq: u32,
        created_at: Millis,
        finished_at: impl FnOnce(u32) -> Option<Millis>,
    ) -> Option<Millis> {
        match self.released_by(seq) {
            None => Some(created_at),
            Some(predecessor) => finished_at(predecessor),
        }
    }

    /// Each chain's open URL as `finished` says which URLs have finished: the first of the
    /// chain's URLs that has not (the job's end for a chain that is done). For a job whose
    /// kept frontiers were lost with the results that moved them.
    pub fn frontiers_of(&self, finished: impl Fn(u32) -> bool) -> Frontiers {
        let frontier = |chain: u32| {
            let mut seq = chain;
            while finished(seq) {
                match self.release_after(seq) {
                    Some(release) => seq = release.next,
                    None => return self.total,
                }
            }
            seq
        };
        (0..self.chains()).map(|chain| (chain, frontier(chain))).filter(|(chain, seq)| seq != chain).collect()
    }

    /// How many URLs are still to be released: each chain's URLs after its open one. A job's
    /// unfinished URLs are these and those in the window, so the rest are being analysed.
    pub fn unreleased(&self, frontiers: &Frontiers) -> u64 {
        let after = |chain: u32| {
            let open = frontiers.get(chain).unwrap_or(chain);
            u64::from(self.total.saturating_sub(open).saturating_sub(1) / self.size)
        };
        (0..self.chains()).map(after).sum()
    }

    /// Whether URL `seq` is its chain's open URL: released, and finished only if it is the
    /// chain's last.
    pub fn is_open(&self, seq: u32, frontiers: &Frontiers) -> bool {
        let chain = seq % self.size;
        seq < self.total && frontiers.get(chain).unwrap_or(chain) == seq
    }

    /// Each chain's open URL; chains whose every URL has finished are left out.
    pub fn open(&self, frontiers: &Frontiers) -> Vec<u32> {
        (0..self.chains()).map(|chain| frontiers.get(chain).unwrap_or(chain)).filter(|seq| *seq < self.total).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_not_released_is_each_chains_urls_after_its_open_one() {
        let window = Window::new(3, 8);
        // Chains: 0 3 6 / 1 4 7 / 2 5.
        assert_eq!(window.unreleased(&Frontiers::default()), 5, "all but the first window");
        let moved: Frontiers = [(0, 6), (1, 4), (2, 5)].into_iter().collect();
        assert_eq!(window.unreleased(&moved), 1, "only 7");
        assert!(window.is_open(6, &moved) && window.is_open(4, &moved) && !window.is_open(3, &moved));
        assert!(!window.is_open(7, &moved), "not released yet");
        assert!(window.is_open(1, &Frontiers::default()) && !window.is_open(8, &Frontiers::default()));
        let tiny = Window::new(20, 5);
        assert_eq!(tiny.unreleased(&Frontiers::default()), 0, "a job smaller than its window");
    }

    #[test]
    fn each_url_releases_the_one_a_window_ahead_in_its_chain_until_the_end() {
        let window = Window::new(3, 8);
        let released: Vec<Option<Release>> = (0..8).map(|seq| window.release_after(seq)).collect();
        let next: Vec<Option<u32>> = released.iter().map(|r| r.map(|r| r.next)).collect();
        assert_eq!(next, [Some(3), Some(4), Some(5), Some(6), Some(7), None, None, None]);
        for release in released.into_iter().flatten() {
            assert_eq!(release.chain, release.next % 3, "{release:?}");
            assert_eq!(window.released_by(release.next), Some(release.next - 3));
        }
        assert_eq!((0..3).map(|seq| window.released_by(seq)).collect::<Vec<_>>(), [None, None, None]);
    }

    #[test]
    fn a_jobs_open_urls_are_its_chains_frontiers() {
        let window = Window::new(3, 8);
        assert_eq!(window.open(&Frontiers::default()), [0, 1, 2], "nothing finished: the first window");
        let mut frontiers: Frontiers = [(0, 3)].into_iter().collect();
        frontiers.advance(Release { next: 6, chain: 0 });
        frontiers.advance(Release { next: 8, chain: 2 });
        assert_eq!(window.open(&frontiers), [6, 1], "chain 2 is done (8 is past the job)");
        assert_eq!(Window::new(20, 2).open(&Frontiers::default()), [0, 1], "a job smaller than its window");
        assert_eq!(Window::new(0, 2).chains(), 1, "a window is at least one URL");
    }

    #[test]
    fn a_chains_frontier_is_its_first_url_not_finished() {
        let window = Window::new(3, 8);
        let finished = |done: &'static [u32]| move |seq: u32| done.contains(&seq);
        assert_eq!(window.frontiers_of(finished(&[])), Frontiers::default(), "nothing finished: the first window");
        let frontiers = window.frontiers_of(finished(&[0, 3, 1, 2, 5]));
        assert_eq!(frontiers, [(0, 6), (1, 4), (2, 8)].into_iter().collect());
        assert_eq!(window.open(&frontiers), [6, 4], "chain 2 is done");
    }

    #[test]
    fn a_url_enters_the_window_at_submission_or_when_its_predecessor_finishes() {
        let window = Window::new(2, 4);
        let finished = |at: Option<Millis>| move |seq: u32| (seq == 1).then_some(at).flatten();
        assert_eq!(window.released_at(1, 100, finished(None)), Some(100), "the first window: at submission");
        assert_eq!(window.released_at(3, 100, finished(None)), None, "URL 1 has not finished");
        assert_eq!(window.released_at(3, 100, finished(Some(250))), Some(250), "when URL 1 finished");
    }
}

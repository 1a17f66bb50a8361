//! `speedbatch-bench scale-model`: how many URLs a second one job can take before its hot
//! items' transactions collide, on real DynamoDB (the emulator does not model conflicts).
//!
//! Every claim and every result is a transaction that touches the job's counters item (and
//! the tenant's shard and the host's item). DynamoDB refuses a transaction whose item another
//! transaction holds (`TransactionConflict`). The model: analyzer invocations of `batch` URLs
//! arrive at random (Poisson) at `rate / batch` a second; each writes its claims in one
//! transaction when it starts and its results in one when its URLs are done; a transaction
//! holds its counters item for `hold`. A group transaction that collides is written again
//! URL by URL at once (as the store does), and those collide among themselves; a URL whose
//! own transaction collides goes back to the queue. Counters split into `shards` items, a
//! transaction touching one, divide the load. No AWS call: a simulation of the arithmetic.

use crate::report::{Figure, Section, Table, num};

/// One configuration of the model.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    /// URLs a second through one job.
    pub rate: f64,
    /// URLs per analyzer invocation (SQS batch).
    pub batch: u32,
    /// How long a transaction holds its items, seconds.
    pub hold: f64,
    /// Items the job's counters are split into.
    pub shards: u32,
    /// An analysis's time, seconds (the result's transaction follows the claim's by this).
    pub analysis: f64,
}

/// What the model found over its simulated time.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Outcome {
    pub transactions: u64,
    pub conflicts: u64,
    /// URLs sent back to the queue because their own transaction collided.
    pub sent_back: u64,
    pub urls: u64,
}

impl Outcome {
    pub fn conflict_rate(&self) -> f64 {
        self.conflicts as f64 / self.transactions.max(1) as f64
    }

    pub fn transactions_per_url(&self) -> f64 {
        self.transactions as f64 / self.urls.max(1) as f64
    }

    pub fn sent_back_per_url(&self) -> f64 {
        self.sent_back as f64 / self.urls.max(1) as f64
    }
}

/// A small deterministic generator (xorshift64*): the same run every time, no dependency.
struct Random(u64);

impl Random {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn exponential(&mut self, rate: f64) -> f64 {
        -(1.0 - self.unit()).ln() / rate
    }
}

/// Conflicted transactions the store writes again before giving up (`CONFLICT_RETRIES`).
const RETRIES: u32 = 4;

/// The store's wait before writing again after `round` conflicts (`domain::retry::backoff`:
/// up to 50 ms × 2^round, at least 10 ms), drawn from `random`.
fn backoff(round: u32, random: &mut Random) -> f64 {
    let cap = (50u64 << round.min(10)).min(2_000) as f64 / 1000.0;
    (random.unit() * cap).max(0.010)
}

/// A transaction to try: when, on which counters item, for how many URLs, after how many
/// conflicts. Ordered by time for the heap (earliest first).
#[derive(Clone, Copy, PartialEq)]
struct Attempt {
    at: f64,
    shard: u32,
    urls: u32,
    round: u32,
}

impl Eq for Attempt {}

impl Ord for Attempt {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.at.total_cmp(&self.at)
    }
}

impl PartialOrd for Attempt {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Simulates `seconds` of `load`: every attempt is counted (DynamoDB bills a cancelled
/// transaction's writes too).
pub fn simulate(load: Load, seconds: f64, seed: u64) -> Outcome {
    let mut random = Random(seed.max(1));
    let mut pending = std::collections::BinaryHeap::new();
    let mut outcome = Outcome::default();
    let mut t = 0.0;
    while t < seconds {
        t += random.exponential(load.rate / f64::from(load.batch));
        // Neighbouring URLs of an invocation share a shard.
        let shard = (random.unit() * f64::from(load.shards)) as u32 % load.shards;
        outcome.urls += u64::from(load.batch);
        pending.push(Attempt { at: t, shard, urls: load.batch, round: 0 });
        pending.push(Attempt { at: t + load.analysis, shard, urls: load.batch, round: 0 });
    }
    let mut busy_until = vec![f64::NEG_INFINITY; load.shards as usize];
    while let Some(attempt) = pending.pop() {
        outcome.transactions += 1;
        let free = &mut busy_until[attempt.shard as usize];
        if attempt.at >= *free {
            *free = attempt.at + load.hold;
            continue;
        }
        outcome.conflicts += 1;
        if attempt.round < RETRIES {
            let at = attempt.at + backoff(attempt.round + 1, &mut random);
            pending.push(Attempt { at, round: attempt.round + 1, ..attempt });
        } else if attempt.urls > 1 {
            // Given up as a group: each URL written alone, all at once.
            for _ in 0..attempt.urls {
                pending.push(Attempt { urls: 1, round: 0, ..attempt });
            }
        } else {
            outcome.sent_back += 1;
        }
    }
    outcome
}

/// The per-job rates the model is run at, URLs a second.
const RATES: [f64; 6] = [10.0, 20.0, 50.0, 100.0, 200.0, 400.0];
/// A transaction's hold on its items: DynamoDB's transactions take two phases; 20 ms is a
/// typical client-observed TransactWriteItems time in one region, 40 ms a slow day.
const HOLDS: [f64; 2] = [0.020, 0.040];

/// The table of the model: per-job rate against conflicts, with the counters in one item and
/// split in 8.
pub fn run() -> Section {
    let mut table = Table::new(&[
        "URLs/s per job",
        "hold",
        "counter items",
        "transactions colliding",
        "transactions per URL",
        "URLs sent back per URL",
    ]);
    let mut limit = [f64::NAN; 2];
    for (i, shards) in [1u32, 8].into_iter().enumerate() {
        for hold in HOLDS {
            for rate in RATES {
                let load = Load { rate, batch: 10, hold, shards, analysis: 1.0 };
                let outcome = simulate(load, 600.0, 7);
                if hold == HOLDS[0] && outcome.sent_back_per_url() <= 0.001 {
                    limit[i] = rate;
                }
                table.row(vec![
                    num(rate, 0),
                    format!("{} ms", num(hold * 1000.0, 0)),
                    shards.to_string(),
                    format!("{} %", num(outcome.conflict_rate() * 100.0, 1)),
                    num(outcome.transactions_per_url(), 3),
                    num(outcome.sent_back_per_url(), 3),
                ]);
            }
        }
    }
    let markdown = format!(
        "## One job's hot items (`speedbatch-bench scale-model`)\n\n\
         A simulation, not a measurement (the emulator has no transaction conflicts): analyzer invocations of \
         10 URLs arrive at random at the job's rate; each writes its claims in one transaction and, 1 s later, \
         its results in another; each transaction holds the job's counters item for the hold time, and one \
         that finds it held collides. As the store does, a collided transaction is written again after a \
         random wait (up to 100, 200, 400, 800 ms), four times; then a group is written URL by URL, and a \
         URL whose own write still collides goes back to the queue. Every attempt counts (DynamoDB bills a \
         cancelled transaction). 600 simulated seconds per row.\n\n\
         {table}\nWith the counters in one item, one job sends fewer than 1 URL in 1 000 back up to {one} URLs/s \
         (20 ms hold); split into 8 items, up to {eight} URLs/s. `docs/scale.md` reads these against the rest \
         of the stack's limits.\n",
        table = table.render(),
        one = num(limit[0], 0),
        eight = num(limit[1], 0),
    );
    Section {
        markdown,
        figures: vec![Figure::new(
            "scale model: URLs/s per job before 1 URL in 1 000 is sent back by collisions (counters in 1 item / 8 items, 20 ms hold)",
            format!("{} / {}", num(limit[0], 0), num(limit[1], 0)),
            "≥ 100 (issue 22)",
            Some(limit[0] >= 100.0),
        )],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(rate: f64, shards: u32) -> Load {
        Load { rate, batch: 10, hold: 0.02, shards, analysis: 1.0 }
    }

    #[test]
    fn a_quiet_job_never_collides() {
        let outcome = simulate(load(0.5, 1), 600.0, 3);
        assert!(outcome.urls > 200, "{outcome:?}");
        assert!(outcome.conflict_rate() < 0.01, "{outcome:?}");
        assert!((outcome.transactions_per_url() - 0.2).abs() < 0.01, "two per invocation of 10: {outcome:?}");
        assert_eq!(outcome.sent_back, 0);
    }

    #[test]
    fn collisions_grow_with_the_rate_and_shrink_with_shards() {
        let slow = simulate(load(20.0, 1), 600.0, 3).conflict_rate();
        let fast = simulate(load(200.0, 1), 600.0, 3).conflict_rate();
        let sharded = simulate(load(200.0, 8), 600.0, 3).conflict_rate();
        assert!(slow < fast, "{slow} < {fast}");
        assert!(sharded < fast / 2.0, "{sharded} against {fast}");
    }
}

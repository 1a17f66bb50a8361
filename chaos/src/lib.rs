//! The reliability suite: what `make chaos` tries against the deployed local stack (the
//! `speedbatch-chaos` stack beside the dev one) and what it found, as RELIABILITY.md.
//!
//! Each scenario returns a [`report::Section`]: what was tried, how often, what happened and
//! whether that is what the product promises. Nothing here asserts a time.

pub mod emulator;
pub mod hostile_site;
pub mod report;
pub mod rig;
pub mod scenarios;

/// How hard each scenario pushes: `FULL` for `make chaos`, `QUICK` for `make test`.
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    pub crash_urls: usize,
    pub crash_kills: usize,
    pub outage_urls: usize,
    pub outage_seconds: u64,
    pub duplicate_urls: usize,
    pub poison_messages: usize,
    pub redrive_urls: usize,
    pub load_clients: usize,
    pub load_urls: usize,
    pub noisy_jobs: usize,
    pub noisy_urls: usize,
    pub fuzz_seconds: u64,
}

impl Scale {
    pub const FULL: Scale = Scale {
        crash_urls: 300,
        crash_kills: 10,
        outage_urls: 300,
        outage_seconds: 10,
        duplicate_urls: 100,
        poison_messages: 12,
        redrive_urls: 20,
        load_clients: 20,
        load_urls: 500,
        noisy_jobs: 10,
        noisy_urls: 300,
        fuzz_seconds: 60,
    };

    pub const QUICK: Scale = Scale {
        crash_urls: 40,
        crash_kills: 2,
        outage_urls: 40,
        outage_seconds: 10,
        duplicate_urls: 30,
        poison_messages: 6,
        redrive_urls: 5,
        load_clients: 4,
        load_urls: 50,
        noisy_jobs: 3,
        noisy_urls: 40,
        fuzz_seconds: 10,
    };
}

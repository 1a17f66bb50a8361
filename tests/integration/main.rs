//! Integration tests: the real handlers (API router, analyzer, tracker) and the stores against
//! ministack, each test with its own table and queues. They need the emulator: `make test`
//! starts it (or `make up`), and `cargo test --features emulator` runs them.

mod api;
mod endpoints;
mod field;
mod google;
mod harness;
mod pipeline;
mod psi;
mod quota;
mod reconciler;
mod redrive;
mod sample_events;
mod scale;
mod store_contract;

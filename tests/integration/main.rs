//! Integration tests: the real handlers (API router, analyzer, tracker) against ministack,
//! each test with its own table and queues.

mod api;
mod endpoints;
mod harness;
mod http_engine;
mod pipeline;
mod psi;
mod quota;
mod redrive;
mod sample_events;
mod scale;
mod ssrf;
mod store_contract;

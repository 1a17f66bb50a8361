//! The library every speedbatch function links: the domain model (jobs, URL tasks, statuses and
//! their transitions, URL cleaning), configuration, the one error type, telemetry, and the
//! adapters behind small traits: the job store (DynamoDB), the task queue (SQS) and the
//! analysis engines.

pub mod auth;
pub mod aws;
pub mod config;
pub mod domain;
pub mod engine;
pub mod error;
pub mod metrics;
pub mod net;
pub mod notify;
pub mod queue;
pub mod quota;
pub mod retry;
pub mod sitemap;
pub mod store;
pub mod telemetry;
pub mod time;

pub use config::Config;
pub use error::Error;

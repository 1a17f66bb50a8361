//! What every function needs from the platform: its configuration (`config`), SDK clients
//! that count their requests (`sdk`), the exports bucket (`exports`), the task queues (`queue`), job events (`notify`), the
//! PageSpeed Insights key's storage (`secrets`), live progress's WebSocket connections
//! (`connections`), metrics (`metrics`) and logs (`telemetry`).

pub mod config;
pub mod connections;
pub mod exports;
pub mod metrics;
pub mod notify;
pub mod queue;
pub mod sdk;
pub mod secrets;
pub mod telemetry;

pub use config::Config;
pub use sdk::{Counts, RequestCounter, sdk_config};

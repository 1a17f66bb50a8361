pub mod cancel;
pub mod cleanup;
pub mod health;
pub mod jobs;
pub mod progress;
pub mod queue_status;
pub mod results;
pub mod start;

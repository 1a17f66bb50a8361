pub mod progress;
pub mod start;

//! Logging set-up shared by every function: JSON lines inside Lambda (CloudWatch parses them),
//! human-readable text elsewhere; the level comes from `RUST_LOG` (default `info`).

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let in_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    // try_init: tests call this more than once per process.
    let _ = if in_lambda {
        // Lambda stamps every line itself, and colour codes would garble CloudWatch.
        // The current span's fields only: the list of every enclosing span repeats them, and
        // CloudWatch Logs bills each byte ingested.
        builder.json().flatten_event(true).with_span_list(false).without_time().with_ansi(false).try_init()
    } else {
        builder.try_init()
    };
}

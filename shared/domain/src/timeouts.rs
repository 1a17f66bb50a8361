//! How long one URL may be analysed, decided in one place. A URL's analysis runs inside one
//! analyzer invocation, which Lambda ends at the function's timeout; the margins below keep
//! room to record the result before that.

use std::time::Duration;

/// What a deployment keeps back of the analyzer function's timeout to record a result: a
/// URL is analysed for at most the function's timeout less this.
pub const RECORD_MARGIN_SECONDS: u32 = 60;

/// What one delivery keeps back of its invocation's remaining time when an analysis starts,
/// so the result is written before Lambda ends the invocation.
pub const WRITE_MARGIN: Duration = Duration::from_secs(10);

/// The analyzer function's timeout where the deployment does not set one: Lambda's maximum.
pub const DEFAULT_FUNCTION_SECONDS: u32 = 900;

/// The longest analysis a deployment whose analyzer times out after `function_seconds` can
/// give one URL.
pub fn max_url_timeout(function_seconds: u32) -> u32 {
    function_seconds.saturating_sub(RECORD_MARGIN_SECONDS)
}

/// A job's per-URL timeout as it will run: what it asked for, within what the deployment can
/// give. Computed once, at submission, and kept on the job.
pub fn effective(requested_seconds: u32, max_url_timeout: u32) -> u32 {
    requested_seconds.min(max_url_timeout)
}

/// The time one delivery may analyse a URL: the job's timeout, within what is left of the
/// invocation less the write margin.
pub fn analysis_time(timeout_seconds: u32, invocation_left: Duration) -> Duration {
    Duration::from_secs(u64::from(timeout_seconds)).min(invocation_left.saturating_sub(WRITE_MARGIN))
}

/// The lease a claim takes for an analysis of `analysis`: long enough for it and for writing
/// its result, so no other delivery starts the URL meanwhile.
pub fn lease(analysis: Duration) -> Duration {
    analysis + WRITE_MARGIN
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_gets_its_timeout_within_what_the_deployment_and_the_invocation_leave() {
        assert_eq!(max_url_timeout(DEFAULT_FUNCTION_SECONDS), 840);
        assert_eq!(max_url_timeout(300), 240, "a minute to record");
        assert_eq!(effective(1800, 840), 840);
        assert_eq!(effective(60, 840), 60);
        assert_eq!(analysis_time(300, Duration::from_secs(900)), Duration::from_secs(300));
        assert_eq!(analysis_time(300, Duration::from_secs(100)), Duration::from_secs(90));
        assert_eq!(analysis_time(300, Duration::from_secs(5)), Duration::ZERO);
        assert_eq!(lease(Duration::from_secs(90)), Duration::from_secs(100));
    }
}

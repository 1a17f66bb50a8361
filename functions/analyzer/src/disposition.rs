//! What became of each message of a batch, and the invocation's metrics counted from it.

use aws::metrics::{MetricLine, Unit};
use domain::ErrorKind;
use domain::time::Millis;
use domain::waits::WaitReason;

/// What became of one message.
#[derive(Debug, PartialEq)]
pub(crate) enum Disposition {
    Succeeded {
        analysis_ms: f64,
        /// An earlier result reused, not a new analysis.
        cached: bool,
    },
    Failed {
        kind: ErrorKind,
        analysis_ms: f64,
    },
    /// A retryable failure: back on the queue after its backoff.
    RetryLater,
    /// A delayed copy of the message waits until `until`: for the engine's quota or for the
    /// URL's host.
    Waiting {
        reason: WaitReason,
        until: Millis,
    },
    /// The job is cancelling: the URL was marked `cancelled` without starting.
    Cancelled,
    /// Another delivery already recorded this URL.
    Duplicate,
    /// The job no longer exists.
    Dropped,
    /// The message cannot be read; after enough deliveries SQS moves it to the DLQ.
    Unreadable,
    /// The table did not answer; the message is redelivered.
    Unavailable,
}

impl Disposition {
    /// Why and until when the URL waits, if it does.
    pub(crate) fn wait(&self) -> Option<(WaitReason, Millis)> {
        match self {
            Disposition::Waiting { reason, until } => Some((*reason, *until)),
            _ => None,
        }
    }

    /// Whether the message stays on the queue for another delivery.
    pub(crate) fn redeliver(&self) -> bool {
        matches!(self, Disposition::RetryLater | Disposition::Unreadable | Disposition::Unavailable)
    }
}

/// The invocation's EMF metrics: outcomes by kind, analysis time, and time spent queued.
pub(crate) fn metric_line(
    results: &[(Disposition, Option<f64>)],
    released: usize,
    function: &'static str,
) -> MetricLine {
    let mut line = MetricLine::new("speedbatch").dimension("Function", function);
    let count = |f: &dyn Fn(&Disposition) -> bool| results.iter().filter(|(d, _)| f(d)).count() as u64;
    // A count of zero is left out (no datapoint, as CloudWatch's own metrics do): most of an
    // invocation's outcomes are none of most kinds, and each name is bytes of every line.
    let put = |line: &mut MetricLine, name: String, value: u64| line.units(name, value as f64);
    put(&mut line, "UrlsSucceeded".into(), count(&|d| matches!(d, Disposition::Succeeded { .. })));
    put(&mut line, "CacheHits".into(), count(&|d| matches!(d, Disposition::Succeeded { cached: true, .. })));
    put(&mut line, "UrlsFailed".into(), count(&|d| matches!(d, Disposition::Failed { .. })));
    put(&mut line, "UrlsRetried".into(), count(&|d| matches!(d, Disposition::RetryLater)));
    put(&mut line, "UrlsCancelled".into(), count(&|d| matches!(d, Disposition::Cancelled)));
    put(&mut line, "UrlsReleased".into(), released as u64);
    put(&mut line, "UrlsDeferred".into(), count(&|d| matches!(d, Disposition::Waiting { .. })));
    for reason in WaitReason::ALL {
        put(
            &mut line,
            format!("Waits.{reason}"),
            count(&|d| matches!(d, Disposition::Waiting { reason: r, .. } if r == reason)),
        );
    }
    put(&mut line, "Duplicates".into(), count(&|d| matches!(d, Disposition::Duplicate)));
    put(&mut line, "Unprocessable".into(), count(&|d| matches!(d, Disposition::Unreadable | Disposition::Unavailable)));
    for kind in ErrorKind::ALL {
        put(
            &mut line,
            format!("Failures.{kind}"),
            count(&|d| matches!(d, Disposition::Failed { kind: k, .. } if k == kind)),
        );
    }
    let analysis = results
        .iter()
        .filter_map(|(d, _)| match d {
            Disposition::Succeeded { analysis_ms, cached: false } | Disposition::Failed { analysis_ms, .. } => {
                Some(*analysis_ms)
            }
            _ => None,
        })
        .collect();
    line.values("AnalysisTime", Unit::Milliseconds, analysis);
    line.values("QueueWait", Unit::Milliseconds, results.iter().filter_map(|(_, wait)| *wait).collect());
    line
}

//! Calling a job's `callback_url` back when it ends: what is sent, how often it is tried, and
//! what the job shows of it. The tracker only hands a [`CallbackRequest`] to the callbacks
//! queue; the callbacks function makes one POST per message and decides with
//! [`after_attempt`] whether to stop or to try again later, so a tenant's slow or dead
//! endpoint holds up its own deliveries and nothing else.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::budget::StandingRef;
use crate::time::Millis;
use crate::{JobId, Tenant};

/// Attempts before a delivery is given up as `failed`: 6 POSTs over about 15 minutes. The
/// function records that itself; the callback queue's dead-letter queue takes only messages
/// it could not handle at all (unreadable, or the store down for every receive).
pub const MAX_ATTEMPTS: u32 = 6;
/// How long one POST may take, connection included: an endpoint that accepts and never
/// answers costs this much of the function's time per attempt, and nothing of anyone else's.
pub const ATTEMPT_BUDGET: Duration = Duration::from_secs(5);
/// The wait before the second attempt; it doubles after each failure.
const FIRST_RETRY: Duration = Duration::from_secs(30);
/// The longest wait between attempts: within SQS's longest message delay (15 minutes).
const LONGEST_RETRY: Duration = Duration::from_secs(480);
/// The longest error text kept on the job: enough to read, never a response body.
const ERROR_CHARS: usize = 300;

/// One delivery to send: everything the callbacks function needs without reading the job, so
/// the body is the job as it was when the event happened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CallbackRequest {
    pub batch_job_id: JobId,
    /// Whose secret signs the body.
    pub tenant: Tenant,
    pub url: String,
    /// The event's `detail-type` (`Job Completed`, `Job Cancelled`).
    pub event: String,
    /// When the event happened (RFC 3339), the body's `time`.
    pub time: String,
    /// The job as `progress` showed it then, the body's `detail`.
    pub detail: serde_json::Value,
    /// Which attempt this message is for: 1 from the tracker, one more for each retry, which
    /// is a new message sent with the retry's wait as its delay (so receives that failed for
    /// another reason, such as a store outage, use up no attempt).
    #[serde(default = "first_attempt")]
    pub attempt: u32,
    /// For a budget's change, the standing it announces: its delivery is kept there rather
    /// than on the run's job (one run can change many).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standing: Option<StandingRef>,
}

fn first_attempt() -> u32 {
    1
}

impl CallbackRequest {
    /// The `x-speedbatch-delivery` header: the same for every attempt of one delivery, so a
    /// receiver can drop the duplicates at-least-once delivery brings.
    pub fn delivery_id(&self) -> String {
        let event = self.event.to_lowercase().replace(' ', "-");
        match &self.standing {
            None => format!("{}:{event}", self.batch_job_id),
            Some(standing) => format!("{}:{event}:{}", self.batch_job_id, standing.key().encode().replace('/', ":")),
        }
    }
}

/// What one POST came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// A 2xx answer.
    Delivered,
    /// A failure another attempt may not meet: a timeout, a refused or reset connection, 429 or 5xx.
    Transient(String),
    /// An answer another attempt would only repeat: a 4xx, a redirect (never followed), an
    /// address the policy refuses.
    Refused(String),
}

crate::named_enum! {
    /// Where a job's callback stands.
    DeliveryState {
        Pending => "pending",
        Retrying => "retrying",
        Delivered => "delivered",
        Failed => "failed",
    }
}

/// The delivery state kept on the job (`callback` in its view).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackDelivery {
    pub event: String,
    pub state: DeliveryState,
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When the next attempt is due, while `retrying`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<Millis>,
    pub updated_at: Millis,
}

/// What the callbacks function does after attempt number `attempt` (1 for the first).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Next {
    /// To record on the job.
    pub delivery: CallbackDelivery,
    /// `Some(wait)`: receive the message again after `wait`; `None`: done with it.
    pub retry_in: Option<Duration>,
}

/// The one rule for retrying a callback: transient failures are tried again with doubling
/// waits (30 s, 1, 2, 4, 8 min) up to [`MAX_ATTEMPTS`]; anything else is final.
pub fn after_attempt(event: &str, attempt: u32, outcome: &Attempt, now: Millis) -> Next {
    let attempt = attempt.max(1);
    let (state, error, retry_in) = match outcome {
        Attempt::Delivered => (DeliveryState::Delivered, None, None),
        Attempt::Refused(reason) => (DeliveryState::Failed, Some(reason), None),
        Attempt::Transient(reason) if attempt >= MAX_ATTEMPTS => (DeliveryState::Failed, Some(reason), None),
        Attempt::Transient(reason) => (DeliveryState::Retrying, Some(reason), Some(retry_wait(attempt))),
    };
    Next {
        delivery: CallbackDelivery {
            event: event.to_owned(),
            state,
            attempts: attempt,
            last_error: error.map(|reason| bounded(reason)),
            next_attempt_at: retry_in.map(|wait| now + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX)),
            updated_at: now,
        },
        retry_in,
    }
}

/// The wait after failed attempt `attempt`: 30 s × 2^(attempt − 1), at most 8 minutes.
fn retry_wait(attempt: u32) -> Duration {
    (FIRST_RETRY * 2u32.saturating_pow(attempt.saturating_sub(1).min(10))).min(LONGEST_RETRY)
}

fn bounded(reason: &str) -> String {
    match reason.char_indices().nth(ERROR_CHARS) {
        Some((cut, _)) => format!("{}…", &reason[..cut]),
        None => reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_failures_back_off_until_the_last_attempt() {
        let waits: Vec<_> = (1..MAX_ATTEMPTS)
            .map(|n| after_attempt("Job Completed", n, &Attempt::Transient("timed out".into()), 0).retry_in)
            .collect();
        let secs = |s| Some(Duration::from_secs(s));
        assert_eq!(waits, [secs(30), secs(60), secs(120), secs(240), secs(480)]);
        let last = after_attempt("Job Completed", MAX_ATTEMPTS, &Attempt::Transient("timed out".into()), 7);
        assert_eq!(last.retry_in, None);
        assert_eq!(last.delivery.state, DeliveryState::Failed);
        assert_eq!((last.delivery.attempts, last.delivery.last_error.as_deref()), (6, Some("timed out")));
        assert_eq!(retry_wait(40), LONGEST_RETRY, "no overflow however many receives");
    }

    #[test]
    fn delivered_and_refused_are_final() {
        let done = after_attempt("Job Cancelled", 2, &Attempt::Delivered, 5);
        assert_eq!((done.delivery.state, done.delivery.attempts, done.retry_in), (DeliveryState::Delivered, 2, None));
        assert_eq!(done.delivery.last_error, None);
        let refused = after_attempt("Job Completed", 1, &Attempt::Refused("HTTP 404".into()), 5);
        assert_eq!((refused.delivery.state, refused.retry_in), (DeliveryState::Failed, None));
    }

    #[test]
    fn a_retry_says_when_it_is_due_and_errors_are_bounded() {
        let next = after_attempt("Job Completed", 1, &Attempt::Transient("x".repeat(5_000)), 1_000);
        assert_eq!(next.delivery.next_attempt_at, Some(31_000));
        assert_eq!(next.delivery.state, DeliveryState::Retrying);
        assert_eq!(next.delivery.last_error.map(|e| e.chars().count()), Some(ERROR_CHARS + 1));
    }

    #[test]
    fn one_delivery_id_per_job_and_event_and_standing() {
        let request = CallbackRequest {
            batch_job_id: JobId::parse("0193a7a0-0000-7000-8000-000000000000").unwrap(),
            tenant: Tenant("t".into()),
            url: "https://hooks.example/x".into(),
            event: "Job Completed".into(),
            time: "2026-12-04T00:00:00Z".into(),
            detail: serde_json::json!({}),
            attempt: 1,
            standing: None,
        };
        assert_eq!(request.delivery_id(), "0193a7a0-0000-7000-8000-000000000000:job-completed");
        let budget = CallbackRequest {
            event: "Budget Breached".into(),
            standing: Some(StandingRef {
                monitor_id: crate::monitor::MonitorId::generate(),
                budget_id: "0123abcd".into(),
                url: "https://a.example/".into(),
            }),
            ..request.clone()
        };
        let other_url = CallbackRequest {
            standing: budget.standing.clone().map(|s| StandingRef { url: "https://b.example/".into(), ..s }),
            ..budget.clone()
        };
        assert!(budget.delivery_id().starts_with("0193a7a0-0000-7000-8000-000000000000:budget-breached:0123abcd:"));
        assert_ne!(budget.delivery_id(), other_url.delivery_id(), "one per URL and budget a run changed");
        let mut queued_before_attempts_were_counted = serde_json::to_value(&request).unwrap();
        queued_before_attempts_were_counted.as_object_mut().unwrap().remove("attempt");
        let read: CallbackRequest = serde_json::from_value(queued_before_attempts_were_counted).unwrap();
        assert_eq!(read.attempt, 1);
    }
}

//! Live progress over a WebSocket (SPEC §6.5): what a client may send, what it is sent, and the
//! pacing and lifetime rules the live function applies. The key travels in the first message,
//! never in the connection's URL (which API Gateway and proxies log).

use serde::{Deserialize, Serialize};

use crate::JobId;
use crate::time::Millis;
use crate::view::JobView;

/// The shortest time between two pushes of one job's progress: at most 2 per second.
pub const PUSH_INTERVAL_MS: Millis = 500;
/// API Gateway closes a WebSocket connection after 2 hours, so a subscription outlives its
/// connection by at most this margin even when `$disconnect` never ran (its item's TTL).
pub const SUBSCRIPTION_TTL_SECONDS: i64 = 2 * 3600 + 600;
/// Subscriptions one connection may hold: each is an item written and deleted, and a page
/// watches one job or all of them.
pub const MAX_SUBSCRIPTIONS_PER_CONNECTION: usize = 50;
/// The longest message a client may send; a subscribe message is under 200 bytes, and nothing
/// longer is parsed.
pub const MAX_MESSAGE_BYTES: usize = 4096;
/// `batch_job_id` that subscribes to every job of the key's tenant.
pub const ALL_JOBS: &str = "*";

/// What a subscription follows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Watch {
    Job(JobId),
    /// Every job of the tenant, those already running and those submitted later.
    AllJobs,
}

impl Watch {
    /// The id a client named, as it is echoed back.
    pub fn label(&self) -> &str {
        match self {
            Watch::Job(id) => id.as_str(),
            Watch::AllJobs => ALL_JOBS,
        }
    }
}

/// A client's `subscribe` message, parsed.
#[derive(Clone, PartialEq, Eq)]
pub struct Subscribe {
    pub api_key: String,
    pub watch: Watch,
}

// The key is a secret: a log line of the request must not show it.
impl std::fmt::Debug for Subscribe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscribe").field("api_key", &"<redacted>").field("watch", &self.watch).finish()
    }
}

#[derive(Deserialize)]
struct Incoming {
    action: Option<String>,
    api_key: Option<String>,
    batch_job_id: Option<String>,
}

/// Why a client's message was refused, as the error frame's `code` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    Unauthorized,
    NotFound,
    TooManySubscriptions,
    Internal,
}

/// A refused message: its code and a sentence saying what was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
    pub batch_job_id: Option<String>,
}

impl Refusal {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Refusal { code: ErrorCode::BadRequest, message: message.into(), batch_job_id: None }
    }

    pub fn unauthorized() -> Self {
        Refusal {
            code: ErrorCode::Unauthorized,
            message: "the api_key is missing or unknown".into(),
            batch_job_id: None,
        }
    }

    /// Another tenant's job is answered exactly as a missing one.
    pub fn not_found(id: &str) -> Self {
        Refusal { code: ErrorCode::NotFound, message: format!("no job {id:?}"), batch_job_id: Some(id.to_owned()) }
    }

    pub fn too_many(watch: &Watch) -> Self {
        Refusal {
            code: ErrorCode::TooManySubscriptions,
            message: format!(
                "a connection may hold {MAX_SUBSCRIPTIONS_PER_CONNECTION} subscriptions; open another connection"
            ),
            batch_job_id: Some(watch.label().to_owned()),
        }
    }

    /// A failure of ours: the client is told to try again, never what failed.
    pub fn internal() -> Self {
        Refusal {
            code: ErrorCode::Internal,
            message: "the subscription could not be made; try again".into(),
            batch_job_id: None,
        }
    }
}

/// Parses one message from a client: `{"action": "subscribe", "api_key", "batch_job_id"}`.
pub fn parse_message(body: &str) -> Result<Subscribe, Refusal> {
    if body.len() > MAX_MESSAGE_BYTES {
        return Err(Refusal::bad_request(format!(
            "a message may be at most {MAX_MESSAGE_BYTES} bytes; this one is {}",
            body.len()
        )));
    }
    let incoming: Incoming = serde_json::from_str(body).map_err(|e| {
        Refusal::bad_request(format!(
            "a message is a JSON object {{\"action\": \"subscribe\", \"api_key\", \"batch_job_id\"}}: {e}"
        ))
    })?;
    match incoming.action.as_deref() {
        Some("subscribe") => {}
        Some(other) => {
            return Err(Refusal::bad_request(format!("unknown action {other:?}; the one action is \"subscribe\"")));
        }
        None => {
            return Err(Refusal::bad_request("the message has no \"action\"; send {\"action\": \"subscribe\", ...}"));
        }
    }
    let api_key =
        incoming.api_key.map(|k| k.trim().to_owned()).filter(|k| !k.is_empty()).ok_or_else(Refusal::unauthorized)?;
    let id = incoming.batch_job_id.map(|id| id.trim().to_owned()).filter(|id| !id.is_empty()).ok_or_else(|| {
        Refusal::bad_request("\"batch_job_id\" is missing: a job's id, or \"*\" for every job of the key's tenant")
    })?;
    let watch = if id == ALL_JOBS {
        Watch::AllJobs
    } else {
        // Not a job id we could have made: no such job (and no read to say so).
        Watch::Job(JobId::parse(&id).ok_or_else(|| Refusal::not_found(&id))?)
    };
    Ok(Subscribe { api_key, watch })
}

/// What the server sends a client.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Outgoing<'a> {
    Subscribed {
        batch_job_id: &'a str,
    },
    Progress {
        job: &'a JobView,
    },
    Error {
        code: ErrorCode,
        message: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        batch_job_id: Option<&'a str>,
    },
}

impl Outgoing<'_> {
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising these shapes cannot fail (string keys, no maps with other keys).
        serde_json::to_vec(self).unwrap_or_default()
    }
}

impl<'a> From<&'a Refusal> for Outgoing<'a> {
    fn from(refusal: &'a Refusal) -> Self {
        Outgoing::Error { code: refusal.code, message: &refusal.message, batch_job_id: refusal.batch_job_id.as_deref() }
    }
}

/// How long to wait before pushing a job whose last push was at `last`: nothing the first
/// time, else what is left of [`PUSH_INTERVAL_MS`].
pub fn wait_before_push(last: Option<Millis>, now: Millis) -> Millis {
    last.map_or(0, |last| (last + PUSH_INTERVAL_MS - now).max(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "sb_0123";

    fn message(id: &str) -> String {
        format!(r#"{{"action":"subscribe","api_key":"{KEY}","batch_job_id":"{id}"}}"#)
    }

    #[test]
    fn parses_a_job_and_all_jobs() {
        let id = JobId::generate();
        let parsed = parse_message(&message(id.as_str())).unwrap();
        assert_eq!(parsed, Subscribe { api_key: KEY.into(), watch: Watch::Job(id) });
        assert_eq!(parse_message(&message("*")).unwrap().watch, Watch::AllJobs);
    }

    #[test]
    fn refuses_what_is_not_a_subscribe_message_and_says_why() {
        let refused = |body: &str| parse_message(body).unwrap_err();
        assert_eq!(refused("not json").code, ErrorCode::BadRequest);
        assert!(refused(r#"{"action":"ping"}"#).message.contains("\"ping\""));
        assert!(refused(r#"{"api_key":"k","batch_job_id":"*"}"#).message.contains("no \"action\""));
        assert_eq!(refused(r#"{"action":"subscribe","batch_job_id":"*"}"#).code, ErrorCode::Unauthorized);
        assert_eq!(
            refused(r#"{"action":"subscribe","api_key":"  ","batch_job_id":"*"}"#).code,
            ErrorCode::Unauthorized
        );
        assert!(refused(r#"{"action":"subscribe","api_key":"k"}"#).message.contains("batch_job_id"));
        let long =
            format!(r#"{{"action":"subscribe","api_key":"{}","batch_job_id":"*"}}"#, "k".repeat(MAX_MESSAGE_BYTES));
        assert!(refused(&long).message.contains("at most 4096 bytes"));
    }

    #[test]
    fn an_id_we_could_not_have_made_is_not_found() {
        let refusal = parse_message(&message("JOB#1")).unwrap_err();
        assert_eq!((refusal.code, refusal.batch_job_id.as_deref()), (ErrorCode::NotFound, Some("JOB#1")));
    }

    #[test]
    fn the_key_never_reaches_a_log_line() {
        let parsed = parse_message(&message("*")).unwrap();
        assert!(!format!("{parsed:?}").contains(KEY));
    }

    #[test]
    fn frames_are_the_protocols_shapes() {
        let frame = |out: Outgoing| serde_json::from_slice::<serde_json::Value>(&out.to_bytes()).unwrap();
        assert_eq!(
            frame(Outgoing::Subscribed { batch_job_id: "*" }),
            serde_json::json!({"type": "subscribed", "batch_job_id": "*"})
        );
        let refusal = Refusal::not_found("x");
        assert_eq!(
            frame(Outgoing::from(&refusal)),
            serde_json::json!({"type": "error", "code": "not_found", "message": "no job \"x\"", "batch_job_id": "x"})
        );
        assert_eq!(frame(Outgoing::from(&Refusal::unauthorized()))["code"], "unauthorized");
    }

    #[test]
    fn pushes_are_paced_to_two_a_second() {
        assert_eq!(wait_before_push(None, 10_000), 0);
        assert_eq!(wait_before_push(Some(10_000), 10_100), 400);
        assert_eq!(wait_before_push(Some(10_000), 10_500), 0);
        assert_eq!(wait_before_push(Some(10_000), 20_000), 0);
    }
}

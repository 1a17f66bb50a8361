use std::future::Future;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::EVENT_SOURCE;
use domain::AddressPolicy;
use domain::Error;
use domain::callback::{ATTEMPT_BUDGET, Attempt, CallbackRequest};
use domain::time::now_millis;
use net::safe_client::{describe, safe_client_without_redirects};

/// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" under the tenant's secret>`: the
/// timestamp is signed too, so a receiver can refuse old replays.
pub const SIGNATURE_HEADER: &str = "x-speedbatch-signature";
const EVENT_HEADER: &str = "x-speedbatch-event";
const DELIVERY_HEADER: &str = "x-speedbatch-delivery";

/// The signature header's value for `body` sent at `timestamp` (unix seconds).
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    #[allow(clippy::expect_used, reason = "HMAC takes a key of any length, so this cannot fail")]
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={timestamp},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Makes callback attempts: one signed POST to the URL a job named, through the same address
/// policy as every other fetch made for a user. Redirects are not followed: the signed body
/// is for the URL the job named, and a redirect could carry it to an address nobody checked.
/// Retrying is not done here but by the callbacks queue (`domain::callback::after_attempt`),
/// so no attempt waits for another.
#[derive(Clone, Debug)]
pub struct Callbacks {
    http: reqwest::Client,
}

impl Callbacks {
    pub fn new(policy: AddressPolicy) -> Result<Self, Error> {
        let http = safe_client_without_redirects(policy).map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        Ok(Callbacks { http })
    }
}

/// One attempt at a delivery, as the callbacks function sees it (a fake in its tests).
pub trait CallbackSender: Send + Sync {
    fn attempt(&self, request: &CallbackRequest, secret: &str) -> impl Future<Output = Attempt> + Send;
}

impl CallbackSender for Callbacks {
    /// POSTs the notice within [`ATTEMPT_BUDGET`], connection included.
    async fn attempt(&self, request: &CallbackRequest, secret: &str) -> Attempt {
        let body = match serde_json::to_vec(&serde_json::json!({
            "source": EVENT_SOURCE,
            "detail-type": request.event,
            "time": request.time,
            "detail": request.detail,
        })) {
            Ok(body) => body,
            Err(err) => return Attempt::Refused(format!("the notice could not be written: {err}")),
        };
        let result = self
            .http
            .post(&request.url)
            .timeout(ATTEMPT_BUDGET)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(EVENT_HEADER, &request.event)
            .header(DELIVERY_HEADER, request.delivery_id())
            .header(SIGNATURE_HEADER, sign(secret, now_millis() / 1000, &body))
            .body(body)
            .send()
            .await;
        match result {
            Ok(response) if response.status().is_success() => Attempt::Delivered,
            Ok(response) if response.status().is_redirection() => {
                let to = response.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok());
                Attempt::Refused(format!(
                    "the callback answered HTTP {} (to {}): redirects are not followed, give the final URL",
                    response.status(),
                    to.unwrap_or("nowhere")
                ))
            }
            Ok(response) => {
                let status = response.status();
                let reason = format!("the callback answered HTTP {status}");
                if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                    Attempt::Transient(reason)
                } else {
                    Attempt::Refused(reason)
                }
            }
            Err(err) => {
                let (kind, reason) = describe(&err);
                if kind.is_retryable() { Attempt::Transient(reason) } else { Attempt::Refused(reason) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_and_body() {
        // Known answer, computed independently:
        // python3 -c 'import hmac,hashlib; print(hmac.new(b"s3cret", b"1700000000.{}", hashlib.sha256).hexdigest())'
        assert_eq!(
            sign("s3cret", 1_700_000_000, b"{}"),
            "t=1700000000,v1=97926816e98fbb41ccb1673225ff29a2f35369099990e1b1561651e7bd097ebf"
        );
    }
}

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::{EVENT_SOURCE, Notice};
use domain::AddressPolicy;
use domain::Error;
use domain::time::{now_millis, rfc3339};
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

/// Delivers job notices to the callback URLs jobs name, through the same address policy as
/// every other fetch made for a user. Redirects are not followed: the signed body is for the
/// URL the job named, and a redirect could carry it to an address nobody checked.
#[derive(Clone, Debug)]
pub struct Callbacks {
    http: reqwest::Client,
    attempts: u32,
    first_delay: Duration,
    timeout: Duration,
}

impl Callbacks {
    pub fn new(policy: AddressPolicy) -> Result<Self, Error> {
        let http = safe_client_without_redirects(policy).map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        Ok(Callbacks { http, attempts: 4, first_delay: Duration::from_secs(1), timeout: Duration::from_secs(10) })
    }

    /// Fewer and shorter waits, for tests.
    pub fn with_retries(mut self, attempts: u32, first_delay: Duration) -> Self {
        self.attempts = attempts.max(1);
        self.first_delay = first_delay;
        self
    }

    /// POSTs `notice` to `url`, retrying timeouts, connection failures, 429 and 5xx with
    /// doubling waits; other answers are final. Returns the attempts it took.
    pub async fn deliver(&self, url: &str, secret: &str, notice: &Notice) -> Result<u32, Error> {
        let body = serde_json::to_vec(&serde_json::json!({
            "source": EVENT_SOURCE,
            "detail-type": notice.event.detail_type(),
            "time": rfc3339(now_millis()),
            "detail": notice.detail,
        }))
        .map_err(|e| Error::Corrupt(e.to_string()))?;
        let delivery = format!("{}:{}", notice.job_id, notice.event.detail_type().to_lowercase().replace(' ', "-"));
        let mut delay = self.first_delay;
        let mut last = String::new();
        for attempt in 1..=self.attempts {
            let signature = sign(secret, now_millis() / 1000, &body);
            let result = self
                .http
                .post(url)
                .timeout(self.timeout)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(EVENT_HEADER, notice.event.detail_type())
                .header(DELIVERY_HEADER, &delivery)
                .header(SIGNATURE_HEADER, signature)
                .body(body.clone())
                .send()
                .await;
            let retry = match result {
                Ok(response) if response.status().is_success() => return Ok(attempt),
                Ok(response) if response.status().is_redirection() => {
                    let to = response.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok());
                    last = format!(
                        "the callback answered HTTP {} (to {}): redirects are not followed, give the final URL",
                        response.status(),
                        to.unwrap_or("nowhere")
                    );
                    false
                }
                Ok(response) => {
                    let status = response.status();
                    last = format!("the callback answered HTTP {status}");
                    status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS
                }
                Err(err) => {
                    let (kind, reason) = describe(&err);
                    last = reason;
                    kind.is_retryable()
                }
            };
            if !retry || attempt == self.attempts {
                break;
            }
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
        Err(Error::Callback(last))
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

//! A URL's field data within the fleet-wide CrUX quota: each request to the Chrome UX Report
//! takes its own place in the shared limiter first, so the fleet stays under the API's 150
//! requests a minute and no request is spent on a 429.
//!
//! Per form factor: the URL's record, else (after its 404) its origin's; with history, the
//! series of whichever had the record (the other would only answer 404). So a URL with its
//! own record costs one request per form factor, one with only its origin's two, and history
//! one more each.

use std::time::Duration;

use domain::field::FormFactorField;
use domain::quota::{Asker, Grant, QuotaGate};
use domain::time::{Millis, now_millis};
use domain::{Error, ErrorKind, Strategy};

use super::{CruxClient, FormFactor, Target};
use crate::{Admission, EngineError};

/// The longest a URL waits in the analyzer for a place, before it is claimed or while it is
/// measured; beyond that it waits on the queue (a delayed copy). Longer than PageSpeed
/// Insights' 5 s: a CrUX request takes milliseconds, so at 150 a minute a job's window of 20
/// URLs is served within about 8 s, and waiting that long here costs less than sending each
/// URL back to the queue to wait (measured on a 1 000-URL job: 11.4 AWS requests per URL with
/// a 5 s wait, most of them deferrals; 2.9 with this one, BENCHMARKS.md "Field data"). What a
/// tenant may book ahead grows with it
/// (`domain::quota::fair::reach`: 12 s for `normal`), which a newcomer waits behind at most.
const PLACE_WAIT: Duration = Duration::from_secs(20);

pub struct FieldEngine<G> {
    client: CruxClient,
    quota: G,
}

/// What a URL's field data asks of the quota: who asks, and whether its first place was taken
/// already (by [`FieldEngine::admit`], before the URL was claimed).
#[derive(Clone, Copy, Debug)]
pub struct FieldRequest<'a> {
    pub url: &'a str,
    /// `both` is phone then desktop.
    pub strategy: Strategy,
    pub history: bool,
    pub asker: Asker<'a>,
    pub prepaid: bool,
}

impl<G: QuotaGate> FieldEngine<G> {
    pub fn new(client: CruxClient, quota: G) -> Self {
        FieldEngine { client, quota }
    }

    /// Takes the URL's first place in the quota, before it is claimed: a URL that has to wait
    /// costs no claim.
    pub async fn admit(&self, asker: Asker<'_>, now: Millis) -> Result<Admission, Error> {
        Ok(match self.quota.acquire(asker, now, PLACE_WAIT).await? {
            Grant::Go { at } => Admission::At(at),
            Grant::Wait { until, .. } => {
                Admission::Wait { until, reason: "the Chrome UX Report quota is fully booked".into() }
            }
        })
    }

    /// Every form factor's field data of `request.url`.
    pub async fn measure(&self, request: FieldRequest<'_>) -> Result<Vec<FormFactorField>, EngineError> {
        let mut prepaid = request.prepaid;
        let mut found = Vec::with_capacity(2);
        for &strategy in request.strategy.form_factors() {
            let form_factor = FormFactor::of(strategy);
            let mut record = None;
            let mut source = None;
            for target in [Target::url(request.url), Target::origin_of(request.url).map_err(|e| *e)?] {
                self.place(request.asker, &mut prepaid).await?;
                if let Some(found) = self.client.record(&target, form_factor).await? {
                    (record, source) = (Some(found), Some(target));
                    break;
                }
            }
            let history = match source.filter(|_| request.history) {
                Some(target) => {
                    self.place(request.asker, &mut prepaid).await?;
                    self.client.history(&target, form_factor).await?
                }
                None => None,
            };
            found.push(FormFactorField { strategy, record, history });
        }
        Ok(found)
    }

    /// One request's place: the one taken before the claim, or a new one (waiting for it here
    /// up to `PLACE_WAIT`).
    async fn place(&self, asker: Asker<'_>, prepaid: &mut bool) -> Result<(), EngineError> {
        if std::mem::take(prepaid) {
            return Ok(());
        }
        let now = now_millis();
        match self.quota.acquire(asker, now, PLACE_WAIT).await {
            Ok(Grant::Go { at }) => {
                tokio::time::sleep(Duration::from_millis(u64::try_from(at - now).unwrap_or(0))).await;
                Ok(())
            }
            Ok(Grant::Wait { until, .. }) => {
                Err(EngineError::deferred(ErrorKind::RateLimited, "the Chrome UX Report quota is fully booked", until))
            }
            Err(err) => Err(EngineError::new(ErrorKind::EngineUnavailable, format!("the CrUX quota: {err}"))),
        }
    }
}

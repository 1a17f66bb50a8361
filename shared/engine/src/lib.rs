//! Analysis engines: what measures a page. The analyzer depends on the `Engine` trait.

pub mod browser;
pub mod crux;
pub mod http;
pub mod psi;
pub mod runs;
pub mod set;

use std::future::Future;
use std::time::Duration;

use domain::Error;
use domain::quota::Asker;
use domain::time::Millis;
use domain::{Analysis, Category, EngineKind, ErrorKind, Strategy};

pub use crux::field_engine::FieldRequest;
pub use http::HttpEngine;
pub use psi::PsiEngine;
pub use set::EngineSet;

/// An analysis that did not succeed, with the reason in words a user can act on and, where
/// the page answered, what was measured anyway.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{reason}")]
pub struct EngineError {
    pub kind: ErrorKind,
    pub reason: String,
    pub analysis: Option<Analysis>,
    /// Not a failure of the page but a wait (the provider's quota was full): try again
    /// from then on, without counting an attempt.
    pub defer_until: Option<Millis>,
    /// The page itself asked for a pause (429 or 503 with `Retry-After`): its host is left
    /// alone that long ([`domain::politeness`]).
    pub retry_after: Option<Duration>,
}

impl EngineError {
    pub fn new(kind: ErrorKind, reason: impl Into<String>) -> Self {
        EngineError { kind, reason: reason.into(), analysis: None, defer_until: None, retry_after: None }
    }

    /// A wait rather than a failure: try again from `until`, without counting an attempt.
    pub fn deferred(kind: ErrorKind, reason: impl Into<String>, until: Millis) -> Self {
        EngineError { defer_until: Some(until), ..EngineError::new(kind, reason) }
    }

    /// A failure that measured something anyway (a 404 page still has a size).
    pub fn with_analysis(kind: ErrorKind, reason: impl Into<String>, analysis: Analysis) -> Self {
        EngineError { analysis: Some(analysis), ..EngineError::new(kind, reason) }
    }

    /// A failed request, classified.
    pub fn from_request(err: reqwest::Error) -> Self {
        let (kind, reason) = net::safe_client::describe(&err);
        EngineError::new(kind, reason)
    }

    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }
}

/// Whether a URL may be analysed now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Start at this time: now, or a quota slot a few seconds ahead.
    At(Millis),
    /// Not before `until`: the URL waits for it; it does not fail.
    Wait { until: Millis, reason: String },
}

/// The engines a deployment has, chosen per URL by the engine its job resolved to.
pub trait Engines: Send + Sync {
    /// Asks the engine for a place (its quota, shared fairly between the tenants that
    /// `asker` names) before the URL is claimed, so a URL that has to wait costs no claim.
    fn admit(
        &self,
        engine: EngineKind,
        asker: Asker<'_>,
        now: Millis,
    ) -> impl Future<Output = Result<Admission, Error>> + Send;

    fn analyze(
        &self,
        engine: EngineKind,
        request: Request<'_>,
        timeout: Duration,
    ) -> impl Future<Output = Result<Analysis, EngineError>> + Send;

    /// Takes the first place in the field data's quota for a URL, before it is claimed.
    fn admit_field(&self, _: Asker<'_>, now: Millis) -> impl Future<Output = Result<Admission, Error>> + Send {
        async move { Ok(Admission::At(now)) }
    }

    /// A URL's field data from the Chrome UX Report, each form factor's.
    fn field(
        &self,
        _: FieldRequest<'_>,
    ) -> impl Future<Output = Result<Vec<domain::field::FormFactorField>, EngineError>> + Send {
        async { Err(EngineError::new(ErrorKind::EngineUnavailable, crux::NO_KEY)) }
    }
}

/// One analysis asked of an engine.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// The job the URL belongs to: what the engine keeps beside the result (a browser's
    /// screenshot) is kept under it.
    pub job: &'a str,
    pub url: &'a str,
    /// `mobile` or `desktop`: `both` is two requests.
    pub strategy: Strategy,
    /// What PageSpeed Insights scores; other engines measure what they measure.
    pub categories: &'a [Category],
}

/// One engine for every URL, with no quota: tests, and what a single engine needs.
impl<E: Engine> Engines for E {
    async fn admit(&self, _: EngineKind, _: Asker<'_>, now: Millis) -> Result<Admission, Error> {
        Ok(Admission::At(now))
    }

    async fn analyze(&self, _: EngineKind, request: Request<'_>, timeout: Duration) -> Result<Analysis, EngineError> {
        Engine::analyze(self, request.url, request.strategy, timeout).await
    }
}

pub trait Engine: Send + Sync {
    /// The name stored with every result (`http`, `psi`).
    fn name(&self) -> &'static str;

    /// Analyses one URL, giving up after `timeout`.
    fn analyze(
        &self,
        url: &str,
        strategy: Strategy,
        timeout: Duration,
    ) -> impl Future<Output = Result<Analysis, EngineError>> + Send;
}

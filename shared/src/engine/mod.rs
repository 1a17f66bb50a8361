//! Analysis engines: what measures a page. The analyzer depends on the `Engine` trait.

pub mod http;

use std::future::Future;
use std::time::Duration;

use crate::domain::{Analysis, ErrorKind, Strategy};

pub use http::HttpEngine;

/// An analysis that did not succeed, with the reason in words a user can act on and, where
/// the page answered, what was measured anyway.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{reason}")]
pub struct EngineError {
    pub kind: ErrorKind,
    pub reason: String,
    pub analysis: Option<Analysis>,
}

impl EngineError {
    pub fn new(kind: ErrorKind, reason: impl Into<String>) -> Self {
        EngineError { kind, reason: reason.into(), analysis: None }
    }

    /// A failed request, classified.
    pub fn from_request(err: reqwest::Error) -> Self {
        let (kind, reason) = crate::net::safe_client::describe(&err);
        EngineError::new(kind, reason)
    }

    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
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

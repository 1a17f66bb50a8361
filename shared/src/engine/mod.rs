//! Analysis engines: what measures a page. The analyzer depends on the `Engine` trait.

pub mod http;

use std::future::Future;
use std::time::Duration;

use crate::domain::{Analysis, Strategy};

pub use http::HttpEngine;

/// Whether trying again later can help.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// Timeouts, 5xx, 429, dropped connections.
    Retryable,
    /// DNS failure, a 4xx page, an address refused by policy, an unusable URL.
    Permanent,
}

/// An analysis that did not succeed, with the reason in words a user can act on and, where
/// the page answered, what was measured anyway.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{reason}")]
pub struct EngineError {
    pub kind: FailureKind,
    pub reason: String,
    pub analysis: Option<Analysis>,
}

impl EngineError {
    pub fn permanent(reason: impl Into<String>) -> Self {
        EngineError { kind: FailureKind::Permanent, reason: reason.into(), analysis: None }
    }

    pub fn retryable(reason: impl Into<String>) -> Self {
        EngineError { kind: FailureKind::Retryable, reason: reason.into(), analysis: None }
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

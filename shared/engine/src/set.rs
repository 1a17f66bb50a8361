//! The engines of a deployment, chosen per URL by the engine its job resolved to: `http`
//! always, `psi` when the deployment has a key, `browser` in the function that has Chromium;
//! and field data from the Chrome UX Report beside any of them, when the deployment has its key.

use std::time::Duration;

use domain::Error;
use domain::quota::{Asker, QuotaGate};
use domain::time::Millis;
use domain::{Analysis, Category, EngineKind, ErrorKind};

use crate::browser::{BrowserEngine, ScreenshotStore};
use crate::crux::FieldEngine;
use crate::{Admission, Engine, EngineError, Engines, FieldRequest, HttpEngine, PsiEngine, Request};
use domain::field::FormFactorField;

pub struct EngineSet<G, S> {
    pub http: HttpEngine,
    pub psi: Option<PsiEngine<G>>,
    pub browser: Option<BrowserEngine<S>>,
    /// Field data from the Chrome UX Report, where the deployment has a key.
    pub crux: Option<FieldEngine<G>>,
}

impl<G: QuotaGate, S: ScreenshotStore> Engines for EngineSet<G, S> {
    async fn admit(&self, engine: EngineKind, asker: Asker<'_>, now: Millis) -> Result<Admission, Error> {
        match (engine, &self.psi) {
            (EngineKind::Psi, Some(psi)) => psi.admit(asker, now).await,
            _ => Ok(Admission::At(now)),
        }
    }

    async fn analyze(
        &self,
        engine: EngineKind,
        request: Request<'_>,
        timeout: Duration,
    ) -> Result<Analysis, EngineError> {
        match engine {
            EngineKind::Psi => {
                let categories =
                    if request.categories.is_empty() { &[Category::Performance][..] } else { request.categories };
                let Some(psi) = &self.psi else {
                    return Err(EngineError::new(
                        ErrorKind::EngineUnavailable,
                        "this deployment has no PageSpeed Insights key",
                    ));
                };
                psi.analyze_categories(request.url, request.strategy, categories, timeout).await
            }
            EngineKind::Browser => {
                let Some(browser) = &self.browser else {
                    return Err(EngineError::new(
                        ErrorKind::EngineUnavailable,
                        "this analyzer has no browser: the URL was sent to the wrong queue",
                    ));
                };
                browser.analyze_for(request.job, request.url, request.strategy, timeout).await
            }
            EngineKind::Http => Engine::analyze(&self.http, request.url, request.strategy, timeout).await,
            EngineKind::FieldOnly => Err(EngineError::new(ErrorKind::EngineUnavailable, "engine none loads no page")),
        }
    }

    async fn admit_field(&self, asker: Asker<'_>, now: Millis) -> Result<Admission, Error> {
        match &self.crux {
            Some(crux) => crux.admit(asker, now).await,
            None => Ok(Admission::At(now)),
        }
    }

    async fn field(&self, request: FieldRequest<'_>) -> Result<Vec<FormFactorField>, EngineError> {
        match &self.crux {
            Some(crux) => crux.measure(request).await,
            None => Err(EngineError::new(ErrorKind::EngineUnavailable, crate::crux::NO_KEY)),
        }
    }
}

#[cfg(test)]
mod tests {
    use domain::quota::Asker;
    use domain::{AddressPolicy, Priority, Strategy};

    use super::*;

    /// Never asked: the tests below only reach the engines they name.
    struct Shelf;

    impl ScreenshotStore for Shelf {
        async fn put(&self, job: &str, _: Vec<u8>) -> Result<String, String> {
            Err(format!("no screenshot expected for {job}"))
        }
    }

    struct OpenGate;

    impl QuotaGate for OpenGate {
        async fn acquire(&self, _: Asker<'_>, now: Millis, _: Duration) -> Result<domain::quota::Grant, Error> {
            Ok(domain::quota::Grant::Go { at: now })
        }
    }

    #[tokio::test]
    async fn a_url_of_an_engine_this_analyzer_lacks_fails_as_unavailable_and_says_why() {
        let set: EngineSet<OpenGate, Shelf> =
            EngineSet { http: HttpEngine::new(AddressPolicy::STRICT).unwrap(), psi: None, browser: None, crux: None };
        let request = Request { job: "j", url: "https://example.com/", strategy: Strategy::Mobile, categories: &[] };
        let asker = Asker { tenant: "t", weight: 1, priority: Priority::Normal };
        for engine in [EngineKind::Psi, EngineKind::Browser] {
            assert_eq!(set.admit(engine, asker, 7).await.unwrap(), Admission::At(7), "no quota to wait for");
        }
        let browser = set.analyze(EngineKind::Browser, request, Duration::from_secs(1)).await.unwrap_err();
        assert_eq!(browser.kind, ErrorKind::EngineUnavailable);
        assert!(browser.reason.contains("wrong queue"), "{}", browser.reason);
        let psi = set.analyze(EngineKind::Psi, request, Duration::from_secs(1)).await.unwrap_err();
        assert_eq!(
            (psi.kind, psi.reason.as_str()),
            (ErrorKind::EngineUnavailable, "this deployment has no PageSpeed Insights key")
        );
    }
}

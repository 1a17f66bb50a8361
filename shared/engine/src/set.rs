//! The engines of a deployment, chosen per URL by the engine its job resolved to: `http`
//! always, `psi` when the deployment has a key, `browser` in the function that has Chromium.

use std::time::Duration;

use domain::Error;
use domain::quota::{Asker, QuotaGate};
use domain::time::Millis;
use domain::{Analysis, Category, EngineKind, ErrorKind};

use crate::browser::{BrowserEngine, ScreenshotStore};
use crate::{Admission, Engine, EngineError, Engines, HttpEngine, PsiEngine, Request};

pub struct EngineSet<G, S> {
    pub http: HttpEngine,
    pub psi: Option<PsiEngine<G>>,
    pub browser: Option<BrowserEngine<S>>,
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
        }
    }
}

//! The browser engine: headless Chromium over the DevTools protocol, Lighthouse's conditions
//! and scoring. By concern: the DevTools client (`cdp`), starting Chromium (`launch`), the
//! form factors' device and network (`conditions`), the proxy that holds every request to the
//! address policy (`proxy`), the page's timeline (`lab`) and network log (`network`), the
//! performance score (`score`), and the engine that puts them together (`engine`).

pub mod cdp;
pub mod conditions;
pub mod engine;
pub mod lab;
pub mod launch;
pub mod network;
pub mod proxy;
pub mod score;

pub use engine::{BrowserEngine, BrowserSettings, ScreenshotStore};

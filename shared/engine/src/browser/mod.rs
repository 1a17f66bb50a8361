//! The browser engine (issue 19, in progress): headless Chromium over the DevTools protocol.
//! So far its DevTools client (`cdp`), starting Chromium (`launch`), the page's timeline
//! (`lab`) and its score: Lighthouse's performance score from lab
//! metrics (`score`).

pub mod cdp;
pub mod lab;
pub mod launch;
pub mod score;

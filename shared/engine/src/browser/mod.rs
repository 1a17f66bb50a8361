//! The browser engine (issue 19, in progress): headless Chromium over the DevTools protocol.
//! So far its score: Lighthouse's performance score from lab metrics (`score`).

pub mod score;

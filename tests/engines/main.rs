//! The engines against local servers, with no emulator: the http engine and its probe on
//! origin servers (HTTP/1.1, HTTP/2, TLS, hostile bodies), the SSRF table, and the psi engine
//! against the fake PageSpeed Insights, and Chromium driven over the DevTools protocol. Part of
//! `make check`.

mod browser;
mod http_engine;
mod psi;
mod ssrf;

//! The engines against local servers, with no emulator: the http engine and its probe on
//! origin servers (HTTP/1.1, HTTP/2, TLS, hostile bodies), the SSRF table, the psi engine
//! against the fake PageSpeed Insights, the CrUX client against the fake Chrome UX Report, and Chromium driven over the DevTools protocol. Part of
//! `make check`.

mod browser;
mod crux;
mod http_engine;
mod psi;
mod ssrf;

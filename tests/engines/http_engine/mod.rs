//! The browserless engine on local origin servers: the probe's phases, redirects, encodings,
//! limits and TLS, and the engine as the analyzer calls it.

mod engine;
mod probe_http;
mod probe_tls;

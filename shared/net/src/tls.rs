//! The TLS client configuration every hand-made connection uses (the http engine's probes,
//! the CLI's WebSocket): the platform's roots, plus a test's own.

use std::sync::Arc;

use rustls::ClientConfig;
use rustls::pki_types::CertificateDer;

/// A client configuration verifying against the platform's roots and `extra_roots`, offering
/// `alpn` (a WebSocket must not be offered `h2`: its upgrade is HTTP/1.1's).
pub fn client_config(extra_roots: Vec<CertificateDer<'static>>, alpn: &[&[u8]]) -> Result<Arc<ClientConfig>, String> {
    // Explicit provider: no dependence on which crate installed a process default.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = rustls_platform_verifier::Verifier::new_with_extra_roots(extra_roots, provider.clone())
        .map_err(|error| format!("certificate roots could not be loaded: {error}"))?;
    let mut tls = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| error.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    tls.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
    Ok(Arc::new(tls))
}

use engine::http::probe::{ProbeError, probe};
use http::Version;

use testkit::origin::{self, FINAL_HTML, PLAIN_PAGE, TestCa, allow_all};

#[tokio::test]
async fn https_negotiates_h2_by_alpn_and_times_tls() {
    let ca = TestCa::generate();
    let server = origin::site("127.0.0.1", Some(ca.server_config(&[b"h2", b"http/1.1"]))).await;
    let result = probe(&server.url("/same/one"), &ca.probe_config(), &allow_all()).await.unwrap();

    assert_eq!(result.hops.len(), 2);
    let first = &result.hops[0];
    assert_eq!(first.http_version, "HTTP/2");
    assert_eq!(first.status, 302);
    assert!(first.tls_ms.is_some_and(|ms| ms > 0.0), "TLS timed: {:?}", first.tls_ms);
    assert!(first.connect_ms.is_some());
    assert_eq!(first.dns_ms, None);
    assert!(!first.reused_connection);
    assert!(first.total_ms >= first.tls_ms.unwrap() + first.ttfb_ms);

    // The redirect rides the same HTTP/2 connection.
    let second = &result.hops[1];
    assert!(second.reused_connection);
    assert_eq!((second.dns_ms, second.connect_ms, second.tls_ms), (None, None, None));
    assert_eq!(second.http_version, "HTTP/2");
    assert_eq!(server.connections(), 1);
    assert!(server.seen().iter().all(|seen| seen.version == Version::HTTP_2));
    assert_eq!(result.body, FINAL_HTML.as_bytes());
}

#[tokio::test]
async fn https_by_name_checks_sni_and_decodes_over_h2() {
    let ca = TestCa::generate();
    let server = origin::site("127.0.0.1", Some(ca.server_config(&[b"h2", b"http/1.1"]))).await;
    let result = probe(&server.url_with_host("localhost", "/br"), &ca.probe_config(), &allow_all()).await.unwrap();
    let hop = &result.hops[0];
    assert!(hop.dns_ms.is_some() && hop.tls_ms.is_some());
    assert_eq!(hop.http_version, "HTTP/2");
    assert_eq!(result.body, PLAIN_PAGE);
    assert_eq!(result.content_encoding.as_deref(), Some("br"));
}

#[tokio::test]
async fn https_falls_back_to_http1_without_h2_in_alpn() {
    let ca = TestCa::generate();
    let server = origin::site("127.0.0.1", Some(ca.server_config(&[b"http/1.1"]))).await;
    let result = probe(&server.url("/chain/start"), &ca.probe_config(), &allow_all()).await.unwrap();
    assert!(result.hops.iter().all(|hop| hop.http_version == "HTTP/1.1"));
    assert!(result.hops[0].tls_ms.is_some());
    assert_eq!(server.connections(), 1);
    assert_eq!(result.hops.len(), 3);
}

#[tokio::test]
async fn an_untrusted_certificate_fails_the_tls_phase() {
    let ca = TestCa::generate();
    let server = origin::site("127.0.0.1", Some(ca.server_config(&[b"h2"]))).await;
    // Platform roots only: the test CA is unknown.
    let error = probe(&server.url("/chain/final"), &origin::config(), &allow_all()).await.unwrap_err();
    let ProbeError::Tls { host, reason } = &error else { panic!("{error:?}") };
    assert_eq!(host, "127.0.0.1");
    assert!(reason.contains("certificate"), "{reason}");
    assert!(server.seen().is_empty());
}

#[test]
fn probe_futures_are_send() {
    // The Lambda handler spawns probes onto the multi-threaded runtime.
    fn assert_send<T: Send>(_: &T) {}
    let config = origin::config();
    let check = allow_all();
    let url = url::Url::parse("http://127.0.0.1:9/").unwrap();
    let future = probe(&url, &config, &check);
    assert_send(&future);
}

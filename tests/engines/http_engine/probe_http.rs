use std::net::IpAddr;
use std::time::Duration;

use engine::http::probe::{Phase, ProbeConfig, ProbeError, probe};
use http::header;

use testkit::origin::{self, After, FINAL_HTML, PLAIN_PAGE, allow_all, config, refuse_loopback};

#[tokio::test]
async fn redirect_chain_is_recorded_hop_by_hop() {
    let server = origin::site("127.0.0.1", None).await;
    let result = probe(&server.url("/chain/start"), &config(), &allow_all()).await.unwrap();

    let statuses: Vec<u16> = result.hops.iter().map(|h| h.status).collect();
    assert_eq!(statuses, [301, 302, 200]);
    let paths: Vec<&str> = result.hops.iter().map(|h| h.url.path()).collect();
    assert_eq!(paths, ["/chain/start", "/chain/two", "/chain/final"]);
    let final_url = server.url("/chain/final").to_string();
    let locations: Vec<Option<&str>> = result.hops.iter().map(|h| h.location.as_deref()).collect();
    assert_eq!(locations, [Some("/chain/two"), Some(final_url.as_str()), None]);
    assert_eq!(result.final_url().unwrap().as_str(), final_url);

    // One origin: the browser keeps the first connection for both redirects.
    assert_eq!(server.connections(), 1);
    let reused: Vec<bool> = result.hops.iter().map(|h| h.reused_connection).collect();
    assert_eq!(reused, [false, true, true]);
    let first = &result.hops[0];
    assert_eq!(first.dns_ms, None, "IP literal: no DNS");
    assert!(first.connect_ms.is_some_and(|ms| ms >= 0.0));
    assert_eq!(first.tls_ms, None);
    for hop in &result.hops[1..] {
        assert_eq!((hop.dns_ms, hop.connect_ms, hop.tls_ms), (None, None, None));
    }
    for hop in &result.hops {
        assert_eq!(hop.http_version, "HTTP/1.1");
        assert_eq!(hop.remote_addr, server.addr);
        assert!(hop.ttfb_ms > 0.0 && hop.download_ms >= 0.0);
        assert!(hop.total_ms >= hop.ttfb_ms + hop.download_ms);
        assert!(hop.total_ms >= hop.ttfb_ms + hop.connect_ms.unwrap_or(0.0));
    }
    assert_eq!(result.hops[0].wire_bytes, "moved".len() as u64);

    assert_eq!(result.body, FINAL_HTML.as_bytes());
    assert_eq!(result.wire_bytes, FINAL_HTML.len() as u64);
    assert_eq!(result.decoded_bytes, FINAL_HTML.len() as u64);
    assert!(!result.truncated && !result.incomplete);
    assert_eq!(result.content_encoding, None);
    assert_eq!(result.headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
    assert_eq!(server.paths(), ["/chain/start", "/chain/two", "/chain/final"]);
}

#[tokio::test]
async fn browser_like_request_headers_are_sent() {
    let server = origin::site("127.0.0.1", None).await;
    let config = ProbeConfig { user_agent: "speedbatch-test/1".into(), ..config() };
    probe(&server.url("/chain/final"), &config, &allow_all()).await.unwrap();
    let seen = &server.seen()[0];
    assert_eq!(origin::header_of(seen, header::ACCEPT_ENCODING), "gzip, deflate, br");
    assert_eq!(origin::header_of(seen, header::USER_AGENT), "speedbatch-test/1");
    assert!(origin::header_of(seen, header::ACCEPT).starts_with("text/html"));
    assert_eq!(origin::header_of(seen, header::HOST), server.addr.to_string());
}

#[tokio::test]
async fn host_names_are_resolved_timed_and_checked() {
    let server = origin::site("127.0.0.1", None).await;
    for host in ["localhost", "localhost."] {
        let checked = std::sync::Mutex::new(Vec::new());
        let recording = |ip: IpAddr| {
            checked.lock().unwrap().push(ip);
            Ok(())
        };
        let result = probe(&server.url_with_host(host, "/chain/final"), &config(), &recording).await.unwrap();
        let hop = &result.hops[0];
        assert!(hop.dns_ms.is_some_and(|ms| ms >= 0.0), "{host}: DNS timed");
        assert_eq!(hop.remote_addr, server.addr, "{host}: fell back to the listening address");
        assert!(checked.lock().unwrap().contains(&server.addr.ip()), "{host}: address checked");
        assert_eq!(result.body, FINAL_HTML.as_bytes());
    }
}

#[tokio::test]
async fn gzip_deflate_and_brotli_are_decoded_while_streaming() {
    let server = origin::site("127.0.0.1", None).await;
    for (path, encoding, wire_len) in [
        ("/gzip", "gzip", origin::gzip(PLAIN_PAGE).len()),
        ("/deflate", "deflate", origin::zlib(PLAIN_PAGE).len()),
        ("/br", "br", origin::BROTLI_PAGE.len()),
    ] {
        let result = probe(&server.url(path), &config(), &allow_all()).await.unwrap();
        assert_eq!(result.body, PLAIN_PAGE, "{path}");
        assert_eq!(result.content_encoding.as_deref(), Some(encoding));
        assert_eq!(result.wire_bytes, wire_len as u64, "{path}");
        assert!(result.wire_bytes < result.decoded_bytes, "{path} compresses");
        assert_eq!(result.decoded_bytes, PLAIN_PAGE.len() as u64);
        assert!(!result.truncated && !result.incomplete);
        assert_eq!(result.hops[0].wire_bytes, wire_len as u64);
    }
}

#[tokio::test]
async fn a_decompression_bomb_stops_at_the_decoded_cap() {
    let server = origin::site("127.0.0.1", None).await;
    let cap = 1024 * 1024;
    let config = ProbeConfig { max_decoded_bytes: cap, ..config() };
    let result = probe(&server.url("/bomb"), &config, &allow_all()).await.unwrap();
    assert!(result.truncated);
    assert!(!result.incomplete);
    assert_eq!(result.body.len() as u64, cap);
    assert_eq!(result.decoded_bytes, cap);
    assert!(result.body.iter().all(|&b| b == 0));
    assert!(result.wire_bytes > 0 && result.wire_bytes <= origin::bomb().len() as u64);
}

#[tokio::test]
async fn the_wire_cap_truncates_a_large_body() {
    let server = origin::site("127.0.0.1", None).await;
    let config = ProbeConfig { max_wire_bytes: 10_000, ..config() };
    let result = probe(&server.url("/big"), &config, &allow_all()).await.unwrap();
    assert!(result.truncated);
    assert_eq!(result.wire_bytes, 10_000);
    assert_eq!(result.body.len(), 10_000);

    let roomy = ProbeConfig { max_wire_bytes: 256 * 1024, ..origin::config() };
    let result = probe(&server.url("/big"), &roomy, &allow_all()).await.unwrap();
    assert!(!result.truncated, "exactly at the cap is not truncated");
    assert_eq!(result.wire_bytes, 256 * 1024);
}

#[tokio::test]
async fn phases_are_timed() {
    let server = origin::site("127.0.0.1", None).await;
    let head = probe(&server.url("/slow-head"), &config(), &allow_all()).await.unwrap();
    assert!(head.hops[0].ttfb_ms >= 100.0, "ttfb {}", head.hops[0].ttfb_ms);
    assert!(head.hops[0].total_ms >= 100.0);

    let body = probe(&server.url("/slow-body"), &config(), &allow_all()).await.unwrap();
    assert_eq!(body.body, b"firstsecond");
    assert!(body.hops[0].download_ms >= 100.0, "download {}", body.hops[0].download_ms);
    assert!(body.hops[0].total_ms >= body.hops[0].download_ms);
}

#[tokio::test]
async fn content_length_shorter_than_the_body() {
    let server = origin::raw(
        |_| b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\nhello and bytes that were never declared".to_vec(),
        After::Close,
    )
    .await;
    let result = probe(&server.url("/"), &config(), &allow_all()).await.unwrap();
    assert_eq!(result.body, b"hello");
    assert_eq!(result.wire_bytes, 5);
    assert!(!result.incomplete && !result.truncated);
}

#[tokio::test]
async fn content_length_longer_than_the_body_then_close() {
    let server = origin::raw(
        |_| b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 1000\r\n\r\nonly this much".to_vec(),
        After::Close,
    )
    .await;
    let result = probe(&server.url("/"), &config(), &allow_all()).await.unwrap();
    assert_eq!(result.body, b"only this much");
    assert_eq!(result.wire_bytes, 14);
    assert!(result.incomplete);
    assert!(!result.truncated);
}

#[tokio::test]
async fn content_length_longer_than_the_body_then_silence() {
    let server = origin::raw(
        |_| b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 1000\r\n\r\nonly this much".to_vec(),
        After::Stall,
    )
    .await;
    let config = ProbeConfig { body_idle_timeout: Duration::from_millis(200), ..config() };
    let result = probe(&server.url("/"), &config, &allow_all()).await.unwrap();
    assert_eq!(result.body, b"only this much");
    assert!(result.incomplete);
    assert!(result.hops[0].download_ms >= 200.0);
}

#[tokio::test]
async fn gzip_cut_short_by_the_connection_is_reported_as_received() {
    // The head promises more gzip than arrives; the decodable prefix is kept.
    let server = origin::raw(
        |_| {
            let body = origin::gzip(PLAIN_PAGE);
            let mut response =
                format!("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n", body.len())
                    .into_bytes();
            response.extend_from_slice(&body[..body.len() / 2]);
            response
        },
        After::Close,
    )
    .await;
    let result = probe(&server.url("/"), &config(), &allow_all()).await.unwrap();
    assert!(result.incomplete);
    assert!(!result.body.is_empty());
    assert!(PLAIN_PAGE.starts_with(&result.body));
}

#[tokio::test]
async fn redirect_limits() {
    let server = origin::site("127.0.0.1", None).await;
    let limited = ProbeConfig { max_redirects: 3, ..config() };
    let error = probe(&server.url("/loop"), &limited, &allow_all()).await.unwrap_err();
    assert_eq!(error, ProbeError::TooManyRedirects { limit: 3 });
    assert_eq!(error.to_string(), "more than 3 redirects");
    assert_eq!(server.paths().len(), 4, "three followed, the fourth refused");

    let exact = ProbeConfig { max_redirects: 2, ..config() };
    let result = probe(&server.url("/chain/start"), &exact, &allow_all()).await.unwrap();
    assert_eq!(result.hops.len(), 3);
    let short = ProbeConfig { max_redirects: 1, ..config() };
    assert_eq!(
        probe(&server.url("/chain/start"), &short, &allow_all()).await.unwrap_err(),
        ProbeError::TooManyRedirects { limit: 1 }
    );
    assert_eq!(ProbeConfig::default().max_redirects, 10);
}

#[tokio::test]
async fn a_redirect_without_a_usable_location_is_the_final_hop() {
    let server = origin::site("127.0.0.1", None).await;
    let result = probe(&server.url("/no-location"), &config(), &allow_all()).await.unwrap();
    assert_eq!(result.hops.len(), 1);
    assert_eq!(result.hops[0].status, 302);
    assert_eq!(result.hops[0].location, None);
    assert_eq!(result.body, b"no location");

    let result = probe(&server.url("/empty-location"), &config(), &allow_all()).await.unwrap();
    assert_eq!(result.hops.len(), 1);
    assert_eq!(result.hops[0].location.as_deref(), Some(""));
    assert_eq!(result.body, b"empty location");
}

#[tokio::test]
async fn a_same_host_redirect_reuses_the_connection_other_hosts_do_not() {
    let server = origin::site("127.0.0.1", None).await;
    let result = probe(&server.url("/same/one"), &config(), &allow_all()).await.unwrap();
    assert_eq!(server.connections(), 1);
    let second = &result.hops[1];
    assert!(second.reused_connection);
    assert_eq!((second.dns_ms, second.connect_ms, second.tls_ms), (None, None, None));
    assert_eq!(second.remote_addr, result.hops[0].remote_addr);

    // Same address and port, different host name: a different origin, a new connection.
    let target = server.url_with_host("localhost", "/chain/final");
    let url = server.url(&format!("/redirect?to={}", urlencode(target.as_str())));
    let server_before = server.connections();
    let result = probe(&url, &config(), &allow_all()).await.unwrap();
    assert_eq!(server.connections() - server_before, 2);
    assert!(!result.hops[1].reused_connection);
    assert!(result.hops[1].dns_ms.is_some());
    assert!(result.hops[1].connect_ms.is_some());
}

#[tokio::test]
async fn a_connection_the_server_closes_is_not_reused() {
    let server = origin::site("127.0.0.1", None).await;
    let result = probe(&server.url("/close-redirect"), &config(), &allow_all()).await.unwrap();
    assert_eq!(result.hops.len(), 2);
    assert_eq!(server.connections(), 2);
    assert!(!result.hops[1].reused_connection);
    assert!(result.hops[1].connect_ms.is_some());
    assert_eq!(result.body, FINAL_HTML.as_bytes());
}

#[tokio::test]
async fn a_kept_alive_connection_dropped_by_the_server_is_retried_on_a_new_one() {
    let server = origin::raw(
        |path| match path {
            "/a" => b"HTTP/1.1 302 Found\r\nLocation: /b\r\nContent-Length: 0\r\n\r\n".to_vec(),
            _ => b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone".to_vec(),
        },
        After::DropNextRequest,
    )
    .await;
    let result = probe(&server.url("/a"), &config(), &allow_all()).await.unwrap();
    assert_eq!(result.hops.len(), 2);
    assert_eq!(result.body, b"done");
    assert_eq!(server.connections(), 2);
    let second = &result.hops[1];
    assert!(!second.reused_connection);
    assert!(second.connect_ms.is_some());
    assert_eq!(server.paths(), ["/a", "/b"]);
}

#[tokio::test]
async fn a_refused_literal_is_blocked_before_any_connection() {
    let server = origin::site("127.0.0.1", None).await;
    let error = probe(&server.url("/chain/final"), &config(), &refuse_loopback()).await.unwrap_err();
    assert_eq!(
        error,
        ProbeError::Blocked { host: "127.0.0.1".into(), reason: "loopback address blocked by policy".into() }
    );
    assert_eq!(error.to_string(), "127.0.0.1: loopback address blocked by policy");
    assert_eq!(server.connections(), 0);
    assert!(server.seen().is_empty());
}

#[tokio::test]
async fn a_refused_name_is_blocked_before_any_connection() {
    let server = origin::site("127.0.0.1", None).await;
    let url = server.url_with_host("localhost", "/chain/final");
    let error = probe(&url, &config(), &refuse_loopback()).await.unwrap_err();
    let ProbeError::Blocked { host, reason } = &error else { panic!("{error:?}") };
    assert_eq!(host, "localhost");
    assert!(reason.starts_with("resolves to ") && reason.ends_with(", loopback address blocked by policy"), "{reason}");
    assert_eq!(server.connections(), 0);
}

#[tokio::test]
async fn a_redirect_to_a_refused_address_is_blocked() {
    let allowed = origin::site("127.0.0.1", None).await;
    let refused = origin::site("127.0.0.2", None).await;
    let check = |ip: IpAddr| {
        if ip == IpAddr::from([127, 0, 0, 2]) { Err("private address blocked by policy".to_owned()) } else { Ok(()) }
    };
    // Sanity: the refused server is reachable when allowed, so "no connection" below means
    // the probe did not try.
    assert!(probe(&refused.url("/chain/final"), &config(), &allow_all()).await.is_ok());
    let before = refused.connections();

    let target = refused.url("/chain/final");
    let url = allowed.url(&format!("/redirect?status=307&to={}", urlencode(target.as_str())));
    let error = probe(&url, &config(), &check).await.unwrap_err();
    assert_eq!(
        error,
        ProbeError::Blocked { host: "127.0.0.2".into(), reason: "private address blocked by policy".into() }
    );
    assert_eq!(allowed.paths(), ["/redirect"]);
    assert_eq!(refused.connections(), before);
}

#[tokio::test]
async fn non_http_schemes_are_blocked_initially_and_in_redirects() {
    let server = origin::site("127.0.0.1", None).await;
    let url = server.url(&format!("/redirect?to={}", urlencode("file:///etc/passwd")));
    let error = probe(&url, &config(), &allow_all()).await.unwrap_err();
    assert_eq!(error.to_string(), "file: URLs blocked by policy: only http and https are followed");
    assert!(matches!(error, ProbeError::Blocked { ref host, .. } if host == "file"));

    let direct = url::Url::parse("ftp://127.0.0.1/x").unwrap();
    let error = probe(&direct, &config(), &allow_all()).await.unwrap_err();
    assert_eq!(error.to_string(), "ftp: URLs blocked by policy: only http and https are followed");
}

#[tokio::test]
async fn connection_refused_names_the_address() {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let url = url::Url::parse(&format!("http://{addr}/")).unwrap();
    let error = probe(&url, &config(), &allow_all()).await.unwrap_err();
    assert_eq!(error, ProbeError::Connect { addr, reason: "connection refused".into() });
    assert_eq!(error.to_string(), format!("could not connect to {addr}: connection refused"));
}

#[tokio::test]
async fn a_slow_response_head_times_out_in_its_phase() {
    let server = origin::site("127.0.0.1", None).await;
    let config = ProbeConfig { response_timeout: Duration::from_millis(20), ..config() };
    let error = probe(&server.url("/slow-head"), &config, &allow_all()).await.unwrap_err();
    assert_eq!(error, ProbeError::Timeout { phase: Phase::Response });
    assert_eq!(error.to_string(), "timed out waiting for the server's response");
}

fn urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

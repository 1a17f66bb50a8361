//! The probe's pure parts: address checks, redirects, request forms, encodings and decoding.

use std::io::{self, Write};

use http::StatusCode;
use http::header::{HeaderMap, HeaderValue};

use super::body::{content_encoding_label, content_encodings};
use super::decode::{Sink, Stage, build_decoder};
use super::exchange::build_request;
use super::resolve::{Origin, check_all, check_ip};
use super::*;
use std::net::Ipv4Addr;

fn refuse_private(ip: IpAddr) -> Result<(), String> {
    match ip {
        IpAddr::V4(v4) if v4.is_loopback() => Err("loopback address blocked by policy".into()),
        IpAddr::V4(v4) if v4.is_private() => Err("private address blocked by policy".into()),
        _ => Ok(()),
    }
}

#[test]
fn one_refused_record_refuses_the_whole_answer() {
    let addrs = [
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(93, 184, 215, 14)), 80),
        SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7)), 80),
    ];
    let error = check_all("mixed.example", &addrs, &refuse_private).unwrap_err();
    assert_eq!(
        error,
        ProbeError::Blocked {
            host: "mixed.example".into(),
            reason: "resolves to 10.0.0.7, private address blocked by policy".into(),
        }
    );
    assert!(check_all("public.example", &addrs[..1], &refuse_private).is_ok());
}

#[test]
fn mapped_ipv6_is_checked_as_ipv4() {
    let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
    assert!(check_ip(&refuse_private, mapped).is_err());
}

#[test]
fn non_http_schemes_are_blocked_with_a_plain_message() {
    for raw in ["file:///etc/passwd", "ftp://example.com/", "gopher://x/"] {
        let url = Url::parse(raw).unwrap();
        let error = Origin::of(&url).unwrap_err();
        let scheme = url.scheme().to_owned();
        assert_eq!(error.to_string(), format!("{scheme}: {SCHEME_REFUSED}"));
    }
}

#[test]
fn redirect_targets_need_a_redirect_status_and_a_usable_location() {
    let base = Url::parse("http://a.test/dir/page").unwrap();
    let found = StatusCode::FOUND;
    assert_eq!(redirect_target(found, Some("../x?y=1"), &base).unwrap().as_str(), "http://a.test/x?y=1");
    assert_eq!(
        redirect_target(StatusCode::PERMANENT_REDIRECT, Some("//b.test/"), &base).unwrap().as_str(),
        "http://b.test/"
    );
    assert!(redirect_target(found, None, &base).is_none());
    assert!(redirect_target(found, Some("  "), &base).is_none());
    assert!(redirect_target(found, Some("http://[::1"), &base).is_none());
    assert!(redirect_target(StatusCode::NOT_MODIFIED, Some("/x"), &base).is_none());
    assert!(redirect_target(StatusCode::OK, Some("/x"), &base).is_none());
}

#[test]
fn requests_carry_browser_headers_and_the_right_target_form() {
    let config = ProbeConfig::default();
    let url = Url::parse("http://a.test:8080/p?q=1#frag").unwrap();
    let h1 = build_request(&url, false, &config).unwrap();
    assert_eq!(h1.uri(), "/p?q=1");
    assert_eq!(h1.headers()[header::HOST], "a.test:8080");
    assert_eq!(h1.headers()[header::ACCEPT_ENCODING], "gzip, deflate, br");
    assert_eq!(h1.headers()[header::USER_AGENT], config.user_agent.as_str());
    assert!(h1.headers()[header::ACCEPT].to_str().unwrap().starts_with("text/html"));
    let h2 = build_request(&url, true, &config).unwrap();
    assert_eq!(h2.uri(), "http://a.test:8080/p?q=1");
    assert!(h2.headers().get(header::HOST).is_none());
    let default_port = Url::parse("https://a.test/").unwrap();
    let h1 = build_request(&default_port, false, &config).unwrap();
    assert_eq!(h1.headers()[header::HOST], "a.test");
}

#[test]
fn content_encodings_are_split_lowered_and_identity_free() {
    let mut headers = HeaderMap::new();
    headers.append(header::CONTENT_ENCODING, HeaderValue::from_static("GZIP, identity"));
    headers.append(header::CONTENT_ENCODING, HeaderValue::from_static("br"));
    assert_eq!(content_encodings(&headers), ["gzip", "br"]);
    assert_eq!(content_encoding_label(&headers).as_deref(), Some("gzip, br"));
    assert_eq!(content_encoding_label(&HeaderMap::new()), None);
}

fn decode(encodings: &[&str], input: &[u8], cap: u64, chunk: usize) -> (Vec<u8>, bool, io::Result<()>) {
    let encodings: Vec<String> = encodings.iter().map(|e| e.to_string()).collect();
    let mut sink = Sink::new(cap, true);
    let result = {
        let mut decoder = build_decoder(&encodings, &mut sink);
        let mut result = Ok(());
        for piece in input.chunks(chunk.max(1)) {
            if let Err(error) = decoder.write_all(piece) {
                result = Err(error);
                break;
            }
        }
        if result.is_ok() {
            result = decoder.finish();
        }
        result
    };
    let capped = sink.capped;
    (sink.into_bytes(), capped, result)
}

fn compress(kind: &str, data: &[u8]) -> Vec<u8> {
    use flate2::Compression;
    match kind {
        "gzip" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), Compression::default());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        "zlib" => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), Compression::default());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
        _ => {
            let mut e = flate2::write::DeflateEncoder::new(Vec::new(), Compression::default());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        }
    }
}

#[test]
fn gzip_and_both_deflate_flavours_decode_in_small_chunks() {
    let text = b"<p>hello hello hello hello</p>".repeat(200);
    for (encoding, wire) in
        [("gzip", compress("gzip", &text)), ("deflate", compress("zlib", &text)), ("deflate", compress("raw", &text))]
    {
        for chunk in [1, 7, 4096] {
            let (out, capped, result) = decode(&[encoding], &wire, u64::MAX, chunk);
            assert!(result.is_ok(), "{encoding} chunk {chunk}: {result:?}");
            assert!(!capped);
            assert_eq!(out, text, "{encoding} chunk {chunk}");
        }
    }
}

#[test]
fn stacked_encodings_decode_in_reverse_order() {
    let text = b"layered ".repeat(100);
    let wire = compress("gzip", &compress("zlib", &text));
    let (out, _, result) = decode(&["deflate", "gzip"], &wire, u64::MAX, 100);
    assert!(result.is_ok());
    assert_eq!(out, text);
}

#[test]
fn the_decoded_cap_stops_a_bomb_early() {
    let wire = compress("gzip", &vec![0u8; 8 * 1024 * 1024]);
    assert!(wire.len() < 16 * 1024, "bomb should be small: {}", wire.len());
    let (out, capped, result) = decode(&["gzip"], &wire, 64 * 1024, 1024);
    assert!(capped);
    assert!(result.is_err());
    assert_eq!(out.len(), 64 * 1024);
}

#[test]
fn corrupt_and_unknown_encodings() {
    let (_, capped, result) = decode(&["gzip"], b"definitely not gzip", u64::MAX, 5);
    assert!(!capped);
    assert!(result.is_err());
    let (out, _, result) = decode(&["zstd"], b"opaque", u64::MAX, 5);
    assert!(result.is_ok());
    assert_eq!(out, b"opaque");
}

//! One request and its response head: the target form each HTTP version wants, a browser's
//! headers, and the time to first byte.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response};
use http_body_util::Empty;
use hyper::body::Incoming;
use url::{Position, Url};

use super::connect::{Conn, Sender, protocol_error};
use super::{Phase, ProbeConfig, ProbeError};

pub(super) fn build_request(url: &Url, http2: bool, config: &ProbeConfig) -> Result<Request<Empty<Bytes>>, ProbeError> {
    let invalid = |reason: String| ProbeError::InvalidUrl { reason };
    // HTTP/2 carries scheme and authority as pseudo-headers taken from an absolute URI;
    // HTTP/1.1 wants the origin form plus a Host header.
    let target = if http2 { &url[..Position::AfterQuery] } else { &url[Position::BeforePath..Position::AfterQuery] };
    let mut builder = Request::get(target);
    if !http2 {
        let host = url.host_str().unwrap_or_default();
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        builder = builder.header(header::HOST, authority);
    }
    let mut request = builder.body(Empty::new()).map_err(|error| invalid(error.to_string()))?;
    let headers = request.headers_mut();
    let value = |text: &str| HeaderValue::from_str(text).map_err(|_| invalid(format!("invalid header value {text:?}")));
    headers.insert(header::USER_AGENT, value(&config.user_agent)?);
    headers.insert(header::ACCEPT, value(&config.accept)?);
    headers.insert(header::ACCEPT_LANGUAGE, value(&config.accept_language)?);
    headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip, deflate, br"));
    Ok(request)
}

pub(super) async fn send(
    conn: &mut Conn,
    request: Request<Empty<Bytes>>,
    config: &ProbeConfig,
) -> Result<(Response<Incoming>, Duration), ProbeError> {
    let started = Instant::now();
    let response = match &mut conn.sender {
        Sender::H1(sender) => tokio::time::timeout(config.response_timeout, sender.send_request(request)).await,
        Sender::H2(sender) => tokio::time::timeout(config.response_timeout, sender.send_request(request)).await,
    }
    .map_err(|_| ProbeError::Timeout { phase: Phase::Response })?
    .map_err(protocol_error)?;
    Ok((response, started.elapsed()))
}

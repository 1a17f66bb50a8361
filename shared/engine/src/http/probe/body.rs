//! Reading a response body: as transferred (capped), through the decoder, kept or discarded,
//! and reported as it stands when the server stalls or closes early.

use std::io::Write;

use http::header::{self, HeaderMap};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::decode::{Sink, Stage, build_decoder};
use super::{ProbeConfig, ProbeError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BodyMode {
    /// Redirect bodies are read (so the connection can be reused) and counted, not kept.
    Discard,
    Keep,
}

#[derive(Debug, Default)]
pub(super) struct BodyOutcome {
    pub(super) body: Vec<u8>,
    pub(super) wire_bytes: u64,
    pub(super) truncated: bool,
    pub(super) incomplete: bool,
}

/// `Content-Encoding` values in the order they were applied, `identity` left out.
pub(super) fn content_encodings(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONTENT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|token| token.trim().to_ascii_lowercase())
        .filter(|token| !token.is_empty() && token != "identity")
        .collect()
}

pub(super) fn content_encoding_label(headers: &HeaderMap) -> Option<String> {
    let encodings = content_encodings(headers);
    (!encodings.is_empty()).then(|| encodings.join(", "))
}

pub(super) async fn read_body(
    mut body: Incoming,
    encodings: &[String],
    config: &ProbeConfig,
    mode: BodyMode,
) -> Result<BodyOutcome, ProbeError> {
    let cap = match mode {
        BodyMode::Keep => config.max_decoded_bytes,
        BodyMode::Discard => 0,
    };
    let mut sink = Sink::new(cap, mode == BodyMode::Keep);
    let mut outcome = BodyOutcome::default();
    let mut decode_error = None;
    {
        let mut decoder = build_decoder(encodings, &mut sink);
        loop {
            let frame = match tokio::time::timeout(config.body_idle_timeout, body.frame()).await {
                Ok(Some(Ok(frame))) => frame,
                Ok(None) => break,
                // A closed connection or reset stream before the declared end: keep what came.
                Ok(Some(Err(_))) | Err(_) => {
                    outcome.incomplete = true;
                    break;
                }
            };
            let Ok(data) = frame.into_data() else { continue };
            let room = config.max_wire_bytes.saturating_sub(outcome.wire_bytes);
            let take = data.len().min(usize::try_from(room).unwrap_or(usize::MAX));
            outcome.wire_bytes += take as u64;
            if let Err(error) = decoder.write_all(&data[..take]) {
                if decoder.sink_capped() {
                    outcome.truncated = true;
                } else {
                    decode_error = Some(error);
                }
                break;
            }
            if take < data.len() {
                outcome.truncated = true;
                break;
            }
        }
        let cut_short = outcome.truncated || outcome.incomplete;
        if decode_error.is_none() {
            // A cut-short stream cannot end cleanly; flush what decodes and stop there.
            if let Err(error) = decoder.finish() {
                if !cut_short && !decoder.sink_capped() {
                    decode_error = Some(error);
                }
                if decoder.sink_capped() {
                    outcome.truncated = true;
                }
            }
        }
    }
    if let Some(error) = decode_error {
        return Err(ProbeError::Body {
            reason: format!("{} content could not be decoded: {error}", encodings.join(", ")),
        });
    }
    outcome.body = sink.into_bytes();
    Ok(outcome)
}

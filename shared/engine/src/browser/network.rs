//! The page's network log, kept from the DevTools `Network` events as they arrive: the
//! document's response (status, time to first byte), requests and bytes by type, and what is
//! still in flight (the engine waits for the network to go quiet, as Lighthouse does).

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use serde_json::{Value, json};

/// What a request was for, as results report it.
fn kind(resource_type: &str) -> &'static str {
    match resource_type {
        "Document" => "document",
        "Script" => "script",
        "Stylesheet" => "stylesheet",
        "Image" => "image",
        "Font" => "font",
        "Media" => "media",
        "XHR" | "Fetch" | "EventSource" => "xhr",
        _ => "other",
    }
}

/// The document's final response.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Document {
    pub status: u16,
    pub url: String,
    pub protocol: Option<String>,
    /// From the request sent to the first byte of the response head (Lighthouse's server
    /// response time), ms.
    pub ttfb_ms: Option<f64>,
    /// Answered by the engine's proxy (a refused or unreachable address), not the site.
    pub from_proxy: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Tally {
    requests: u64,
    bytes: u64,
}

#[derive(Debug)]
pub struct NetworkLog {
    /// The document's request id (the navigation's loader id).
    document_id: Option<String>,
    pub document: Option<Document>,
    types: BTreeMap<String, &'static str>,
    by_type: BTreeMap<&'static str, Tally>,
    in_flight: HashSet<String>,
    failed: u64,
    /// When a request last started or ended.
    pub last_change: Instant,
}

impl Default for NetworkLog {
    fn default() -> Self {
        NetworkLog {
            document_id: None,
            document: None,
            types: BTreeMap::new(),
            by_type: BTreeMap::new(),
            in_flight: HashSet::new(),
            failed: 0,
            last_change: Instant::now(),
        }
    }
}

impl NetworkLog {
    /// The navigation's loader id: its document is the request with that id.
    pub fn expect_document(&mut self, loader_id: &str) {
        self.document_id = Some(loader_id.to_owned());
    }

    /// Takes one `Network.*` event into account (others are ignored).
    pub fn record(&mut self, method: &str, params: &Value, now: Instant) {
        let Some(id) = params["requestId"].as_str() else { return };
        match method {
            "Network.requestWillBeSent" => {
                // A redirect reuses the request id: one request from the page's point of view.
                if self.in_flight.insert(id.to_owned()) {
                    let kind = kind(params["type"].as_str().unwrap_or("Other"));
                    self.types.insert(id.to_owned(), kind);
                    self.by_type.entry(kind).or_default().requests += 1;
                }
                self.last_change = now;
            }
            "Network.responseReceived" if self.document_id.as_deref() == Some(id) => {
                self.document = Some(document(&params["response"]));
            }
            "Network.loadingFinished" | "Network.loadingFailed" => {
                if self.in_flight.remove(id) {
                    self.last_change = now;
                }
                if method == "Network.loadingFailed" {
                    self.failed += 1;
                }
                let bytes = params["encodedDataLength"].as_f64().unwrap_or(0.0).max(0.0) as u64;
                if let Some(kind) = self.types.get(id) {
                    self.by_type.entry(kind).or_default().bytes += bytes;
                }
            }
            _ => {}
        }
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    pub fn total_requests(&self) -> u64 {
        self.by_type.values().map(|t| t.requests).sum()
    }

    pub fn total_bytes(&self) -> u64 {
        self.by_type.values().map(|t| t.bytes).sum()
    }

    /// `{type: {requests, bytes}}` for every type seen.
    pub fn by_type(&self) -> Value {
        let types: serde_json::Map<String, Value> = self
            .by_type
            .iter()
            .map(|(kind, t)| ((*kind).to_owned(), json!({"requests": t.requests, "bytes": t.bytes})))
            .collect();
        Value::Object(types)
    }

    pub fn failed(&self) -> u64 {
        self.failed
    }
}

fn document(response: &Value) -> Document {
    let timing = &response["timing"];
    let sent = timing["sendEnd"].as_f64();
    let first_byte =
        timing["receiveHeadersStart"].as_f64().filter(|t| *t > 0.0).or(timing["receiveHeadersEnd"].as_f64());
    let from_proxy = response["headers"]
        .as_object()
        .is_some_and(|headers| headers.keys().any(|name| name.eq_ignore_ascii_case(super::proxy::REFUSED_HEADER)));
    Document {
        status: response["status"].as_u64().and_then(|s| u16::try_from(s).ok()).unwrap_or(0),
        url: response["url"].as_str().unwrap_or_default().to_owned(),
        protocol: response["protocol"].as_str().map(str::to_owned),
        ttfb_ms: sent.zip(first_byte).map(|(sent, first)| ((first - sent).max(0.0) * 10.0).round() / 10.0),
        from_proxy,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_bytes_are_counted_by_type_and_the_document_is_read_from_its_response() {
        let mut log = NetworkLog::default();
        let now = Instant::now();
        log.expect_document("L1");
        let sent = |id: &str, kind: &str| json!({"requestId": id, "type": kind});
        log.record("Network.requestWillBeSent", &sent("L1", "Document"), now);
        // The document's redirect: the same request id again.
        log.record("Network.requestWillBeSent", &sent("L1", "Document"), now);
        log.record(
            "Network.responseReceived",
            &json!({"requestId": "L1", "response": {"status": 200, "url": "https://a.example/", "protocol": "h2",
                "headers": {"content-type": "text/html"},
                "timing": {"sendEnd": 10.0, "receiveHeadersStart": 130.04, "receiveHeadersEnd": 131.0}}}),
            now,
        );
        log.record("Network.loadingFinished", &json!({"requestId": "L1", "encodedDataLength": 5000}), now);
        log.record("Network.requestWillBeSent", &sent("2", "Script"), now);
        log.record("Network.requestWillBeSent", &sent("3", "Fetch"), now);
        assert_eq!(log.in_flight(), 2);
        log.record("Network.loadingFinished", &json!({"requestId": "2", "encodedDataLength": 700}), now);
        log.record("Network.loadingFailed", &json!({"requestId": "3", "errorText": "net::ERR_FAILED"}), now);
        assert_eq!(log.in_flight(), 0);
        assert_eq!((log.total_requests(), log.total_bytes(), log.failed()), (3, 5700, 1));
        assert_eq!(log.by_type()["script"], json!({"requests": 1, "bytes": 700}));
        assert_eq!(log.by_type()["xhr"]["requests"], 1);
        let document = log.document.unwrap();
        assert_eq!((document.status, document.ttfb_ms, document.from_proxy), (200, Some(120.0), false));
    }
}

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

/// When a request started and ended on the browser's clock (seconds), and whether Lighthouse
/// would leave it off a largest paint's path (a low-priority image: most likely offscreen).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Span {
    start: f64,
    end: Option<f64>,
    offscreen_image: bool,
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
    spans: BTreeMap<String, Span>,
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
            spans: BTreeMap::new(),
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
                    if let Some(start) = params["timestamp"].as_f64() {
                        let priority = params["request"]["initialPriority"].as_str().unwrap_or_default();
                        let offscreen_image = kind == "image" && matches!(priority, "Low" | "VeryLow");
                        self.spans.entry(id.to_owned()).or_insert(Span { start, end: None, offscreen_image });
                    }
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
                if let (Some(span), Some(end)) = (self.spans.get_mut(id), params["timestamp"].as_f64()) {
                    span.end = Some(end);
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

    /// The largest contentful paint as Lighthouse's simulation (Lantern, 12.x) counts it, from
    /// the paint Chrome saw at `painted_ms` (from navigation start). Lantern takes every request
    /// finished before the paint in its unthrottled load to be on the paint's path — the
    /// document, stylesheets, fonts and scripts alike — and the paint to come only once they
    /// have all arrived under throttling: half of it without low-priority images (optimistic),
    /// half with them (pessimistic). Under throttling the requests begun before the paint are
    /// those: where the page had started fonts and scripts it paints before they arrive, and
    /// Lighthouse's LCP waits for them. `None` without the document's timing.
    pub fn lighthouse_lcp(&self, painted_ms: f64) -> Option<f64> {
        let origin = self.spans.get(self.document_id.as_deref()?)?.start;
        let arrived_by = |with_offscreen_images: bool| {
            self.spans
                .values()
                .filter(|span| (span.start - origin) * 1000.0 <= painted_ms)
                .filter(|span| with_offscreen_images || !span.offscreen_image)
                .filter_map(|span| span.end)
                .map(|end| (end - origin) * 1000.0)
                .fold(painted_ms, f64::max)
        };
        Some((arrived_by(false) + arrived_by(true)) / 2.0)
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

    #[test]
    fn lighthouses_lcp_waits_for_what_had_started_before_the_paint() {
        let mut log = NetworkLog::default();
        let now = Instant::now();
        log.expect_document("D");
        let sent = |id: &str, kind: &str, priority: &str, at: f64| json!({"requestId": id, "type": kind, "timestamp": at, "request": {"initialPriority": priority}});
        let done = |id: &str, at: f64| json!({"requestId": id, "timestamp": at, "encodedDataLength": 1});
        log.record("Network.requestWillBeSent", &sent("D", "Document", "VeryHigh", 100.0), now);
        log.record("Network.loadingFinished", &done("D", 101.0), now);
        // A font started at 1.5 s, arriving at 6 s; an offscreen image started at 2 s,
        // arriving at 9 s; a script started after the paint (3 s) counts for nothing.
        log.record("Network.requestWillBeSent", &sent("F", "Font", "High", 101.5), now);
        log.record("Network.loadingFinished", &done("F", 106.0), now);
        log.record("Network.requestWillBeSent", &sent("I", "Image", "Low", 102.0), now);
        log.record("Network.loadingFinished", &done("I", 109.0), now);
        log.record("Network.requestWillBeSent", &sent("S", "Script", "Low", 104.0), now);
        log.record("Network.loadingFinished", &done("S", 120.0), now);
        let lcp = log.lighthouse_lcp(3_000.0).unwrap();
        assert!((lcp - (6_000.0 + 9_000.0) / 2.0).abs() < 1e-6, "{lcp}");
        // A paint after everything it needed: as painted.
        assert_eq!(log.lighthouse_lcp(25_000.0), Some(25_000.0));
        assert_eq!(NetworkLog::default().lighthouse_lcp(3_000.0), None, "no document: no clock to place requests on");
    }
}

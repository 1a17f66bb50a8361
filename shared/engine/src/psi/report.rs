//! Reading a PageSpeed Insights v5 response: category scores, Lighthouse's lab metrics,
//! field data (CrUX) for the page and its origin, and why anything is missing. A missing
//! measurement is reported as unavailable, with the reason, never as zero.

use domain::field::{FieldMetric, FieldRecord, FieldSource};
use serde_json::{Map, Value, json};

/// Lab metrics: the name stored, the Lighthouse audit it comes from.
const LAB: [(&str, &str); 7] = [
    ("fcp_ms", "first-contentful-paint"),
    ("lcp_ms", "largest-contentful-paint"),
    ("tbt_ms", "total-blocking-time"),
    ("cls", "cumulative-layout-shift"),
    ("speed_index_ms", "speed-index"),
    ("ttfb_ms", "server-response-time"),
    ("interactive_ms", "interactive"),
];

/// Field metrics: each as PageSpeed Insights names it.
const FIELD: [(FieldMetric, &str); 5] = [
    (FieldMetric::Lcp, "LARGEST_CONTENTFUL_PAINT_MS"),
    (FieldMetric::Cls, "CUMULATIVE_LAYOUT_SHIFT_SCORE"),
    (FieldMetric::Inp, "INTERACTION_TO_NEXT_PAINT"),
    (FieldMetric::Fcp, "FIRST_CONTENTFUL_PAINT_MS"),
    (FieldMetric::Ttfb, "EXPERIMENTAL_TIME_TO_FIRST_BYTE"),
];

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum ReportError {
    #[error("the PageSpeed Insights response has no Lighthouse result")]
    NoLighthouseResult,
    #[error("the Lighthouse result has no {0}")]
    Incomplete(&'static str),
    #[error("Lighthouse could not analyse the page: {code}: {message}")]
    Runtime { code: String, message: String },
}

/// What a response says, flattened into the metrics stored for the URL.
#[derive(Debug, PartialEq)]
pub struct Report {
    /// The performance category, 0–100.
    pub score: Option<f64>,
    pub metrics: Map<String, Value>,
}

fn round(value: f64, places: i32) -> f64 {
    let factor = 10f64.powi(places);
    (value * factor).round() / factor
}

/// Reads a `runPagespeed` response body.
pub fn parse(body: &Value) -> Result<Report, ReportError> {
    let lighthouse = body.get("lighthouseResult").filter(|v| v.is_object()).ok_or(ReportError::NoLighthouseResult)?;
    if let Some(error) = lighthouse.get("runtimeError").filter(|e| e.get("code").is_some()) {
        let text = |name: &str| error.get(name).and_then(Value::as_str).unwrap_or_default().to_owned();
        return Err(ReportError::Runtime { code: text("code"), message: text("message") });
    }
    let audits = lighthouse.get("audits").and_then(Value::as_object).ok_or(ReportError::Incomplete("audits"))?;
    let categories =
        lighthouse.get("categories").and_then(Value::as_object).ok_or(ReportError::Incomplete("categories"))?;
    let mut metrics = Map::new();
    let mut unavailable = Map::new();

    let mut score = None;
    for (id, category) in categories {
        let name = format!("score_{}", id.replace('-', "_"));
        match category.get("score").and_then(Value::as_f64) {
            Some(value) => {
                let value = round(value * 100.0, 0);
                if id == "performance" {
                    score = Some(value);
                }
                metrics.insert(name, json!(value));
            }
            None => {
                unavailable.insert(name, json!("Lighthouse gave the category no score"));
            }
        }
    }

    for (name, audit_id) in LAB {
        let Some(audit) = audits.get(audit_id) else {
            unavailable.insert(name.into(), json!(format!("no {audit_id} audit in this Lighthouse result")));
            continue;
        };
        if audit.get("scoreDisplayMode").and_then(Value::as_str) == Some("error") {
            let message = audit.get("errorMessage").and_then(Value::as_str).unwrap_or("the audit failed");
            unavailable.insert(name.into(), json!(format!("{audit_id}: {message}")));
            continue;
        }
        match audit.get("numericValue").and_then(Value::as_f64) {
            Some(value) => {
                let places = if name == "cls" { 4 } else { 1 };
                metrics.insert(name.into(), json!(round(value, places)));
            }
            None => {
                unavailable.insert(name.into(), json!(format!("the {audit_id} audit has no value")));
            }
        }
    }

    // Field data: the page's own, else the origin's (PSI says so with `origin_fallback`).
    let page = body.get("loadingExperience");
    let origin = body.get("originLoadingExperience");
    let has_metrics =
        |e: Option<&Value>| e.and_then(|e| e.get("metrics")).and_then(Value::as_object).is_some_and(|m| !m.is_empty());
    let field = match (has_metrics(page), has_metrics(origin)) {
        (true, _) if page.and_then(|p| p.get("origin_fallback")).and_then(Value::as_bool) != Some(true) => {
            Some((page, FieldSource::Url))
        }
        (true, _) => Some((page, FieldSource::Origin)),
        (false, true) => Some((origin, FieldSource::Origin)),
        (false, false) => None,
    };
    match field {
        Some((Some(experience), source)) => {
            // Judged here from the p75s, as a record from the CrUX API is: one vocabulary.
            let values = experience.get("metrics").and_then(Value::as_object);
            let p75 = FIELD
                .iter()
                .filter_map(|(metric, name)| {
                    let percentile = values?.get(*name)?.get("percentile").and_then(Value::as_f64)?;
                    // PSI gives CLS ×100 as an integer.
                    Some((*metric, if *metric == FieldMetric::Cls { round(percentile / 100.0, 2) } else { percentile }))
                })
                .collect();
            metrics.extend(FieldRecord { source, period: None, p75 }.metrics(""));
        }
        _ => {
            unavailable.insert("field_data".into(), json!("the Chrome UX Report has no data for this page or origin"));
        }
    }

    for (name, key) in [("final_url", "finalDisplayedUrl"), ("lighthouse_version", "lighthouseVersion")] {
        let value =
            lighthouse.get(key).or_else(|| (key == "finalDisplayedUrl").then(|| lighthouse.get("finalUrl")).flatten());
        if let Some(Value::String(text)) = value {
            metrics.insert(name.into(), json!(text));
        }
    }
    let warnings: Vec<Value> = lighthouse
        .get("runWarnings")
        .and_then(Value::as_array)
        .map(|w| w.iter().filter(|w| w.is_string()).cloned().collect())
        .unwrap_or_default();
    if !warnings.is_empty() {
        metrics.insert("warnings".into(), Value::Array(warnings));
    }
    if !unavailable.is_empty() {
        metrics.insert("unavailable".into(), Value::Object(unavailable));
    }
    Ok(Report { score, metrics })
}

/// How a failed request should be treated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FailureClass {
    /// The per-minute or per-100-seconds quota: wait a little.
    RateLimited,
    /// The day's quota: wait for its reset.
    DailyQuota,
    /// Worth trying again a bounded number of times.
    Transient,
    /// Trying again cannot help.
    Permanent(domain::ErrorKind),
}

/// A failed `runPagespeed` call, classified, with Google's own words for the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub class: FailureClass,
    pub reason: String,
}

/// Reasons shown to users are kept short.
const MAX_REASON_CHARS: usize = 300;

/// Classifies a non-200 answer from its status and body (Google's JSON error, or anything).
pub fn classify(status: u16, body: &str) -> Failure {
    classify_google("PageSpeed Insights", status, body)
}

/// Classifies a non-200 answer of a Google API (`service` names it where the body does not):
/// the quota's 429s wait, a refused key is the deployment's problem, another 400 the URL's.
pub fn classify_google(service: &str, status: u16, body: &str) -> Failure {
    use domain::ErrorKind;
    let json: Option<Value> = serde_json::from_str(body).ok();
    let message = json
        .as_ref()
        .and_then(|j| j.pointer("/error/message"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("HTTP {status} from {service}"));
    let reason: String = redact_project(&message).chars().take(MAX_REASON_CHARS).collect();
    let class = if status == 429 {
        let limit = json.as_ref().and_then(|j| j.pointer("/error/details")).map(Value::to_string).unwrap_or_default();
        if message.contains("per day") || limit.contains("PerDay") {
            FailureClass::DailyQuota
        } else {
            FailureClass::RateLimited
        }
    } else if let Some(class) = lighthouse_verdict(&message) {
        class
    } else if status == 400 && message.contains("API key") || status == 403 {
        FailureClass::Permanent(ErrorKind::EngineUnavailable)
    } else if status == 400 {
        FailureClass::Permanent(ErrorKind::InvalidUrl)
    } else {
        // Plain 5xx and timeouts: PSI often succeeds later.
        FailureClass::Transient
    };
    Failure { class, reason }
}

/// A Lighthouse run that failed inside a 200 answer (`lighthouseResult.runtimeError`), classified
/// as an error answer with the same code would be.
pub fn runtime_failure(code: &str, message: &str) -> Failure {
    let text = format!("{code}: {message}");
    Failure {
        class: lighthouse_verdict(&text).unwrap_or(FailureClass::Transient),
        reason: redact_project(&text).chars().take(MAX_REASON_CHARS).collect(),
    }
}

/// What a Lighthouse error code says about trying again. The page's own answer decides an
/// `ERRORED_DOCUMENT_REQUEST`: a 404 stays a 404, but 408 and 429 are the site's load and
/// pass. A page that is not HTML, or is refused over insecure TLS, never becomes auditable.
/// Unknown codes are `None`: the HTTP status decides.
fn lighthouse_verdict(message: &str) -> Option<FailureClass> {
    use domain::ErrorKind;
    const TRANSIENT: [&str; 9] = [
        "FAILED_DOCUMENT_REQUEST",
        "NO_FCP",
        "NO_LCP",
        "PROTOCOL_TIMEOUT",
        "PAGE_HUNG",
        "CRI_TIMEOUT",
        "TARGET_CRASHED",
        "NO_NAVSTART",
        "NO_DOCUMENT_REQUEST",
    ];
    let has = |code: &str| {
        message.match_indices(code).any(|(at, _)| {
            let is_code = |c: char| c.is_ascii_alphanumeric() || c == '_';
            !message[..at].ends_with(is_code) && !message[at + code.len()..].starts_with(is_code)
        })
    };
    if has("DNS_FAILURE") {
        Some(FailureClass::Permanent(ErrorKind::Dns))
    } else if has("ERRORED_DOCUMENT_REQUEST") {
        Some(match document_status(message) {
            Some(408 | 429) | None => FailureClass::Transient,
            Some(code) if (400..500).contains(&code) => FailureClass::Permanent(ErrorKind::Http4xx),
            Some(_) => FailureClass::Transient,
        })
    } else if has("NOT_HTML") || has("INSECURE_DOCUMENT_REQUEST") {
        Some(FailureClass::Permanent(ErrorKind::InvalidUrl))
    } else if TRANSIENT.iter().any(|code| has(code)) {
        Some(FailureClass::Transient)
    } else {
        None
    }
}

/// Google's quota messages name the key's Cloud project ("for consumer
/// 'project_number:123456'"): reasons are shown to tenants, who have no business knowing it.
fn redact_project(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    loop {
        let next = ["project_number:", "projects/"].iter().filter_map(|m| rest.find(m).map(|i| (i, m.len()))).min();
        let Some((at, len)) = next else {
            out.push_str(rest);
            return out;
        };
        out.push_str(&rest[..at + len]);
        rest = &rest[at + len..];
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits > 0 {
            out.push_str("[redacted]");
            rest = &rest[digits..];
        }
    }
}

/// The page's status code in an `ERRORED_DOCUMENT_REQUEST` message ("(Status code: 404)").
fn document_status(message: &str) -> Option<u16> {
    let rest = &message[message.find("Status code: ")? + "Status code: ".len()..];
    rest.chars().take_while(char::is_ascii_digit).collect::<String>().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::ErrorKind;

    fn lighthouse() -> Value {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/lighthouse/sample_v2.json");
        serde_json::from_str(&std::fs::read_to_string(path).expect("the Lighthouse fixture")).expect("fixture JSON")
    }

    fn crux(lcp: u64, cls: u64, overall: &str) -> Value {
        json!({
            "metrics": {
                "LARGEST_CONTENTFUL_PAINT_MS": {"percentile": lcp, "category": "AVERAGE"},
                "CUMULATIVE_LAYOUT_SHIFT_SCORE": {"percentile": cls, "category": "FAST"},
                "INTERACTION_TO_NEXT_PAINT": {"percentile": 180, "category": "FAST"}
            },
            "overall_category": overall
        })
    }

    /// The fixture as PSI wraps it.
    fn response(lighthouse: Value) -> Value {
        json!({
            "kind": "pagespeedonline#result",
            "id": "https://example.com/",
            "loadingExperience": crux(2_900, 5, "AVERAGE"),
            "originLoadingExperience": crux(2_100, 2, "FAST"),
            "analysisUTCTimestamp": "2026-11-28T12:00:00.000Z",
            "lighthouseResult": lighthouse
        })
    }

    #[test]
    fn reads_scores_lab_metrics_and_field_data_of_a_real_result() {
        let report = parse(&response(lighthouse())).unwrap();
        let m = &report.metrics;
        assert_eq!(report.score, Some(32.0));
        assert_eq!((m["score_accessibility"].clone(), m["score_seo"].clone()), (json!(75.0), json!(75.0)));
        assert_eq!(m["score_best_practices"], 31.0);
        assert_eq!(m["fcp_ms"], 6795.4);
        assert_eq!(m["lcp_ms"], 10884.7);
        assert_eq!(m["tbt_ms"], 1055.2);
        assert_eq!(m["cls"], 0.0996);
        assert_eq!(m["speed_index_ms"], 8296.0);
        assert_eq!(m["ttfb_ms"], 8.0);
        assert_eq!(m["interactive_ms"], 8012.5);
        assert_eq!(m["field_source"], "url");
        assert_eq!(
            (m["field_lcp_ms"].clone(), m["field_lcp_ms_category"].clone()),
            (json!(2900.0), json!("needs_improvement"))
        );
        assert_eq!(m["field_cls"], 0.05);
        assert_eq!(m["field_overall_category"], "needs_improvement");
        assert_eq!(m["lighthouse_version"], "13.4.1");
        assert_eq!(m["final_url"], "http://localhost:10200/dobetterweb/dbw_tester.html");
        assert!(m.get("unavailable").is_none(), "{:?}", m.get("unavailable"));
    }

    #[test]
    fn a_missing_or_broken_audit_is_unavailable_never_zero() {
        let mut lighthouse = lighthouse();
        let audits = lighthouse["audits"].as_object_mut().unwrap();
        audits.remove("largest-contentful-paint");
        let renamed = audits.remove("total-blocking-time").unwrap();
        audits.insert("total-blocking-time-v2".into(), renamed);
        audits.get_mut("speed-index").unwrap().as_object_mut().unwrap().remove("numericValue");
        let cls = audits.get_mut("cumulative-layout-shift").unwrap();
        cls["scoreDisplayMode"] = json!("error");
        cls["errorMessage"] = json!("Layout shifts could not be measured");
        lighthouse["categories"]["seo"]["score"] = Value::Null;
        let report = parse(&response(lighthouse)).unwrap();
        let m = &report.metrics;
        for name in ["lcp_ms", "tbt_ms", "speed_index_ms", "cls", "score_seo"] {
            assert!(m.get(name).is_none(), "{name} must be absent, not zero");
            assert!(m["unavailable"][name].is_string(), "{name} has a reason");
        }
        assert_eq!(m["unavailable"]["cls"], "cumulative-layout-shift: Layout shifts could not be measured");
        assert_eq!(m["unavailable"]["lcp_ms"], "no largest-contentful-paint audit in this Lighthouse result");
        assert_eq!(m["fcp_ms"], 6795.4, "the rest is still read");
    }

    #[test]
    fn field_data_falls_back_to_the_origin_and_may_be_absent() {
        let mut body = response(lighthouse());
        body["loadingExperience"] = json!({"id": "https://example.com/", "metrics": {}});
        let m = parse(&body).unwrap().metrics;
        assert_eq!((m["field_source"].clone(), m["field_lcp_ms"].clone()), (json!("origin"), json!(2100.0)));
        body["loadingExperience"] = crux(2_100, 2, "FAST");
        body["loadingExperience"]["origin_fallback"] = json!(true);
        assert_eq!(parse(&body).unwrap().metrics["field_source"], "origin");
        body.as_object_mut().unwrap().remove("loadingExperience");
        body.as_object_mut().unwrap().remove("originLoadingExperience");
        let m = parse(&body).unwrap().metrics;
        assert!(m.get("field_source").is_none());
        assert!(m["unavailable"]["field_data"].is_string());
    }

    #[test]
    fn a_failed_run_inside_a_200_is_classified_by_its_code() {
        let dns = runtime_failure("DNS_FAILURE", "DNS servers could not resolve the provided domain.");
        assert_eq!(dns.class, FailureClass::Permanent(ErrorKind::Dns));
        assert_eq!(dns.reason, "DNS_FAILURE: DNS servers could not resolve the provided domain.");
        let gone =
            runtime_failure("ERRORED_DOCUMENT_REQUEST", "Lighthouse was unable to load the page. (Status code: 410)");
        assert_eq!(gone.class, FailureClass::Permanent(ErrorKind::Http4xx));
        assert_eq!(runtime_failure("NO_FCP", "The page did not paint any content.").class, FailureClass::Transient);
        assert_eq!(runtime_failure("SOMETHING_NEW", "").class, FailureClass::Transient, "unknown: a bounded retry");
    }

    #[test]
    fn responses_without_a_usable_result_are_errors() {
        assert_eq!(parse(&json!({"kind": "pagespeedonline#result"})), Err(ReportError::NoLighthouseResult));
        let mut lighthouse = lighthouse();
        lighthouse["runtimeError"] = json!({"code": "NO_FCP", "message": "The page did not paint any content."});
        assert!(matches!(parse(&response(lighthouse)), Err(ReportError::Runtime { code, .. }) if code == "NO_FCP"));
        let mut lighthouse = self::lighthouse();
        lighthouse.as_object_mut().unwrap().remove("audits");
        assert_eq!(parse(&response(lighthouse)), Err(ReportError::Incomplete("audits")));
    }

    fn google(code: u16, message: &str, quota_limit: &str) -> String {
        json!({"error": {"code": code, "message": message, "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "RATE_LIMIT_EXCEEDED",
                         "metadata": {"quota_limit": quota_limit}}]}})
        .to_string()
    }

    #[test]
    fn every_error_class() {
        let cases = [
            (
                429,
                google(
                    429,
                    "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute'",
                    "defaultPerMinutePerProject",
                ),
                FailureClass::RateLimited,
            ),
            (
                429,
                google(
                    429,
                    "Quota exceeded for quota metric 'Queries' and limit 'Queries per 100 seconds'",
                    "defaultPer100SecondsPerProject",
                ),
                FailureClass::RateLimited,
            ),
            (
                429,
                google(
                    429,
                    "Quota exceeded for quota metric 'Queries' and limit 'Queries per day'",
                    "defaultPerDayPerProject",
                ),
                FailureClass::DailyQuota,
            ),
            (
                500,
                google(
                    500,
                    "Lighthouse returned error: FAILED_DOCUMENT_REQUEST. Lighthouse was unable to reliably load the page you requested. (Details: net::ERR_TIMED_OUT)",
                    "",
                ),
                FailureClass::Transient,
            ),
            (
                500,
                google(
                    500,
                    "Lighthouse returned error: ERRORED_DOCUMENT_REQUEST. Lighthouse was unable to reliably load the page you requested. (Status code: 404)",
                    "",
                ),
                FailureClass::Permanent(ErrorKind::Http4xx),
            ),
            (
                500,
                google(
                    500,
                    "Lighthouse returned error: ERRORED_DOCUMENT_REQUEST. Lighthouse was unable to reliably load the page you requested. (Status code: 503)",
                    "",
                ),
                FailureClass::Transient,
            ),
            (
                500,
                google(
                    500,
                    "Lighthouse returned error: DNS_FAILURE. DNS servers could not resolve the provided domain.",
                    "",
                ),
                FailureClass::Permanent(ErrorKind::Dns),
            ),
            (
                400,
                google(400, "Invalid value at 'url' (TYPE_STRING), \"nope\"", ""),
                FailureClass::Permanent(ErrorKind::InvalidUrl),
            ),
            (
                400,
                google(400, "API key not valid. Please pass a valid API key.", ""),
                FailureClass::Permanent(ErrorKind::EngineUnavailable),
            ),
            (
                500,
                google(
                    500,
                    "Lighthouse returned error: ERRORED_DOCUMENT_REQUEST. Lighthouse was unable to reliably load the page you requested. (Status code: 429)",
                    "",
                ),
                FailureClass::Transient,
            ),
            (
                400,
                google(
                    400,
                    "Lighthouse returned error: NOT_HTML. The page provided is not HTML (served as MIME type application/pdf).",
                    "",
                ),
                FailureClass::Permanent(ErrorKind::InvalidUrl),
            ),
            (
                500,
                google(500, "Lighthouse returned error: NO_FCP. The page did not paint any content.", ""),
                FailureClass::Transient,
            ),
            (502, "<html>Bad Gateway</html>".to_owned(), FailureClass::Transient),
        ];
        for (status, body, class) in cases {
            let failure = classify(status, &body);
            assert_eq!(failure.class, class, "{status} {body}");
            assert!(!failure.reason.is_empty());
        }
        assert_eq!(classify(502, "<html>").reason, "HTTP 502 from PageSpeed Insights");
        // A code is a whole word: "NO_FCP_EXTRA" is not NO_FCP, and an unknown one leaves the
        // decision to the status.
        assert_eq!(lighthouse_verdict("Lighthouse returned error: NO_FCP_EXTRA."), None);
        let quota = google(
            429,
            "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute' of service \
             'pagespeedonline.googleapis.com' for consumer 'project_number:583797351490'.",
            "defaultPerMinutePerProject",
        );
        let reason = classify(429, &quota).reason;
        assert!(reason.contains("'project_number:[redacted]'") && !reason.contains("583797351490"), "{reason}");
        assert_eq!(redact_project("projects/12 and projects/ab"), "projects/[redacted] and projects/ab");
        assert!(
            classify(500, &google(500, "Lighthouse returned error: DNS_FAILURE. x", ""))
                .reason
                .starts_with("Lighthouse returned error: DNS_FAILURE")
        );
    }
}

//! The success body: the Lighthouse fixture wrapped as PSI wraps it.

use super::*;

/// The fixture, split once at start into pre-serialized pieces so that a
/// response is assembled by concatenation: benchmarks fire many requests and
/// the fake must not be what saturates the two cores.
pub(super) struct Fixture {
    /// `"key":value` for top-level LHR fields that never change.
    pub(super) constant_fields: Vec<String>,
    pub(super) config_settings: Map<String, Value>,
    /// Category id -> (serialized category, ids of its audits present in the fixture).
    pub(super) categories: HashMap<String, (String, Vec<String>)>,
    /// Audit id -> serialized audit.
    pub(super) audits: HashMap<String, String>,
    pub(super) approx_len: usize,
}

/// Fields rewritten for every request.
pub(super) const PER_REQUEST_FIELDS: [&str; 8] = [
    "requestedUrl",
    "finalUrl",
    "finalDisplayedUrl",
    "mainDocumentUrl",
    "fetchTime",
    "configSettings",
    "categories",
    "audits",
];

impl Fixture {
    pub(super) fn load(path: &std::path::Path) -> io::Result<Fixture> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| io::Error::new(e.kind(), format!("reading Lighthouse fixture {}: {e}", path.display())))?;
        Self::from_json(&text).map_err(|e| {
            io::Error::new(io::ErrorKind::InvalidData, format!("Lighthouse fixture {}: {e}", path.display()))
        })
    }

    pub(super) fn from_json(text: &str) -> Result<Fixture, String> {
        let mut lhr = match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => map,
            Ok(_) => return Err("not a JSON object".into()),
            Err(e) => return Err(format!("invalid JSON: {e}")),
        };
        let Some(Value::Object(audits)) = lhr.remove("audits") else {
            return Err("no `audits` object".into());
        };
        let Some(Value::Object(categories)) = lhr.remove("categories") else {
            return Err("no `categories` object".into());
        };
        let config_settings = match lhr.remove("configSettings") {
            Some(Value::Object(map)) => map,
            _ => Map::new(),
        };
        for field in PER_REQUEST_FIELDS {
            lhr.remove(field);
        }

        let to_json = |v: &Value| serde_json::to_string(v).map_err(|e| e.to_string());
        let mut audit_json = HashMap::with_capacity(audits.len());
        for (id, audit) in &audits {
            audit_json.insert(id.clone(), to_json(audit)?);
        }
        let mut category_json = HashMap::with_capacity(categories.len());
        for (id, category) in &categories {
            // Like Lighthouse with `onlyCategories`, a response carries only
            // the audits its categories reference.
            let audit_ids = category
                .get("auditRefs")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|r| r.get("id").and_then(Value::as_str))
                .filter(|id| audits.contains_key(*id))
                .map(str::to_owned)
                .collect();
            category_json.insert(id.clone(), (to_json(category)?, audit_ids));
        }
        let mut constant_fields = Vec::with_capacity(lhr.len());
        for (key, value) in &lhr {
            constant_fields.push(format!("{}:{}", to_json(&Value::from(key.as_str()))?, to_json(value)?));
        }

        let approx_len = constant_fields.iter().map(String::len).sum::<usize>()
            + audit_json.values().map(String::len).sum::<usize>()
            + category_json.values().map(|(json, _)| json.len()).sum::<usize>()
            + 16 * 1024;
        Ok(Fixture { constant_fields, config_settings, categories: category_json, audits: audit_json, approx_len })
    }

    pub(super) fn config_settings_for(&self, request: &AnalysisRequest) -> Map<String, Value> {
        let mut settings = self.config_settings.clone();
        let form_factor = request.strategy.as_str();
        settings.insert("formFactor".into(), form_factor.into());
        settings.insert("emulatedFormFactor".into(), form_factor.into());
        settings.insert("onlyCategories".into(), request.categories.to_vec().into());
        // Lighthouse's desktop preset, so that a desktop result is not
        // visibly a mobile run with a different label.
        if request.strategy == Strategy::Desktop {
            settings.insert(
                "screenEmulation".into(),
                json!({"mobile": false, "width": 1350, "height": 940, "deviceScaleFactor": 1, "disabled": false}),
            );
            settings.insert(
                "throttling".into(),
                json!({"rttMs": 40, "throughputKbps": 10240, "requestLatencyMs": 0,
                       "downloadThroughputKbps": 0, "uploadThroughputKbps": 0, "cpuSlowdownMultiplier": 1}),
            );
        }
        settings
    }

    pub(super) fn render(&self, request: &AnalysisRequest, timestamp: &str) -> Result<String, serde_json::Error> {
        let url = serde_json::to_string(&request.url)?;
        let timestamp = serde_json::to_string(timestamp)?;
        let (loading, origin_loading) = loading_experiences(&request.url);

        let mut out = String::with_capacity(self.approx_len);
        out.push_str(r#"{"captchaResult":"CAPTCHA_NOT_NEEDED","kind":"pagespeedonline#result","id":"#);
        out.push_str(&url);
        out.push_str(r#","loadingExperience":"#);
        out.push_str(&serde_json::to_string(&loading)?);
        out.push_str(r#","originLoadingExperience":"#);
        out.push_str(&serde_json::to_string(&origin_loading)?);

        out.push_str(r#","lighthouseResult":{"#);
        for field in ["requestedUrl", "finalUrl", "finalDisplayedUrl", "mainDocumentUrl"] {
            out.push('"');
            out.push_str(field);
            out.push_str("\":");
            out.push_str(&url);
            out.push(',');
        }
        out.push_str(r#""fetchTime":"#);
        out.push_str(&timestamp);
        out.push_str(r#","configSettings":"#);
        out.push_str(&serde_json::to_string(&self.config_settings_for(request))?);

        out.push_str(r#","categories":{"#);
        let mut audit_ids = BTreeSet::new();
        let kept = request.categories.iter().filter_map(|id| Some((*id, self.categories.get(*id)?)));
        for (i, (id, (json, audits))) in kept.enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&serde_json::to_string(id)?);
            out.push(':');
            out.push_str(json);
            audit_ids.extend(audits.iter().map(String::as_str));
        }
        out.push_str(r#"},"audits":{"#);
        let audits = audit_ids.into_iter().filter_map(|id| Some((id, self.audits.get(id)?)));
        for (i, (id, json)) in audits.enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&serde_json::to_string(id)?);
            out.push(':');
            out.push_str(json);
        }
        out.push('}');
        for field in &self.constant_fields {
            out.push(',');
            out.push_str(field);
        }
        out.push_str(r#"},"analysisUTCTimestamp":"#);
        out.push_str(&timestamp);
        out.push('}');
        Ok(out)
    }
}

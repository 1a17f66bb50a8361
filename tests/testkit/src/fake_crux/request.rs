//! Reading a request body: which record is asked for, and how Google would refuse it.

use super::*;

/// Fields each endpoint knows, in Google's JSON spelling and the proto's (Google's JSON
/// parser takes both); anything else is an unknown name.
const COMMON_FIELDS: [(&str, &str); 5] = [
    ("url", "url"),
    ("origin", "origin"),
    ("formFactor", "form_factor"),
    ("metrics", "metrics"),
    // Still in queryRecord's request message; accepted and ignored.
    ("effectiveConnectionType", "effective_connection_type"),
];
const HISTORY_FIELDS: [(&str, &str); 1] = [("collectionPeriodCount", "collection_period_count")];

/// What is looked up, as sent and as CrUX keys it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Resolved {
    /// The identifier as the request sent it (also what [`FakeCruxStats::queries`] counts).
    pub(super) sent: Identifier,
    /// The key CrUX looks up: the normalized URL, or the origin without a trailing `/`.
    pub(super) key: String,
    /// The origin of `key` (itself for an origin).
    pub(super) origin: String,
}

impl Resolved {
    pub(super) fn is_url(&self) -> bool {
        matches!(self.sent, Identifier::Url(_))
    }

    /// The identifier as sent; markers are looked for in it.
    pub(super) fn sent_text(&self) -> &str {
        match &self.sent {
            Identifier::Url(s) | Identifier::Origin(s) => s,
        }
    }
}

/// A valid request body.
#[derive(Debug)]
pub(super) struct CruxRequest {
    pub(super) endpoint: Endpoint,
    pub(super) identifier: Resolved,
    /// `None`: all form factors together.
    pub(super) form_factor: Option<FormFactor>,
    /// `None`: every metric.
    pub(super) metrics: Option<Vec<String>>,
    /// How many weekly periods a history asks for (1 for queryRecord).
    pub(super) periods: u32,
}

impl CruxRequest {
    pub(super) fn query(&self) -> Query {
        Query { endpoint: self.endpoint, identifier: self.identifier.sent.clone(), form_factor: self.form_factor }
    }

    pub(super) fn parse(endpoint: Endpoint, body: &[u8]) -> Result<CruxRequest, ApiError> {
        // An empty body is an empty message, as in any proto3 JSON API.
        let value = if body.iter().all(u8::is_ascii_whitespace) {
            Value::Object(Map::new())
        } else {
            serde_json::from_slice::<Value>(body)
                .map_err(|_| invalid_argument(None, "Invalid JSON payload received. Unexpected token."))?
        };
        let Value::Object(fields) = value else {
            return Err(invalid_argument(
                None,
                "Invalid JSON payload received. Unknown name \"\": Root element must be a message.",
            ));
        };

        let known: Vec<(&str, &str)> = match endpoint {
            Endpoint::QueryRecord => COMMON_FIELDS.to_vec(),
            Endpoint::QueryHistoryRecord => COMMON_FIELDS.iter().chain(&HISTORY_FIELDS).copied().collect(),
        };
        let mut by_proto_name: HashMap<&str, &Value> = HashMap::new();
        for (name, value) in &fields {
            let Some((_, proto)) = known.iter().find(|(json, proto)| name == json || name == proto) else {
                return Err(invalid_argument(
                    None,
                    &format!(
                        "Invalid JSON payload received. Unknown name {}: Cannot find field.",
                        Value::from(name.as_str())
                    ),
                ));
            };
            // proto3 JSON: `null` is the default value, as if the field were absent.
            if !value.is_null() {
                by_proto_name.insert(proto, value);
            }
        }

        let url = string_field(&by_proto_name, "url")?;
        let origin = string_field(&by_proto_name, "origin")?;
        let form_factor = match by_proto_name.get("form_factor") {
            None => None,
            Some(value) => match value.as_str().map(FormFactor::parse_api) {
                Some(Some(parsed)) => parsed,
                _ => return Err(invalid_value("form_factor", FORM_FACTOR_TYPE, value)),
            },
        };
        let metrics = match by_proto_name.get("metrics") {
            // proto3: an empty repeated field is the same as an absent one.
            None => None,
            Some(Value::Array(items)) if items.is_empty() => None,
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .map(|item| {
                        item.as_str().map(str::to_owned).ok_or_else(|| invalid_value("metrics", "TYPE_STRING", item))
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            Some(other) => return Err(invalid_value("metrics", "TYPE_STRING", other)),
        };
        let periods = match (endpoint, by_proto_name.get("collection_period_count")) {
            (Endpoint::QueryRecord, _) => 1,
            (Endpoint::QueryHistoryRecord, None) => DEFAULT_COLLECTION_PERIODS,
            (Endpoint::QueryHistoryRecord, Some(value)) => {
                // proto3 JSON takes an int32 as a number or as a decimal string.
                let count = match value {
                    Value::Number(n) => n.as_i64(),
                    Value::String(s) => s.parse::<i64>().ok(),
                    _ => None,
                }
                .ok_or_else(|| invalid_value("collection_period_count", "TYPE_INT32", value))?;
                match u32::try_from(count) {
                    Ok(count) if (1..=MAX_COLLECTION_PERIODS).contains(&count) => count,
                    _ => {
                        return Err(invalid_argument(
                            Some("collection_period_count"),
                            &format!(
                                "collection_period_count must be between 1 and {MAX_COLLECTION_PERIODS}, got {count}."
                            ),
                        ));
                    }
                }
            }
        };

        let identifier = match (url, origin) {
            (Some(_), Some(_)) => {
                return Err(invalid_argument(None, "Exactly one of url or origin must be set, not both."));
            }
            (None, None) => return Err(invalid_argument(None, "Exactly one of url or origin must be set.")),
            (Some(url), None) => {
                let key = normalize_url(&url).ok_or_else(|| {
                    invalid_argument(Some("url"), &format!("Invalid url: {}", Value::from(url.as_str())))
                })?;
                let origin = origin_of(&key).to_owned();
                Resolved { sent: Identifier::Url(url), key, origin }
            }
            (None, Some(origin)) => {
                let key = normalize_origin(&origin).ok_or_else(|| {
                    invalid_argument(Some("origin"), &format!("Invalid origin: {}", Value::from(origin.as_str())))
                })?;
                Resolved { sent: Identifier::Origin(origin), origin: key.clone(), key }
            }
        };
        Ok(CruxRequest { endpoint, identifier, form_factor, metrics, periods })
    }
}

pub(super) const FORM_FACTOR_TYPE: &str = "type.googleapis.com/google.chrome.uxreport.v1.FormFactor";

/// A string field; proto3 takes `""` for unset.
fn string_field(fields: &HashMap<&str, &Value>, name: &str) -> Result<Option<String>, ApiError> {
    match fields.get(name) {
        None => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(invalid_value(name, "TYPE_STRING", other)),
    }
}

impl FormFactor {
    /// The API's enum names; `Some(None)` is `ALL_FORM_FACTORS` (the same as leaving it out).
    pub(super) fn parse_api(name: &str) -> Option<Option<FormFactor>> {
        match name {
            "ALL_FORM_FACTORS" => Some(None),
            "PHONE" => Some(Some(FormFactor::Phone)),
            "DESKTOP" => Some(Some(FormFactor::Desktop)),
            "TABLET" => Some(Some(FormFactor::Tablet)),
            _ => None,
        }
    }
}

/// Splits `http(s)://authority rest` into a lowercased `scheme://authority` and the rest, if
/// the scheme is http(s), the host is not empty and there is no whitespace.
fn split_origin(raw: &str) -> Option<(String, &str)> {
    if raw.chars().any(char::is_whitespace) {
        return None;
    }
    let (scheme, after) = raw.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let authority = &after[..end];
    let host = authority
        .rsplit_once(':')
        .map_or(authority, |(host, port)| if port.chars().all(|c| c.is_ascii_digit()) { host } else { authority });
    if host.is_empty() || authority.contains('@') {
        return None;
    }
    // A default port is no part of an origin (`https://a.example:443` is `https://a.example`).
    let default_port = if scheme == "https" { ":443" } else { ":80" };
    let authority = authority.strip_suffix(default_port).unwrap_or(authority);
    Some((format!("{scheme}://{}", authority.to_ascii_lowercase()), &after[end..]))
}

/// The URL CrUX keys a page by (see the module docs): lowercased scheme and host, no
/// default port, no fragment, no query, and `/` for an empty path.
pub(super) fn normalize_url(raw: &str) -> Option<String> {
    let (origin, rest) = split_origin(raw)?;
    let path = rest.split(['?', '#']).next().unwrap_or("");
    Some(format!("{origin}{}", if path.is_empty() { "/" } else { path }))
}

/// An origin as CrUX keys it: `scheme://host[:port]`, lowercased, without a default port,
/// one trailing `/` dropped;
/// anything after the authority is invalid.
pub(super) fn normalize_origin(raw: &str) -> Option<String> {
    let (origin, rest) = split_origin(raw)?;
    (rest.is_empty() || rest == "/").then_some(origin)
}

/// `scheme://authority` of a normalized URL.
pub(super) fn origin_of(url: &str) -> &str {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..].find('/').map_or(url.len(), |i| start + i);
    &url[..end]
}

/// The number after the first `marker` in `text` that is followed by digits.
pub(super) fn marker_number(text: &str, marker: &str) -> Option<u64> {
    text.match_indices(marker).find_map(|(i, _)| {
        let digits = &text[i + marker.len()..];
        let end = digits.find(|c: char| !c.is_ascii_digit()).unwrap_or(digits.len());
        digits[..end].parse().ok()
    })
}

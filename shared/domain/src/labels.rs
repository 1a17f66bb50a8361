//! What a client attaches to a URL of its own: a reference (a business id, a row number) and
//! named labels, given with the URL at submission and carried to every result and export.
//!
//! A `urls` item is a string, or an object `{"url", "ref", "labels"}` with `ref` of at most
//! 200 characters and at most 10 labels, names and values of at most 100 characters each.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::clean_url::CleanUrl;

pub const MAX_REF_CHARS: usize = 200;
pub const MAX_LABELS: usize = 10;
pub const MAX_LABEL_CHARS: usize = 100;

/// A URL's reference and labels; empty for a plain URL.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Tags {
    /// The client's own identifier for the URL.
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// Name → value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl Tags {
    pub fn is_empty(&self) -> bool {
        self.reference.is_none() && self.labels.is_empty()
    }

    /// Whether these tags have label `name`, with `value` when the filter names one.
    pub fn matches(&self, filter: &LabelFilter) -> bool {
        match (self.labels.get(&filter.name), &filter.value) {
            (Some(_), None) => true,
            (Some(have), Some(want)) => have == want,
            (None, _) => false,
        }
    }
}

/// One URL of a job, cleaned, with its tags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobUrl {
    pub url: CleanUrl,
    pub tags: Tags,
}

impl From<CleanUrl> for JobUrl {
    fn from(url: CleanUrl) -> Self {
        JobUrl { url, tags: Tags::default() }
    }
}

/// Reads one `urls` item: the URL as given, and its tags; or what is wrong with it.
pub fn parse_item(item: &Value) -> Result<(String, Tags), String> {
    let object = match item {
        Value::String(url) => return Ok((url.clone(), Tags::default())),
        Value::Object(object) => object,
        _ => return Err("must be a URL string or an object {\"url\", \"ref\", \"labels\"}".into()),
    };
    if let Some(unknown) = object.keys().find(|key| !["url", "ref", "labels"].contains(&key.as_str())) {
        return Err(format!("has an unknown field {unknown:?}: an item takes url, ref and labels"));
    }
    let url = match object.get("url") {
        Some(Value::String(url)) => url.clone(),
        Some(_) => return Err("url must be a string".into()),
        None => return Err("needs a url".into()),
    };
    let reference = match object.get("ref") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => Some(bounded("ref", text, MAX_REF_CHARS)?),
        // A number is a common reference (a row or customer number): kept as written.
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => return Err("ref must be a string or a number".into()),
    };
    let labels = match object.get("labels") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(labels)) => {
            if labels.len() > MAX_LABELS {
                return Err(format!("has {} labels; at most {MAX_LABELS} are allowed", labels.len()));
            }
            labels
                .iter()
                .map(|(name, value)| {
                    let name = bounded("a label's name", name, MAX_LABEL_CHARS)?;
                    if name.is_empty() {
                        return Err("a label's name must not be empty".to_owned());
                    }
                    let value = match value {
                        Value::String(text) => text.clone(),
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        _ => return Err(format!("label {name:?} must be a string, a number or true/false")),
                    };
                    let value = bounded(&format!("label {name:?}"), &value, MAX_LABEL_CHARS)?;
                    Ok((name, value))
                })
                .collect::<Result<_, String>>()?
        }
        Some(_) => return Err("labels must be an object of names and values".into()),
    };
    Ok((url, Tags { reference, labels }))
}

fn bounded(what: &str, text: &str, most: usize) -> Result<String, String> {
    let chars = text.chars().count();
    if chars > most {
        return Err(format!("{what} has {chars} characters; at most {most} are allowed"));
    }
    Ok(text.to_owned())
}

/// Which results to keep by label: `name` (any value) or `name:value`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelFilter {
    pub name: String,
    pub value: Option<String>,
}

impl LabelFilter {
    pub fn parse(text: &str) -> Result<LabelFilter, String> {
        let (name, value) = match text.split_once(':') {
            Some((name, value)) => (name, Some(value.to_owned())),
            None => (text, None),
        };
        if name.is_empty() || name.chars().count() > MAX_LABEL_CHARS {
            return Err(format!("must be a label name (1 to {MAX_LABEL_CHARS} characters), or name:value"));
        }
        Ok(LabelFilter { name: name.to_owned(), value })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_string_is_a_plain_url_and_an_object_carries_its_tags() {
        assert_eq!(parse_item(&json!("a.com")).unwrap(), ("a.com".into(), Tags::default()));
        let (url, tags) =
            parse_item(&json!({"url": "a.com", "ref": 42, "labels": {"city": "Lyon", "rank": 3, "vip": true}}))
                .unwrap();
        assert_eq!(url, "a.com");
        assert_eq!(tags.reference.as_deref(), Some("42"));
        let labels: Vec<(&str, &str)> = tags.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(labels, [("city", "Lyon"), ("rank", "3"), ("vip", "true")]);
        assert_eq!(
            serde_json::to_value(&tags).unwrap(),
            json!({"ref": "42", "labels": {"city": "Lyon", "rank": "3", "vip": "true"}})
        );
    }

    #[test]
    fn every_bound_is_named_in_its_refusal() {
        let cases = [
            (json!(7), "must be a URL string or an object"),
            (json!({"ref": "x"}), "needs a url"),
            (json!({"url": 1}), "url must be a string"),
            (json!({"url": "a.com", "tag": "x"}), "unknown field \"tag\""),
            (json!({"url": "a.com", "ref": "r".repeat(201)}), "ref has 201 characters; at most 200"),
            (json!({"url": "a.com", "labels": ["x"]}), "labels must be an object"),
            (json!({"url": "a.com", "labels": {"": "x"}}), "name must not be empty"),
            (json!({"url": "a.com", "labels": {"n": "v".repeat(101)}}), "label \"n\" has 101 characters; at most 100"),
            (json!({"url": "a.com", "labels": {"n": {"deep": 1}}}), "must be a string, a number or true/false"),
        ];
        for (item, expected) in cases {
            let err = parse_item(&item).unwrap_err();
            assert!(err.contains(expected), "{item}: {err}");
        }
        let eleven: serde_json::Map<String, Value> = (0..11).map(|n| (format!("l{n}"), json!("v"))).collect();
        let err = parse_item(&json!({"url": "a.com", "labels": eleven})).unwrap_err();
        assert!(err.contains("has 11 labels; at most 10"), "{err}");
        // At the bounds exactly, all is well.
        assert!(parse_item(&json!({"url": "a.com", "ref": "r".repeat(200), "labels": {"n": "v".repeat(100)}})).is_ok());
    }

    #[test]
    fn a_filter_keeps_a_label_or_a_label_with_its_value() {
        let tags = parse_item(&json!({"url": "a.com", "labels": {"city": "Lyon"}})).unwrap().1;
        assert!(tags.matches(&LabelFilter::parse("city").unwrap()));
        assert!(tags.matches(&LabelFilter::parse("city:Lyon").unwrap()));
        assert!(!tags.matches(&LabelFilter::parse("city:Paris").unwrap()));
        assert!(!tags.matches(&LabelFilter::parse("country").unwrap()));
        assert_eq!(LabelFilter::parse("a:b:c").unwrap().value.as_deref(), Some("b:c"), "values may hold colons");
        assert!(LabelFilter::parse(":x").is_err());
    }
}

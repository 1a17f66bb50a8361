//! What can go wrong, in words a user can act on. The exit code is 1 for every one of them.

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The command line or the configuration.
    #[error("{0}")]
    Usage(String),
    /// The API answered with an error: its message, and one line per invalid field.
    #[error("{message}{}", details.iter().map(|d| format!("\n  {d}")).collect::<String>())]
    Api { status: u16, code: String, message: String, details: Vec<String> },
    #[error("could not reach the API at {url}: {reason}")]
    Network { url: String, reason: String },
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    /// An operator command did only part of its work (what was done is reported before).
    #[error("{0}")]
    Incomplete(String),
}

impl CliError {
    /// Reads the API's `{"error": {"code", "message", "details"}}`, or says what came instead.
    pub fn from_response(status: u16, body: &str) -> CliError {
        let json: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        let error = &json["error"];
        let message = error["message"].as_str().map(str::to_owned).unwrap_or_else(|| match status {
            401 => "the API key was not accepted".to_owned(),
            _ => format!("the API answered HTTP {status}"),
        });
        let details = match &error["details"] {
            serde_json::Value::Array(items) => items
                .iter()
                .map(|item| match (item["field"].as_str(), item["message"].as_str()) {
                    (Some(field), Some(message)) => format!("{field}: {message}"),
                    _ => item.to_string(),
                })
                .collect(),
            // A limit: what is used of it, and when to try again.
            serde_json::Value::Object(map) if map.contains_key("limit") => {
                let (allowed, used) = (&map["allowed"], &map.get("used").cloned().unwrap_or_default());
                let mut line = format!("{}: {used} used of {allowed}", map["limit"].as_str().unwrap_or("limit"));
                if let Some(seconds) = map.get("retry_after_seconds").and_then(|s| s.as_u64()) {
                    line.push_str(&format!("; try again in {}", crate::render::duration_words(seconds)));
                }
                vec![line]
            }
            serde_json::Value::Object(map) => map
                .get("rejected")
                .and_then(|r| r.as_array())
                .map(|rejected| {
                    rejected
                        .iter()
                        .map(|r| {
                            format!("{}: {}", r["input"].as_str().unwrap_or("?"), r["reason"].as_str().unwrap_or("?"))
                        })
                        .collect()
                })
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        let code = error["code"].as_str().unwrap_or_default().to_owned();
        CliError::Api { status, code, message, details }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_read_as_plain_words() {
        let body = r#"{"error":{"code":"invalid_request","message":"2 invalid fields","details":[
            {"field":"batch_size","message":"must be a whole number from 1 to 20"},
            {"field":"urls[1]","message":"must be a string"}]}}"#;
        assert_eq!(
            CliError::from_response(422, body).to_string(),
            "2 invalid fields\n  batch_size: must be a whole number from 1 to 20\n  urls[1]: must be a string"
        );
        assert_eq!(CliError::from_response(401, "").to_string(), "the API key was not accepted");
        assert_eq!(CliError::from_response(502, "<html>").to_string(), "the API answered HTTP 502");
        let none = r#"{"error":{"code":"no_valid_urls","message":"no URL was accepted",
            "details":{"accepted":0,"rejected":[{"input":"ftp://x","reason":"only http and https"}]}}}"#;
        assert_eq!(
            CliError::from_response(422, none).to_string(),
            "no URL was accepted\n  ftp://x: only http and https"
        );
        let limit = r#"{"error":{"code":"over_limit","message":"your tenant already has 3 unfinished jobs",
            "details":{"limit":"max_active_jobs","allowed":3,"used":3,"requested":1,"retry_after_seconds":30}}}"#;
        assert_eq!(
            CliError::from_response(429, limit).to_string(),
            "your tenant already has 3 unfinished jobs\n  max_active_jobs: 3 used of 3; try again in 30 s"
        );
    }
}

//! The emulator's CloudWatch Logs, read over its JSON protocol (no SDK crate for one service
//! the functions never call): the functions' log lines, for request counts and secret checks.

use std::time::Duration;

use serde_json::{Value, json};

pub struct Logs {
    http: reqwest::Client,
    endpoint: String,
}

impl Logs {
    pub fn new(endpoint: &str) -> Logs {
        Logs { http: reqwest::Client::new(), endpoint: endpoint.to_owned() }
    }

    /// Every message logged to the groups whose name matches `wanted`, from `since` (ms) on.
    pub async fn messages(&self, wanted: impl Fn(&str) -> bool, since: i64) -> Result<Vec<String>, String> {
        let mut messages = Vec::new();
        for group in self.groups(wanted).await? {
            let mut token: Option<String> = None;
            loop {
                let mut body = json!({"logGroupName": group, "startTime": since, "limit": 10_000});
                if let Some(token) = &token {
                    body["nextToken"] = json!(token);
                }
                let page = self.call("FilterLogEvents", body).await?;
                for event in page["events"].as_array().into_iter().flatten() {
                    messages.push(event["message"].as_str().unwrap_or_default().trim().to_owned());
                }
                match page["nextToken"].as_str() {
                    Some(next) if Some(next) != token.as_deref() => token = Some(next.to_owned()),
                    _ => break,
                }
            }
        }
        Ok(messages)
    }

    /// The Lambda log groups whose name matches `wanted`.
    pub async fn groups(&self, wanted: impl Fn(&str) -> bool) -> Result<Vec<String>, String> {
        let mut found = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut body = json!({"logGroupNamePrefix": "/aws/lambda/"});
            if let Some(token) = &token {
                body["nextToken"] = json!(token);
            }
            let page = self.call("DescribeLogGroups", body).await?;
            let names = page["logGroups"].as_array().into_iter().flatten().filter_map(|g| g["logGroupName"].as_str());
            found.extend(names.filter(|name| wanted(name)).map(str::to_owned));
            match page["nextToken"].as_str() {
                Some(next) if Some(next) != token.as_deref() => token = Some(next.to_owned()),
                _ => return Ok(found),
            }
        }
    }

    /// One call; retried, because the emulator's logs service sometimes answers 500 while
    /// functions are writing ("dictionary changed size during iteration").
    async fn call(&self, action: &str, body: Value) -> Result<Value, String> {
        let mut last = String::new();
        for attempt in 0..6u32 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
            }
            match self.call_once(action, &body).await {
                Ok(value) => return Ok(value),
                Err(err) => last = err,
            }
        }
        Err(last)
    }

    async fn call_once(&self, action: &str, body: &Value) -> Result<Value, String> {
        let response = self
            .http
            .post(&self.endpoint)
            .header("x-amz-target", format!("Logs_20140328.{action}"))
            .header("content-type", "application/x-amz-json-1.1")
            .header("authorization", "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/logs/aws4_request")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| format!("logs {action}: {e}"))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("logs {action} answered {status}: {text}"));
        }
        serde_json::from_str(&text).map_err(|e| format!("logs {action}: {e}: {text}"))
    }
}

/// Whether a log group is the given function's of the given stack
/// (`/aws/lambda/<stack>-<Function>Function-<suffix>`).
pub fn group_of(group: &str, stack: &str, function: &str) -> bool {
    let squash = |s: &str| s.to_lowercase().replace(['-', '_'], "");
    let Some(name) = group.strip_prefix("/aws/lambda/") else { return false };
    squash(name).starts_with(&squash(stack)) && squash(name).contains(&format!("{}function", squash(function)))
}

#[cfg(test)]
mod tests {
    use super::group_of;

    #[test]
    fn a_group_belongs_to_its_stack_and_function() {
        let group = "/aws/lambda/speedbatch-chaos-AnalyzerFunction-AbC123";
        assert!(group_of(group, "speedbatch-chaos", "analyzer"));
        assert!(!group_of(group, "speedbatch-local", "analyzer"));
        assert!(!group_of(group, "speedbatch-chaos", "api"));
    }
}

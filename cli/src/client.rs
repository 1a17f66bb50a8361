//! The HTTP API, as the CLI calls it.

use std::time::Duration;

use reqwest::header::{ETAG, IF_NONE_MATCH};
use serde_json::Value;

use crate::config::Target;
use crate::error::CliError;

pub struct Api {
    http: reqwest::Client,
    target: Target,
}

/// A progress answer: the job, or "unchanged since the ETag you gave".
pub enum Progress {
    Changed { job: Value, etag: Option<String> },
    Unchanged,
}

impl Api {
    pub fn new(target: Target) -> Result<Api, CliError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .user_agent(concat!("speedbatch-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CliError::Usage(format!("HTTP client: {e}")))?;
        Ok(Api { http, target })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}/{path}", self.target.api_url, domain::paths::BASE_PATH)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, CliError> {
        request
            .header("x-api-key", &self.target.api_key)
            .send()
            .await
            .map_err(|e| CliError::Network { url: self.target.api_url.clone(), reason: e.without_url().to_string() })
    }

    async fn json(&self, request: reqwest::RequestBuilder) -> Result<Value, CliError> {
        let response = self.send(request).await?;
        let status = response.status().as_u16();
        let body = response
            .text()
            .await
            .map_err(|e| CliError::Network { url: self.target.api_url.clone(), reason: e.without_url().to_string() })?;
        if !(200..300).contains(&status) {
            return Err(CliError::from_response(status, &body));
        }
        serde_json::from_str(&body)
            .map_err(|e| CliError::Usage(format!("the API answered something that is not JSON ({e})")))
    }

    pub async fn get(&self, path: &str) -> Result<Value, CliError> {
        self.json(self.http.get(self.url(path))).await
    }

    /// GET with query parameters, encoded (cursors are opaque text).
    pub async fn get_with(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, CliError> {
        self.json(self.http.get(self.url(path)).query(query)).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, CliError> {
        self.json(self.http.post(self.url(path)).json(body)).await
    }

    pub async fn progress(&self, id: &str, etag: Option<&str>) -> Result<Progress, CliError> {
        let mut request = self.http.get(self.url(&format!("progress/{id}")));
        if let Some(etag) = etag {
            request = request.header(IF_NONE_MATCH, etag);
        }
        let response = self.send(request).await?;
        if response.status() == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(Progress::Unchanged);
        }
        let etag = response.headers().get(ETAG).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        if status != 200 {
            return Err(CliError::from_response(status, &body));
        }
        let job = serde_json::from_str(&body).map_err(|e| CliError::Usage(format!("unreadable progress ({e})")))?;
        Ok(Progress::Changed { job, etag })
    }

    /// The whole job's results as CSV, exactly as the API exports them.
    pub async fn csv(&self, id: &str, status: Option<&str>) -> Result<String, CliError> {
        let mut request = self.http.get(self.url(&format!("results/{id}"))).query(&[("format", "csv")]);
        if let Some(status) = status {
            request = request.query(&[("status", status)]);
        }
        let response = self.send(request).await?;
        let code = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        if code != 200 {
            return Err(CliError::from_response(code, &body));
        }
        Ok(body)
    }
}

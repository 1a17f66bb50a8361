//! The HTTP API, as the CLI calls it.

use std::time::Duration;

use reqwest::header::{ETAG, IF_NONE_MATCH, LOCATION, RETRY_AFTER};
use serde_json::Value;

use crate::config::Target;
use crate::error::CliError;

pub struct Api {
    http: reqwest::Client,
    /// Follows export links: no API key, so none is ever sent to the bucket.
    files: reqwest::Client,
    target: Target,
}

/// Times the CLI waits for a just-finished job's export files before paging instead.
const EXPORT_WAITS: u32 = 12;

/// A progress answer: the job, or "unchanged since the ETag you gave".
pub enum Progress {
    Changed { job: Value, etag: Option<String> },
    Unchanged,
}

impl Api {
    pub fn new(target: Target) -> Result<Api, CliError> {
        let client = |redirects| {
            reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .user_agent(concat!("speedbatch-cli/", env!("CARGO_PKG_VERSION")))
                .redirect(redirects)
                .build()
                .map_err(|e| CliError::Usage(format!("HTTP client: {e}")))
        };
        // The API's redirects are followed by hand, with the `files` client.
        let http = client(reqwest::redirect::Policy::none())?;
        let files = client(reqwest::redirect::Policy::limited(3))?;
        Ok(Api { http, files, target })
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

    pub fn key(&self) -> &str {
        &self.target.api_key
    }

    /// The WebSocket API the deployment pushes progress on, as its health check names it;
    /// `None` when it names none or cannot be asked (the caller polls).
    pub async fn live_url(&self) -> Option<String> {
        let health = self.get("health").await.ok()?;
        health["checks"]["live"]["ws_url"].as_str().filter(|url| !url.is_empty()).map(str::to_owned)
    }

    pub async fn get(&self, path: &str) -> Result<Value, CliError> {
        self.json(self.http.get(self.url(path))).await
    }

    /// GET with query parameters, encoded (cursors are opaque text).
    pub async fn get_with(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, CliError> {
        self.json(self.http.get(self.url(path)).query(query)).await
    }

    /// Every page of a listing that answers `{<field>: [...], "next_cursor"}`, `page` items a
    /// page (the listing's largest: 1 000 for results and history, 100 for monitors): the
    /// items of all pages, and the first page (for what it says besides its items).
    pub async fn all_pages(
        &self,
        path: &str,
        query: &[(&str, &str)],
        field: &str,
        page: u32,
    ) -> Result<(Vec<Value>, Value), CliError> {
        let page = page.to_string();
        let mut items = Vec::new();
        let mut first: Option<Value> = None;
        let mut cursor: Option<String> = None;
        loop {
            let mut page_query = query.to_vec();
            page_query.push(("limit", &page));
            page_query.extend(cursor.as_deref().map(|c| ("cursor", c)));
            let mut page = self.get_with(path, &page_query).await?;
            items.extend(page[field].as_array_mut().map(std::mem::take).unwrap_or_default());
            cursor = page["next_cursor"].as_str().map(str::to_owned);
            first.get_or_insert(page);
            if cursor.is_none() {
                return Ok((items, first.unwrap_or_default()));
            }
        }
    }

    /// A DELETE answered with no body (204), sent with the key like every call.
    pub async fn delete(&self, path: &str) -> Result<(), CliError> {
        let response = self.send(self.http.delete(self.url(path))).await?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        Err(CliError::from_response(status, &body))
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

    /// The whole job's results as CSV, exactly as the API exports them: a finished job's file
    /// through its link, a small job's rows inline; otherwise (a running job over the inline
    /// limit, or only the URLs some filters keep: a whole-job file holds every URL) the JSON
    /// pages, written as the API writes CSV.
    pub async fn csv(&self, id: &str, filters: &[(&str, &str)]) -> Result<String, CliError> {
        if filters.is_empty() {
            for _ in 0..EXPORT_WAITS {
                let request = self.http.get(self.url(&format!("results/{id}"))).query(&[("format", "csv")]);
                let response = self.send(request).await?;
                let code = response.status().as_u16();
                let location = response.headers().get(LOCATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
                let cut = response.headers().contains_key("x-next-cursor");
                let wait = response.headers().get(RETRY_AFTER).and_then(|v| v.to_str().ok()?.parse().ok());
                let body = response.text().await.unwrap_or_default();
                match (code, location) {
                    (303, Some(link)) => return self.download(&link).await,
                    (200, _) if !cut => return Ok(body),
                    // Cut at the answer's size limit, or a running job: page through instead.
                    (200, _) | (409, _) => break,
                    (503, _) => {
                        eprintln!("the job's export is being written; waiting…");
                        tokio::time::sleep(Duration::from_secs(wait.unwrap_or(5).min(30))).await;
                    }
                    _ => return Err(CliError::from_response(code, &body)),
                }
            }
        }
        let (rows, _) = self.all_results(id, filters).await?;
        let rows: Vec<domain::report::ResultRow> = serde_json::from_value(Value::Array(rows))
            .map_err(|e| CliError::Usage(format!("unreadable results ({e})")))?;
        Ok(domain::report::ExportFormat::Csv.render(&rows))
    }

    /// Every result row of the job (only those `filters`, `GET /results`' query parameters,
    /// keep), page by page, and the summary of the last page.
    pub async fn all_results(&self, id: &str, filters: &[(&str, &str)]) -> Result<(Vec<Value>, Value), CliError> {
        let mut rows = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut query = vec![("limit", "1000")];
            query.extend_from_slice(filters);
            query.extend(cursor.as_deref().map(|c| ("cursor", c)));
            let mut page = self.get_with(&format!("results/{id}"), &query).await?;
            if let Some(items) = page["results"].as_array_mut() {
                rows.append(items);
            }
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return Ok((rows, page["summary"].take())),
            }
        }
    }

    /// An export file, through its presigned link (which needs no key, and gets none).
    async fn download(&self, link: &str) -> Result<String, CliError> {
        let failed = |reason: String| CliError::Network { url: "the export link".into(), reason };
        let response = self.files.get(link).send().await.map_err(|e| failed(e.without_url().to_string()))?;
        let code = response.status().as_u16();
        if code != 200 {
            return Err(failed(format!("HTTP {code}")));
        }
        response.text().await.map_err(|e| failed(e.without_url().to_string()))
    }
}

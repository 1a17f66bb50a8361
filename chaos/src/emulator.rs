//! The faults the suite injects into the local AWS: the emulator stopped and started again
//! with its state kept (`scripts/ministack.sh`), function processes killed, an SQS event
//! source mapping switched off and on (the analyzer "broken" until a fix).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::processes::function_processes;

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/ministack.sh")
}

async fn ministack(command: &str) -> Result<Duration, String> {
    let started = Instant::now();
    let output = tokio::process::Command::new("bash")
        .arg(script())
        .arg(command)
        .output()
        .await
        .map_err(|e| format!("scripts/ministack.sh {command}: {e}"))?;
    if output.status.success() {
        Ok(started.elapsed())
    } else {
        Err(format!(
            "scripts/ministack.sh {command} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// Stops the emulator (it writes its state as it goes); how long that took.
pub async fn stop() -> Result<Duration, String> {
    ministack("stop").await
}

/// Starts the emulator again from its kept state; how long until it answered.
pub async fn start() -> Result<Duration, String> {
    ministack("start").await
}

/// Kills (SIGKILL) the busiest process of `function` (the one with the most open sockets: an
/// idle instance holds only its Runtime API connection), as when one Lambda instance crashes
/// mid-batch; whether one was busy.
pub async fn kill_busiest(function: &str) -> Result<bool, String> {
    let busiest = function_processes().into_iter().filter(|p| p.function == function).max_by_key(|p| p.sockets);
    let Some(pid) = busiest.filter(|p| p.sockets > 1).map(|p| p.pid) else { return Ok(false) };
    let pids = [pid.to_string()];
    // A process that ended on its own meanwhile makes kill complain; that is not a failure.
    let _ = tokio::process::Command::new("kill").arg("-9").args(&pids).output().await.map_err(|e| e.to_string())?;
    Ok(true)
}

/// The Lambda API of the emulator, over its REST protocol (no SDK crate for one call).
pub struct Lambda {
    http: reqwest::Client,
    endpoint: String,
}

impl Lambda {
    pub fn new(endpoint: &str) -> Lambda {
        Lambda { http: reqwest::Client::new(), endpoint: endpoint.to_owned() }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, String> {
        let mut request = self
            .http
            .request(method, format!("{}/2015-03-31/{path}", self.endpoint))
            .header("authorization", "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/lambda/aws4_request");
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| format!("lambda {path}: {e}"))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("lambda {path} answered {status}: {text}"));
        }
        serde_json::from_str(&text).map_err(|e| format!("lambda {path}: {e}: {text}"))
    }

    /// The id of `function`'s event source mapping for the queue whose URL is `queue_url`.
    pub async fn mapping_for_queue(&self, function: &str, queue_url: &str) -> Result<String, String> {
        let queue_name = queue_url.rsplit('/').next().unwrap_or_default();
        let mappings =
            self.call(reqwest::Method::GET, &format!("event-source-mappings/?FunctionName={function}"), None).await?;
        mappings["EventSourceMappings"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|m| m["EventSourceArn"].as_str().is_some_and(|arn| arn.ends_with(&format!(":{queue_name}"))))
            .and_then(|m| m["UUID"].as_str())
            .map(str::to_owned)
            .ok_or_else(|| format!("{function} has no mapping for {queue_name}"))
    }

    pub async fn set_enabled(&self, mapping: &str, enabled: bool) -> Result<(), String> {
        let path = format!("event-source-mappings/{mapping}");
        self.call(reqwest::Method::PUT, &path, Some(json!({"Enabled": enabled}))).await.map(|_| ())
    }
}

//! Starting headless Chromium and connecting to it: the browser picks a free DevTools port
//! (`--remote-debugging-port=0`) and says where it listens on its standard error, which is
//! read until that line (or the time given runs out). Its profile is a fresh directory,
//! removed when the browser is dropped, so nothing of one instance reaches the next.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::cdp::{Cdp, CdpError};

/// A running browser, stopped (and its profile removed) when dropped.
pub struct Browser {
    pub cdp: Cdp,
    child: Child,
    profile: PathBuf,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// The switches every instance runs with: headless, no first-run work or background
/// networking of its own (every request it makes is a page's), no sandbox (Lambda runs it
/// unprivileged in a container that is the sandbox), shared memory on disk (Lambda's
/// `/dev/shm` is small), and no WebRTC over UDP outside the proxy (a page's peer connection
/// would otherwise reach addresses the proxy never sees).
const SWITCHES: [&str; 14] = [
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
    "--disable-quic",
    "--headless=new",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--disable-gpu",
    "--no-sandbox",
    "--disable-dev-shm-usage",
    "--mute-audio",
    "--hide-scrollbars",
];

/// Starts `binary` with `extra` switches and connects to it within `wait`.
pub async fn launch(binary: &Path, extra: &[String], wait: Duration) -> Result<Browser, CdpError> {
    let profile = std::env::temp_dir().join(format!("speedbatch-chromium-{}", unique_suffix()));
    let mut child = Command::new(binary)
        .args(SWITCHES)
        .arg("--remote-debugging-port=0")
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| CdpError::Connection(format!("{} could not be started: {e}", binary.display())))?;
    let stderr = child.stderr.take().ok_or_else(|| CdpError::Connection("no standard error to read".into()))?;
    let mut lines = BufReader::new(stderr).lines();
    let found = tokio::time::timeout(wait, async {
        let mut said = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(url) = line.strip_prefix("DevTools listening on ") {
                return Ok(url.trim().to_owned());
            }
            said.push(line);
        }
        Err(CdpError::Connection(format!("the browser exited before listening: {}", said.join(" / "))))
    })
    .await
    .map_err(|_| CdpError::Connection(format!("the browser did not listen within {} s", wait.as_secs())))?;
    let url = match found {
        Ok(url) => url,
        Err(err) => {
            let _ = std::fs::remove_dir_all(&profile);
            return Err(err);
        }
    };
    // The rest of its standard error is drained, so a chatty browser never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let cdp = Cdp::connect(&url).await?;
    Ok(Browser { cdp, child, profile })
}

/// A name no other instance on the machine uses at the same time.
fn unique_suffix() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{}-{nanos}", std::process::id())
}

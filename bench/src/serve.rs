//! A static file server for `http-engine` and `lighthouse-compare`, run as its own process so
//! that its CPU time is not counted as the engine's (nor taken from the browser under test).
//! Serves `DIR` on 127.0.0.1 at a free port and prints the port.
//!
//! `?delay=MS` on any path holds the answer that long before its headers (at most 10 s): a
//! slow server for one document or one subresource, without a second server.

use std::path::{Component, Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use axum::body::Body;
use axum::http::{StatusCode, Uri, header};
use axum::response::Response;

/// Far more than the pages ever open at once: a browser opens 6 connections per host, and a
/// short queue would show as connection time no real server has.
const BACKLOG: u32 = 4096;
const MAX_DELAY: Duration = Duration::from_secs(10);

pub async fn run(root: PathBuf) -> Result<(), String> {
    let socket = tokio::net::TcpSocket::new_v4().map_err(|e| e.to_string())?;
    socket.set_reuseaddr(true).map_err(|e| e.to_string())?;
    socket.bind(([127, 0, 0, 1], 0).into()).map_err(|e| e.to_string())?;
    let listener = socket.listen(BACKLOG).map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    println!("{port}");
    let app = axum::Router::new().fallback(move |uri: Uri| {
        let root = root.clone();
        async move {
            if let Some(delay) = delay(&uri) {
                tokio::time::sleep(delay).await;
            }
            file(&root, &uri).await
        }
    });
    axum::serve(listener, app).await.map_err(|e| e.to_string())
}

/// Starts `speedbatch-bench serve ROOT` (this executable) as a child, stopped when dropped,
/// and reads its port.
pub async fn spawn(root: &Path) -> Result<(tokio::process::Child, u16), String> {
    use tokio::io::AsyncBufReadExt;
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut server = tokio::process::Command::new(exe)
        .arg("serve")
        .arg(root)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("starting the static server: {e}"))?;
    let stdout = server.stdout.take().ok_or("the static server has no stdout")?;
    let mut line = String::new();
    tokio::io::BufReader::new(stdout).read_line(&mut line).await.map_err(|e| e.to_string())?;
    let port = line.trim().parse().map_err(|_| format!("the static server said {line:?}"))?;
    Ok((server, port))
}

fn delay(uri: &Uri) -> Option<Duration> {
    let ms: u64 = uri.query()?.split('&').find_map(|pair| pair.strip_prefix("delay="))?.parse().ok()?;
    Some(Duration::from_millis(ms).min(MAX_DELAY))
}

async fn file(root: &Path, uri: &Uri) -> Response {
    let relative = uri.path().trim_start_matches('/');
    let safe = Path::new(relative).components().all(|c| matches!(c, Component::Normal(_)));
    let path = if relative.is_empty() || relative.ends_with('/') {
        root.join(relative).join("index.html")
    } else {
        root.join(relative)
    };
    let found = if safe { tokio::fs::read(&path).await.ok() } else { None };
    let Some(bytes) = found else {
        return Response::builder().status(StatusCode::NOT_FOUND).body(Body::from("not found")).unwrap_or_default();
    };
    let content_type = match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css",
        Some("js") => "text/javascript",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("woff2") => "font/woff2",
        Some("woff") => "font/woff",
        Some("ttf") => "font/ttf",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    };
    Response::builder().header(header::CONTENT_TYPE, content_type).body(Body::from(bytes)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delay_is_read_from_the_query_and_capped() {
        let uri = |s: &str| s.parse::<Uri>().unwrap();
        assert_eq!(delay(&uri("/a.html?delay=800")), Some(Duration::from_millis(800)));
        assert_eq!(delay(&uri("/a.css?v=1&delay=300")), Some(Duration::from_millis(300)));
        assert_eq!(delay(&uri("/a.html?delay=999999")), Some(MAX_DELAY));
        assert_eq!(delay(&uri("/a.html")), None);
        assert_eq!(delay(&uri("/a.html?delay=soon")), None);
    }
}

//! A static file server for `http-engine`, run as its own process so that its CPU time is not
//! counted as the engine's. Serves `DIR` on 127.0.0.1 at a free port and prints the port.

use std::path::{Component, Path, PathBuf};

use axum::body::Body;
use axum::http::{StatusCode, Uri, header};
use axum::response::Response;

pub async fn run(root: PathBuf) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    println!("{port}");
    let app = axum::Router::new().fallback(move |uri: Uri| {
        let root = root.clone();
        async move { file(&root, &uri).await }
    });
    axum::serve(listener, app).await.map_err(|e| e.to_string())
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
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("woff2") => "font/woff2",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    };
    Response::builder().header(header::CONTENT_TYPE, content_type).body(Body::from(bytes)).unwrap_or_default()
}

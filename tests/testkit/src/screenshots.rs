//! A folder that keeps the browser engine's screenshots, for the tests and the bench (the
//! deployed analyzer keeps them in S3).

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use engine::browser::ScreenshotStore;

pub struct Folder {
    pub dir: PathBuf,
    count: AtomicUsize,
}

impl Folder {
    /// A new empty folder under the system's temporary directory.
    pub fn new() -> Folder {
        let dir = std::env::temp_dir().join(format!("speedbatch-screenshots-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("create the screenshots folder");
        Folder { dir, count: AtomicUsize::new(0) }
    }
}

impl Default for Folder {
    fn default() -> Self {
        Folder::new()
    }
}

impl ScreenshotStore for Folder {
    async fn put(&self, job: &str, jpeg: Vec<u8>) -> Result<String, String> {
        let name = domain::screenshots::name(job, &self.count.fetch_add(1, Ordering::Relaxed).to_string());
        let path = self.dir.join(&name);
        if let Some(folder) = path.parent() {
            tokio::fs::create_dir_all(folder).await.map_err(|e| e.to_string())?;
        }
        tokio::fs::write(path, jpeg).await.map_err(|e| e.to_string())?;
        Ok(name)
    }
}

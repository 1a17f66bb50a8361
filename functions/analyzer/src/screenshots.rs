//! The browser engine's screenshots, kept in the exports bucket under `screenshots/<job>/`
//! (which the bucket's lifecycle expires after the retention period, as it does a job's
//! exports). A result's `screenshot` is the API's link to it, `/screenshots/<job>/<id>.jpg`
//! under the API's base path, which answers the job's tenant only.

use aws::exports::ExportFiles;
use domain::screenshots::object_key;
use engine::browser::ScreenshotStore;

pub struct BucketScreenshots<F> {
    pub files: F,
}

impl<F: ExportFiles> ScreenshotStore for BucketScreenshots<F> {
    async fn put(&self, job: &str, jpeg: Vec<u8>) -> Result<String, String> {
        // Named by time and chance, not by URL: the name says nothing about the page.
        let name = domain::screenshots::name(job, &uuid::Uuid::now_v7().to_string());
        self.files.put(&object_key(&name), jpeg, "image/jpeg").await.map_err(|e| e.to_string())?;
        Ok(domain::screenshots::api_path(&name))
    }
}

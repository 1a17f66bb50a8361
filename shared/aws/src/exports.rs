//! The exports bucket: a finished job's whole-job files, written once by the exporter and
//! handed to clients as short-lived presigned links (a Lambda behind API Gateway may answer
//! at most 6 MB; a 10 000-URL CSV is about 15 MB).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use domain::Error;

/// How long a presigned link works.
pub const LINK_TTL: Duration = Duration::from_secs(15 * 60);
/// S3's limit for one DeleteObjects.
const DELETE_MAX: usize = 1_000;

pub trait ExportFiles: Send + Sync {
    /// Writes (or overwrites) the object `key`.
    fn put(&self, key: &str, body: Vec<u8>, content_type: &str) -> impl Future<Output = Result<(), Error>> + Send;

    /// The object `key`'s body; `None` when there is no such object.
    fn object_body(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>, Error>> + Send;

    /// A link that downloads `key` as `file_name` for `ttl`. Signing needs no request.
    fn link(&self, key: &str, file_name: &str, ttl: Duration) -> impl Future<Output = Result<String, Error>> + Send;

    /// Deletes the objects (those that exist).
    fn delete(&self, keys: &[String]) -> impl Future<Output = Result<(), Error>> + Send;

    /// Deletes every object whose key starts with `prefix`, a listed page (≤ 1 000) at a time;
    /// how many there were.
    fn delete_under(&self, prefix: &str) -> impl Future<Output = Result<usize, Error>> + Send;
}

#[derive(Clone, Debug)]
pub struct S3Exports {
    client: Client,
    bucket: String,
}

impl S3Exports {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        S3Exports { client, bucket: bucket.into() }
    }
}

impl ExportFiles for S3Exports {
    async fn put(&self, key: &str, body: Vec<u8>, content_type: &str) -> Result<(), Error> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| Error::exports("PutObject", e))?;
        Ok(())
    }

    async fn object_body(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        let output = match self.client.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(output) => output,
            Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => return Ok(None),
            Err(err) => return Err(Error::exports("GetObject", err)),
        };
        let body = output.body.collect().await.map_err(|e| Error::exports("GetObject", e))?;
        Ok(Some(body.into_bytes().to_vec()))
    }

    async fn link(&self, key: &str, file_name: &str, ttl: Duration) -> Result<String, Error> {
        let config = PresigningConfig::expires_in(ttl).map_err(|e| Error::exports("presign", e))?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .response_content_disposition(format!("attachment; filename=\"{file_name}\""))
            .presigned(config)
            .await
            .map_err(|e| Error::exports("presign", e))?;
        Ok(request.uri().to_owned())
    }

    async fn delete(&self, keys: &[String]) -> Result<(), Error> {
        for chunk in keys.chunks(DELETE_MAX) {
            let objects = chunk
                .iter()
                .map(|key| ObjectIdentifier::builder().key(key).build().map_err(|e| Error::exports("DeleteObjects", e)))
                .collect::<Result<Vec<_>, Error>>()?;
            let delete = Delete::builder()
                .set_objects(Some(objects))
                .quiet(true)
                .build()
                .map_err(|e| Error::exports("DeleteObjects", e))?;
            let output = self
                .client
                .delete_objects()
                .bucket(&self.bucket)
                .delete(delete)
                .send()
                .await
                .map_err(|e| Error::exports("DeleteObjects", e))?;
            if let Some(failed) = output.errors().first() {
                return Err(Error::Exports {
                    operation: "DeleteObjects",
                    message: format!(
                        "{} of {} objects not deleted, first {}: {}",
                        output.errors().len(),
                        chunk.len(),
                        failed.key().unwrap_or("?"),
                        failed.message().unwrap_or("no reason given")
                    ),
                });
            }
        }
        Ok(())
    }

    async fn delete_under(&self, prefix: &str) -> Result<usize, Error> {
        let mut deleted = 0;
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| Error::exports("ListObjectsV2", e))?;
            let keys: Vec<String> = page.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect();
            deleted += keys.len();
            self.delete(&keys).await?;
            match page.next_continuation_token() {
                Some(next) if page.is_truncated() == Some(true) => token = Some(next.to_owned()),
                _ => return Ok(deleted),
            }
        }
    }
}

/// Exports kept in memory, for the handlers' tests; links are `memory://<key>`. Clones share
/// the objects, so a test can look at what a handler it gave a clone did.
#[derive(Clone, Debug, Default)]
pub struct MemoryExports {
    objects: Arc<Mutex<Objects>>,
}

/// Each key's body and content type.
type Objects = HashMap<String, (Vec<u8>, String)>;

impl MemoryExports {
    /// The object's body and content type.
    pub fn object(&self, key: &str) -> Option<(Vec<u8>, String)> {
        self.objects.lock().ok()?.get(key).cloned()
    }

    pub fn len(&self) -> usize {
        self.objects.lock().map(|o| o.len()).unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl ExportFiles for MemoryExports {
    async fn put(&self, key: &str, body: Vec<u8>, content_type: &str) -> Result<(), Error> {
        if let Ok(mut objects) = self.objects.lock() {
            objects.insert(key.to_owned(), (body, content_type.to_owned()));
        }
        Ok(())
    }

    async fn object_body(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.object(key).map(|(body, _)| body))
    }

    async fn link(&self, key: &str, file_name: &str, ttl: Duration) -> Result<String, Error> {
        Ok(format!("memory://{key}?name={file_name}&ttl={}", ttl.as_secs()))
    }

    async fn delete(&self, keys: &[String]) -> Result<(), Error> {
        if let Ok(mut objects) = self.objects.lock() {
            for key in keys {
                objects.remove(key);
            }
        }
        Ok(())
    }

    async fn delete_under(&self, prefix: &str) -> Result<usize, Error> {
        let Ok(mut objects) = self.objects.lock() else { return Ok(0) };
        let before = objects.len();
        objects.retain(|key, _| !key.starts_with(prefix));
        Ok(before - objects.len())
    }
}

//! The SDK configuration every function builds once per container.

use aws_config::{BehaviorVersion, SdkConfig};

/// Loads region and credentials the standard way; `endpoint` points every client at the local
/// emulator when the deployment passes one.
pub async fn sdk_config(endpoint: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(endpoint) = endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}

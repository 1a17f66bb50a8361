//! What both analyzer binaries build once per container from the configuration: the Google
//! APIs' keys (read from SSM or Secrets Manager on first use) and the field-data engine with
//! its fleet-wide quota.

use aws::config::{Config, KeySource};
use engine::crux::{CruxClient, FieldEngine};
use engine::psi::KeyProvider;
use store::DynamoQuota;

/// The key `source` names, read when first needed and kept for the container's life.
pub fn key(sdk: &aws_config::SdkConfig, source: &KeySource) -> KeyProvider {
    let (sdk, source) = (sdk.clone(), source.clone());
    KeyProvider::load(move || {
        let (sdk, source) = (sdk.clone(), source.clone());
        async move { aws::secrets::load(&sdk, &source).await }
    })
}

/// The Chrome UX Report within its quota (its own item in the table, `QUOTA#crux`), where the
/// deployment has a key.
pub fn crux(
    config: &Config,
    sdk: &aws_config::SdkConfig,
    dynamo: &aws_sdk_dynamodb::Client,
) -> Result<Option<FieldEngine<DynamoQuota>>, domain::Error> {
    let Some(crux) = &config.crux else { return Ok(None) };
    let quota = DynamoQuota::new(dynamo.clone(), &config.table_name, "crux", crux.quota);
    let client = CruxClient::new(&crux.endpoint, key(sdk, &crux.key))?;
    Ok(Some(FieldEngine::new(client, quota)))
}

//! Reading a secret from where the deployment keeps it: the PageSpeed Insights key, in SSM
//! (a SecureString) or Secrets Manager. The value is returned, never logged or put in an error.

use aws_config::SdkConfig;

use crate::config::KeySource;
use domain::Error;
use domain::error::error_chain;

/// Reads the key from SSM (a SecureString, decrypted) or Secrets Manager, as stored.
pub async fn load(sdk: &SdkConfig, source: &KeySource) -> Result<String, Error> {
    let key = match source {
        KeySource::Ssm(name) => aws_sdk_ssm::Client::new(sdk)
            .get_parameter()
            .name(name)
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| Error::Config(format!("reading the PSI key from SSM parameter {name}: {}", error_chain(&e))))?
            .parameter
            .and_then(|p| p.value),
        KeySource::SecretsManager(id) => {
            aws_sdk_secretsmanager::Client::new(sdk)
                .get_secret_value()
                .secret_id(id)
                .send()
                .await
                .map_err(|e| Error::Config(format!("reading the PSI key from secret {id}: {}", error_chain(&e))))?
                .secret_string
        }
    };
    key.ok_or_else(|| Error::Config("the PSI key's parameter or secret has no value".into()))
}

//! The PageSpeed Insights key: read once per container from where the deployment keeps it,
//! held so that it cannot be printed by accident.

use aws_config::SdkConfig;

use crate::config::KeySource;
use crate::error::{Error, error_chain};

/// The key. `Debug` and `Display` never show it; only the request URL does.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(key.into())
    }

    pub(super) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

/// Reads the key from SSM (a SecureString, decrypted) or Secrets Manager.
pub async fn load(sdk: &SdkConfig, source: &KeySource) -> Result<ApiKey, Error> {
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
    match key.map(|k| k.trim().to_owned()).filter(|k| !k.is_empty()) {
        Some(key) => Ok(ApiKey(key)),
        None => Err(Error::Config("the PSI key's parameter or secret is empty".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_never_prints() {
        let key = ApiKey::new("AIzaSyExampleKey");
        assert_eq!(format!("{key:?}"), "ApiKey(***)");
        assert_eq!(key.expose(), "AIzaSyExampleKey");
    }
}

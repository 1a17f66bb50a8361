//! API keys (by the SHA-256 of the key) and each tenant's callback signing secret.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use domain::{Error, Tenant};

use super::items::{KEY_SK, SECRET_SK, key_pk, tenant_pk};
use super::{DynamoStore, av_n, av_s};
use crate::KeyStore;

impl KeyStore for DynamoStore {
    async fn tenant_for_key_hash(&self, hash: &str) -> Result<Option<Tenant>, Error> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", av_s(key_pk(hash)))
            .key("sk", av_s(KEY_SK))
            .projection_expression("tenant")
            .send()
            .await
            .map_err(|e| Error::store("GetItem", e))?;
        match output.item.as_ref().and_then(|item| item.get("tenant")) {
            None => Ok(None),
            Some(AttributeValue::S(tenant)) => Ok(Some(Tenant(tenant.clone()))),
            Some(_) => Err(Error::Corrupt("an API key item has a non-string tenant".into())),
        }
    }

    async fn callback_secret(&self, tenant: &Tenant) -> Result<String, Error> {
        let key = HashMap::from([("pk".to_owned(), av_s(tenant_pk(tenant))), ("sk".to_owned(), av_s(SECRET_SK))]);
        for _ in 0..2 {
            if let Some(item) = self.get_consistent(key.clone()).await? {
                return match item.get("secret") {
                    Some(AttributeValue::S(secret)) => Ok(secret.clone()),
                    _ => Err(Error::Corrupt("a callback secret item without its secret".into())),
                };
            }
            let created = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(key.clone()))
                .item("secret", av_s(domain::auth::generate_callback_secret()))
                .item("created_at", av_n(domain::time::now_millis()))
                .condition_expression("attribute_not_exists(pk)")
                .send()
                .await;
            match created {
                Ok(_) => continue,
                // Another request created it first: read theirs.
                Err(err) if err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => {
                    continue;
                }
                Err(err) => return Err(Error::store("PutItem", err)),
            }
        }
        Err(Error::Conflict("the callback secret could not be read back".into()))
    }

    async fn put_key_hash(&self, hash: &str, tenant: &Tenant) -> Result<(), Error> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", av_s(key_pk(hash)))
            .item("sk", av_s(KEY_SK))
            .item("tenant", av_s(&tenant.0))
            .item("created_at", av_n(domain::time::now_millis()))
            .send()
            .await
            .map_err(|e| Error::store("PutItem", e))?;
        Ok(())
    }
}

//! Result reuse: a tenant's recent result for the same cleaned URL, engine, strategy and
//! categories stands in for a new analysis when the job allows it (`cache_ttl_seconds`).
//! Results are shared within a tenant only: another tenant's cache would tell who analysed
//! what.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::field::FieldAsk;
use super::job::{JobId, Tenant};
use super::settings::{Category, EngineKind, Strategy};
use crate::history::HistoryKey;
use crate::time::Millis;

/// Where a result is indexed for reuse: in its URL's history (the tenant's and the URL's
/// partition, [`HistoryKey`]), marked with its variant (engine, strategy and options, hashed
/// to a fixed size), so a lookup reads the URL's recent results and takes the newest of its
/// variant: a result costs one index entry for both history and reuse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheKey {
    url: HistoryKey,
    variant: String,
}

impl CacheKey {
    pub fn new(
        tenant: &Tenant,
        engine: EngineKind,
        strategy: Strategy,
        categories: &[Category],
        field: FieldAsk,
        url: &str,
    ) -> Self {
        // Performance is always scored, so "performance" and no categories are one variant.
        let mut extra: Vec<&str> =
            categories.iter().filter(|c| **c != Category::Performance).map(|c| c.as_str()).collect();
        extra.sort_unstable();
        extra.dedup();
        let mut hash = Sha256::new();
        let mut options = extra.join(",");
        // Results without field data keep the variant they had before field data existed.
        if !field.is_none() {
            options = format!("{options};{}", field.cache_part());
        }
        for part in [engine.as_str(), strategy.as_str(), &options] {
            hash.update(part.as_bytes());
            hash.update([0]);
        }
        CacheKey { url: HistoryKey::new(tenant, url), variant: hex::encode(&hash.finalize()[..8]) }
    }

    /// The URL's history, where the results of every variant are indexed.
    pub fn history(&self) -> &HistoryKey {
        &self.url
    }

    /// What tells this variant's results from the URL's others.
    pub fn variant(&self) -> &str {
        &self.variant
    }
}

/// A result that was reused: the job whose analysis it is, and when that analysis ran.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CachedFrom {
    #[serde(rename = "batch_job_id")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub job_id: JobId,
    pub analyzed_at: Millis,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(tenant: &str, engine: EngineKind, strategy: Strategy, categories: &[Category], url: &str) -> CacheKey {
        CacheKey::new(&Tenant(tenant.into()), engine, strategy, categories, FieldAsk::NONE, url)
    }

    #[test]
    fn a_key_is_one_tenant_url_engine_strategy_and_set_of_categories() {
        let base = key("acme", EngineKind::Psi, Strategy::Mobile, &[], "https://a.com");
        assert!(base.history().as_str().starts_with("HIST#acme#"));
        assert_eq!(base.variant().len(), 16, "{base:?}");
        assert_eq!(base, key("acme", EngineKind::Psi, Strategy::Mobile, &[Category::Performance], "https://a.com"));
        assert_eq!(
            key("acme", EngineKind::Psi, Strategy::Mobile, &[Category::Seo, Category::Accessibility], "https://a.com"),
            key(
                "acme",
                EngineKind::Psi,
                Strategy::Mobile,
                &[Category::Accessibility, Category::Seo, Category::Seo],
                "https://a.com"
            ),
        );
        for other in [
            key("other", EngineKind::Psi, Strategy::Mobile, &[], "https://a.com"),
            key("acme", EngineKind::Http, Strategy::Mobile, &[], "https://a.com"),
            key("acme", EngineKind::Psi, Strategy::Both, &[], "https://a.com"),
            key("acme", EngineKind::Psi, Strategy::Mobile, &[Category::Seo], "https://a.com"),
            key("acme", EngineKind::Psi, Strategy::Mobile, &[], "https://a.com/b"),
            CacheKey::new(
                &Tenant("acme".into()),
                EngineKind::Psi,
                Strategy::Mobile,
                &[],
                FieldAsk { data: true, history: false },
                "https://a.com",
            ),
        ] {
            assert_ne!(base, other);
        }
        let long = key("acme", EngineKind::Psi, Strategy::Mobile, &[], &format!("https://a.com/{}", "x".repeat(2000)));
        assert_eq!(long.history().as_str().len(), base.history().as_str().len(), "fixed size, whatever the URL");
        assert_eq!(long.variant(), base.variant(), "one variant, whatever the URL");
    }
}

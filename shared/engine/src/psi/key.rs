//! A Google API key (PageSpeed Insights', the Chrome UX Report's): where it comes from, read once per container and held so that
//! it cannot be printed by accident. Where a deployment keeps it (SSM or Secrets Manager) is
//! the platform's business: the analyzer hands in a loader.

use std::future::Future;
use std::pin::Pin;

use domain::Error;

/// The key. `Debug` never shows it; only the request URL does.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(key.into())
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

type Loading = Pin<Box<dyn Future<Output = Result<String, Error>> + Send>>;

/// Where the key comes from: given, or loaded on first use (and kept for the container's life).
pub enum KeyProvider {
    Fixed(ApiKey),
    Load(Box<dyn Fn() -> Loading + Send + Sync>),
}

impl KeyProvider {
    /// A key read by `load` when the first URL needs it.
    pub fn load<F, Fut>(load: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String, Error>> + Send + 'static,
    {
        KeyProvider::Load(Box::new(move || Box::pin(load())))
    }

    pub(crate) async fn get(&self) -> Result<ApiKey, Error> {
        match self {
            KeyProvider::Fixed(key) => Ok(key.clone()),
            KeyProvider::Load(load) => {
                let key = load().await?;
                match key.trim() {
                    "" => Err(Error::Config("the API key's parameter or secret is empty".into())),
                    key => Ok(ApiKey::new(key)),
                }
            }
        }
    }
}

impl std::fmt::Debug for KeyProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyProvider::Fixed(key) => write!(f, "Fixed({key:?})"),
            KeyProvider::Load(_) => f.write_str("Load(..)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_never_prints() {
        let key = ApiKey::new("AIzaSyExampleKey");
        assert_eq!(format!("{key:?}"), "ApiKey(***)");
        assert_eq!(format!("{:?}", KeyProvider::Fixed(key.clone())), "Fixed(ApiKey(***))");
        assert_eq!(key.expose(), "AIzaSyExampleKey");
    }

    #[tokio::test]
    async fn a_loaded_key_is_trimmed_and_an_empty_one_refused() {
        let padded = KeyProvider::load(|| async { Ok(" AIzaSyExampleKey\n".to_owned()) });
        assert_eq!(padded.get().await.unwrap().expose(), "AIzaSyExampleKey");
        let empty = KeyProvider::load(|| async { Ok("  ".to_owned()) });
        assert!(matches!(empty.get().await, Err(Error::Config(_))));
    }
}

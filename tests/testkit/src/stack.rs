//! A deployed local stack, as `make up` records it in `.local/stack.env` (the dev stack) and
//! `make chaos-stack` in `.local/chaos.env` (the strict stack the reliability suite breaks).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub struct DeployedStack {
    pub api_url: String,
    pub api_key: String,
    pub values: HashMap<String, String>,
}

/// The checkout's `.local/` folder, where `make up` writes what it deployed.
pub fn local_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.local")
}

impl DeployedStack {
    /// The dev stack; panics with what to run when it was never deployed (tests only).
    pub fn load() -> DeployedStack {
        DeployedStack::try_load().unwrap_or_else(|e| panic!("{e}"))
    }

    /// The dev stack (`make up`).
    pub fn try_load() -> Result<DeployedStack, String> {
        DeployedStack::from_file(&local_dir().join("stack.env"), "make up")
    }

    /// The chaos suite's stack (`make chaos-stack`).
    pub fn chaos() -> Result<DeployedStack, String> {
        DeployedStack::from_file(&local_dir().join("chaos.env"), "make chaos-stack")
    }

    fn from_file(path: &Path, make: &str) -> Result<DeployedStack, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("{} is missing ({e}): run `{make}` first", path.display()))?;
        let values: HashMap<String, String> = text
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let stack = DeployedStack { api_url: String::new(), api_key: String::new(), values };
        Ok(DeployedStack {
            api_url: stack.value("API_URL")?.to_owned(),
            api_key: stack.value("API_KEY")?.to_owned(),
            ..stack
        })
    }

    /// A value `make up` recorded, or which one is missing.
    pub fn value(&self, name: &str) -> Result<&str, String> {
        self.values.get(name).map(String::as_str).ok_or_else(|| format!("{name} is missing from the stack's env file"))
    }

    /// The emulator's endpoint the stack was deployed to.
    pub fn endpoint(&self) -> &str {
        self.values.get("AWS_ENDPOINT_URL").map_or("http://127.0.0.1:4566", String::as_str)
    }
}

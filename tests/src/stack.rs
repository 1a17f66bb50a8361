//! The deployed local stack, as `make up` records it in `.local/stack.env`.

use std::collections::HashMap;
use std::path::PathBuf;

pub struct DeployedStack {
    pub api_url: String,
    pub api_key: String,
    pub values: HashMap<String, String>,
}

impl DeployedStack {
    pub fn load() -> DeployedStack {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.local/stack.env");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{} is missing ({e}): run `make up` first", path.display()));
        let values: HashMap<String, String> = text
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let get = |name: &str| {
            values.get(name).cloned().unwrap_or_else(|| panic!("{name} is missing from {}", path.display()))
        };
        DeployedStack { api_url: get("API_URL"), api_key: get("API_KEY"), values }
    }
}

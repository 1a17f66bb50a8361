//! Where the API is and which key to use: `--api-url`/`--api-key`, else `SPEEDBATCH_API_URL`
//! and `SPEEDBATCH_API_KEY` (clap reads both), else the local stack's `.local/stack.env` that
//! `make up` writes, found in the working directory or any directory above it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::CliError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Without a trailing slash.
    pub api_url: String,
    pub api_key: String,
}

pub fn resolve(url: Option<String>, key: Option<String>, cwd: &Path) -> Result<Target, CliError> {
    let stack = if url.is_none() || key.is_none() { find_stack_env(cwd) } else { None };
    let from_stack = |name: &str| stack.as_ref().and_then(|(_, values)| values.get(name).cloned());
    let where_looked = || match &stack {
        Some((path, _)) => format!("not in {} either", path.display()),
        None => "and no .local/stack.env was found here or above (run `make up`)".to_owned(),
    };
    let api_url = url.or_else(|| from_stack("API_URL")).ok_or_else(|| {
        CliError::Usage(format!("no API URL: give --api-url or set SPEEDBATCH_API_URL, {}", where_looked()))
    })?;
    let api_key = key.or_else(|| from_stack("API_KEY")).ok_or_else(|| {
        CliError::Usage(format!("no API key: give --api-key or set SPEEDBATCH_API_KEY, {}", where_looked()))
    })?;
    if !(api_url.starts_with("http://") || api_url.starts_with("https://")) {
        return Err(CliError::Usage(format!("the API URL must start with http:// or https://, not {api_url:?}")));
    }
    Ok(Target { api_url: api_url.trim_end_matches('/').to_owned(), api_key })
}

fn find_stack_env(cwd: &Path) -> Option<(PathBuf, HashMap<String, String>)> {
    cwd.ancestors().map(|dir| dir.join(".local/stack.env")).find_map(|path| {
        let text = std::fs::read_to_string(&path).ok()?;
        let values = text
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(name, value)| (name.trim().to_owned(), value.trim().to_owned()))
            .collect();
        Some((path, values))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("speedbatch-cli-{name}-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("a/b")).unwrap();
        dir
    }

    #[test]
    fn flags_win_then_the_stack_file_found_above() {
        let dir = temp_dir("config");
        std::fs::create_dir_all(dir.join(".local")).unwrap();
        std::fs::write(dir.join(".local/stack.env"), "API_URL=http://127.0.0.1:4566/x/\nAPI_KEY=sb_local\n").unwrap();
        let nested = dir.join("a/b");
        let found = resolve(None, None, &nested).unwrap();
        assert_eq!(found, Target { api_url: "http://127.0.0.1:4566/x".into(), api_key: "sb_local".into() });
        let flagged = resolve(Some("https://api.example".into()), Some("k".into()), &nested).unwrap();
        assert_eq!(flagged.api_url, "https://api.example");
        assert_eq!(resolve(None, Some("mine".into()), &nested).unwrap().api_key, "mine");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn what_is_missing_is_said() {
        let dir = temp_dir("missing");
        let err = resolve(None, Some("k".into()), &dir).unwrap_err().to_string();
        assert!(err.starts_with("no API URL") && err.contains("make up"), "{err}");
        let err = resolve(Some("ftp://x".into()), Some("k".into()), &dir).unwrap_err().to_string();
        assert!(err.contains("http:// or https://"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! The two outside tools of the suite: cargo-fuzz on the parsers (`scripts/fuzz.sh`) and
//! schemathesis against the deployed API's OpenAPI document (`scripts/schemathesis.sh`).
//! Each script writes a JSON report; this runs them and reads the reports.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::Scale;
use crate::report::Section;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs a script of `scripts/` with its output passed through; whether it succeeded and the
/// JSON report it wrote.
async fn script(name: &str, args: &[&str], report: &Path) -> Result<(bool, Value), String> {
    let _ = std::fs::remove_file(report);
    let status = tokio::process::Command::new("bash")
        .arg(root().join("scripts").join(name))
        .args(args)
        .current_dir(root())
        .status()
        .await
        .map_err(|e| format!("run scripts/{name}: {e}"))?;
    let text = std::fs::read_to_string(report).map_err(|e| format!("scripts/{name} wrote no report ({e})"))?;
    let report = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", report.display()))?;
    Ok((status.success(), report))
}

pub async fn fuzz(scale: &Scale) -> Section {
    let mut section = Section::new(
        "Fuzzing",
        format!(
            "`scripts/fuzz.sh {s}`: cargo-fuzz (libFuzzer) runs each target for {s} s from its committed seed \
             corpus. `clean_url`: `CleanUrl::parse` under both policies (an accepted URL parses to itself, is \
             http(s), and a strict policy never accepts a non-public IP literal). `start_request`: the `POST \
             /start` handler on arbitrary bytes (never a 5xx, every refusal a JSON 4xx). `sitemap`: sitemap \
             parsing and bounded gunzip (never more than the limit).",
            s = scale.fuzz_seconds
        ),
    );
    let report = root().join(".local/fuzz-report.json");
    match script("fuzz.sh", &[&scale.fuzz_seconds.to_string(), &report.to_string_lossy()], &report).await {
        Ok((ok, report)) => {
            for target in report.as_array().into_iter().flatten() {
                let crashes = &target["crashes"];
                let clean = crashes.as_u64() == Some(0) || crashes.is_null();
                section.check(
                    format!("fuzz target `{}`", target["target"].as_str().unwrap_or("?")),
                    format!("{} s", target["seconds"]),
                    format!(
                        "{} inputs run ({}/s), corpus {} inputs, {}",
                        target["executions"],
                        target["exec_per_sec"],
                        target["corpus"],
                        if clean { "no crash".to_owned() } else { format!("crash: {crashes}") }
                    ),
                    ok && clean,
                );
            }
            if section.checks.is_empty() {
                section.broke("read the fuzz report", format!("no targets in {report}"));
            }
        }
        Err(err) => section.broke("run scripts/fuzz.sh", err),
    }
    section
}

pub async fn schemathesis() -> Section {
    let mut section = Section::new(
        "Schemathesis",
        "`scripts/schemathesis.sh .local/chaos.env`: schemathesis generates requests from the deployed \
         OpenAPI document (`GET /api/v1/openapi.json`) for every operation, with a key of a throwaway tenant, \
         and checks that no answer is a 5xx and that every status, content type and body matches the \
         document.",
    );
    let report = root().join(".local/schemathesis-report.json");
    let env = root().join(".local/chaos.env");
    match script("schemathesis.sh", &[&env.to_string_lossy(), &report.to_string_lossy()], &report).await {
        Ok((ok, report)) => {
            let operations = &report["operations"];
            let cases = &report["test_cases"];
            section.check(
                "schemathesis against the OpenAPI document",
                format!("{} operations, {} test cases", operations["tested"], cases["generated"]),
                format!(
                    "{} test cases with failures ({} unique); failures by check: {}; {} emulator artefacts filtered",
                    cases["with_failures"],
                    cases["unique_failures"],
                    report["failures_by_check"],
                    report["filtered_failures"]
                ),
                ok && cases["with_failures"] == 0 && operations["tested"].as_u64() > Some(0),
            );
        }
        Err(err) => section.broke("run scripts/schemathesis.sh", err),
    }
    section
}

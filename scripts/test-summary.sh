#!/usr/bin/env bash
# Runs the whole Rust test suite and ends with one line that totals every test binary's
# result, so a reader (or CI) sees the overall count last.
set -uo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --no-fail-fast "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;?$/) p += $i; if ($(i+1) ~ /^failed;?$/) f += $i; if ($(i+1) ~ /^ignored;?$/) s += $i } }
     END { printf "cargo: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"

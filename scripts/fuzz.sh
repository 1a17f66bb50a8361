#!/usr/bin/env bash
# Fixed-time fuzzing of every cargo-fuzz target in fuzz/ (URL cleaning, POST /start request
# parsing, sitemap reading), for the test suite.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [REPORT_FILE]
#
# Installs cargo-fuzz under .local/tools when missing, builds the targets with the stable
# toolchain, runs each for SECONDS_PER_TARGET (default 60) on a scratch copy of its committed
# seed corpus, and writes one JSON object per target to REPORT_FILE (default
# .local/fuzz-report.json). Exits non-zero if any target crashed or broke a property, after
# printing the input that did it and the command that replays it.

# -e/-u/pipefail: a failed build or install must stop the run instead of fuzzing a stale
# binary, a typo in a variable must not silently become an empty path, and a failure inside
# a pipe must not be masked by the command after it.
set -euo pipefail

SECONDS_PER_TARGET=${1:-60}
if ! [[ $SECONDS_PER_TARGET =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [SECONDS_PER_TARGET] [REPORT_FILE]" >&2
    exit 2
fi
# A given report path is the caller's, relative to where they stand; resolved before the cd.
REPORT=${2:+$(realpath -m "$2")}

cd "$(dirname "$0")/.."
ROOT=$PWD
REPORT=${REPORT:-$ROOT/.local/fuzz-report.json}

# Pinned, so every machine fuzzes with the same driver; installed project-locally (.local is
# git-ignored) like the suite's other tools.
CARGO_FUZZ_VERSION=0.13.2
TOOLS=$ROOT/.local/tools
CARGO_FUZZ=$TOOLS/bin/cargo-fuzz

# Stable, even where a nightly is installed or is the default: CI machines have only stable
# and cannot download another toolchain, so that is what this must be proven to work with.
# (Without rustup the variable is simply ignored.)
export RUSTUP_TOOLCHAIN=${RUSTUP_TOOLCHAIN:-stable}

# The sanitizer: none. cargo-fuzz defaults to AddressSanitizer, which needs `-Zsanitizer`
# and so a nightly compiler (or RUSTC_BOOTSTRAP=1 on stable). Our code is safe Rust: the bugs
# worth finding here are panics and broken properties, which libFuzzer catches without ASan,
# and ASan cost the most: measured on 2 cores over 30 s from the seed corpora, it ran
# clean_url at 6 700 executions/s instead of 25 000, sitemap at 2 000 instead of 8 900 and
# start_request at 570 instead of 3 500, in 430-520 MB of memory instead of 30-40 MB. With
# none, cargo-fuzz passes no -Z flag, so stable needs no RUSTC_BOOTSTRAP.
# FUZZ_SANITIZER=address brings ASan back for a deeper manual run (its own target dir).
SANITIZER=${FUZZ_SANITIZER:-none}
if [[ $SANITIZER != none ]]; then
    # The only -Z flag cargo-fuzz then passes is -Zsanitizer; RUSTC_BOOTSTRAP lets stable
    # accept it instead of requiring a nightly.
    export RUSTC_BOOTSTRAP=1
fi

# Its own target dir: the instrumented build uses different RUSTFLAGS, so sharing target/
# would make the next normal build recompile everything (and each sanitizer has its own).
TARGET_DIR=$ROOT/target/fuzz
[[ $SANITIZER == none ]] || TARGET_DIR=$ROOT/target/fuzz-$SANITIZER
TRIPLE=$(rustc -vV | sed -n 's/^host: //p')
BIN_DIR=$TARGET_DIR/$TRIPLE/release

# Scratch space, one directory per run: libFuzzer adds every interesting input it finds to
# its first corpus directory, and the committed corpus (fuzz/corpus) must not grow during a
# run. Per run, because two runs at once (a developer's and the chaos suite's) must not
# delete each other's files; libFuzzer exits when its corpus directory vanishes.
RUNS=$ROOT/.local/fuzz
WORK=$RUNS/run-$(date -u +%Y%m%dT%H%M%SZ)-$$
TARGETS=(clean_url start_request sitemap)

log() { echo "fuzz: $*" >&2; }

if [[ -x $CARGO_FUZZ ]] && [[ $("$CARGO_FUZZ" --version 2>/dev/null) == "cargo-fuzz $CARGO_FUZZ_VERSION" ]]; then
    log "cargo-fuzz $CARGO_FUZZ_VERSION already installed"
else
    log "installing cargo-fuzz $CARGO_FUZZ_VERSION into ${TOOLS#"$ROOT"/} (about a minute)"
    cargo install --locked --version "$CARGO_FUZZ_VERSION" cargo-fuzz --root "$TOOLS"
fi

log "building ${TARGETS[*]} (sanitizer: $SANITIZER; a first build takes several minutes)"
build_start=$SECONDS
# Called as the binary rather than as `cargo fuzz`, so no PATH change is needed.
"$CARGO_FUZZ" build --fuzz-dir fuzz --sanitizer "$SANITIZER" --target-dir "$TARGET_DIR"
log "built in $((SECONDS - build_start)) s"

mkdir -p "$(dirname "$REPORT")" "$WORK"
# The grown corpora (thousands of files) go when the run ends; the logs and any crashing
# input stay, and so do the last five runs' directories.
trap 'rm -rf "$WORK/corpus"' EXIT
find "$RUNS" -mindepth 1 -maxdepth 1 -name 'run-*' -type d | sort | head -n -5 | xargs -r rm -rf
log "logs and crashing inputs: ${WORK#"$ROOT"/}"

# One JSON value from the fuzzer's log: the number after "stat::<name>:", or null (a
# fuzzer killed from outside prints no stats, and the report must still be written).
stat() {
    local value
    value=$(sed -n "s/^stat::$1: *\([0-9][0-9]*\).*/\1/p" "$2" 2>/dev/null | tail -n 1) || true
    echo "${value:-null}"
}

json_string() {
    local s=${1//\\/\\\\}
    printf '"%s"' "${s//\"/\\\"}"
}

entries=()
failed=()
for target in "${TARGETS[@]}"; do
    corpus=$WORK/corpus/$target
    artifacts=$WORK/artifacts/$target
    output=$WORK/$target.log
    mkdir -p "$corpus" "$artifacts"
    cp fuzz/corpus/"$target"/* "$corpus"/
    seeds=$(find "$corpus" -type f | wc -l)
    log "$target: ${SECONDS_PER_TARGET} s on $seeds seed inputs (log: ${output#"$ROOT"/})"

    # -max_total_time: the fixed time. -print_final_stats: the execution count for the
    # report. -timeout: an input that takes 10 s is a hang worth reporting (the default is
    # 20 minutes). -artifact_prefix: crashing inputs go to the scratch space, not the
    # working directory. The exit status is judged below, not by `set -e`.
    status=0
    started=$SECONDS
    "$BIN_DIR/$target" "$corpus" \
        -max_total_time="$SECONDS_PER_TARGET" \
        -print_final_stats=1 \
        -timeout=10 \
        -artifact_prefix="$artifacts/" \
        >"$output" 2>&1 || status=$?
    elapsed=$((SECONDS - started))

    executions=$(stat number_of_executed_units "$output")
    per_second=$(stat average_exec_per_sec "$output")
    peak_rss=$(stat peak_rss_mb "$output")
    corpus_size=$(find "$corpus" -type f 2>/dev/null | wc -l) || true
    artifact=$(find "$artifacts" -type f 2>/dev/null | sort | head -n 1) || true
    artifact=${artifact#"$ROOT"/}
    if [[ $status -ne 0 || -n $artifact ]]; then
        crashes=$(json_string "${artifact:-exit status $status, no artifact (see ${output#"$ROOT"/})}")
        failed+=("$target")
        log "$target: FAILED (exit status $status) after $executions executions"
        grep -m 1 -A 3 "panicked at" "$output" >&2 || tail -n 20 "$output" >&2 || true
        if [[ -n $artifact ]]; then
            log "  input: $artifact"
            log "  replay: ${BIN_DIR#"$ROOT"/}/$target $artifact"
            log "      or: ${CARGO_FUZZ#"$ROOT"/} run --fuzz-dir fuzz --sanitizer $SANITIZER --target-dir ${TARGET_DIR#"$ROOT"/} $target $artifact"
        fi
    else
        crashes=0
        log "$target: $executions executions ($per_second/s), corpus $seeds -> $corpus_size, no crash"
    fi
    # seconds: the budget; elapsed_seconds: less when a crash stopped the run early.
    entries+=("$(printf '{"target": "%s", "seconds": %s, "elapsed_seconds": %s, "executions": %s, "exec_per_sec": %s, "crashes": %s, "corpus": %s, "seed_corpus": %s, "peak_rss_mb": %s}' \
        "$target" "$SECONDS_PER_TARGET" "$elapsed" "$executions" "$per_second" "$crashes" "$corpus_size" "$seeds" "$peak_rss")")
done

{
    echo "["
    for i in "${!entries[@]}"; do
        separator=","
        [[ $i -eq $((${#entries[@]} - 1)) ]] && separator=""
        echo "  ${entries[$i]}$separator"
    done
    echo "]"
} >"$REPORT"
log "report: ${REPORT#"$ROOT"/}"

if [[ ${#failed[@]} -gt 0 ]]; then
    log "crashed: ${failed[*]}"
    exit 1
fi

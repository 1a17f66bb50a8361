#!/usr/bin/env bash
# Runs the dashboard's browser test (tests/browser/dashboard.test.mjs) against the local stack
# that `make up` deployed, in Debian's Chromium driven by playwright-core.
#
#   scripts/browser-test.sh [extra node --test options, e.g. --test-name-pattern=cancel]
#
# Installs what it needs first: Debian's chromium when /usr/bin/chromium is missing (unless
# CHROMIUM_PATH points at a browser), and the npm packages of tests/browser when node_modules
# is missing or package-lock.json changed. The API comes from .local/stack.env, or from
# SPEEDBATCH_API_URL and SPEEDBATCH_API_KEY. Serves the fake Chrome UX Report at the stack's
# CRUX_ENDPOINT for the run, unless something answers there already. Ends with one line:
# "browser: N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
dir=tests/browser

# Node 20 or newer (the built-in test runner and its reporters).
if ! command -v node >/dev/null 2>&1; then
  echo "browser-test: node is not installed (Node 20 or newer is needed)" >&2
  exit 1
fi
node_major=$(node -p 'process.versions.node.split(".")[0]')
if (( node_major < 20 )); then
  echo "browser-test: node $(node --version) is too old; Node 20 or newer is needed" >&2
  exit 1
fi

# The browser: Debian's chromium, unless CHROMIUM_PATH names another one.
scripts/chromium.sh debian

# playwright-core, exactly as locked; reinstalled when package-lock.json changes.
lock_sum=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
stamp=$dir/node_modules/.package-lock.sha256
if [[ ! -d $dir/node_modules || ! -f $stamp || $(cat "$stamp") != "$lock_sum" ]]; then
  echo "==> npm ci in $dir"
  (cd "$dir" && npm ci --no-audit --no-fund)
  echo "$lock_sum" >"$stamp"
fi

# The deployed stack.
if [[ -z ${SPEEDBATCH_API_URL:-} || -z ${SPEEDBATCH_API_KEY:-} ]] && [[ ! -f .local/stack.env ]]; then
  echo "browser-test: .local/stack.env not found: run \"make up\" first to deploy the local stack" >&2
  exit 1
fi

# What this script started, undone when it ends (however it ends).
tap=
crux_pid=
crux_log=
cleanup() {
  if [[ -n $crux_pid ]]; then
    kill "$crux_pid" 2>/dev/null || true
    wait "$crux_pid" 2>/dev/null || true
  fi
  rm -f "$tap" "$crux_log"
}
trap cleanup EXIT

# The fake Chrome UX Report the local stack's analyzers ask for field data, at the stack's
# CRUX_ENDPOINT (127.0.0.1:4597): served by this script for the test's run, unless something
# (make fake-crux, the e2e tests, the bench) already answers there.
crux_endpoint=
if [[ -f .local/stack.env ]]; then
  crux_endpoint=$(sed -n 's/^[[:space:]]*CRUX_ENDPOINT[[:space:]]*=[[:space:]]*//p' .local/stack.env | tail -1)
fi
if [[ $crux_endpoint =~ ^http://127\.0\.0\.1:([0-9]+)(/|$) ]]; then
  crux_port=${BASH_REMATCH[1]}
  crux_answers() { (exec 3<>"/dev/tcp/127.0.0.1/$crux_port") 2>/dev/null; }
  if crux_answers; then
    echo "==> fake Chrome UX Report: something already answers on 127.0.0.1:$crux_port, using it"
  else
    # Built first, in the open: on a fresh checkout compiling it takes longer than it may take
    # to start.
    echo "==> building the fake Chrome UX Report (cargo build -p speedbatch-testkit --bin fake-crux)"
    cargo build --quiet -p speedbatch-testkit --bin fake-crux
    echo "==> fake Chrome UX Report on 127.0.0.1:$crux_port (cargo run -p speedbatch-testkit --bin fake-crux)"
    crux_log=$(mktemp)
    cargo run --quiet -p speedbatch-testkit --bin fake-crux >"$crux_log" 2>&1 &
    crux_pid=$!
    crux_wait=60
    for ((waited = 0; ; waited++)); do
      crux_answers && break
      if ! kill -0 "$crux_pid" 2>/dev/null; then
        wait "$crux_pid" 2>/dev/null || true
        crux_pid=
        echo "browser-test: the fake Chrome UX Report stopped before answering on 127.0.0.1:$crux_port:" >&2
        sed 's/^/  /' "$crux_log" >&2
        exit 1
      fi
      if ((waited >= crux_wait * 4)); then
        echo "browser-test: the fake Chrome UX Report did not answer on 127.0.0.1:$crux_port within ${crux_wait} s:" >&2
        sed 's/^/  /' "$crux_log" >&2
        exit 1
      fi
      sleep 0.25
    done
  fi
else
  echo "==> no fake Chrome UX Report: .local/stack.env has no CRUX_ENDPOINT on 127.0.0.1 (field data comes from the deployment's own)"
fi

echo "==> browser test ($dir/dashboard.test.mjs)"
tap=$(mktemp)
status=0
node --test \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$tap" \
  "$@" "$dir/dashboard.test.mjs" || status=$?

echo "screenshots and the downloaded CSV: $repo/$dir/artifacts/"
if [[ -d $dir/artifacts ]]; then
  find "$dir/artifacts" -maxdepth 1 -type f -printf '  %f\n' | sort
fi
awk '/^# pass /    { p = $3 }
     /^# fail /    { f = $3 }
     /^# skipped / { s = $3 }
     END { printf "browser: %d passed, %d failed%s\n", p, f, (s > 0 ? sprintf(", %d skipped", s) : "") }' "$tap"
# A run that reports no tests at all (a crash before the summary) is a failure too.
if [[ $status -eq 0 ]] && ! grep -q '^# pass ' "$tap"; then
  echo "browser-test: node --test printed no summary" >&2
  status=1
fi
exit "$status"

#!/usr/bin/env bash
# Starts or stops the local AWS emulator (ministack, pinned in scripts/tools.sh) on
# 127.0.0.1:4566. `start` is a no-op when one already answers there. Its state is kept in
# .local/ministack-state across a stop and start (the chaos suite's outage relies on it, and
# a `make down` / `make up` keeps the stack, its jobs and its keys); `make clean` wipes it.
set -euo pipefail
cd "$(dirname "$0")/.."

ENDPOINT=http://127.0.0.1:4566
PIDFILE=.local/ministack.pid
STATE=.local/ministack-state
LOG=.local/ministack.log

healthy() { curl -fsS --max-time 2 "$ENDPOINT/_ministack/health" >/dev/null 2>&1; }

case "${1:-}" in
  start)
    if healthy; then echo "==> ministack already running at $ENDPOINT"; exit 0; fi
    mkdir -p .local
    # ministack 1.5.33 keeps the stream mappings' read positions but not the stream records:
    # after a restart a mapping would wait for the new stream to grow past its old position
    # and miss every change until then (the tracker would move no job). Forget the positions,
    # so each mapping reads the new stream, which holds only changes made since, from its start.
    if [ -f "$STATE/lambda.json" ]; then
      .local/venvs/ministack/bin/python - "$STATE/lambda.json" <<'PY'
import json, sys
with open(sys.argv[1]) as f:
    state = json.load(f)
payload = state.get("payload", state)
for key in ("dynamodb_stream_positions", "kinesis_positions"):
    if isinstance(payload.get(key), dict) and isinstance(payload[key].get("data"), dict):
        payload[key]["data"] = {}
with open(sys.argv[1], "w") as f:
    json.dump(state, f)
PY
    fi
    echo "==> starting ministack at $ENDPOINT (log: $LOG)"
    PERSIST_STATE=1 STATE_DIR="$PWD/$STATE" BIND_HOST=127.0.0.1 GATEWAY_PORT=4566 setsid nohup .local/venvs/ministack/bin/ministack >>"$LOG" 2>&1 < /dev/null &
    echo $! > "$PIDFILE"
    for _ in $(seq 1 120); do
      if healthy; then echo "==> ministack is up"; exit 0; fi
      if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
        echo "ministack exited during start-up; last lines of $LOG:" >&2; tail -20 "$LOG" >&2; exit 1
      fi
      sleep 0.5
    done
    echo "ministack did not become healthy within 60 s; see $LOG" >&2; exit 1
    ;;
  stop)
    if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
      pid=$(cat "$PIDFILE")
      # SIGTERM lets it write its state on the way out: wait for that (60 s at most).
      kill "$pid"
      for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      # The emulator runs function bootstraps as children: stop what is left of the group.
      kill -9 -- -"$pid" 2>/dev/null || true
      rm -f "$PIDFILE"; echo "==> ministack stopped (state kept in $STATE)"
    else
      rm -f "$PIDFILE"; echo "==> no ministack started by make up is running"
    fi
    ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac

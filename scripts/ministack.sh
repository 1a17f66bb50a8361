#!/usr/bin/env bash
# Starts or stops the local AWS emulator (ministack, pinned in scripts/tools.sh) on
# 127.0.0.1:4566. `start` is a no-op when one already answers there.
set -euo pipefail
cd "$(dirname "$0")/.."

ENDPOINT=http://127.0.0.1:4566
PIDFILE=.local/ministack.pid
LOG=.local/ministack.log

healthy() { curl -fsS --max-time 2 "$ENDPOINT/_ministack/health" >/dev/null 2>&1; }

case "${1:-}" in
  start)
    if healthy; then echo "==> ministack already running at $ENDPOINT"; exit 0; fi
    mkdir -p .local
    echo "==> starting ministack at $ENDPOINT (log: $LOG)"
    BIND_HOST=127.0.0.1 GATEWAY_PORT=4566 setsid nohup .local/venvs/ministack/bin/ministack >"$LOG" 2>&1 < /dev/null &
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
      # The emulator runs function bootstraps as children: stop the whole process group.
      kill -- -"$(cat "$PIDFILE")" 2>/dev/null || kill "$(cat "$PIDFILE")"
      rm -f "$PIDFILE"; echo "==> ministack stopped"
    else
      rm -f "$PIDFILE"; echo "==> no ministack started by make up is running"
    fi
    ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac

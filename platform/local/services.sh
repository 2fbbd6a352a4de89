#!/usr/bin/env bash
# Local backing services for development and tests (see README.md).
# Usage: services.sh start|stop|status [SERVICE...]   (default: all of them)
set -euo pipefail
SERVICE=services
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ALL=(postgres redis kafka elasticsearch prometheus)
SLOW=(elasticsearch kafka) # JVMs: started in the background, in parallel

run() { bash "$LOCAL_DIR/$1.sh" "${@:2}"; }

status_all() {
  local rc=0 name
  for name in "${ALL[@]}"; do run "$name" status || rc=1; done
  return "$rc"
}

start_all() {
  local name pid pids=() failed=0
  for name in "${SLOW[@]}"; do
    run "$name" start &
    pids+=($!)
  done
  # One apt run for what the others need, while the JVM ones fetch and start; and Debian's
  # Chromium, the browser the end-to-end tests drive (Playwright downloads none here).
  ensure_packages postgresql redis-server redis-tools prometheus prometheus-alertmanager curl chromium
  for name in postgres redis prometheus; do run "$name" start || failed=1; done
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  ((failed == 0)) || die "some services did not start (see above)"
  log "all up after ${SECONDS}s:"
  status_all
}

stop_all() {
  local name pid pids=() failed=0
  for name in "${ALL[@]}"; do
    run "$name" stop &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  ((failed == 0)) || die "some services did not stop (see above)"
}

cmd=${1:-}
shift || true
case "$cmd:$#" in
  start:0) start_all ;;
  stop:0) stop_all ;;
  status:0) status_all ;;
  start:* | stop:* | status:*) for name in "$@"; do run "$name" "$cmd"; done ;;
  *)
    echo "usage: $0 start|stop|status [${ALL[*]}]" >&2
    exit 2
    ;;
esac

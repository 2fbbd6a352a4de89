#!/usr/bin/env bash
# Redis (Debian package) on 127.0.0.1:$DTS_REDIS_PORT, daemonized, AOF on,
# no eviction; data in .services/redis/data.  Usage: redis.sh start|stop|status
set -euo pipefail
SERVICE=redis
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PORT=$DTS_REDIS_PORT
CONF="$SVC_DIR/redis.conf"
PIDFILE="$SVC_DIR/redis.pid"
LOG="$SVC_DIR/redis.log"

svc_url() { echo "redis://127.0.0.1:$PORT/0"; }
svc_healthy() { [[ $(redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null) == PONG ]]; }

svc_start() {
  ensure_packages redis-server redis-tools
  mkdir -p "$SVC_DIR/data"
  cat >"$CONF" <<CONF
bind 127.0.0.1
port $PORT
daemonize yes
pidfile "$PIDFILE"
logfile "$LOG"
dir "$SVC_DIR/data"
appendonly yes
maxmemory-policy noeviction
CONF
  redis-server "$CONF" || fail_with_log "redis-server failed" "$LOG"
  wait_until 30 "" svc_healthy
}

svc_stop() { stop_pid "$PIDFILE"; }

service_main "$@"

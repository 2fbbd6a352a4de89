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
# Parallel test lanes use 16 databases each (config/settings/test.py).
DATABASES=64

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
databases $DATABASES
CONF
  redis-server "$CONF" || fail_with_log "redis-server failed" "$LOG"
  wait_until 30 "" svc_healthy
}

svc_stop() { stop_pid "$PIDFILE"; }

# svc_refresh (service_main, on a start that finds ours up): one started with fewer databases, by an
# earlier version of this script, is restarted (its data is kept in its append-only file).
svc_refresh() {
  [[ $(redis-cli -h 127.0.0.1 -p "$PORT" config get databases | tail -n1) == "$DATABASES" ]] && return 0
  log "started with another configuration: restarting"
  svc_stop
  svc_start
}

service_main "$@"

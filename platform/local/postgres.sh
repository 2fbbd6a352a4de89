#!/usr/bin/env bash
# PostgreSQL (Debian package) on 127.0.0.1:$DTS_POSTGRES_PORT: a cluster of its
# own in .services/postgres/data, run as the `postgres` system user, with role
# dts/dts (CREATEDB) and database dts.  Usage: postgres.sh start|stop|status
set -euo pipefail
SERVICE=postgres
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PORT=$DTS_POSTGRES_PORT
DATA="$SVC_DIR/data"
LOG="$SVC_DIR/postgres.log"
PIDFILE="$DATA/postmaster.pid"
SOCKET_DIR="$SVC_DIR"
((${#SOCKET_DIR} <= 80)) || SOCKET_DIR=/tmp # unix socket paths are short

svc_url() { echo "postgresql://dts:dts@127.0.0.1:$PORT/dts"; }
svc_healthy() { pg_isready -q -h 127.0.0.1 -p "$PORT" -t 2; }

pg_bin() { printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n1; }
as_postgres() { runuser -u postgres -- "$@"; }

svc_start() {
  ensure_packages postgresql
  local bin
  bin=$(pg_bin)
  chown postgres:postgres "$SVC_DIR"
  ensure_traversable postgres "$SVC_DIR"
  if [[ ! -s $DATA/PG_VERSION ]]; then
    log "initdb $DATA"
    rm -rf "$DATA"
    as_postgres "$bin/initdb" -D "$DATA" -U postgres -E UTF8 --locale=C.UTF-8 \
      --auth-local=trust --auth-host=scram-sha-256 >"$SVC_DIR/initdb.log" 2>&1 ||
      fail_with_log "initdb failed" "$SVC_DIR/initdb.log"
    echo "include 'dts.conf'" >>"$DATA/postgresql.conf"
  fi
  # Rewritten on every start, so that a port override takes effect.
  cat >"$DATA/dts.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$SOCKET_DIR'
unix_socket_permissions = 0770
max_connections = 200
shared_buffers = 128MB
log_line_prefix = '%m [%p] %q%u@%d '
EOF
  chown postgres:postgres "$DATA/dts.conf"
  as_postgres "$bin/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start >/dev/null ||
    fail_with_log "pg_ctl start failed" "$LOG"
  wait_until 30 "" svc_healthy
  # Role and database, created only when missing.
  psql -X -q -v ON_ERROR_STOP=1 -h "$SOCKET_DIR" -p "$PORT" -U postgres -d postgres <<'SQL'
SELECT 'CREATE ROLE dts LOGIN CREATEDB PASSWORD ''dts'''
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'dts')\gexec
SELECT 'CREATE DATABASE dts OWNER dts'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'dts')\gexec
SQL
}

svc_stop() {
  local bin
  if [[ ! -s $PIDFILE ]] || ! bin=$(pg_bin) ||
    ! as_postgres "$bin/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    log "not running"
    return 0
  fi
  as_postgres "$bin/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null
  log "stopped"
}

service_main "$@"

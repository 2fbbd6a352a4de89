#!/usr/bin/env bash
# The dts stack of compose/compose.yaml on this machine (`make run`, `make clean`): dts's own image
# on the private engine (dockerd.sh), with compose/compose.host.yaml, since these machines allow
# host networking only, against the backing services of `make services` (database dts_compose,
# Redis database 15, Elasticsearch indices of the prefix dts-compose). compose/.env is made from
# compose/.env.example, with fresh random secrets, when it is missing.
# Usage: stack.sh up | down | compose ARGS...   (`compose` runs any docker compose command on the
# stack, e.g. `stack.sh compose run --rm web python manage.py createsuperuser`)
set -euo pipefail
SERVICE=stack
# shellcheck source=SCRIPTDIR/../local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../local/lib.sh"
DOCKER_DIR="$LOCAL_DIR/../docker"
COMPOSE_DIR="$REPO/compose"
DATABASE=dts_compose
REDIS_DB=15
INDEX_PREFIX=dts-compose
PSQL=(psql -X -q -v ON_ERROR_STOP=1 "postgresql://dts:dts@127.0.0.1:$DTS_POSTGRES_PORT/dts")

compose() {
  # Built into the tools cache on first use (about 3 min), not by a `down` with no engine up.
  : "${DOCKER_COMPOSE:=$("$LOCAL_DIR/../tools/compose.sh")}"
  "$DOCKER_COMPOSE" --project-name dts --project-directory "$COMPOSE_DIR" \
    -f "$COMPOSE_DIR/compose.yaml" -f "$COMPOSE_DIR/compose.host.yaml" "$@"
}

# env_make: compose/.env from the example, each empty secret given a random value.
env_make() {
  [[ -e $COMPOSE_DIR/.env ]] && return 0
  local secret name
  cp "$COMPOSE_DIR/.env.example" "$COMPOSE_DIR/.env.new"
  for name in DJANGO_SECRET_KEY POSTGRES_PASSWORD GRAFANA_ADMIN_PASSWORD; do
    secret=$(python3 -c 'import secrets; print(secrets.token_urlsafe(50))')
    sed -i "s|^$name=\$|$name=$secret|" "$COMPOSE_DIR/.env.new"
  done
  chmod 600 "$COMPOSE_DIR/.env.new"
  mv "$COMPOSE_DIR/.env.new" "$COMPOSE_DIR/.env"
  log "made compose/.env from compose/.env.example, with random secrets"
}

engine_up() {
  "$DOCKER_DIR/dockerd.sh" status >/dev/null 2>&1
}

eval "$("$DOCKER_DIR/dockerd.sh" env)"
export DTS_HOST_DATABASE=$DATABASE DTS_HOST_REDIS_DB=$REDIS_DB DTS_HOST_LOG_INDEX_PREFIX=$INDEX_PREFIX

case "${1:-}" in
  up)
    env_make
    "$DOCKER_DIR/dockerd.sh" start
    "${PSQL[@]}" -tA -c "SELECT 1 FROM pg_database WHERE datname = '$DATABASE'" | grep -q 1 ||
      "${PSQL[@]}" -c "CREATE DATABASE $DATABASE"
    compose up --detach --wait --wait-timeout 300
    log "up: http://127.0.0.1:$(sed -n 's/^DTS_WEB_PUBLISHED_PORT=//p' "$COMPOSE_DIR/.env")/"
    log "an admin: platform/docker/stack.sh compose run --rm web python manage.py createsuperuser"
    ;;
  down)
    # Its containers, then its data on the services of make services.
    if engine_up; then compose down --volumes --remove-orphans --timeout 60; fi
    if "${PSQL[@]}" -c "DROP DATABASE IF EXISTS $DATABASE WITH (FORCE)" 2>/dev/null; then
      redis-cli -p "$DTS_REDIS_PORT" -n "$REDIS_DB" flushdb >/dev/null
      # The indexer's copies of that database's logs and runs, and their templates (docs/logs.md,
      # Indices); nothing to do when Elasticsearch is away.
      for path in "$INDEX_PREFIX-logs-v*,$INDEX_PREFIX-runs-v*" \
        "_index_template/$INDEX_PREFIX-logs-v*" "_index_template/$INDEX_PREFIX-runs-v*"; do
        curl -fs -o /dev/null --max-time 30 -X DELETE "http://127.0.0.1:$DTS_ES_PORT/$path" || true
      done
      log "removed the stack, its database $DATABASE and its indices $INDEX_PREFIX-*"
    fi
    ;;
  compose)
    shift
    compose "$@"
    ;;
  *)
    echo "usage: $0 up | down | compose ARGS..." >&2
    exit 2
    ;;
esac

#!/usr/bin/env bash
# A local OCI registry (Debian's docker-registry, distribution 2.8) on 127.0.0.1:$DTS_REGISTRY_PORT
# for trying and testing releases (platform/release.sh): plain HTTP, no authentication, deletes
# allowed; its blobs in .services/registry/data. Docker and Helm talk plain HTTP to a loopback
# registry without any setting.
# Usage: registry.sh start|stop|status|env   (`env` prints the exports that point a release at it:
# eval "$(platform/docker/registry.sh env)"; make release VERSION=0.1.0)
set -euo pipefail
SERVICE=registry
# shellcheck source=SCRIPTDIR/../local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../local/lib.sh"

: "${DTS_REGISTRY_PORT:=55000}"
PORT=$DTS_REGISTRY_PORT
CONF="$SVC_DIR/config.yml"
PIDFILE="$SVC_DIR/registry.pid"
LOG="$SVC_DIR/registry.log"

svc_url() { echo "http://127.0.0.1:$PORT/v2/"; }
svc_healthy() { curl -fs -o /dev/null --max-time 2 "http://127.0.0.1:$PORT/v2/"; }

svc_start() {
  ensure_packages docker-registry curl
  mkdir -p "$SVC_DIR/data"
  # Not the package's /etc/docker/registry/config.yml: that one listens on every address and asks
  # for an htpasswd file.
  cat >"$CONF" <<CONF
version: 0.1
log:
  level: info
  fields:
    service: registry
storage:
  filesystem:
    rootdirectory: $SVC_DIR/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$PORT
  secret: local-only-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
  headers:
    X-Content-Type-Options: [nosniff]
CONF
  launch "$PIDFILE" docker-registry serve "$CONF"
  wait_until 30 "$PIDFILE" svc_healthy
}

svc_stop() { stop_pid "$PIDFILE"; }

if [[ ${1:-} == env ]]; then
  echo "export DTS_REGISTRY_PORT=$PORT"
  echo "export REGISTRY=127.0.0.1:$PORT/dtsproject"
  exit 0
fi
service_main "$@"

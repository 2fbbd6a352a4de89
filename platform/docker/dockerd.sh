#!/usr/bin/env bash
# A private Docker engine (Debian's docker.io) for building and running the dts image: its own
# socket, data root and pid file under .services/docker, no bridge and no iptables (these machines
# allow host networking only), the lowered ulimits the sandbox can grant.
# Usage: dockerd.sh start|stop|status|env   (`env` prints the export of DOCKER_HOST for callers:
# eval "$(platform/docker/dockerd.sh env)")
set -euo pipefail
SERVICE=docker
# shellcheck source=SCRIPTDIR/../local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../local/lib.sh"

PIDFILE="$SVC_DIR/dockerd.pid"
LOG="$SVC_DIR/dockerd.log"
SOCKET="$SVC_DIR/docker.sock"
export DOCKER_HOST="unix://$SOCKET"

svc_healthy() { [[ -S $SOCKET ]] && docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

svc_start() {
  ensure_packages docker.io
  # A unix socket path longer than 107 bytes cannot be bound: say so rather than fail obscurely.
  ((${#SOCKET} < 100)) || die "socket path too long ($SOCKET): set DTS_SERVICES_DIR shorter"
  mkdir -p "$SVC_DIR/data" "$SVC_DIR/run"
  launch "$PIDFILE" dockerd \
    --host "$DOCKER_HOST" --data-root "$SVC_DIR/data" --exec-root "$SVC_DIR/run" \
    --pidfile "$SVC_DIR/run/dockerd.pid" \
    --iptables=false --ip6tables=false --bridge=none \
    --default-ulimit nofile=1024:1024 --default-ulimit nproc=1024:1024
  wait_until 60 "$PIDFILE" svc_healthy
}

# dockerd leaves the bind mount of its default network namespace (run/netns/default) behind when it
# stops: unmount what is still mounted under its folder, so that the folder can be removed.
unmount_leftovers() {
  local target
  awk -v dir="$SVC_DIR/" 'index($2, dir) == 1 { print $2 }' /proc/self/mounts | sort -r |
    while read -r target; do umount "$target" || log "could not unmount $target"; done
}

case "${1:-}" in
  start)
    if svc_healthy; then
      log "already up at $DOCKER_HOST"
    else
      svc_start
      log "up at $DOCKER_HOST (dockerd $(docker version --format '{{.Server.Version}}'))"
    fi
    ;;
  stop)
    # dockerd stops its containers (their own grace) and its containerd before it exits.
    stop_pid "$PIDFILE" 60
    unmount_leftovers
    ;;
  status)
    if svc_healthy; then log "up at $DOCKER_HOST"; else log "down"; exit 3; fi
    ;;
  env)
    echo "export DOCKER_HOST=$DOCKER_HOST"
    ;;
  *)
    echo "usage: $0 start|stop|status|env" >&2
    exit 2
    ;;
esac

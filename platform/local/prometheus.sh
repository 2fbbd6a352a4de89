#!/usr/bin/env bash
# Prometheus (Debian package) on 127.0.0.1:$DTS_PROMETHEUS_PORT with the configuration rendered
# from the template platform/local/prometheus.yml into $SVC_DIR/prometheus.yml (absolute paths
# filled in; it loads platform/prometheus/rules/ and scrapes the dts processes listed in
# $SVC_DIR/targets/<job>/*.json); TSDB in $SVC_DIR/data. Installs amtool
# (prometheus-alertmanager) too, for the rule tests.
# `start` on a Prometheus already up makes it load a changed configuration or rules: a reload
# (POST /-/reload), or a restart if it runs without --web.enable-lifecycle or another file.
# Usage: prometheus.sh start|stop|status|render
set -euo pipefail
SERVICE=prometheus
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PORT=$DTS_PROMETHEUS_PORT
PIDFILE="$SVC_DIR/prometheus.pid"
LOG="$SVC_DIR/prometheus.log"
CONFIG="$SVC_DIR/prometheus.yml"
TARGETS="$SVC_DIR/targets"
JOBS=(dts-web dts-worker dts-scheduler dts-relay dts-indexer)
# What the running Prometheus loaded: the checksum of its configuration and rule files.
LOADED="$SVC_DIR/loaded.sha256"

svc_url() { echo "http://127.0.0.1:$PORT"; }
svc_healthy() { curl -fs -o /dev/null --max-time 2 "http://127.0.0.1:$PORT/-/ready"; }

# render: write $CONFIG from the template (only when it differs) and make the target folders.
render() {
  local job rendered
  mkdir -p "$SVC_DIR"
  for job in "${JOBS[@]}"; do mkdir -p "$TARGETS/$job"; done
  rendered=$(sed -e "s|@REPO@|$REPO|g" -e "s|@SVC_DIR@|$SVC_DIR|g" -e "s|@PORT@|$PORT|g" \
    "$LOCAL_DIR/prometheus.yml")
  if [[ ! -f $CONFIG ]] || [[ $(cat "$CONFIG") != "$rendered" ]]; then
    printf '%s\n' "$rendered" >"$CONFIG.tmp"
    mv -f "$CONFIG.tmp" "$CONFIG"
  fi
}

# fingerprint: the checksum of what Prometheus loads (its configuration and the rule files).
fingerprint() {
  cat "$CONFIG" "$REPO"/platform/prometheus/rules/*.yaml | sha256sum | cut -d' ' -f1
}

svc_start() {
  # prometheus-alertmanager for amtool, which checks platform/prometheus/alertmanager.yml.
  ensure_packages prometheus prometheus-alertmanager curl
  render
  mkdir -p "$SVC_DIR/data"
  launch "$PIDFILE" prometheus \
    --config.file="$CONFIG" \
    --storage.tsdb.path="$SVC_DIR/data" \
    --web.listen-address="127.0.0.1:$PORT" \
    --web.enable-lifecycle
  wait_until 60 "$PIDFILE" svc_healthy
  fingerprint >"$LOADED"
}

# svc_refresh (service_main, on a start that finds ours up): load a changed configuration or
# rules. One started by an earlier version of this script (another file, no lifecycle API) is
# restarted.
svc_refresh() {
  local args answer
  render
  [[ $(cat "$LOADED" 2>/dev/null) == "$(fingerprint)" ]] && return 0
  args=$(tr '\0' ' ' <"/proc/$(head -n1 "$PIDFILE")/cmdline")
  if [[ $args == *"--config.file=$CONFIG "* && $args == *--web.enable-lifecycle* ]]; then
    log "configuration or rules changed: reloading"
    if ! answer=$(curl -sS --max-time 30 -X POST -w '\n%{http_code}' "$(svc_url)/-/reload"); then
      die "could not ask $(svc_url) to reload"
    fi
    [[ ${answer##*$'\n'} == 200 ]] || die "reload failed: ${answer%$'\n'*}"
    fingerprint >"$LOADED"
  else
    log "configuration or rules changed, and it cannot reload them: restarting"
    svc_stop
    svc_start
  fi
}

svc_stop() { stop_pid "$PIDFILE"; }

if [[ ${1:-} == render ]]; then
  render
  echo "$CONFIG"
  exit 0
fi
service_main "$@"

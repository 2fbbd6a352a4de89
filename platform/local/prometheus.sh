#!/usr/bin/env bash
# Prometheus (Debian package) on 127.0.0.1:$DTS_PROMETHEUS_PORT with
# platform/local/prometheus.yml (which loads platform/prometheus/rules/); TSDB in
# .services/prometheus/data. Installs amtool (prometheus-alertmanager) too, for the rule tests.
# Usage: prometheus.sh start|stop|status
set -euo pipefail
SERVICE=prometheus
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PORT=$DTS_PROMETHEUS_PORT
PIDFILE="$SVC_DIR/prometheus.pid"
LOG="$SVC_DIR/prometheus.log"

svc_url() { echo "http://127.0.0.1:$PORT"; }
svc_healthy() { curl -fs -o /dev/null --max-time 2 "http://127.0.0.1:$PORT/-/ready"; }

svc_start() {
  # prometheus-alertmanager for amtool, which checks platform/prometheus/alertmanager.yml.
  ensure_packages prometheus prometheus-alertmanager curl
  mkdir -p "$SVC_DIR/data"
  launch "$PIDFILE" prometheus \
    --config.file="$LOCAL_DIR/prometheus.yml" \
    --storage.tsdb.path="$SVC_DIR/data" \
    --web.listen-address="127.0.0.1:$PORT"
  wait_until 60 "$PIDFILE" svc_healthy
}

svc_stop() { stop_pid "$PIDFILE"; }

service_main "$@"

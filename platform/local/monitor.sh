#!/usr/bin/env bash
# make monitor (without KUBE=1): the URLs of the local Prometheus of `make services`, which loads
# dts's rules, and of compose's Grafana (`make run`) when it answers. Fails when the Prometheus is
# not running. `make monitor KUBE=1` port-forwards a cluster's instead (platform/k8s/monitor.sh).
# Env: DTS_PROMETHEUS_PORT (59090), GRAFANA_PUBLISHED_PORT (3000, compose's)
set -euo pipefail
SERVICE=monitor
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

prometheus="http://127.0.0.1:$DTS_PROMETHEUS_PORT"
grafana="http://127.0.0.1:${GRAFANA_PUBLISHED_PORT:-3000}"

curl -fs -o /dev/null --max-time 2 "$prometheus/-/ready" ||
  die "no Prometheus answers at $prometheus: start it with \`make services\`"
log "Prometheus: $prometheus/ (alerts: $prometheus/alerts, rules: $prometheus/rules)"
if curl -fs -o /dev/null --max-time 2 "$grafana/api/health"; then
  log "Grafana: $grafana/ (dashboards in the dts folder)"
else
  log "Grafana: not running (compose's stack has it: \`make run\`, then $grafana/)"
fi

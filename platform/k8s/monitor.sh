#!/usr/bin/env bash
# make monitor: the cluster's Prometheus and Grafana (those of the current kube context, or of
# KUBECONFIG) on this machine, by `kubectl port-forward`, until Ctrl-C. Each service and port is
# checked before anything is forwarded. prometheus-operated is the Prometheus Operator's service;
# kube-prometheus-stack names Grafana's <release>-grafana: set GRAFANA_SERVICE to it.
# Env: MONITORING_NAMESPACE (monitoring)
#      PROMETHEUS_SERVICE (prometheus-operated, the Prometheus Operator's), PROMETHEUS_PORT (9090)
#      GRAFANA_SERVICE (grafana), GRAFANA_PORT (80, the Grafana chart's service port)
#      LOCAL_PROMETHEUS_PORT (9090), LOCAL_GRAFANA_PORT (3000)
set -euo pipefail
SERVICE=monitor
# shellcheck source=SCRIPTDIR/../local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../local/lib.sh"

NAMESPACE=${MONITORING_NAMESPACE:-monitoring}
# Each: the variables' prefix, the name shown, the service, its port, the local port.
forwards=(
  "PROMETHEUS Prometheus ${PROMETHEUS_SERVICE:-prometheus-operated} ${PROMETHEUS_PORT:-9090} ${LOCAL_PROMETHEUS_PORT:-9090}"
  "GRAFANA Grafana ${GRAFANA_SERVICE:-grafana} ${GRAFANA_PORT:-80} ${LOCAL_GRAFANA_PORT:-3000}"
)

for forward in "${forwards[@]}"; do
  read -r prefix what name port _ <<<"$forward"
  kubectl --namespace "$NAMESPACE" get service "$name" >/dev/null 2>&1 ||
    die "no service $NAMESPACE/$name in the kube context" \
      "$(kubectl config current-context 2>/dev/null || true): set ${prefix}_SERVICE" \
      "(and MONITORING_NAMESPACE) to your $what's"
  kubectl --namespace "$NAMESPACE" get service "$name" \
    --output "jsonpath={.spec.ports[?(@.port==$port)].port}" | grep -qx "$port" ||
    die "service $NAMESPACE/$name has no port $port: set ${prefix}_PORT"
done

pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
trap 'exit 130' INT TERM
for forward in "${forwards[@]}"; do
  read -r _ what name port local_port <<<"$forward"
  kubectl --namespace "$NAMESPACE" port-forward --address 127.0.0.1 "service/$name" \
    "$local_port:$port" &
  pids+=($!)
  log "$what: http://127.0.0.1:$local_port/ (service $NAMESPACE/$name:$port)"
done
# Either forward ending (a pod gone, Ctrl-C) ends both.
wait -n

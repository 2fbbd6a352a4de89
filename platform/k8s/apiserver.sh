#!/usr/bin/env bash
# A real Kubernetes API server on loopback, for `kubectl apply --dry-run=server` and `helm install
# --dry-run=server`: Debian's etcd and the tools cache's kube-apiserver, with the CRDs of
# platform/tools/crd-schemas.sh installed. No kubelet, no controller manager: nothing runs.
# See README.md.
#   start   start both on free loopback ports (fresh etcd data), wait until /readyz answers,
#           write the kubeconfig, install the CRDs and wait until they are served
#   stop    stop both (safe to run twice)
#   status  exit 0 if it answers, 3 if not
#   env     print `export KUBECONFIG=<the kubeconfig>` (a stable path)
# Usage: apiserver.sh start|stop|status|env
set -euo pipefail
SERVICE=k8s
# shellcheck source=SCRIPTDIR/../local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../local/lib.sh"
TOOLS="$REPO/platform/tools"

KUBECONFIG_FILE="$SVC_DIR/kubeconfig"
PKI="$SVC_DIR/pki"
PORTS_FILE="$SVC_DIR/ports"
ETCD_PIDFILE="$SVC_DIR/etcd.pid"
APISERVER_PIDFILE="$SVC_DIR/kube-apiserver.pid"
# kubectl keeps its discovery cache per host:port; ours is a new port every start.
KUBECTL=(kubectl --kubeconfig "$KUBECONFIG_FILE" --cache-dir "$SVC_DIR/kubectl-cache")

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Ports asked for (else free ones are taken at each start); those of the running instance are
# in $PORTS_FILE.
WANTED_K8S_PORT=${DTS_K8S_PORT:-}
WANTED_ETCD_PORT=${DTS_ETCD_PORT:-}
# shellcheck source=/dev/null
read_ports() { [[ -s $PORTS_FILE ]] && source "$PORTS_FILE"; }

etcd_healthy() { curl -fs --max-time 2 "http://127.0.0.1:$DTS_ETCD_PORT/health" | grep -q '"health":"true"'; }
apiserver_ready() { "${KUBECTL[@]}" get --raw /readyz >/dev/null 2>&1; }

running() {
  pid_alive "$ETCD_PIDFILE" && pid_alive "$APISERVER_PIDFILE" && read_ports && apiserver_ready
}

# A CA, the API server's certificate for 127.0.0.1 signed by it, and the service-account key
# pair; made once per folder (EC keys: quick).
make_pki() {
  [[ -s $PKI/sa.pub ]] && return 0
  rm -rf "$PKI"
  mkdir -p "$PKI"
  (
    cd "$PKI"
    umask 077
    quietly openssl.log openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
      -nodes -keyout ca.key -out ca.crt -days 3650 -subj /CN=dts-k8s-ca \
      -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign
    quietly openssl.log openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout apiserver.key -out apiserver.csr -subj /CN=kube-apiserver
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >san.ext
    quietly openssl.log openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key \
      -CAcreateserial -days 3650 -extfile san.ext -out apiserver.crt
    quietly openssl.log openssl ecparam -name prime256v1 -genkey -noout -out sa.key
    quietly openssl.log openssl ec -in sa.key -pubout -out sa.pub
    # token,user,uid,groups: the one user, allowed everything (AlwaysAllow).
    printf '%s,dts-admin,dts-admin,"system:masters"\n' "$(openssl rand -hex 24)" >tokens.csv
  )
}

write_kubeconfig() {
  local token
  token=$(cut -d, -f1 "$PKI/tokens.csv")
  (
    umask 077
    cat >"$KUBECONFIG_FILE" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: dts
    cluster:
      server: https://127.0.0.1:$DTS_K8S_PORT
      certificate-authority: $PKI/ca.crt
users:
  - name: dts-admin
    user:
      token: $token
contexts:
  - name: dts
    context: {cluster: dts, user: dts-admin, namespace: default}
current-context: dts
EOF
  )
}

start_etcd() {
  local etcd peer_port
  etcd=$("$TOOLS/etcd.sh")
  peer_port=$(free_port)
  rm -rf "$SVC_DIR/etcd"
  LOG="$SVC_DIR/etcd.log"
  launch "$ETCD_PIDFILE" "$etcd" --name dts --data-dir "$SVC_DIR/etcd" \
    --listen-client-urls "http://127.0.0.1:$DTS_ETCD_PORT" \
    --advertise-client-urls "http://127.0.0.1:$DTS_ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "dts=http://127.0.0.1:$peer_port" --initial-cluster-state new 9>&-
  wait_until 30 "$ETCD_PIDFILE" etcd_healthy
}

start_apiserver() {
  local apiserver
  apiserver=$("$TOOLS/kube-apiserver.sh")
  LOG="$SVC_DIR/kube-apiserver.log"
  # Advertised on loopback too, so no endpoint reconciler (Endpoints refuse loopback addresses).
  # The service range is only where Service IPs are allocated: no traffic goes there.
  launch "$APISERVER_PIDFILE" "$apiserver" \
    --bind-address=127.0.0.1 --secure-port="$DTS_K8S_PORT" --advertise-address=127.0.0.1 \
    --endpoint-reconciler-type=none \
    --etcd-servers="http://127.0.0.1:$DTS_ETCD_PORT" \
    --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --cert-dir="$PKI" \
    --token-auth-file="$PKI/tokens.csv" --authorization-mode=AlwaysAllow \
    --service-account-issuer=https://kubernetes.default.svc \
    --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
    --service-cluster-ip-range=10.96.0.0/16 \
    --enable-priority-and-fairness=false 9>&-
  wait_until 90 "$APISERVER_PIDFILE" apiserver_ready
}

# Apply crd-schemas.sh's CRDs (server-side: the Prometheus CRD is too large for client-side
# apply's annotation) and wait until each kind is in discovery, as helm and kubectl look it up.
install_crds() {
  local crds kinds
  crds="$("$TOOLS/crd-schemas.sh")/crds"
  LOG="$SVC_DIR/crds.log"
  quietly "$LOG" "${KUBECTL[@]}" apply --server-side --force-conflicts --field-manager=dts \
    -f "$crds"
  quietly "$LOG" "${KUBECTL[@]}" wait --for=condition=Established --timeout=60s -f "$crds"
  kinds=$("${KUBECTL[@]}" get -f "$crds" -o \
    jsonpath='{range .items[*]}{.spec.names.plural}.{.spec.group}{","}{end}')
  wait_until 30 "" "${KUBECTL[@]}" get "${kinds%,}" --all-namespaces
}

start() {
  ensure_packages curl openssl
  mkdir -p "$SVC_DIR"
  if running; then
    log "already up at https://127.0.0.1:$DTS_K8S_PORT"
  else
    stop >/dev/null # what is left of an instance that is not whole
    make_pki
    DTS_K8S_PORT=${WANTED_K8S_PORT:-$(free_port)}
    DTS_ETCD_PORT=${WANTED_ETCD_PORT:-$(free_port)}
    printf 'DTS_K8S_PORT=%s\nDTS_ETCD_PORT=%s\n' "$DTS_K8S_PORT" "$DTS_ETCD_PORT" >"$PORTS_FILE"
    write_kubeconfig
    start_etcd
    start_apiserver
    log "up at https://127.0.0.1:$DTS_K8S_PORT"
  fi
  install_crds
  log "CRDs installed; $(env_line)"
}

stop() {
  SERVICE=kube-apiserver stop_pid "$APISERVER_PIDFILE"
  SERVICE=etcd stop_pid "$ETCD_PIDFILE"
  rm -f "$PORTS_FILE"
}

env_line() { echo "export KUBECONFIG=$KUBECONFIG_FILE"; }

# start and stop one at a time per folder (a second start waits, then finds it up). The servers
# are launched with the lock's descriptor closed (9>&-), or they would hold the lock.
locked() {
  mkdir -p "$SVC_DIR"
  (
    flock 9
    "$@"
  ) 9>"$SVC_DIR/.lock"
}

case "${1:-}" in
  start) locked start ;;
  stop) locked stop ;;
  status)
    if running; then
      log "up at https://127.0.0.1:$DTS_K8S_PORT ($(env_line))"
    else
      log "down"
      exit 3
    fi
    ;;
  env) env_line ;;
  *)
    echo "usage: $0 start|stop|status|env" >&2
    exit 2
    ;;
esac

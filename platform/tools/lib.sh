# shellcheck shell=bash disable=SC2034  # settings are used by the sourcing scripts
# Shared settings and helpers for platform/tools/*.sh (sourced, not run).
# The sourcing script sets SERVICE (the tool's name) first.
#
# Each tool is built from the registries these machines reach (Go module proxy, PyPI) into
# $TOOLS_DIR/<tool>-<version>/, shared by all clones. A tool script prints where a caller finds it
# (its binary's path, mostly) on stdout and nothing else (messages go to stderr), so one can write
#   helm=$(platform/tools/helm.sh)
# Go's own module and build caches stay where Go keeps them (~/go/pkg/mod, ~/.cache/go-build).

# shellcheck source=SCRIPTDIR/../local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../local/lib.sh"
TOOLS_SCRIPTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TOOLS_DIR="${DTS_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/dts/tools}"

# The versions, pinned here and nowhere else.
: "${DTS_HELM_VERSION:=v3.22.0}"
: "${DTS_HELM_UNITTEST_VERSION:=1.1.2}"
: "${DTS_KUBECONFORM_VERSION:=v0.8.0}"
: "${DTS_KUBERNETES_VALIDATE_VERSION:=1.37.0}" # PyPI package holding the Kubernetes schemas
: "${DTS_KUBERNETES_SCHEMA_VERSION:=1.34.0}"   # the Kubernetes version the schemas describe
: "${DTS_COMPOSE_VERSION:=v2.40.3}"
: "${DTS_KUBERNETES_VERSION:=v1.34.4}"         # kube-apiserver
: "${DTS_CONTROLLER_GEN_VERSION:=v0.23.0}"
: "${DTS_PROMETHEUS_OPERATOR_VERSION:=v0.95.2}" # its pkg/apis/monitoring module: the CRDs
: "${DTS_KEDA_VERSION:=v2.21.0}"                # its module's ScaledObject CRDs

# Messages go to stderr: stdout carries only the binary's path.
log() { printf '[%s] %s\n' "$SERVICE" "$*" >&2; }

# tool_dir NAME VERSION: the cache folder of one version of a tool.
tool_dir() { echo "$TOOLS_DIR/$1-$2"; }

need_go() { command -v go >/dev/null || die "go is not on PATH: this tool is built from source"; }

# go_module_dir MODULE@VERSION: download the module (into Go's module cache) and print its folder.
go_module_dir() {
  go mod download -json "$1" | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])'
}

# copy_out DIR DEST: a writable copy of a module's source (the module cache is read-only),
# for builds that `go install` refuses (replace or exclude directives).
copy_out() {
  rm -rf "$2"
  mkdir -p "$(dirname "$2")"
  cp -r "$1" "$2"
  chmod -R u+w "$2"
}

# install_tool BINARY: print BINARY if tool_ready says it is the pinned version; otherwise run
# tool_build under a lock, check it, and print BINARY. The tool's script defines both, and DIR.
# The lock keeps parallel callers (two clones, a test) from building the same tool at once.
install_tool() {
  local binary=$1 started=$SECONDS
  if tool_ready 2>/dev/null; then
    echo "$binary"
    return 0
  fi
  mkdir -p "$TOOLS_DIR/logs"
  (
    flock 9
    if ! tool_ready 2>/dev/null; then # another caller may have built it while we waited
      log "building into $DIR (log: $TOOLS_DIR/logs/$SERVICE.log)"
      tool_build
      tool_ready || die "built, but $binary does not answer with the pinned version"
      log "built in $((SECONDS - started)) s"
    fi
  ) 9>"$TOOLS_DIR/.$SERVICE.lock"
  echo "$binary"
}

#!/usr/bin/env bash
# kube-apiserver, built from the Go module k8s.io/kubernetes into the tools cache (about 8 min
# cold, 140 MiB), for `helm install --dry-run=server` against a real API server. Its storage is
# Debian's etcd (etcd.sh). Prints the path of the kube-apiserver binary. Usage: kube-apiserver.sh
set -euo pipefail
SERVICE=kube-apiserver
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MODULE=k8s.io/kubernetes
DIR=$(tool_dir kube-apiserver "$DTS_KUBERNETES_VERSION")
BINARY="$DIR/kube-apiserver"

tool_ready() {
  [[ -x $BINARY ]] && [[ $("$BINARY" --version) == "Kubernetes $DTS_KUBERNETES_VERSION" ]]
}

tool_build() {
  need_go
  local source="$DIR/source" logfile="$TOOLS_DIR/logs/$SERVICE.log" staged published
  local version=${DTS_KUBERNETES_VERSION#v} edits=()
  copy_out "$(go_module_dir "$MODULE@$DTS_KUBERNETES_VERSION")" "$source"
  # Its go.mod replaces the k8s.io/* libraries with ./staging/src/..., which the module leaves
  # out; each is published on its own as k8s.io/<name> v0.<minor>.<patch>.
  published="v0.${version#*.}"
  while read -r staged; do
    edits+=("-replace=$staged=$staged@$published")
  done < <(sed -n 's#^\s*\(k8s.io/[^ ]*\) => ./staging/.*#\1#p' "$source/go.mod")
  ((${#edits[@]})) || die "no ./staging replace directives in $MODULE's go.mod"
  local major=${version%%.*} minor=${version#*.}
  minor=${minor%%.*}
  (
    cd "$source"
    go mod edit "${edits[@]}"
    GOWORK=off GOFLAGS=-mod=mod quietly "$logfile" go build -o "$BINARY" -ldflags "\
-X k8s.io/component-base/version.gitVersion=$DTS_KUBERNETES_VERSION \
-X k8s.io/component-base/version.gitMajor=$major -X k8s.io/component-base/version.gitMinor=$minor \
-X k8s.io/component-base/version.gitTreeState=clean" ./cmd/kube-apiserver
  )
  rm -rf "$source"
}

install_tool "$BINARY"

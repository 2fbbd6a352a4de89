#!/usr/bin/env bash
# kubeconform, built with `go install` from the Go module proxy into the tools cache.
# Prints the path of the kubeconform binary; its schemas come from kubernetes-schemas.sh.
# Usage: kubeconform.sh
set -euo pipefail
SERVICE=kubeconform
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DIR=$(tool_dir kubeconform "$DTS_KUBECONFORM_VERSION")
BINARY="$DIR/kubeconform"

tool_ready() { [[ -x $BINARY ]] && [[ $("$BINARY" -v) == "$DTS_KUBECONFORM_VERSION" ]]; }

tool_build() {
  need_go
  # -X main.version: without it `kubeconform -v` answers "development".
  GOBIN="$DIR" quietly "$TOOLS_DIR/logs/$SERVICE.log" go install \
    -ldflags "-X main.version=$DTS_KUBECONFORM_VERSION" \
    "github.com/yannh/kubeconform/cmd/kubeconform@$DTS_KUBECONFORM_VERSION"
}

install_tool "$BINARY"

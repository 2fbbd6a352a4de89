#!/usr/bin/env bash
# Helm 3, built with `go install` from the Go module proxy into the tools cache.
# Prints the path of the helm binary. Usage: helm.sh
set -euo pipefail
SERVICE=helm
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DIR=$(tool_dir helm "$DTS_HELM_VERSION")
BINARY="$DIR/helm"

tool_ready() {
  [[ -x $BINARY ]] && [[ $("$BINARY" version --template '{{.Version}}') == "$DTS_HELM_VERSION" ]]
}

tool_build() {
  need_go
  # Without the -X, `helm version` says v3.22+unreleased and charts with a kubeVersion misjudge it.
  GOBIN="$DIR" quietly "$TOOLS_DIR/logs/$SERVICE.log" go install \
    -ldflags "-X helm.sh/helm/v3/internal/version.version=$DTS_HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@$DTS_HELM_VERSION"
}

install_tool "$BINARY"

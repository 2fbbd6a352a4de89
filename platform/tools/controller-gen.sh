#!/usr/bin/env bash
# controller-gen (sigs.k8s.io/controller-tools), built with `go install` from the Go module proxy
# into the tools cache; crd-schemas.sh generates CustomResourceDefinitions with it.
# Prints the path of the controller-gen binary. Usage: controller-gen.sh
set -euo pipefail
SERVICE=controller-gen
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DIR=$(tool_dir controller-gen "$DTS_CONTROLLER_GEN_VERSION")
BINARY="$DIR/controller-gen"

# `go install module@version` records the version, which `controller-gen --version` answers.
tool_ready() {
  [[ -x $BINARY ]] && [[ $("$BINARY" --version) == "Version: $DTS_CONTROLLER_GEN_VERSION" ]]
}

tool_build() {
  need_go
  GOBIN="$DIR" quietly "$TOOLS_DIR/logs/$SERVICE.log" go install \
    "sigs.k8s.io/controller-tools/cmd/controller-gen@$DTS_CONTROLLER_GEN_VERSION"
}

install_tool "$BINARY"

#!/usr/bin/env bash
# The helm-unittest plugin, built from its Go module into the tools cache (needs helm.sh's helm).
# Prints the folder to use as HELM_PLUGINS:
#   HELM_PLUGINS=$(platform/tools/helm-unittest.sh) "$(platform/tools/helm.sh)" unittest CHART
# Usage: helm-unittest.sh
set -euo pipefail
SERVICE=helm-unittest
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MODULE=github.com/helm-unittest/helm-unittest
DIR=$(tool_dir helm-unittest "$DTS_HELM_UNITTEST_VERSION")
PLUGINS="$DIR/plugins"
PLUGIN="$PLUGINS/unittest"
HELM=$("$TOOLS_SCRIPTS_DIR/helm.sh")

tool_ready() {
  grep -qx "version: \"$DTS_HELM_UNITTEST_VERSION\"" "$PLUGIN/plugin.yaml" &&
    HELM_PLUGINS="$PLUGINS" "$HELM" unittest --help >/dev/null
}

tool_build() {
  need_go
  local logfile="$TOOLS_DIR/logs/$SERVICE.log" source="$DIR/source" goos goarch
  # A module with a replace directive: `go install` refuses it, `go build` in a copy does not.
  copy_out "$(go_module_dir "$MODULE@v$DTS_HELM_UNITTEST_VERSION")" "$source"
  goos=$(go env GOOS) goarch=$(go env GOARCH)
  [[ $goos == darwin ]] && goos=macos # the name plugin.yaml gives the binary
  rm -rf "$PLUGIN"
  mkdir -p "$PLUGIN"
  (cd "$source" && quietly "$logfile" go build -o "$PLUGIN/untt-$goos-$goarch" \
    -ldflags "-X $MODULE/internal/build.version=$DTS_HELM_UNITTEST_VERSION" ./cmd/helm-unittest)
  # Its install hooks download a release binary: we built one, so the plugin has none.
  sed '/^platformHooks:/,$d' "$source/plugin.yaml" >"$PLUGIN/plugin.yaml"
  rm -rf "$source"
}

install_tool "$PLUGINS"

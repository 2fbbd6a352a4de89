#!/usr/bin/env bash
# Docker Compose v2, built from its Go module into the tools cache as a Docker CLI plugin.
# Prints the path of the plugin, <cache>/compose-<version>/cli-plugins/docker-compose. Use it as
#   DOCKER_CONFIG=<cache>/compose-<version> docker compose ...  (that folder is a Docker config)
# or put its folder in your own config.json's "cliPluginsExtraDirs", or run it on its own
# (`docker-compose config -q`: the plugin binary also works stand-alone).
# Usage: compose.sh
set -euo pipefail
SERVICE=compose
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MODULE=github.com/docker/compose/v2
DIR=$(tool_dir compose "$DTS_COMPOSE_VERSION")
BINARY="$DIR/cli-plugins/docker-compose"

tool_ready() {
  [[ -x $BINARY ]] && [[ $("$BINARY" version --short) == "${DTS_COMPOSE_VERSION#v}" ]]
}

tool_build() {
  need_go
  local source="$DIR/source"
  # `go install` refuses the module for its exclude directives; `go build` in a copy does not.
  copy_out "$(go_module_dir "$MODULE@$DTS_COMPOSE_VERSION")" "$source"
  (cd "$source" && quietly "$TOOLS_DIR/logs/$SERVICE.log" go build -o "$BINARY" \
    -ldflags "-X $MODULE/internal.Version=$DTS_COMPOSE_VERSION" ./cmd)
  rm -rf "$source"
}

install_tool "$BINARY"

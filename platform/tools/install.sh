#!/usr/bin/env bash
# Install the deployment tools that are missing from the cache (all of them by default), one
# after the other, and print one line per tool: its name and what its script prints (the binary,
# or for helm-unittest the HELM_PLUGINS folder, for kubernetes-schemas the -schema-location).
# A tool that is already there costs a version check. See README.md.
# Usage: install.sh [helm helm-unittest kubeconform kubernetes-schemas compose]
set -euo pipefail
SERVICE=tools
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ALL=(helm helm-unittest kubeconform kubernetes-schemas compose)

tools=("$@")
((${#tools[@]})) || tools=("${ALL[@]}")
for tool in "${tools[@]}"; do
  [[ " ${ALL[*]} " == *" $tool "* ]] || die "no tool named $tool (known: ${ALL[*]})"
done
for tool in "${tools[@]}"; do
  printf '%s %s\n' "$tool" "$("$TOOLS_SCRIPTS_DIR/$tool.sh")"
done

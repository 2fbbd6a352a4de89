#!/usr/bin/env bash
# Install the deployment tools that are missing from the cache (by default all but the API
# server and its etcd, which only the server-side checks need), one after the other, and print
# one line per tool: its name and what its script prints (the binary, or for helm-unittest the
# HELM_PLUGINS folder, for kubernetes-schemas the -schema-location, for crd-schemas a folder).
# A tool that is already there costs a version check. See README.md.
# Usage: install.sh [helm helm-unittest kubeconform kubernetes-schemas controller-gen crd-schemas
#                    compose kube-apiserver etcd]
set -euo pipefail
SERVICE=tools
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DEFAULT=(helm helm-unittest kubeconform kubernetes-schemas controller-gen crd-schemas compose)
KNOWN=("${DEFAULT[@]}" kube-apiserver etcd)

tools=("$@")
((${#tools[@]})) || tools=("${DEFAULT[@]}")
for tool in "${tools[@]}"; do
  [[ " ${KNOWN[*]} " == *" $tool "* ]] || die "no tool named $tool (known: ${KNOWN[*]})"
done
for tool in "${tools[@]}"; do
  where=$("$TOOLS_SCRIPTS_DIR/$tool.sh") # on its own line, so that a failure stops the script
  printf '%s %s\n' "$tool" "$where"
done

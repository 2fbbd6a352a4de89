#!/usr/bin/env bash
# Strict JSON schemas of the Kubernetes $DTS_KUBERNETES_SCHEMA_VERSION kinds, stand-alone for
# kubeconform: taken from the PyPI package kubernetes-validate (its wheel is only unpacked, not
# installed) and made self-contained by standalone_schemas.py.
# Prints the -schema-location template; use it with -strict and the same Kubernetes version:
#   kubeconform -strict -kubernetes-version 1.34.0 -schema-location "$(kubernetes-schemas.sh)" FILE
# Usage: kubernetes-schemas.sh
set -euo pipefail
SERVICE=kubernetes-schemas
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DIR=$(tool_dir kubernetes-schemas "$DTS_KUBERNETES_SCHEMA_VERSION")
# kubeconform fills in v1.34.0, -strict (with -strict) and e.g. deployment-apps-v1.
SCHEMAS="$DIR/v$DTS_KUBERNETES_SCHEMA_VERSION-standalone-strict"
# shellcheck disable=SC2016  # a kubeconform template, not shell
LOCATION="$DIR"'/{{.NormalizedKubernetesVersion}}-standalone{{.StrictSuffix}}/{{.ResourceKind}}{{.KindSuffix}}.json'
SOURCE="kubernetes-json-schema/v$DTS_KUBERNETES_SCHEMA_VERSION-local-strict"
# What the schemas were made from: a changed converter remakes them.
MADE_FROM="kubernetes-validate $DTS_KUBERNETES_VALIDATE_VERSION, standalone_schemas.py $(
  sha256sum "$TOOLS_SCRIPTS_DIR/standalone_schemas.py" | cut -c1-12)"

tool_ready() {
  [[ -e $SCHEMAS/.complete ]] && [[ $(cat "$SCHEMAS/.complete") == "$MADE_FROM" ]]
}

tool_build() {
  local work="$TOOLS_DIR/kubernetes-validate-$DTS_KUBERNETES_VALIDATE_VERSION.partial"
  local logfile="$TOOLS_DIR/logs/$SERVICE.log"
  rm -rf "$work" "$SCHEMAS"
  # A throwaway venv for its pip: Debian's python3 has none of its own.
  quietly "$logfile" python3 -m venv "$work/venv"
  quietly "$logfile" "$work/venv/bin/pip" download --quiet --no-deps --dest "$work" \
    "kubernetes-validate==$DTS_KUBERNETES_VALIDATE_VERSION"
  quietly "$logfile" python3 -m zipfile -e "$work"/kubernetes_validate-*.whl "$work/unpacked"
  [[ -d $work/unpacked/kubernetes_validate/$SOURCE ]] ||
    die "kubernetes-validate $DTS_KUBERNETES_VALIDATE_VERSION has no $SOURCE"
  quietly "$logfile" python3 "$TOOLS_SCRIPTS_DIR/standalone_schemas.py" \
    "$work/unpacked/kubernetes_validate/$SOURCE" "$SCHEMAS"
  echo "$MADE_FROM" >"$SCHEMAS/.complete"
  rm -rf "$work"
}

install_tool "$LOCATION"

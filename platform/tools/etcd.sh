#!/usr/bin/env bash
# etcd, the storage of kube-apiserver.sh's API server: Debian's etcd-server package (not
# started by this script). Prints the path of the etcd binary. Usage: etcd.sh
set -euo pipefail
SERVICE=etcd
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_packages etcd-server >&2
command -v etcd || die "etcd-server is installed but etcd is not on PATH"

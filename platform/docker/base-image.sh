#!/usr/bin/env bash
# The base image compose/Dockerfile starts from, made here when no registry can give it: a Debian
# bookworm root file system (its python3 is 3.11) from mmdebstrap, imported into the private
# engine (dockerd.sh) as python:3.11-slim-bookworm. Does nothing if that image is there already.
# The root file system is cached under ${XDG_CACHE_HOME:-$HOME/.cache}/dts/, so a second clone or
# a fresh engine takes seconds. Usage: base-image.sh [--force]   (--force makes a new tarball)
set -euo pipefail
SERVICE=base-image
# shellcheck source=SCRIPTDIR/../local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../local/lib.sh"

IMAGE=python:3.11-slim-bookworm
ROOTFS_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/dts"
# As the real python image has them: passwd (useradd, for the Dockerfile) and tzdata (Debian
# bookworm's minimal systems have it; without it zoneinfo knows no time zone, not even UTC, and
# kombu fails at import).
PACKAGES=python3,python3-venv,ca-certificates,passwd,tzdata
ROOTFS="$ROOTFS_DIR/bookworm-python3-rootfs.tar"

eval "$("$LOCAL_DIR/../docker/dockerd.sh" env)"
"$LOCAL_DIR/../docker/dockerd.sh" start >/dev/null

if [[ ${1:-} != --force ]] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  log "$IMAGE is there"
  exit 0
fi
if [[ ${1:-} == --force || ! -s $ROOTFS ]]; then
  ensure_packages mmdebstrap
  mkdir -p "$ROOTFS_DIR"
  log "mmdebstrap bookworm ($PACKAGES) into $ROOTFS"
  # The tarball appears only when complete: an interrupted run leaves no half rootfs to import.
  quietly "$ROOTFS_DIR/mmdebstrap.log" \
    mmdebstrap --variant=apt --format=tar --include="$PACKAGES" \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    bookworm "$ROOTFS.partial" || { rm -f "$ROOTFS.partial"; exit 1; }
  mv -f "$ROOTFS.partial" "$ROOTFS"
fi
# What the Dockerfile expects of a python image: the language variables and a default command.
docker import \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["python3"]' \
  "$ROOTFS" "$IMAGE" >/dev/null
log "imported $IMAGE from $ROOTFS"

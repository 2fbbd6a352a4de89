#!/usr/bin/env bash
# Build the dts image (compose/Dockerfile) on the private engine (dockerd.sh) and tag it
# dts:$VERSION (pyproject's version unless VERSION is set), dts:<short commit> and dts:latest
# (compose/compose.yaml's default).
# pip cannot reach its index inside a RUN here: the wheels of requirements/base.txt are made on
# the host into .wheelhouse/ (kept between builds; pip's own cache makes a refill quick), and the
# Dockerfile installs from there alone. The host's python must be the image's: 3.11.
# Usage: build.sh   Env: VERSION, DTS_BUILD_PYTHON (default .venv/bin/python, else python3.11)
set -euo pipefail
SERVICE=build
# shellcheck source=SCRIPTDIR/../local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../local/lib.sh"
DOCKER_DIR="$LOCAL_DIR/../docker"
cd "$REPO"

PYTHON="${DTS_BUILD_PYTHON:-$REPO/.venv/bin/python}"
[[ -x $PYTHON ]] || PYTHON=python3.11
"$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' ||
  die "$PYTHON is not Python 3.11, the image's: its wheels would not fit (set DTS_BUILD_PYTHON)"
VERSION="${VERSION:-$("$PYTHON" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')}"
COMMIT=$(git rev-parse --short HEAD)

started=$SECONDS
log "wheelhouse: requirements/base.txt into .wheelhouse/"
mkdir -p .wheelhouse "$SVC_DIR"
# --find-links: the wheels already here are taken as they are; only new pins are fetched or built.
# requirements/base.txt is compiled on a newer 3.11 than Debian bookworm's python3 (3.11.2, the
# base image base-image.sh makes), where redis also needs async-timeout (below 3.11.3): its wheel
# is added, and pip in the image installs it only where that marker holds.
quietly "$SVC_DIR/pip.log" \
  "$PYTHON" -m pip wheel --quiet --wheel-dir .wheelhouse --find-links .wheelhouse \
  --requirement requirements/base.txt "async-timeout>=4.0.3"
log "wheelhouse ready after $((SECONDS - started))s"

"$DOCKER_DIR/dockerd.sh" start
eval "$("$DOCKER_DIR/dockerd.sh" env)"
"$DOCKER_DIR/base-image.sh"

started=$SECONDS
log "docker build dts:$VERSION dts:$COMMIT dts:latest"
# The OCI labels say which version and commit an image holds, wherever it is pulled.
DOCKER_BUILDKIT=0 docker build --quiet --force-rm -f compose/Dockerfile \
  --label "org.opencontainers.image.version=$VERSION" \
  --label "org.opencontainers.image.revision=$(git rev-parse HEAD)" \
  --label org.opencontainers.image.title=dts \
  -t "dts:$VERSION" -t "dts:$COMMIT" -t dts:latest . >/dev/null
log "built dts:$VERSION, dts:$COMMIT and dts:latest after $((SECONDS - started))s (DOCKER_HOST=$DOCKER_HOST)"

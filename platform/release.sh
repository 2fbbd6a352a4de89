#!/usr/bin/env bash
# Release dts: build the image (docker/build.sh), tag it $REGISTRY/dts:$VERSION and
# $REGISTRY/dts:<short commit>, push both; package the Helm chart at that version, its default
# image the one just pushed (by digest), and push it to oci://$CHART_REGISTRY. Prints what was pushed with its digests, and keeps the same lines in
# $DIST/release-$VERSION.env.
#
# Refuses: a VERSION that is not SemVer (the chart's version must be; docker tags cannot hold its
# "+build" part, so that is refused too); a work tree with changes not committed (the commit tag
# would not say what the image holds); a VERSION that the registry already has, as an image or as
# a chart: a released version is immutable, as an operator pulling it expects, although registries
# would let it be overwritten.
#
# Usage: VERSION=1.2.3 [REGISTRY=docker.io/dtsproject] platform/release.sh   (make release)
# Env:   REGISTRY  where to push (default docker.io/dtsproject); plain HTTP only for a loopback one
#        CHART_REGISTRY  where the chart goes: $REGISTRY/charts, but on Docker Hub, which holds
#                  namespace/repository and nothing deeper, a namespace of its own beside the
#                  image's (as bitnamicharts beside bitnami): registry-1.docker.io/dtsprojectcharts
#        CHART     the chart folder (default helm/dts)
#        DIST      where the packaged chart and the record go (default dist/)
#        DTS_RELEASE_ALLOW_DIRTY=1  release a tree with uncommitted changes (commit tag <sha>-dirty)
#        DTS_RELEASE_OVERWRITE=1    push over a version the registry already has
#        and build.sh's: DTS_BUILD_PYTHON
set -euo pipefail
SERVICE=release
# shellcheck source=SCRIPTDIR/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/local/lib.sh"
PLATFORM_DIR="$(cd "$LOCAL_DIR/.." && pwd)"
cd "$REPO"

VERSION=${VERSION:-}
REGISTRY=${REGISTRY:-docker.io/dtsproject}
REGISTRY=${REGISTRY%/}
CHART=${CHART:-helm/dts}
DIST=${DIST:-$REPO/dist}

# Checks that need nothing but the arguments and the tree come first: a refused release pushes
# nothing and builds nothing.
[[ -n $VERSION ]] || die "VERSION is required: make release VERSION=1.2.3 [REGISTRY=$REGISTRY]"
SEMVER='^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$'
[[ $VERSION =~ $SEMVER ]] ||
  die "VERSION '$VERSION' is not a version like 1.2.3 or 1.2.3-rc.1 (SemVer, no leading v, no +build)"

COMMIT=$(git rev-parse --short HEAD)
if [[ -n $(git status --porcelain) ]]; then
  [[ ${DTS_RELEASE_ALLOW_DIRTY:-} == 1 ]] ||
    die "the work tree has uncommitted changes (git status): commit them, or set" \
      "DTS_RELEASE_ALLOW_DIRTY=1 to release it as $COMMIT-dirty"
  COMMIT="$COMMIT-dirty"
  log "the work tree has uncommitted changes: the commit tag is $COMMIT"
fi
[[ -f $CHART/Chart.yaml ]] || die "no Helm chart at $CHART (CHART chooses another folder)"

IMAGE="$REGISTRY/dts"
if [[ $REGISTRY == docker.io/* ]]; then
  CHART_REGISTRY=${CHART_REGISTRY:-registry-1.docker.io/${REGISTRY#docker.io/}charts}
fi
CHART_REGISTRY=${CHART_REGISTRY:-$REGISTRY/charts}
CHARTS="oci://${CHART_REGISTRY%/}"
# The engine treats 127.0.0.0/8 as an insecure registry by itself; helm and `docker manifest` need
# to be told (without it, `docker manifest inspect` says "no such manifest" of one it has).
loopback() { [[ ${1%%/*} =~ ^(127\.[0-9.]+|localhost|\[::1\])(:[0-9]+)?$ ]]; }
plain_http=() insecure=()
if loopback "$REGISTRY"; then insecure=(--insecure); fi
if loopback "$CHART_REGISTRY"; then plain_http=(--plain-http); fi

helm=$("$PLATFORM_DIR/tools/helm.sh")
"$PLATFORM_DIR/docker/dockerd.sh" start >/dev/null
eval "$("$PLATFORM_DIR/docker/dockerd.sh" env)"
mkdir -p "$SVC_DIR" "$DIST"
CHART_NAME=$("$helm" show chart "$CHART" | sed -n 's/^name: *//p')

# released WHAT CMD...: whether CMD finds WHAT in the registry. CMD must fail with "not found" (or
# "no such manifest") when it is not there; any other failure (the registry is unreachable, a
# login is missing) stops the release: it cannot tell whether the version is taken.
released() {
  local what=$1 output; shift
  if output=$("$@" 2>&1); then return 0; fi
  if grep -qiE 'not found|no such manifest|manifest unknown' <<<"$output"; then return 1; fi
  die "cannot tell whether $what is in the registry: $*: $(tail -n 3 <<<"$output")"
}
if [[ ${DTS_RELEASE_OVERWRITE:-} != 1 ]]; then
  # docker 20.10's CLI needs the experimental switch for `docker manifest`; later ones ignore it.
  if released "$IMAGE:$VERSION" env DOCKER_CLI_EXPERIMENTAL=enabled \
    docker manifest inspect "${insecure[@]}" "$IMAGE:$VERSION"; then
    die "$IMAGE:$VERSION is released already: a version is not pushed twice" \
      "(DTS_RELEASE_OVERWRITE=1 pushes over it)"
  fi
  if released "$CHARTS/$CHART_NAME:$VERSION" \
    "$helm" show chart "${plain_http[@]}" "$CHARTS/$CHART_NAME" --version "$VERSION"; then
    die "$CHARTS/$CHART_NAME:$VERSION is released already: a version is not pushed twice" \
      "(DTS_RELEASE_OVERWRITE=1 pushes over it)"
  fi
fi

started=$SECONDS
VERSION=$VERSION "$PLATFORM_DIR/docker/build.sh"
docker tag "dts:$VERSION" "$IMAGE:$VERSION"
docker tag "dts:$VERSION" "$IMAGE:$COMMIT"

# push_image REF: docker push, its output in .services/release/; prints the manifest digest.
push_image() {
  local logfile="$SVC_DIR/push-${1##*:}.log"
  log "docker push $1" >&2
  quietly "$logfile" docker push "$1"
  sed -n 's/^.*: digest: \(sha256:[0-9a-f]\{64\}\) size: .*$/\1/p' "$logfile" | tail -n 1
}
IMAGE_DIGEST=$(push_image "$IMAGE:$VERSION")
COMMIT_DIGEST=$(push_image "$IMAGE:$COMMIT")
[[ -n $IMAGE_DIGEST ]] || die "docker push printed no digest (see $SVC_DIR/push-$VERSION.log)"
# One image, one manifest: both tags must name the same digest.
[[ $COMMIT_DIGEST == "$IMAGE_DIGEST" ]] ||
  die "$IMAGE:$COMMIT got $COMMIT_DIGEST, but $IMAGE:$VERSION got $IMAGE_DIGEST"

# The packaged chart's default image is the one just pushed: a copy of the chart with its
# image.repository default set to $IMAGE and image.digest to its digest (the tag, the appVersion
# $VERSION, then only names it: an overwritten tag cannot change what the chart runs).
staged="$SVC_DIR/chart"
rm -rf "$staged"
mkdir -p "$staged"
# -L: the chart links files/ to platform/ (one source); the copy holds the files themselves.
cp -rL "$CHART/." "$staged/"
sed -i -e "s|^  repository: .*|  repository: $IMAGE|" -e "s|^  digest: \"\"|  digest: $IMAGE_DIGEST|" \
  "$staged/values.yaml"
[[ $("$helm" show values "$staged" | grep -cx "  repository: $IMAGE\|  digest: $IMAGE_DIGEST") == 2 ]] ||
  die "could not set image.repository and image.digest in the packaged chart's values.yaml"
log "helm package $CHART --version $VERSION --app-version $VERSION (image.repository $IMAGE)"
packaged=$("$helm" package "$staged" --version "$VERSION" --app-version "$VERSION" --destination "$DIST")
PACKAGE=${packaged##*: }
[[ -f $PACKAGE ]] || die "helm package said '$packaged', which names no file"
log "helm push $PACKAGE $CHARTS"
quietly "$SVC_DIR/helm-push.log" "$helm" push "${plain_http[@]}" "$PACKAGE" "$CHARTS"
CHART_DIGEST=$(sed -n 's/^Digest: *\(sha256:[0-9a-f]\{64\}\)$/\1/p' "$SVC_DIR/helm-push.log")
[[ -n $CHART_DIGEST ]] || die "helm push printed no digest (see $SVC_DIR/helm-push.log)"

RECORD="$DIST/release-$VERSION.env"
cat >"$RECORD" <<RECORD
VERSION=$VERSION
COMMIT=$COMMIT
IMAGE=$IMAGE
IMAGE_TAGS="$VERSION $COMMIT"
IMAGE_DIGEST=$IMAGE_DIGEST
CHART=$CHARTS/$CHART_NAME
CHART_PACKAGE=$PACKAGE
CHART_DIGEST=$CHART_DIGEST
RECORD
log "released $VERSION after $((SECONDS - started))s (record: $RECORD):"
cat "$RECORD"

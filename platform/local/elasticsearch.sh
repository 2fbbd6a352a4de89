#!/usr/bin/env bash
# Elasticsearch (integ-test-zip distribution from Maven Central) on
# 127.0.0.1:$DTS_ES_PORT (transport $DTS_ES_TRANSPORT_PORT), single node, no
# security.  It refuses to run as root, so it runs as the system user dts-es,
# on the newest JDK >= 21 in /usr/lib/jvm (or $ES_JAVA_HOME).  The zip is cached;
# it is unpacked, configured and run in .services/elasticsearch.
# Usage: elasticsearch.sh start|stop|status
set -euo pipefail
SERVICE=elasticsearch
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PORT=$DTS_ES_PORT
VERSION=$DTS_ES_VERSION
ES_USER=dts-es
ARTIFACT=org.elasticsearch.distribution.integ-test-zip:elasticsearch:$VERSION:zip
ZIP="$CACHE_DIR/m2/org/elasticsearch/distribution/integ-test-zip/elasticsearch/$VERSION/elasticsearch-$VERSION.zip"
ES_HOME="$SVC_DIR/elasticsearch-$VERSION" # not in the cache: $HOME may be closed to dts-es
CONF="$SVC_DIR/config"
LOGS="$SVC_DIR/logs"
PIDFILE="$SVC_DIR/elasticsearch.pid"
LOG="$LOGS/dts.log" # <cluster.name>.log

svc_url() { echo "http://127.0.0.1:$PORT"; }
svc_healthy() {
  curl -fs -o /dev/null --max-time 5 "http://127.0.0.1:$PORT/_cluster/health?wait_for_status=yellow&timeout=2s"
}

fetch() {
  if [[ ! -s $ZIP ]]; then
    log "fetching $ARTIFACT"
    mvn_run "$MVN_DEPENDENCY_PLUGIN:get" -Dtransitive=false -Dartifact="$ARTIFACT"
  fi
  if [[ ! -x $ES_HOME/bin/elasticsearch ]]; then
    log "unpacking into $ES_HOME"
    rm -rf "$SVC_DIR/unpack" "$ES_HOME"
    unzip -q "$ZIP" -d "$SVC_DIR/unpack"
    mv "$SVC_DIR/unpack/elasticsearch-$VERSION" "$ES_HOME"
    rmdir "$SVC_DIR/unpack"
  fi
}

configure() {
  rm -rf "$SVC_DIR/tmp"
  mkdir -p "$SVC_DIR/data" "$SVC_DIR/tmp" "$LOGS" "$CONF"
  [[ -e $CONF/jvm.options ]] || cp -r "$ES_HOME/config/." "$CONF/"
  cat >"$CONF/elasticsearch.yml" <<EOF
cluster.name: dts
node.name: dts-local
path.data: $SVC_DIR/data
path.logs: $LOGS
network.host: 127.0.0.1
http.port: $PORT
transport.port: $DTS_ES_TRANSPORT_PORT
discovery.type: single-node
cluster.routing.allocation.disk.threshold_enabled: false
action.destructive_requires_name: false
xpack.security.enabled: false
EOF
  printf -- '-Xms512m\n-Xmx512m\n' >"$CONF/jvm.options.d/heap.options"
  ensure_user "$ES_USER"
  chown "$ES_USER:" "$SVC_DIR"
  chown -R "$ES_USER:" "$CONF" "$SVC_DIR/data" "$SVC_DIR/tmp" "$LOGS"
  ensure_traversable "$ES_USER" "$SVC_DIR"
}

svc_start() {
  ensure_packages curl unzip
  local jdk
  jdk=${ES_JAVA_HOME:-$(find_jdk 21)} || die "needs a JDK >= 21 in /usr/lib/jvm (or set ES_JAVA_HOME)"
  fetch
  configure
  [[ -e $LOG ]] && mv -f "$LOG" "$LOG.1"
  log "starting as $ES_USER with ES_JAVA_HOME=$jdk"
  # -d: daemonize once the node has started; -p: pid file.  GC logs land in
  # the working directory, hence the cd.
  (cd "$LOGS" && runuser -u "$ES_USER" -- env ES_JAVA_HOME="$jdk" ES_PATH_CONF="$CONF" ES_TMPDIR="$SVC_DIR/tmp" \
    CLI_JAVA_OPTS="-Djava.io.tmpdir=$SVC_DIR/tmp" \
    "$ES_HOME/bin/elasticsearch" -d -p "$PIDFILE") >"$SVC_DIR/launcher.log" 2>&1 </dev/null ||
    fail_with_log "launcher failed" "$SVC_DIR/launcher.log" "$LOG"
  wait_until 180 "$PIDFILE" svc_healthy
}

svc_stop() { stop_pid "$PIDFILE" 60; }

service_main "$@"

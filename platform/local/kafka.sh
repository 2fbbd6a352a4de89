#!/usr/bin/env bash
# Apache Kafka, single node in KRaft mode (broker + controller), on
# 127.0.0.1:$DTS_KAFKA_PORT (controller $DTS_KAFKA_CONTROLLER_PORT).  Its jars
# come from Maven Central via kafka/pom.xml into the cache; logs and data in
# .services/kafka.  Usage: kafka.sh start|stop|status
set -euo pipefail
SERVICE=kafka
# shellcheck source=SCRIPTDIR/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PORT=$DTS_KAFKA_PORT
LIBS="$CACHE_DIR/kafka-$DTS_KAFKA_VERSION/libs"
PROPS="$SVC_DIR/server.properties"
PIDFILE="$SVC_DIR/kafka.pid"
LOG="$SVC_DIR/kafka.log"
CLUSTER_ID=ZHRzLWxvY2FsLWthZmthMQ # base64url of "dts-local-kafka1"

svc_url() { echo "127.0.0.1:$PORT"; }
svc_healthy() {
  port_open "$PORT" || return 1
  if pid_alive "$PIDFILE"; then
    grep -q 'Kafka Server started' "$LOG"
    return
  fi
  # Another folder's Kafka (another clone's), recorded by its own script when it started: up, as
  # the other services answer for theirs. No Kafka client here to ask the port itself.
  [[ $(port_owner "$PORT") == *" from "*/kafka ]]
}

fetch() {
  [[ -e $LIBS/.complete ]] && return 0
  log "fetching Kafka $DTS_KAFKA_VERSION jars into $LIBS"
  rm -rf "$LIBS"
  mvn_run -f "$LOCAL_DIR/kafka/pom.xml" -Dkafka.version="$DTS_KAFKA_VERSION" \
    "$MVN_DEPENDENCY_PLUGIN:copy-dependencies" -DoutputDirectory="$LIBS"
  touch "$LIBS/.complete"
}

write_props() {
  cat >"$PROPS" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$DTS_KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$DTS_KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs=$SVC_DIR/data
auto.create.topics.enable=true
num.partitions=1
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
EOF
}

svc_start() {
  command -v java >/dev/null || ensure_packages default-jre-headless
  fetch
  write_props
  if [[ ! -s $SVC_DIR/data/meta.properties ]]; then
    log "formatting storage (cluster id $CLUSTER_ID)"
    java -cp "$LIBS/*" kafka.tools.StorageTool format -t "$CLUSTER_ID" -c "$PROPS" \
      >"$SVC_DIR/format.log" 2>&1 || fail_with_log "storage format failed" "$SVC_DIR/format.log"
  fi
  mkdir -p "$SVC_DIR/tmp"
  launch "$PIDFILE" java -Xms256m -Xmx512m -XX:+UseG1GC -Djava.awt.headless=true \
    -Djava.io.tmpdir="$SVC_DIR/tmp" \
    -Dorg.slf4j.simpleLogger.showDateTime=true \
    -Dorg.slf4j.simpleLogger.dateTimeFormat="yyyy-MM-dd'T'HH:mm:ss.SSS" \
    -cp "$LIBS/*" kafka.Kafka "$PROPS"
  wait_until 120 "$PIDFILE" svc_healthy
}

svc_stop() { stop_pid "$PIDFILE" 60; }

service_main "$@"

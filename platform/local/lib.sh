# shellcheck shell=bash disable=SC2034  # settings are used by the sourcing scripts
# Shared settings and helpers for platform/local/*.sh (sourced, not run).
# The sourcing script sets SERVICE (its name) first.

LOCAL_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$LOCAL_DIR/../.." && pwd)"
SERVICES_DIR="${DTS_SERVICES_DIR:-$REPO/.services}" # data, logs, pid files (git-ignored)
CACHE_DIR="${DTS_CACHE_DIR:-$HOME/.cache/dts}"      # downloads, shared by all clones
SVC_DIR="$SERVICES_DIR/$SERVICE"
# Which folder's instance serves each port, machine-wide as ports are: a file per port holding
# the folder and the pid file (see port_owner).
PORTS_DIR="${DTS_PORTS_DIR:-${TMPDIR:-/tmp}/dts-services}"

# Loopback ports, away from each service's usual default; override by env.
: "${DTS_POSTGRES_PORT:=55432}"
: "${DTS_REDIS_PORT:=56379}"
: "${DTS_KAFKA_PORT:=59092}"
: "${DTS_KAFKA_CONTROLLER_PORT:=59093}"
: "${DTS_ES_PORT:=59200}"
: "${DTS_ES_TRANSPORT_PORT:=59300}"
: "${DTS_PROMETHEUS_PORT:=59090}"

# Versions fetched from Maven Central.
: "${DTS_KAFKA_VERSION:=4.4.0}"
: "${DTS_ES_VERSION:=9.5.4}"

export DEBIAN_FRONTEND=noninteractive
MVN_DEPENDENCY_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.8.1

log() { printf '[%s] %s\n' "$SERVICE" "$*"; }
die() { printf '[%s] ERROR: %s\n' "$SERVICE" "$*" >&2; exit 1; }

# fail_with_log MESSAGE FILE...: print the first errors and the last lines of
# each log file, then exit 1.
fail_with_log() {
  local msg=$1 f; shift
  printf '[%s] ERROR: %s\n' "$SERVICE" "$msg" >&2
  for f in "$@"; do
    [[ -s $f ]] || continue
    printf -- '----- first errors in %s -----\n' "$f" >&2
    grep -m 5 -E '\b(ERROR|FATAL|FAILED)\b' "$f" | cut -c1-400 >&2 || true
    printf -- '----- last lines of %s -----\n' "$f" >&2
    tail -n 30 "$f" | cut -c1-400 >&2
  done
  exit 1
}

# quietly LOGFILE CMD...: run CMD with its output in LOGFILE, shown only if it fails.
quietly() {
  local logfile=$1; shift
  "$@" >"$logfile" 2>&1 </dev/null || fail_with_log "failed: $*" "$logfile"
}

port_open() { timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# port_owner PORT: "pid P (COMMAND) from DIR" of the process listening on PORT, empty if none.
# DIR is the .services/<name> folder whose script started it, when its record says so.
port_owner() {
  local pid dir="" pidfile=""
  pid=$(ss -ltnpH "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1 | cut -d= -f2)
  [[ -n $pid ]] || return 0
  if [[ -s $PORTS_DIR/$1 ]]; then
    { read -r dir && read -r pidfile; } <"$PORTS_DIR/$1" || true
    [[ -s $pidfile && $(head -n1 "$pidfile") == "$pid" ]] || dir="" # a stale record
  fi
  printf 'pid %s (%s)%s' "$pid" "$(cut -c1-80 "/proc/$pid/comm" 2>/dev/null)" "${dir:+ from $dir}"
}

# port_record: note that this folder's instance serves PORT (after a start).
port_record() {
  mkdir -p "$PORTS_DIR"
  printf '%s\n%s\n' "$SVC_DIR" "$PIDFILE" >"$PORTS_DIR/$PORT"
}

# not_ours: fail when PORT is served by another process than this folder's service (another
# clone's, or a private instance of a test): this script starts or stops only its own.
not_ours() {
  local owner
  owner=$(port_owner "$PORT")
  [[ -n $owner ]] || return 0
  die "127.0.0.1:$PORT is served by $owner, not by the $SERVICE of $SVC_DIR: not $1 it" \
    "(DTS_SERVICES_DIR and the port variables choose the instance; see README.md)"
}

pid_alive() { [[ -s $1 ]] && kill -0 "$(head -n1 "$1")" 2>/dev/null; }

# wait_until SECONDS PIDFILE CMD...: poll CMD until it succeeds; give up (with
# the tail of $LOG) on timeout, or at once if PIDFILE's process is gone.
wait_until() {
  local timeout=$1 pidfile=$2 deadline=$((SECONDS + $1)); shift 2
  until "$@" >/dev/null 2>&1; do
    if [[ -n $pidfile ]] && ! pid_alive "$pidfile"; then
      fail_with_log "exited while starting" "$LOG"
    fi
    ((SECONDS < deadline)) || fail_with_log "not healthy after ${timeout}s" "$LOG"
    sleep 0.5
  done
}

# launch PIDFILE CMD...: run CMD detached (own session, no stdin), output to
# $LOG (the previous one is kept as $LOG.1), its pid in PIDFILE.
launch() {
  local pidfile=$1; shift
  [[ -e $LOG ]] && mv -f "$LOG" "$LOG.1"
  rm -f "$pidfile" # a stale one (left by a reboot) would be taken for the new process
  # shellcheck disable=SC2016  # $$, $0 and $@ belong to the inner bash
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" >"$LOG" 2>&1 </dev/null &
  for _ in {1..50}; do [[ -s $pidfile ]] && return 0; sleep 0.1; done
  die "could not launch $1"
}

# stop_pid PIDFILE [SECONDS]: SIGTERM, wait, SIGKILL after SECONDS.
stop_pid() {
  local pidfile=$1 timeout=${2:-30} pid
  if ! pid_alive "$pidfile"; then
    rm -f "$pidfile"
    log "not running"
    return 0
  fi
  pid=$(head -n1 "$pidfile")
  kill "$pid"
  local deadline=$((SECONDS + timeout))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      log "still running after ${timeout}s: SIGKILL"
      kill -9 "$pid" 2>/dev/null || true
    fi
    sleep 0.2
  done
  rm -f "$pidfile"
  log "stopped"
}

# ensure_packages PKG...: apt-get install the missing ones (one at a time
# across parallel scripts; apt-get update first unless the lists are fresh).
ensure_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  (
    flock 9
    log "apt-get install ${missing[*]}"
    if ! find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -mmin -60 | grep -q .; then
      quietly /tmp/dts-apt.log apt-get update
    fi
    quietly /tmp/dts-apt.log apt-get install -y --no-install-recommends "${missing[@]}"
  ) 9>/tmp/dts-apt.lock
}

# mvn_run ARGS...: Maven with its local repository in the cache (one at a time),
# its output in .services/<name>/maven.log.
mvn_run() {
  ensure_packages maven
  mkdir -p "$CACHE_DIR" "$SVC_DIR"
  quietly "$SVC_DIR/maven.log" \
    flock "$CACHE_DIR/.mvn.lock" mvn -B -Dmaven.repo.local="$CACHE_DIR/m2" "$@"
}

# find_jdk MIN: home of the newest JDK in /usr/lib/jvm with major version >= MIN.
find_jdk() {
  local rel ver best="" best_ver=0
  for rel in /usr/lib/jvm/*/release; do
    ver=$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$rel")
    if [[ -n $ver ]] && ((ver >= $1 && ver > best_ver)) && [[ -x ${rel%/release}/bin/java ]]; then
      best=${rel%/release} best_ver=$ver
    fi
  done
  [[ -n $best ]] && echo "$best"
}

ensure_user() {
  id -u "$1" >/dev/null 2>&1 ||
    useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$1"
}

# ensure_traversable USER DIR: give o+x (search only) to each directory on the
# way to DIR that USER cannot pass, e.g. a clone under /root (mode 700).
ensure_traversable() {
  local user=$1 path="" part parts
  runuser -u "$user" -- test -x "$2" && return 0
  IFS=/ read -ra parts <<<"${2#/}"
  for part in "${parts[@]}"; do
    path+="/$part"
    if ! runuser -u "$user" -- test -x "$path"; then
      log "chmod o+x $path (so that $user can reach $2)"
      chmod o+x "$path"
    fi
  done
}

# Each service script sets LOG (its main log) and PIDFILE, defines svc_url,
# svc_healthy, svc_start and svc_stop (and may define svc_refresh, run by a start that finds
# its service up), then calls service_main.
service_main() {
  case "${1:-}" in
    start)
      if svc_healthy; then
        if pid_alive "$PIDFILE"; then
          port_record
          log "already up at $(svc_url)"
          # A script may refresh what its running service loaded (prometheus.sh: a changed config).
          if declare -F svc_refresh >/dev/null; then svc_refresh; fi
        else
          log "already up at $(svc_url), served by $(port_owner "$PORT")"
        fi
      elif [[ -n ${PIDFILE:-} ]] && pid_alive "$PIDFILE"; then
        log "running but not answering yet: waiting"
        wait_until 180 "$PIDFILE" svc_healthy
        log "up at $(svc_url)"
      else
        not_ours starting
        mkdir -p "$SVC_DIR"
        svc_start
        port_record
        log "up at $(svc_url)"
      fi
      ;;
    stop)
      if [[ -n ${PIDFILE:-} ]] && ! pid_alive "$PIDFILE"; then
        not_ours stopping
      fi
      svc_stop
      if [[ $(head -n1 "$PORTS_DIR/$PORT" 2>/dev/null) == "$SVC_DIR" ]]; then
        rm -f "$PORTS_DIR/$PORT"
      fi
      ;;
    status)
      if svc_healthy; then log "up at $(svc_url)"; else log "down"; return 3; fi
      ;;
    *)
      echo "usage: $0 start|stop|status" >&2
      exit 2
      ;;
  esac
}

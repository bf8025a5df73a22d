# Helpers of the test harness, sourced by scripts/test.sh (`make test`)
# and scripts/test-cluster.sh (`make test-cluster`): install what is
# missing, start real servers on free loopback ports, stop them whatever
# happens. Everything a caller starts goes in PIDS; logs go to $WORK.

MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
CACHE="${CORRIDOR_CACHE:-$HOME/.cache/corridor}"
MINIO_BIN="$CACHE/bin/minio-${MINIO_VERSION##*-}/minio"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# need_apt COMMAND PACKAGE: installs PACKAGE from Debian's packages when COMMAND is missing.
need_apt() {
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "harness: installing $2 from Debian's packages"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}

need_minio() {
  [ -x "$MINIO_BIN" ] && return 0
  echo "harness: building MinIO $MINIO_VERSION into $CACHE (about three minutes, once)"
  mkdir -p "$(dirname "$MINIO_BIN")"
  GOBIN="$(dirname "$MINIO_BIN")" GOFLAGS= go install "github.com/minio/minio@$MINIO_VERSION"
}

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
  status=$?
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$status" -ne 0 ]; then
    echo "harness: failed ($status); server logs:"; tail -n 20 "$WORK"/*.log 2>/dev/null || true
  fi
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_ports() { go run ./internal/freeport -n "$1"; }

ready() { # port, http path or "" for a plain TCP check
  for _ in $(seq 1 120); do
    if [ -n "$2" ] && command -v curl >/dev/null 2>&1; then
      curl -sf -o /dev/null "http://127.0.0.1:$1$2" && return 0
    elif [ -n "$2" ]; then
      (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    else
      redis-cli -p "$1" ping >/dev/null 2>&1 && return 0
    fi
    sleep 0.5
  done
  echo "harness: server on port $1 did not become ready" >&2
  return 1
}

# start_redis: one redis-server with the persistence the gateway needs;
# exports CORRIDOR_TEST_REDIS_URL.
start_redis() {
  local port; port="$(free_ports 1)"
  mkdir -p "$WORK/redis"
  redis-server --bind 127.0.0.1 --port "$port" --dir "$WORK/redis" --save "" \
    --appendonly yes --appendfsync always --daemonize no --logfile "$WORK/redis.log" &
  PIDS+=($!)
  ready "$port" ""
  export CORRIDOR_TEST_REDIS_URL="redis://127.0.0.1:$port/0"
  echo "harness: redis-server on 127.0.0.1:$port (appendonly yes)"
}

# start_redis_cluster: a Redis Cluster of 3 masters (no replicas), each
# with its bus on a port of its own (port+10000 may not exist); exports
# CORRIDOR_TEST_REDIS_CLUSTER (host:port,...).
start_redis_cluster() {
  local ports addrs=() i port bus
  mapfile -t ports < <(free_ports 6)
  for i in 0 1 2; do
    port=${ports[$i]}; bus=${ports[$((i + 3))]}
    mkdir -p "$WORK/cluster-$port"
    redis-server --bind 127.0.0.1 --port "$port" --cluster-enabled yes --cluster-port "$bus" \
      --cluster-config-file nodes.conf --cluster-node-timeout 5000 --dir "$WORK/cluster-$port" --save "" \
      --appendonly yes --appendfsync always --daemonize no --logfile "$WORK/cluster-$port.log" &
    PIDS+=($!)
    addrs+=("127.0.0.1:$port")
  done
  for i in 0 1 2; do ready "${ports[$i]}" ""; done
  redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes >"$WORK/cluster-create.log" 2>&1
  for i in 0 1 2; do # every node must see every slot served before a test starts
    for _ in $(seq 1 120); do
      redis-cli -p "${ports[$i]}" cluster info 2>/dev/null | grep -q '^cluster_state:ok' && break
      sleep 0.25
    done
    redis-cli -p "${ports[$i]}" cluster info | grep -q '^cluster_state:ok' ||
      { echo "harness: Redis Cluster node ${ports[$i]} is not ok" >&2; return 1; }
  done
  CORRIDOR_TEST_REDIS_CLUSTER="$(IFS=,; echo "${addrs[*]}")"
  export CORRIDOR_TEST_REDIS_CLUSTER
  echo "harness: Redis Cluster of 3 masters on $CORRIDOR_TEST_REDIS_CLUSTER"
}

# start_minio: one MinIO on one drive; exports CORRIDOR_TEST_S3_*.
start_minio() {
  local ports port console
  mapfile -t ports < <(free_ports 2)
  port=${ports[0]}; console=${ports[1]}
  export CORRIDOR_TEST_S3_ACCESS_KEY=corridor-test
  export CORRIDOR_TEST_S3_SECRET_KEY="corridor-test-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
  mkdir -p "$WORK/minio"
  MINIO_ROOT_USER="$CORRIDOR_TEST_S3_ACCESS_KEY" MINIO_ROOT_PASSWORD="$CORRIDOR_TEST_S3_SECRET_KEY" \
    MINIO_BROWSER=off MINIO_UPDATE=off \
    "$MINIO_BIN" server --quiet --address "127.0.0.1:$port" --console-address "127.0.0.1:$console" \
    "$WORK/minio/data" >"$WORK/minio.log" 2>&1 &
  PIDS+=($!)
  ready "$port" /minio/health/cluster # 200 once it serves objects (live answers before)
  export CORRIDOR_TEST_S3_ENDPOINT="127.0.0.1:$port"
  echo "harness: MinIO on 127.0.0.1:$port"
}

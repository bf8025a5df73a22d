#!/usr/bin/env bash
# The test harness behind `make test`: installs what is missing (redis-server
# from Debian's packages, MinIO built once with `go install` into a cache
# outside the clone), starts both on free loopback ports, runs every test
# with the race detector against the embedded backend and against Redis +
# MinIO, and stops both whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."

MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
CACHE="${CORRIDOR_CACHE:-$HOME/.cache/corridor}"
MINIO_BIN="$CACHE/bin/minio-${MINIO_VERSION##*-}/minio"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v redis-server >/dev/null 2>&1; then
  echo "test.sh: installing redis-server from Debian's packages"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi
if [ ! -x "$MINIO_BIN" ]; then
  echo "test.sh: building MinIO $MINIO_VERSION into $CACHE (about three minutes, once)"
  mkdir -p "$(dirname "$MINIO_BIN")"
  GOBIN="$(dirname "$MINIO_BIN")" GOFLAGS= go install "github.com/minio/minio@$MINIO_VERSION"
fi

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
  status=$?
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$status" -ne 0 ]; then
    echo "test.sh: failed ($status); server logs:"; tail -n 20 "$WORK"/*.log 2>/dev/null || true
  fi
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORTS="$(go run ./internal/freeport -n 3)"
REDIS_PORT=$(sed -n 1p <<<"$PORTS"); MINIO_PORT=$(sed -n 2p <<<"$PORTS"); CONSOLE_PORT=$(sed -n 3p <<<"$PORTS")

mkdir -p "$WORK/redis" "$WORK/minio"
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$WORK/redis" --save "" \
  --appendonly yes --appendfsync always --daemonize no --logfile "$WORK/redis.log" &
PIDS+=($!)

export CORRIDOR_TEST_S3_ACCESS_KEY=corridor-test
export CORRIDOR_TEST_S3_SECRET_KEY="corridor-test-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"
MINIO_ROOT_USER="$CORRIDOR_TEST_S3_ACCESS_KEY" MINIO_ROOT_PASSWORD="$CORRIDOR_TEST_S3_SECRET_KEY" \
  MINIO_BROWSER=off MINIO_UPDATE=off \
  "$MINIO_BIN" server --quiet --address "127.0.0.1:$MINIO_PORT" --console-address "127.0.0.1:$CONSOLE_PORT" \
  "$WORK/minio/data" >"$WORK/minio.log" 2>&1 &
PIDS+=($!)

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
  echo "test.sh: server on port $1 did not become ready" >&2
  return 1
}
ready "$REDIS_PORT" ""
ready "$MINIO_PORT" /minio/health/live
echo "test.sh: redis-server on 127.0.0.1:$REDIS_PORT (appendonly yes), MinIO on 127.0.0.1:$MINIO_PORT"

export CORRIDOR_TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
export CORRIDOR_TEST_S3_ENDPOINT="127.0.0.1:$MINIO_PORT"
export CORRIDOR_TEST_REQUIRE_BACKENDS=1

# GOTESTFLAGS lets `make bench` run without the race detector.
go vet ./...
go test ${GOTESTFLAGS--race -count=1} "${@:-./...}"

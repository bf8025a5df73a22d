#!/usr/bin/env bash
# Load runs behind `make soak` and `make load`: starts a redis-server
# (appendonly yes, appendfsync always) and a single-drive MinIO on free
# loopback ports with the test harness, a gateway on them (demo loaded,
# per-party limit lifted), and drives it with `corridor bench`. Everything
# started here is stopped at the end. Not part of `make test`: these are
# measurements, not tests.
#
#   scripts/load.sh soak    # --rate 200 --duration 30m --sample-every 1m, inboxes acked
#   scripts/load.sh ratio   # raw PutObject vs the gateway at -c 4, 16 and 64
#
# SOAK_RATE, SOAK_DURATION, SOAK_SAMPLE and RATIO_DURATION, RATIO_CLIENTS
# change the defaults; SOAK_EVENTS_PER_SHIPMENT=100 files the soak's events
# in shipments of 100 (each opened by a one bill) instead of all in one.
# The gateway takes CORRIDOR_* settings from the environment: for a Redis
# that should level off within the run, shorten what it keeps, e.g.
#   CORRIDOR_REDIS_DEDUPE_WINDOW=5m CORRIDOR_REDIS_RECORD_TTL=5m \
#   CORRIDOR_REDIS_COMPACT_AFTER=5m make soak
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/harness.sh

mode="${1:-}"
case "$mode" in soak | ratio | split) ;; *) echo "usage: scripts/load.sh soak|ratio|split" >&2; exit 2 ;; esac

need_apt redis-server redis-server
need_minio
go build -o "$WORK/corridor" ./cmd/corridor
start_redis
# MinIO's scanner visits a sixteenth of the bucket's objects every minute by
# default: its work grows with what the soak archives (MinIO took 0.41 cores
# over a soak's first 25 minutes, 0.47 after), on the two cores the gateway
# shares with it, and the gateway's p99 rose with it. MinIO runs on machines
# of its own in a real deployment; here it scans every 30 minutes
# (MINIO_SCANNER_SPEED=default to measure with it). Its other work still
# grows some (0.33 to 0.41 cores over a soak, measured with the scanner slowed).
export MINIO_SCANNER_SPEED="${MINIO_SCANNER_SPEED:-slowest}"
start_minio

port="$(free_ports 1)"
"$WORK/corridor" serve --demo --listen "127.0.0.1:$port" --data "$WORK/gateway" --log-format text \
  --redis-url "$CORRIDOR_TEST_REDIS_URL" --s3-endpoint "$CORRIDOR_TEST_S3_ENDPOINT" --s3-bucket corridor \
  --s3-access-key "$CORRIDOR_TEST_S3_ACCESS_KEY" --s3-secret-key "$CORRIDOR_TEST_S3_SECRET_KEY" \
  --rate-limit 1000000000 --volume-limit 1000000 ${LOAD_PPROF:+--pprof-listen 127.0.0.1:$LOAD_PPROF} >"$WORK/gateway.log" 2>&1 &
PIDS+=($!)
ready "$port" /healthz
echo "load: gateway on 127.0.0.1:$port (Redis + MinIO), $(nproc) cores shared by the gateway, Redis, MinIO and the load"

bench=("$WORK/corridor" bench --server "http://127.0.0.1:$port")

# Where the cores go while the gateway is driven at -c 16: the gateway's
# CPU profile (LOAD_PPROF must name a free port) beside each process's CPU
# time (from /proc) over the same 15 s.
cpu_ticks() {
  local p
  for p in "$@"; do awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null || echo 0; done
}
# cpu_secs BEFORE AFTER: the CPU seconds each process took between two
# cpu_ticks readings (each a space-separated list), one a line.
cpu_secs() {
  paste <(tr ' ' '\n' <<<"$1") <(tr ' ' '\n' <<<"$2") | awk -v hz="$(getconf CLK_TCK)" 'NF==2 {print ($2-$1)/hz}'
}
split_cpu() {
  : "${LOAD_PPROF:?set LOAD_PPROF to a free port for the gateway profiles}"
  "${bench[@]}" -c 16 --duration 30s >"$WORK/bench.out" 2>&1 &
  local bpid=$!
  sleep 5
  local pids=("${PIDS[@]}" "$bpid")
  local before after
  before=$(cpu_ticks "${pids[@]}" | tr '\n' ' ')
  go tool pprof -top -seconds 15 "http://127.0.0.1:$LOAD_PPROF/debug/pprof/profile" 2>/dev/null | head -25
  after=$(cpu_ticks "${pids[@]}" | tr '\n' ' ')
  echo "CPU seconds in those 15 s (2 cores: 30 at most), redis-server minio gateway bench:"
  cpu_secs "$before" "$after" | awk '{printf "  %.1f", $1} END {print ""}'
  wait "$bpid"
  grep -v '%|' "$WORK/bench.out"
}
# The cores each server took in each interval of the soak (redis-server,
# MinIO, the gateway) and the whole machine's (the load and the kernel
# included), from /proc, so that a p99 that creeps can be set beside what
# grew. Runs in the background; its table goes to $WORK/cpu.txt.
cpu_sampler() {
  local secs="$1" n t=0 prev now busy0 busy1 idle0 idle1 machine
  n=$(nproc)
  prev=$(cpu_ticks "${PIDS[@]}" | tr '\n' ' ')
  read -r busy0 idle0 < <(awk '/^cpu /{print $2+$3+$4+$7+$8, $5+$6}' /proc/stat)
  printf '%6s %8s %8s %8s %8s   (cores)\n' minute redis minio gateway machine
  while sleep "$secs"; do
    t=$((t + 1))
    now=$(cpu_ticks "${PIDS[@]}" | tr '\n' ' ')
    read -r busy1 idle1 < <(awk '/^cpu /{print $2+$3+$4+$7+$8, $5+$6}' /proc/stat)
    machine=$(awk -v b=$((busy1 - busy0)) -v i=$((idle1 - idle0)) -v n="$n" 'BEGIN {printf "%.2f", n * b / (b + i + 1e-9)}')
    cpu_secs "$prev" "$now" | awk -v secs="$secs" -v t="$t" -v m="$machine" \
      '{line = line sprintf(" %8.2f", $1/secs)} END {printf "%6s%s %8s\n", t, line, m}'
    prev=$now busy0=$busy1 idle0=$idle1
  done
}
case "$mode" in
soak)
  cpu_sampler 60 >"$WORK/cpu.txt" &
  sampler=$!
  PIDS+=("$sampler")
  "${bench[@]}" --rate "${SOAK_RATE:-200}" --duration "${SOAK_DURATION:-30m}" --sample-every "${SOAK_SAMPLE:-1m}" \
    --ack --redis-url "$CORRIDOR_TEST_REDIS_URL" ${SOAK_EVENTS_PER_SHIPMENT:+--events-per-shipment "$SOAK_EVENTS_PER_SHIPMENT"}
  kill "$sampler" 2>/dev/null || true
  echo "cores each minute (2 cores: 2.00 at most):"
  cat "$WORK/cpu.txt"
  echo "what the gateway moved out of Redis (with --redis-compact-after):"
  curl -fsS "http://127.0.0.1:$port/metrics" | grep '^corridor_timeline_' || echo "  nothing"
  ;;
ratio)
  for c in ${RATIO_CLIENTS:-4 16 64}; do
    echo
    "${bench[@]}" -c "$c" --duration "${RATIO_DURATION:-20s}" --s3-endpoint "$CORRIDOR_TEST_S3_ENDPOINT" \
      --s3-access-key "$CORRIDOR_TEST_S3_ACCESS_KEY" --s3-secret-key "$CORRIDOR_TEST_S3_SECRET_KEY" --s3-bucket corridor-bench
  done
  ;;
split)
  split_cpu
  ;;
esac

#!/usr/bin/env bash
# Checks the files under deploy/ that can be checked on one machine with
# no Docker: the HAProxy configuration (haproxy -c, with a throwaway
# certificate), the systemd units (systemd-analyze verify, with stand-in
# binaries), and the Redis and Sentinel configurations (each server is
# started with it on a free loopback port, then stopped). MinIO's settings
# are exercised by `make test-cluster`, which runs a 4-node MinIO.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/harness.sh

need_apt redis-server redis-server
need_apt redis-sentinel redis-sentinel
need_apt haproxy haproxy

# HAProxy: the certificate path and the bind addresses are the example's.
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=corridor -days 1 \
  -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null
cat "$WORK/cert.pem" "$WORK/key.pem" >"$WORK/corridor.pem"
sed -e "s|/etc/haproxy/certs/corridor.pem|$WORK/corridor.pem|" deploy/scaled/haproxy.cfg >"$WORK/haproxy.cfg"
haproxy -c -f "$WORK/haproxy.cfg"

# systemd: the units name binaries under /usr/local/bin; stand-ins here.
mkdir -p "$WORK/units" "$WORK/bin"
for unit in deploy/systemd/*.service; do
  bin=$(sed -n 's|^ExecStart=/usr/local/bin/\([^ ]*\).*|\1|p' "$unit")
  printf '#!/bin/sh\n' >"$WORK/bin/$bin"; chmod +x "$WORK/bin/$bin"
  sed -e "s|/usr/local/bin/|$WORK/bin/|g" "$unit" >"$WORK/units/$(basename "$unit")"
done
systemd-analyze verify "$WORK"/units/*.service
echo "check-deploy: systemd units verify"

# Redis: each configuration, on loopback, in a folder of its own.
start_with() { # name, program, config; the server must answer PING, then stops
  local port dir; port="$(free_ports 1)"; dir="$WORK/$1"
  mkdir -p "$dir"; cp "$3" "$dir/redis.conf"
  # Loopback, a free port and a folder of its own: the rest is the example's.
  "$2" "$dir/redis.conf" --bind 127.0.0.1 --port "$port" --dir "$dir" --daemonize no \
    --logfile "$WORK/$1.log" &
  PIDS+=($!)
  ready_auth "$port"
  echo "check-deploy: $1 starts with $3"
}
ready_auth() {
  for _ in $(seq 1 40); do
    redis-cli -p "$1" -a change-me --no-auth-warning ping 2>/dev/null | grep -q PONG && return 0
    sleep 0.25
  done
  echo "check-deploy: server on $1 did not start" >&2; return 1
}
start_with redis-server redis-server deploy/scaled/redis-server.conf.example
start_with redis-cluster redis-server deploy/scaled/redis-cluster.conf.example
start_with redis-sentinel redis-sentinel deploy/scaled/redis-sentinel.conf.example
start_with redis-single redis-server deploy/redis.conf.example

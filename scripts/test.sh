#!/usr/bin/env bash
# The test harness behind `make test`: installs what is missing (redis-server
# and redis-sentinel from Debian's packages, MinIO built once with
# `go install` into a cache outside the clone), starts a redis-server, a
# 3-master Redis Cluster and MinIO on free loopback ports, runs every test
# with the race detector against the embedded backend and against them, and
# stops them whatever happens. The helpers are in scripts/harness.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/harness.sh

need_apt redis-server redis-server
need_apt redis-sentinel redis-sentinel # tests that start a Sentinel setup of their own
need_minio

start_redis
start_redis_cluster
start_minio
export CORRIDOR_TEST_REQUIRE_BACKENDS=1

# GOTESTFLAGS lets `make bench` run without the race detector.
go vet ./...
go test ${GOTESTFLAGS--race -count=1} "${@:-./...}"

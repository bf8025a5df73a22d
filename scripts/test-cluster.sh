#!/usr/bin/env bash
# The harness behind `make test-cluster`: the failover tests, which start
# servers of their own and take them down while documents are submitted
# (a Redis master, two replicas and three Sentinels; a Redis Cluster of 3
# masters with a replica each; a MinIO of 4 nodes),
# with the shared redis-server and MinIO of scripts/harness.sh for the
# backend each does not take down. It prints, for each, the documents
# acknowledged and lost.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/harness.sh

need_apt redis-server redis-server
need_apt redis-sentinel redis-sentinel
need_minio

start_redis
start_minio
export CORRIDOR_TEST_REQUIRE_BACKENDS=1 CORRIDOR_TEST_CLUSTER=1

set +e
go test ${GOTESTFLAGS--race -count=1} -v -run '^(TestSentinelFailoverLosesNothing|TestRedisClusterFailoverLosesNothing|TestDistributedMinIONodeLossLosesNothing)$' \
  ./cmd/corridor >"$WORK/test-cluster.out" 2>&1
status=$?
set -e
grep -E '^\s*(---|ok|FAIL|PASS|panic)|^\s+\S+_test\.go:' "$WORK/test-cluster.out" || true
[ "$status" -eq 0 ] || tail -n 40 "$WORK/test-cluster.out"
echo "test-cluster: summary"
grep -E 'documents acknowledged' "$WORK/test-cluster.out" | sed 's/^ */  /' || true
exit "$status"

// Package testenv hands tests the real Redis and MinIO that the project's
// harness (scripts/test.sh, run by `make test`) started on free loopback
// ports. Without them a test skips, unless CORRIDOR_TEST_REQUIRE_BACKENDS
// is set (as `make test` sets it), where it fails.
package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"
)

func need(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		if os.Getenv("CORRIDOR_TEST_REQUIRE_BACKENDS") != "" {
			t.Fatalf("%s is not set: run the tests with `make test`, which starts the backends", name)
		}
		t.Skipf("%s not set; `make test` starts real backends", name)
	}
	return v
}

// RedisURL returns the test Redis server's URL.
func RedisURL(t testing.TB) string { return need(t, "CORRIDOR_TEST_REDIS_URL") }

// RedisCluster returns host:port of the nodes of the test Redis Cluster
// (3 masters).
func RedisCluster(t testing.TB) []string {
	return strings.Split(need(t, "CORRIDOR_TEST_REDIS_CLUSTER"), ",")
}

// S3 is the test MinIO server.
type S3 struct{ Endpoint, AccessKey, SecretKey, Bucket string }

// MinIO returns the test MinIO server.
func MinIO(t testing.TB) S3 {
	return S3{
		Endpoint:  need(t, "CORRIDOR_TEST_S3_ENDPOINT"),
		AccessKey: need(t, "CORRIDOR_TEST_S3_ACCESS_KEY"),
		SecretKey: need(t, "CORRIDOR_TEST_S3_SECRET_KEY"),
		Bucket:    "corridor-test",
	}
}

// Prefix returns a fresh key or object prefix, so tests sharing a server
// never see each other's data.
func Prefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "t" + hex.EncodeToString(b[:])
}

// Eventually polls cond until it holds, and fails the test if it does
// not within limit.
func Eventually(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(limit); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, limit)
		}
	}
}

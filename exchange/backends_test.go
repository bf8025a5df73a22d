package exchange_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/landsea/corridor/exchange"
	"github.com/landsea/corridor/internal/testenv"
	"github.com/landsea/corridor/storage/redis"
	"github.com/landsea/corridor/storage/s3"
	"github.com/landsea/corridor/storage/storagetest"
)

// openRedis opens the test Redis under a fresh prefix, closed when tb ends.
func openRedis(tb testing.TB) *redis.Store {
	tb.Helper()
	r := redis.New(testenv.RedisURL(tb))
	r.Prefix = testenv.Prefix()
	if err := r.Open(context.Background()); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { r.Close() })
	return r
}

// onRedisMinIO is a service whose archive and parties are on the test MinIO
// (under a fresh prefix) and whose queue and index are on the test Redis.
func onRedisMinIO(tb testing.TB) (*s3.Store, *redis.Store, *exchange.Service) {
	tb.Helper()
	arch := storagetest.MinIO(tb)
	r := openRedis(tb)
	signer, _ := exchange.NewSigner(bytes.Repeat([]byte{3}, 32))
	return arch, r, exchange.NewService(arch, r, r, arch, signer, nil)
}

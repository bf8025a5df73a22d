package redis

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/go-redis/redis_rate/v10"
)

// Limiter counts events per bucket in Redis with the GCRA of
// go-redis/redis_rate (one key and one atomic script per call), so every
// gateway on this Redis shares the counts. It serves both limiters of
// adapters/http: requests per party (Allow) and failed authentications
// (Blocked, Failed). Its keys start with "rate:" (redis_rate's prefix),
// then the store's Prefix; each expires when its bucket has refilled.
type Limiter struct {
	rl    *redis_rate.Limiter
	key   string
	limit redis_rate.Limit
}

// Limiter returns a limiter named name that allows n events per period
// and bucket, in bursts of up to n.
func (s *Store) Limiter(name string, n int, per time.Duration) *Limiter {
	return &Limiter{rl: redis_rate.NewLimiter(s.cmd), key: s.Prefix + ":limit:" + name + ":",
		limit: redis_rate.Limit{Rate: n, Burst: n, Period: per}}
}

// bucketKey hashes the bucket: its text comes from the request (a key id,
// an address), and a key of fixed size bounds what a caller can store.
func (l *Limiter) bucketKey(bucket string) string {
	sum := sha256.Sum256([]byte(bucket))
	return l.key + hex.EncodeToString(sum[:16])
}

// AllowN takes n events from the bucket; when fewer are left it takes
// none and returns false and the time until there are (the whole period
// when n is more than the bucket ever holds).
func (l *Limiter) AllowN(ctx context.Context, bucket string, n int) (bool, time.Duration, error) {
	if n > l.limit.Burst {
		// redis_rate would answer the time until n-Burst more were due,
		// as if the bucket could ever hold n.
		return false, l.limit.Period, nil
	}
	res, err := l.rl.AllowN(ctx, l.bucketKey(bucket), l.limit, n)
	if err != nil {
		return false, 0, wrap(err)
	}
	if res.Allowed > 0 {
		return true, 0, nil
	}
	return false, max(res.RetryAfter, 0), nil
}

// Blocked reports whether the bucket has no event left, taking none.
func (l *Limiter) Blocked(ctx context.Context, bucket string) (bool, error) {
	res, err := l.rl.AllowN(ctx, l.bucketKey(bucket), l.limit, 0)
	if err != nil {
		return false, wrap(err)
	}
	return res.Remaining < 1, nil
}

// Failed takes one event from the bucket.
func (l *Limiter) Failed(ctx context.Context, bucket string) error {
	_, err := l.rl.Allow(ctx, l.bucketKey(bucket), l.limit)
	return wrap(err)
}

package http

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/time/rate"

	"github.com/landsea/corridor/exchange"
)

// AuthLimiter counts failed authentications per bucket. A bucket is a
// presented key id together with the client address, so guessing the
// secret of one key from one address is slowed while other parties, and
// the key's holder at another address, are never held up; a key with no
// id to read counts against its address alone. The in-process limiter
// (the default) holds in one gateway only: one kept in Redis
// (storage/redis.Limiter) is handed in through Config.AuthLimiter.
type AuthLimiter interface {
	// Blocked reports whether the bucket has no failures left.
	Blocked(ctx context.Context, bucket string) (bool, error)
	// Failed records one failed authentication in the bucket.
	Failed(ctx context.Context, bucket string) error
}

// RateLimiter counts a party's requests (Config.RateLimiter) and the
// volume of its documents (Config.VolumeLimiter).
type RateLimiter interface {
	// AllowN takes n events from the bucket; when fewer are left it takes
	// none and returns false and the time until there are.
	AllowN(ctx context.Context, bucket string, n int) (ok bool, retryAfter time.Duration, err error)
}

// NewMemoryAuthLimiter returns an in-process AuthLimiter that allows
// perMinute failures per bucket and minute, in bursts of as many.
func NewMemoryAuthLimiter(perMinute int) AuthLimiter { return NewMemoryLimiter(perMinute, time.Minute) }

// MemoryLimiter counts events per bucket in this process only: n per
// period, in bursts of n. It is both a RateLimiter and an AuthLimiter.
type MemoryLimiter struct {
	n       int
	per     time.Duration
	mu      sync.Mutex
	buckets map[string]*rate.Limiter
}

// NewMemoryLimiter returns an in-process limiter of n events per period and bucket.
func NewMemoryLimiter(n int, per time.Duration) *MemoryLimiter {
	return &MemoryLimiter{n: n, per: per, buckets: map[string]*rate.Limiter{}}
}

// maxBuckets bounds the memory of the in-process limiter.
const maxBuckets = 100000

// Blocked reports whether the bucket has no event left.
func (m *MemoryLimiter) Blocked(_ context.Context, bucket string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.buckets[bucket]
	return ok && l.Tokens() < 1, nil
}

// Failed takes one event from the bucket.
func (m *MemoryLimiter) Failed(ctx context.Context, bucket string) error {
	_, _, err := m.AllowN(ctx, bucket, 1)
	return err
}

// AllowN takes n events from the bucket, if n are left.
func (m *MemoryLimiter) AllowN(_ context.Context, bucket string, n int) (bool, time.Duration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.buckets[bucket]
	if !ok {
		if len(m.buckets) >= maxBuckets {
			m.sweep()
		}
		l = rate.NewLimiter(rate.Limit(float64(m.n)/m.per.Seconds()), m.n)
		m.buckets[bucket] = l
	}
	now := time.Now()
	r := l.ReserveN(now, n)
	if !r.OK() {
		return false, m.per, nil
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d, nil
	}
	return true, 0, nil
}

// sweep drops the buckets that have refilled: they remember nothing. If
// too many are still draining, it forgets them all, as before buckets
// were per key: memory stays bounded, at the price of a fresh start.
func (m *MemoryLimiter) sweep() {
	now := time.Now()
	for k, l := range m.buckets {
		if l.TokensAt(now) >= float64(m.n) {
			delete(m.buckets, k)
		}
	}
	if len(m.buckets) >= maxBuckets {
		clear(m.buckets)
	}
}

// degraded logs when an in-process limiter starts and stops standing in
// for a shared one (in Redis) that fails: a backend down neither lifts the
// limits nor blocks every request.
type degraded struct {
	down atomic.Bool
	log  *slog.Logger
	name string
}

// failed reports whether err means the shared limiter failed.
func (d *degraded) failed(err error) bool {
	if err == nil {
		if d.down.CompareAndSwap(true, false) {
			d.log.Info("shared limiter answers again", "limiter", d.name)
		}
		return false
	}
	if d.down.CompareAndSwap(false, true) {
		d.log.Warn("shared limiter failed: limiting in this gateway only", "limiter", d.name, "err", err)
	}
	return true
}

type authFallback struct {
	shared AuthLimiter
	local  *MemoryLimiter
	degraded
}

func (f *authFallback) Blocked(ctx context.Context, bucket string) (bool, error) {
	b, err := f.shared.Blocked(ctx, bucket)
	if f.failed(err) {
		return f.local.Blocked(ctx, bucket)
	}
	return b, nil
}

func (f *authFallback) Failed(ctx context.Context, bucket string) error {
	if f.failed(f.shared.Failed(ctx, bucket)) {
		return f.local.Failed(ctx, bucket)
	}
	return nil
}

type rateFallback struct {
	shared RateLimiter
	local  *MemoryLimiter
	degraded
}

func (f *rateFallback) AllowN(ctx context.Context, bucket string, n int) (bool, time.Duration, error) {
	ok, retry, err := f.shared.AllowN(ctx, bucket, n)
	if f.failed(err) {
		return f.local.AllowN(ctx, bucket, n)
	}
	return ok, retry, nil
}

// authBucket names the failure bucket of a request: the presented key's id
// and the client address, or the address alone when the key has no id to
// read. Admin failures have buckets of their own, so guessing the admin key
// holds up no party.
func authBucket(key, ip string, admin bool) string {
	if admin {
		return "admin|" + ip
	}
	if id, _, err := exchange.ParseKey(key); err == nil {
		return "key|" + id + "|" + ip
	}
	return "addr|" + ip
}

// ParseTrustedProxies reads a list of CIDR prefixes or single addresses.
func ParseTrustedProxies(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: not an address or CIDR prefix", s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

func (s *Server) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientIP is the address failures are counted against. X-Forwarded-For
// is read only when the direct peer is a trusted proxy, and then from the
// right: each proxy appends the address it saw, so the rightmost address
// that is not a trusted proxy is the first one a trusted proxy vouches
// for. The leftmost (Fiber's choice) is whatever the client wrote.
func (s *Server) clientIP(c *fiber.Ctx) string {
	peer, ok := netip.AddrFromSlice(c.Context().RemoteIP())
	if !ok {
		return c.Context().RemoteIP().String()
	}
	peer = peer.Unmap()
	if len(s.cfg.TrustedProxies) == 0 || !s.trusted(peer) {
		return peer.String()
	}
	client := peer
	values := c.Request().Header.PeekAll(fiber.HeaderXForwardedFor)
	for i := len(values) - 1; i >= 0; i-- {
		hops := strings.Split(string(values[i]), ",")
		for j := len(hops) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(hops[j]))
			if err != nil {
				// Past an entry that is not an address nothing can be
				// vouched for: count against the last proxy seen.
				return client.String()
			}
			client = a.Unmap()
			if !s.trusted(client) {
				return client.String()
			}
		}
	}
	return client.String()
}

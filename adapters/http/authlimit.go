package http

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"sync"
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
// (the default) holds in one gateway only: one kept in Redis can be
// handed in through Config.AuthLimiter.
type AuthLimiter interface {
	// Blocked reports whether the bucket has no failures left.
	Blocked(ctx context.Context, bucket string) bool
	// Failed records one failed authentication in the bucket.
	Failed(ctx context.Context, bucket string)
}

// NewMemoryAuthLimiter returns an in-process AuthLimiter that allows
// perMinute failures per bucket and minute, in bursts of as many.
func NewMemoryAuthLimiter(perMinute int) AuthLimiter {
	return &memoryAuthLimiter{n: perMinute, buckets: map[string]*rate.Limiter{}}
}

type memoryAuthLimiter struct {
	n       int
	mu      sync.Mutex
	buckets map[string]*rate.Limiter
}

// maxBuckets bounds the memory of the in-process limiter.
const maxBuckets = 100000

func (m *memoryAuthLimiter) Blocked(_ context.Context, bucket string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.buckets[bucket]
	return ok && l.Tokens() < 1
}

func (m *memoryAuthLimiter) Failed(_ context.Context, bucket string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.buckets[bucket]
	if !ok {
		if len(m.buckets) >= maxBuckets {
			m.sweep()
		}
		l = rate.NewLimiter(rate.Limit(float64(m.n)/60), m.n)
		m.buckets[bucket] = l
	}
	l.Allow()
}

// sweep drops the buckets that have refilled: they remember nothing. If
// too many are still draining, it forgets them all, as before buckets
// were per key: memory stays bounded, at the price of a fresh start.
func (m *memoryAuthLimiter) sweep() {
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

package exchange

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Revocations carries word of a revoked key or disabled party between the
// gateways that share storage, so each drops the keys it has cached at
// once instead of trusting them for up to CacheTTL.
type Revocations interface {
	// Publish tells every subscribed gateway, this one included, that what
	// ("key:<id>" or "party:<id>") was revoked. It returns ErrUnavailable
	// (wrapped) when the word could not be sent.
	Publish(ctx context.Context, what string) error
	// Subscribe calls revoked for every revocation published, until ctx
	// ends. It calls live(true) each time the subscription is (re)made,
	// after which revocations published while it was down are not
	// delivered (the caller forgets all it cached), and live(false) when
	// the subscription is lost; it retries until ctx ends.
	Subscribe(ctx context.Context, revoked func(what string), live func(up bool)) error
}

// FallbackTTL is how long a checked key is trusted while no revocation
// subscription is live (Redis pub/sub down, or not yet up): a key revoked
// on another gateway then stops working here within it.
const FallbackTTL = time.Second

// keyCache remembers checked keys (by hash) and their party. Forgetting
// bumps a generation, so a look-up that began before a revocation cannot
// put the old answer back after it.
type keyCache struct {
	mu  sync.Mutex
	gen uint64
	// live is set while a revocation subscription is up; shared marks a
	// service that has one at all (more gateways than this one).
	live, shared atomic.Bool
}

type cachedKey struct {
	party Party
	at    time.Time
}

// keyTTL is how long a cached key is trusted now: CacheTTL on a lone
// gateway or while revocations are heard, FallbackTTL otherwise.
func (s *Service) keyTTL() time.Duration {
	if s.kc.shared.Load() && !s.kc.live.Load() {
		return FallbackTTL
	}
	return CacheTTL
}

func (s *Service) cachedKey(ck [32]byte) (Party, bool) {
	c, ok := s.keys.Get(ck)
	if !ok || time.Since(c.at) >= s.keyTTL() {
		return Party{}, false
	}
	return c.party, true
}

func (s *Service) keyGen() uint64 {
	s.kc.mu.Lock()
	defer s.kc.mu.Unlock()
	return s.kc.gen
}

// cacheKey remembers a key checked since generation gen, unless keys were
// forgotten meanwhile.
func (s *Service) cacheKey(ck [32]byte, p Party, gen uint64, at time.Time) {
	s.kc.mu.Lock()
	defer s.kc.mu.Unlock()
	if s.kc.gen == gen {
		s.keys.Add(ck, cachedKey{party: p, at: at})
	}
}

// forgetKeys drops every cached key.
func (s *Service) forgetKeys() {
	s.kc.mu.Lock()
	defer s.kc.mu.Unlock()
	s.kc.gen++
	s.keys.Purge()
}

// SetRevocations makes the service announce the keys and parties it
// revokes through r; WatchRevocations listens for those of other gateways.
// Until a subscription is live, cached keys are trusted for FallbackTTL only.
func (s *Service) SetRevocations(r Revocations) {
	s.revocations = r
	s.kc.shared.Store(r != nil)
}

// WatchRevocations forgets cached keys whenever any gateway announces a
// revocation, until ctx ends. While the subscription is down, cached keys
// are trusted for FallbackTTL only; when it is made again, every cached key
// is forgotten (a revocation may have been missed meanwhile).
func (s *Service) WatchRevocations(ctx context.Context) error {
	if s.revocations == nil {
		return nil
	}
	defer s.kc.live.Store(false)
	return s.revocations.Subscribe(ctx,
		func(string) { s.forgetKeys() },
		func(up bool) {
			if up {
				s.forgetKeys()
			}
			s.kc.live.Store(up)
		})
}

// revoked forgets cached keys here and announces the revocation to the
// other gateways. The revocation is stored already; if the word cannot be
// sent, the error says so, and the call may be repeated.
func (s *Service) revoked(ctx context.Context, what string) error {
	s.forgetKeys() // after the write: a request in between cannot cache the old key again
	if s.revocations == nil {
		return nil
	}
	if err := s.revocations.Publish(ctx, what); err != nil {
		return fmt.Errorf("%s is revoked, but other gateways may accept it for up to %s; announce revocation: %w", what, CacheTTL, err)
	}
	return nil
}

package redis

import (
	"context"
	"errors"
	"net"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/landsea/corridor/exchange"
)

var _ exchange.Revocations = (*Store)(nil)

// Revocation subscriptions check their connection this often when no
// message comes; one silent for two checks is given up and made again.
const (
	subscribeCheck = time.Second
	resubscribeMin = 100 * time.Millisecond
	resubscribeMax = 2 * time.Second
)

func (s *Store) revocationChannel() string { return s.Prefix + ":revocations" }

// Publish announces a revocation to every gateway subscribed on this Redis.
func (s *Store) Publish(ctx context.Context, what string) error {
	return wrap(s.cmd.Publish(ctx, s.revocationChannel(), what).Err())
}

// Subscribe listens on the revocation channel until ctx ends (then it
// returns nil). A subscription lost (Redis restarted, the connection
// broken or silent) is reported with live(false) and made again, with
// backoff, on a new connection; each one made is reported with live(true).
func (s *Store) Subscribe(ctx context.Context, revoked func(what string), live func(up bool)) error {
	wait := resubscribeMin
	for ctx.Err() == nil {
		ps := s.cmd.Subscribe(ctx, s.revocationChannel())
		heard := s.listen(ctx, ps, revoked, live)
		_ = ps.Close()
		live(false)
		if heard {
			wait = resubscribeMin
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, resubscribeMax)
	}
	return nil
}

// listen reads one subscription until it fails; heard is true if it was
// ever confirmed.
func (s *Store) listen(ctx context.Context, ps *goredis.PubSub, revoked func(string), live func(bool)) (heard bool) {
	last := time.Now()
	for {
		msg, err := ps.ReceiveTimeout(ctx, subscribeCheck)
		var ne net.Error
		switch {
		case err != nil && errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil:
			if time.Since(last) > 2*subscribeCheck {
				return heard // not even a pong: the connection is gone
			}
			if ps.Ping(ctx) != nil {
				return heard
			}
			continue
		case err != nil:
			return heard
		}
		last = time.Now()
		switch m := msg.(type) {
		case *goredis.Subscription:
			if m.Kind == "subscribe" {
				heard = true
				live(true)
			}
		case *goredis.Message:
			revoked(m.Payload)
		}
	}
}

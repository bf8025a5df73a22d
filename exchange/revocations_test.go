package exchange_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/landsea/corridor/exchange"
)

// bus is an in-process Revocations: every subscriber hears every publish
// at once, while it is up.
type bus struct {
	mu   sync.Mutex
	subs []func(string)
	down bool
}

func (b *bus) Publish(_ context.Context, what string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.down {
		return exchange.ErrUnavailable
	}
	for _, s := range b.subs {
		s(what)
	}
	return nil
}

func (b *bus) Subscribe(ctx context.Context, revoked func(string), live func(bool)) error {
	b.mu.Lock()
	b.subs = append(b.subs, revoked)
	b.mu.Unlock()
	live(true)
	<-ctx.Done()
	return nil
}

// gateways are services over one store, as gateways over shared storage,
// each with its own key cache; they share a revocation bus when given one.
func gateways(t *testing.T, n int, b exchange.Revocations) (*world, []*exchange.Service) {
	t.Helper()
	w := newWorld(t)
	signer, _ := exchange.NewSigner(bytes.Repeat([]byte{3}, 32))
	var out []*exchange.Service
	for range n {
		svc := exchange.NewService(w.store, w.store, w.store, w.store, signer, nil)
		if b != nil {
			svc.SetRevocations(b)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); _ = svc.WatchRevocations(ctx) }()
			t.Cleanup(func() { cancel(); <-done })
		}
		out = append(out, svc)
	}
	return w, out
}

// A key revoked (or a party disabled) on one gateway stops working at once
// on another that had it cached, when revocations are announced.
func TestRevocationReachesEveryGateway(t *testing.T) {
	for _, c := range []struct {
		name   string
		revoke func(ctx context.Context, svc *exchange.Service, party, keyID string) error
	}{
		{"key", func(ctx context.Context, svc *exchange.Service, _, keyID string) error {
			return svc.RevokeKey(ctx, keyID)
		}},
		{"party", func(ctx context.Context, svc *exchange.Service, party, _ string) error {
			return svc.DisableParty(ctx, party)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			b := &bus{}
			_, gw := gateways(t, 2, b)
			waitSubscribed(t, b, 2)
			key, k, err := gw[0].IssueKey(ctx, "sg-motors")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := gw[1].Authenticate(ctx, key); err != nil { // cached there now
				t.Fatal(err)
			}
			if err := c.revoke(ctx, gw[0], "sg-motors", k.ID); err != nil {
				t.Fatal(err)
			}
			if _, err := gw[1].Authenticate(ctx, key); exchange.ErrorCode(err) != exchange.CodeUnauthorized {
				t.Fatalf("revoked on the other gateway, then here: %v; want unauthorized", err)
			}
		})
	}
}

// With the bus down, a revocation cannot be announced: the revoking call
// says so (the key is revoked all the same), and a gateway that hears no
// revocations trusts its cache for FallbackTTL only.
func TestRevocationWithTheBusDown(t *testing.T) {
	ctx := context.Background()
	b := &bus{}
	_, gw := gateways(t, 2, b)
	waitSubscribed(t, b, 2)
	key, k, _ := gw[0].IssueKey(ctx, "sg-motors")
	if _, err := gw[1].Authenticate(ctx, key); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	b.down = true
	b.mu.Unlock()
	if err := gw[0].RevokeKey(ctx, k.ID); !errors.Is(err, exchange.ErrUnavailable) {
		t.Fatalf("revoke with the bus down = %v; want ErrUnavailable", err)
	}
	if _, err := gw[0].Authenticate(ctx, key); exchange.ErrorCode(err) != exchange.CodeUnauthorized {
		t.Fatalf("the revoking gateway still accepts the key: %v", err)
	}
	// A gateway with no live subscription: its cache holds FallbackTTL.
	lone := exchange.NewService(gw[0].Archive, gw[0].Queue, gw[0].Index, gw[0].Parties, gw[0].Signer, nil)
	lone.SetRevocations(b) // never watched: no subscription is live
	key2, k2, _ := gw[0].IssueKey(ctx, "sg-motors")
	if _, err := lone.Authenticate(ctx, key2); err != nil {
		t.Fatal(err)
	}
	_ = gw[0].RevokeKey(ctx, k2.ID)
	deadline := time.Now().Add(exchange.FallbackTTL + 2*time.Second)
	for {
		if _, err := lone.Authenticate(ctx, key2); exchange.ErrorCode(err) == exchange.CodeUnauthorized {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a gateway with no live subscription accepts a revoked key after %s", exchange.FallbackTTL+2*time.Second)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitSubscribed(t *testing.T, b *bus, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		b.mu.Lock()
		got := len(b.subs)
		b.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d gateways subscribed", got, n)
		}
	}
}

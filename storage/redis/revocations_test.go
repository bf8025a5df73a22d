package redis_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/landsea/corridor/storage/redis"
)

// listener records what a subscription reports.
type listener struct {
	mu      sync.Mutex
	heard   []string
	live    bool
	changes int
}

func (l *listener) revoked(what string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.heard = append(l.heard, what)
}

func (l *listener) up(up bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.live != up {
		l.changes++
	}
	l.live = up
}

func (l *listener) state() (live bool, heard []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.live, append([]string(nil), l.heard...)
}

// subscribe runs s.Subscribe until the test ends.
func subscribe(t *testing.T, s *redis.Store) *listener {
	l := &listener{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Subscribe(ctx, l.revoked, l.up) }()
	t.Cleanup(func() { cancel(); <-done })
	return l
}

// until polls cond up to a deadline; it fails the test with what if it never holds.
func until(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
	}
}

// A revocation published through one store is heard by every store
// subscribed on the same Redis and prefix, and only there.
func TestRevocationsReachEverySubscriber(t *testing.T) {
	a, b := open(t, time.Minute), open(t, time.Minute)
	b.Prefix = a.Prefix
	other := open(t, time.Minute) // another corridor on the same server
	la, lb, lo := subscribe(t, a), subscribe(t, b), subscribe(t, other)
	for _, l := range []*listener{la, lb, lo} {
		until(t, 5*time.Second, "subscribed", func() bool { live, _ := l.state(); return live })
	}
	if err := a.Publish(context.Background(), "key:k1"); err != nil {
		t.Fatal(err)
	}
	for _, l := range []*listener{la, lb} {
		until(t, time.Second, "heard key:k1", func() bool { _, h := l.state(); return len(h) == 1 && h[0] == "key:k1" })
	}
	if _, h := lo.state(); len(h) != 0 {
		t.Fatalf("another prefix heard %v", h)
	}
}

// When Redis goes away the subscription reports it is down, and when
// Redis is back it subscribes again by itself and hears what is published.
func TestRevocationsResubscribeAfterRedisRestart(t *testing.T) {
	dir, port := t.TempDir(), freePort(t)
	srv := startRedis(t, dir, port)
	url := "redis://127.0.0.1:" + strconv.Itoa(port) + "/0"
	s := redis.New(url)
	until(t, 10*time.Second, "redis up", func() bool { return s.Open(context.Background()) == nil })
	t.Cleanup(func() { s.Close() })
	l := subscribe(t, s)
	until(t, 5*time.Second, "subscribed", func() bool { live, _ := l.state(); return live })

	_ = srv.Process.Kill()
	_ = srv.Wait()
	until(t, 5*time.Second, "down reported", func() bool { live, _ := l.state(); return !live })
	startRedis(t, dir, port)
	until(t, 15*time.Second, "subscribed again", func() bool { live, _ := l.state(); return live })
	if err := s.Publish(context.Background(), "party:p1"); err != nil {
		t.Fatal(err)
	}
	until(t, time.Second, "heard party:p1", func() bool { _, h := l.state(); return len(h) == 1 && h[0] == "party:p1" })
}

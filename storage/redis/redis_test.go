package redis_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/landsea/corridor/exchange"
	"github.com/landsea/corridor/internal/testenv"
	"github.com/landsea/corridor/storage/redis"
	"github.com/landsea/corridor/storage/storagetest"
)

func open(t *testing.T, vis time.Duration) *redis.Store {
	t.Helper()
	s := redis.New(testenv.RedisURL(t))
	s.Prefix = testenv.Prefix()
	s.VisibilityTimeout = vis
	s.PollChunk = 100 * time.Millisecond
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	t.Run("Queue", func(t *testing.T) {
		storagetest.Queue(t, func(t *testing.T, vis time.Duration) exchange.Queue { return open(t, vis) })
	})
	t.Run("Index", func(t *testing.T) {
		storagetest.Index(t, func(t *testing.T) exchange.Index { return open(t, time.Minute) })
	})
	t.Run("Outbox", func(t *testing.T) {
		storagetest.Outbox(t, func(t *testing.T) exchange.Outbox { return open(t, time.Minute) })
	})
}

// After Redis loses its data (a restart without persistence), XREADGROUP
// answers NOGROUP; the consumer must recreate the group and go on.
func TestPullSurvivesRedisRestartingEmpty(t *testing.T) {
	ctx := context.Background()
	s := open(t, time.Minute)
	m := exchange.Message{DocumentID: exchange.DocumentID("a", "", []byte{1}), Type: "one-bill", Sender: "a"}
	if err := s.Enqueue(ctx, m, "party-b"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Pull(ctx, "party-b", 10, 0); err != nil || len(got) != 1 {
		t.Fatalf("pull = %v, %v", got, err)
	}
	if err := s.FlushForTest(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Pull(ctx, "party-b", 10, 200*time.Millisecond); err != nil || len(got) != 0 {
		t.Fatalf("pull after flush = %v, %v; want empty and no error", got, err)
	}
	m2 := exchange.Message{DocumentID: exchange.DocumentID("a", "", []byte{2}), Type: "one-bill", Sender: "a"}
	if err := s.Enqueue(ctx, m2, "party-b"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Pull(ctx, "party-b", 10, 0); err != nil || len(got) != 1 || got[0].DocumentID != m2.DocumentID {
		t.Fatalf("pull of a new message after flush = %v, %v", got, err)
	}
}

func TestUnreachableRedisIsUnavailable(t *testing.T) {
	s := redis.New("redis://127.0.0.1:1/0")
	err := s.Open(context.Background())
	if !errors.Is(err, exchange.ErrUnavailable) {
		t.Fatalf("Open against a closed port = %v, want ErrUnavailable", err)
	}
	s.Close()
}

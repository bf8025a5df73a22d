package redis_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/landsea/corridor/exchange"
	"github.com/landsea/corridor/internal/testenv"
	"github.com/landsea/corridor/storage/redis"
)

// BenchmarkPullAck: a party's inbox drained in batches of 100 (one pull,
// one ack per batch), as a receiving system does; msgs/s is the figure.
// The messages are enqueued beforehand, outside the timing.
func BenchmarkPullAck(b *testing.B) {
	s := redis.New(testenv.RedisURL(b))
	s.Prefix = testenv.Prefix()
	if err := s.Open(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	const batch = 100
	n := b.N * batch
	for i := 0; i < n; i += 500 { // enqueue in pipelines of 500 parties' worth
		for j := i; j < min(i+500, n); j++ {
			m := exchange.Message{DocumentID: exchange.DocumentID("bench", fmt.Sprint(j), nil), Type: "tracking-event",
				Sender: "cq-rail", SHA256: "00", ReceivedAt: time.Now(), Ref: "CQNL2026000187"}
			if err := s.Enqueue(ctx, m, "bench-party"); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ResetTimer()
	got := 0
	start := time.Now()
	for range b.N {
		msgs, err := s.Pull(ctx, "bench-party", batch, 0)
		if err != nil {
			b.Fatal(err)
		}
		ids := make([]string, len(msgs))
		for i, m := range msgs {
			ids[i] = m.DocumentID
		}
		if _, err := s.Ack(ctx, "bench-party", ids); err != nil {
			b.Fatal(err)
		}
		got += len(msgs)
	}
	b.StopTimer()
	if got != n {
		b.Fatalf("pulled %d of %d", got, n)
	}
	b.ReportMetric(float64(got)/time.Since(start).Seconds(), "msgs/s")
}

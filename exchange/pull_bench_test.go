package exchange_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/landsea/corridor/exchange"
)

// BenchmarkPull: a party drains its inbox through the service, as GET
// /v1/inbox does, in batches of 100 (one pull and one ack per batch), on
// Redis + MinIO; msgs/s is the figure. The documents (4 KB each, each sent
// to two parties) are archived and queued beforehand, outside the timing.
// FirstRecipient reads every body from MinIO; NextRecipient pulls what the
// first took, from the delivery cache (as a pull after a submit on the same
// gateway does). Up to DeliveryCacheEntries messages: -benchtime 30x.
func BenchmarkPull(b *testing.B) {
	b.Run("FirstRecipient", func(b *testing.B) { benchPull(b, false) })
	b.Run("NextRecipient", func(b *testing.B) { benchPull(b, true) })
}

func benchPull(b *testing.B, next bool) {
	ctx := context.Background()
	arch, r, svc := onRedisMinIO(b)

	const batch = 100
	n := b.N * batch
	body := bytes.Repeat([]byte("x"), 4096)
	sum := sha256.Sum256(body)
	seed(b, n, func(i int) error { // archived by 8 writers, so the set-up takes seconds
		rec := exchange.Record{Receipt: exchange.Receipt{ID: exchange.DocumentID("bench", fmt.Sprint(i), nil),
			Type: "tracking-event", Sender: "cq-rail", SHA256: hex.EncodeToString(sum[:]), ReceivedAt: time.Now()}}
		if err := arch.Put(ctx, rec, body); err != nil {
			return err
		}
		return r.Enqueue(ctx, exchange.MessageOf(rec), "bench-a", "bench-b")
	})
	caller := exchange.Party{ID: "bench-a"}
	if next {
		drain(b, svc, caller, n, len(body))
		caller = exchange.Party{ID: "bench-b"}
	}
	b.ResetTimer()
	start := time.Now()
	drain(b, svc, caller, n, len(body))
	b.StopTimer()
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "msgs/s")
}

// drain pulls and acks n messages of size bytes from caller's inbox.
func drain(b *testing.B, svc *exchange.Service, caller exchange.Party, n, size int) {
	ctx := context.Background()
	for got := 0; got < n; {
		msgs, err := svc.Pull(ctx, caller, 100, 0)
		if err != nil || len(msgs) == 0 {
			b.Fatalf("pulled %d of %d: %v", got, n, err)
		}
		ids := make([]string, len(msgs))
		for i, m := range msgs {
			if len(m.Document) != size {
				b.Fatalf("message %s has %d bytes, want %d", m.ID, len(m.Document), size)
			}
			ids[i] = m.ID
		}
		if _, err := svc.Ack(ctx, caller, ids); err != nil {
			b.Fatal(err)
		}
		got += len(msgs)
	}
}

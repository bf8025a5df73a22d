package exchange_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/landsea/corridor/exchange"
	"github.com/landsea/corridor/internal/testenv"
	"github.com/landsea/corridor/storage/redis"
	"github.com/landsea/corridor/storage/s3"
)

// BenchmarkPull: a party drains its inbox through the service, as GET
// /v1/inbox does, in batches of 100 (one pull and one ack per batch), on
// Redis + MinIO: each message comes with its document's bytes from the
// archive. msgs/s is the figure. The documents (4 KB each) are archived and
// queued beforehand, outside the timing.
func BenchmarkPull(b *testing.B) {
	ctx := context.Background()
	m := testenv.MinIO(b)
	arch := s3.New(m.Endpoint, m.Bucket, m.AccessKey, m.SecretKey)
	arch.Prefix = testenv.Prefix() + "/"
	r := redis.New(testenv.RedisURL(b))
	r.Prefix = testenv.Prefix()
	for _, o := range []interface{ Open(context.Context) error }{arch, r} {
		if err := o.Open(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.Cleanup(func() { r.Close() })
	signer, _ := exchange.NewSigner(bytes.Repeat([]byte{3}, 32))
	svc := exchange.NewService(arch, r, r, arch, signer, nil)

	const batch = 100
	n := b.N * batch
	body := bytes.Repeat([]byte("x"), 4096)
	sum := sha256.Sum256(body)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 { // archived by 8 writers, so the set-up takes seconds
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				rec := exchange.Record{Receipt: exchange.Receipt{ID: exchange.DocumentID("bench", fmt.Sprint(i), nil),
					Type: "tracking-event", Sender: "cq-rail", SHA256: hex.EncodeToString(sum[:]), ReceivedAt: time.Now()}}
				if err := arch.Put(ctx, rec, body); err != nil {
					errs <- err
					return
				}
				if err := r.Enqueue(ctx, exchange.MessageOf(rec), "bench-party"); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	caller := exchange.Party{ID: "bench-party"}
	b.ResetTimer()
	got := 0
	start := time.Now()
	for range b.N {
		msgs, err := svc.Pull(ctx, caller, batch, 0)
		if err != nil {
			b.Fatal(err)
		}
		ids := make([]string, len(msgs))
		for i, m := range msgs {
			if len(m.Document) != len(body) {
				b.Fatalf("message %s has %d bytes, want %d", m.ID, len(m.Document), len(body))
			}
			ids[i] = m.ID
		}
		if _, err := svc.Ack(ctx, caller, ids); err != nil {
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

package s3_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/landsea/corridor/exchange"
	"github.com/landsea/corridor/internal/testenv"
	"github.com/landsea/corridor/storage/s3"
)

// A MinIO that hangs (SIGSTOP: connections open, no answer) is a backend
// down: every call ends with ErrUnavailable when its context does, never
// with an error the gateway would answer with 500.
func TestPausedMinIOIsUnavailable(t *testing.T) {
	m := testenv.StartMinIO(t)
	s := s3.New(m.Endpoint, m.Bucket, m.AccessKey, m.SecretKey)
	ctx := context.Background()
	if err := s.Open(ctx); err != nil {
		t.Fatal(err)
	}
	rec := exchange.Record{Receipt: exchange.Receipt{ID: "paused-1", Type: "one-bill", Sender: "a", SHA256: "00", ReceivedAt: time.Now()}}
	if err := s.Put(ctx, rec, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	m.Pause(t)
	defer m.Resume(t)
	calls := map[string]func(context.Context) error{
		"Put": func(ctx context.Context) error {
			rec := rec
			rec.ID = "paused-2"
			return s.Put(ctx, rec, []byte(`{}`))
		},
		"Record":      func(ctx context.Context) error { _, err := s.Record(ctx, "paused-1"); return err },
		"Body":        func(ctx context.Context) error { _, err := s.Body(ctx, "paused-1"); return err },
		"Key":         func(ctx context.Context) error { _, err := s.Key(ctx, "k1"); return err },
		"PutKey":      func(ctx context.Context) error { return s.PutKey(ctx, exchange.APIKey{ID: "k1", Party: "a"}) },
		"Party":       func(ctx context.Context) error { _, err := s.Party(ctx, "a"); return err },
		"ListParties": func(ctx context.Context) error { _, err := s.ListParties(ctx); return err },
		"Ping":        s.Ping,
	}
	for name, call := range calls {
		// Cancelled (the caller gave up) rather than past its deadline.
		cctx, cancel := context.WithCancel(ctx)
		time.AfterFunc(100*time.Millisecond, cancel)
		if err := call(cctx); !errors.Is(err, exchange.ErrUnavailable) || !errors.Is(err, context.Canceled) {
			t.Errorf("%s cancelled with MinIO paused = %v; want ErrUnavailable and context.Canceled", name, err)
		}
	}
	for name, call := range calls {
		ctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		err := call(ctx)
		cancel()
		if !errors.Is(err, exchange.ErrUnavailable) || exchange.ErrorCode(err) != exchange.CodeUnavailable {
			t.Errorf("%s with MinIO paused = %v; want ErrUnavailable", name, err)
		}
	}
}

package exchange_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"sync/atomic"
	"testing"
	"time"

	"github.com/landsea/corridor/exchange"
)

// countingArchive counts the bodies and records read from a real
// archive, and the writes tried on it.
type countingArchive struct {
	exchange.Archive
	bodies, records, puts atomic.Int64
}

func (c *countingArchive) Record(ctx context.Context, id string) (exchange.Record, error) {
	c.records.Add(1)
	return c.Archive.Record(ctx, id)
}

func (c *countingArchive) Put(ctx context.Context, rec exchange.Record, body []byte) error {
	c.puts.Add(1)
	return c.Archive.Put(ctx, rec, body)
}

func (c *countingArchive) Body(ctx context.Context, id string) ([]byte, error) {
	c.bodies.Add(1)
	return c.Archive.Body(ctx, id)
}

// A submitted document reaches its recipients' pulls without an archive
// read; one archived behind the gateway's back is read once for all its
// recipients; bytes that do not match their SHA-256 are never kept.
func TestDeliveryCache(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	arch := &countingArchive{Archive: w.store}
	w.svc.Archive = arch
	pull := func(party string) []exchange.InboxMessage {
		t.Helper()
		msgs, err := w.svc.Pull(ctx, exchange.Party{ID: party}, 100, 0)
		if err != nil {
			t.Fatal(err)
		}
		ids := make([]string, len(msgs))
		for i, m := range msgs {
			ids[i] = m.ID
		}
		if _, err := w.svc.Ack(ctx, exchange.Party{ID: party}, ids); err != nil {
			t.Fatal(err)
		}
		return msgs
	}

	bill := demoDoc(t, "01-one-bill.json")
	mto, _ := w.svc.Parties.Party(ctx, "cq-mto")
	rc, _, err := w.svc.Submit(ctx, mto, exchange.Submission{Type: "one-bill", Body: bill})
	if err != nil {
		t.Fatal(err)
	}
	for _, party := range rc.Recipients {
		msgs := pull(party)
		if len(msgs) != 1 || !bytes.Equal(msgs[0].Document, bill) {
			t.Fatalf("%s pulled %d messages, want the one bill's bytes", party, len(msgs))
		}
	}
	if n := arch.bodies.Load(); n != 0 || len(rc.Recipients) < 2 {
		t.Fatalf("%d recipients' pulls read the archive %d times, want 0", len(rc.Recipients), n)
	}

	// Archived and queued behind the gateway's back (as reindex --requeue
	// and the outbox sweep of another gateway do): read once.
	behind := func(id string, body []byte, sum string) {
		t.Helper()
		rec := exchange.Record{Receipt: exchange.Receipt{ID: id, Type: "tracking-event", Sender: "cq-rail",
			SHA256: sum, ReceivedAt: time.Now()}}
		if err := w.store.Put(ctx, rec, body); err != nil {
			t.Fatal(err)
		}
		if err := w.store.Enqueue(ctx, exchange.MessageOf(rec), "sg-motors", "sg-bank"); err != nil {
			t.Fatal(err)
		}
	}
	body := []byte(`{"eventID":"behind"}`)
	sum := sha256.Sum256(body)
	behind(exchange.DocumentID("cq-rail", "behind", nil), body, hex.EncodeToString(sum[:]))
	before := arch.bodies.Load()
	for _, party := range []string{"sg-motors", "sg-bank"} {
		if msgs := pull(party); len(msgs) != 1 || !bytes.Equal(msgs[0].Document, body) {
			t.Fatalf("%s: %+v", party, msgs)
		}
	}
	if n := arch.bodies.Load() - before; n != 1 {
		t.Errorf("two recipients read the archive %d times, want 1", n)
	}

	// Bytes whose SHA-256 is not the record's: read from the archive each time.
	behind(exchange.DocumentID("cq-rail", "wrong", nil), []byte(`{"eventID":"wrong"}`), hex.EncodeToString(sum[:]))
	before = arch.bodies.Load()
	pull("sg-motors")
	pull("sg-bank")
	if n := arch.bodies.Load() - before; n != 2 {
		t.Errorf("bytes that do not match their sum were read %d times, want 2 (never cached)", n)
	}
}

// A message whose document the archive lost holds up none of the others:
// they are pulled, and it stays pending.
func TestPullSkipsALostDocument(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	lost := exchange.Message{DocumentID: exchange.DocumentID("cq-rail", "lost", nil), Type: "tracking-event", Sender: "cq-rail",
		SHA256: "00", ReceivedAt: time.Now()}
	if err := w.store.Enqueue(ctx, lost, "sg-motors"); err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"eventID":"kept"}`)
	sum := sha256.Sum256(body)
	kept := exchange.Record{Receipt: exchange.Receipt{ID: exchange.DocumentID("cq-rail", "kept", nil), Type: "tracking-event",
		Sender: "cq-rail", SHA256: hex.EncodeToString(sum[:]), ReceivedAt: time.Now()}}
	if err := w.store.Put(ctx, kept, body); err != nil {
		t.Fatal(err)
	}
	if err := w.store.Enqueue(ctx, exchange.MessageOf(kept), "sg-motors"); err != nil {
		t.Fatal(err)
	}
	msgs, err := w.svc.Pull(ctx, exchange.Party{ID: "sg-motors"}, 10, 0)
	if err != nil || len(msgs) != 1 || msgs[0].ID != kept.ID {
		t.Fatalf("pull = %+v, %v; want the kept document alone", msgs, err)
	}
	if n, err := w.svc.Ack(ctx, exchange.Party{ID: "sg-motors"}, []string{lost.DocumentID}); err != nil || n != 1 {
		t.Errorf("the lost document's message: ack = %d, %v; want it pending (1)", n, err)
	}
}

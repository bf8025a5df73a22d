package exchange_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/landsea/corridor/exchange"
)

var errDied = errors.New("the gateway died here")

// died submits a document with a failpoint right after its archive write,
// as a gateway that dies there: nothing after it runs, and the sender
// never hears back. It returns the document's id.
func (w *world) died(t *testing.T, sender, typ string, body []byte) string {
	t.Helper()
	return w.diedSubmitting(t, sender, exchange.Submission{Type: typ, Body: body})
}

// diedSubmitting is died for any submission (an amendment, say).
func (w *world) diedSubmitting(t *testing.T, sender string, sub exchange.Submission) string {
	t.Helper()
	var id string
	func() {
		w.svc.Failpoint = func(point string) {
			if point == "after-archive" {
				panic(errDied)
			}
		}
		defer func() {
			w.svc.Failpoint = nil
			if r := recover(); r != errDied {
				t.Fatalf("the submission went past the failpoint: %v", r)
			}
		}()
		_, _, _ = w.svc.Submit(context.Background(), w.party(t, sender), sub)
	}()
	pending, err := w.store.Pending(context.Background(), time.Now().Add(time.Hour), 100)
	if err != nil || len(pending) != 1 {
		t.Fatalf("outbox after the failpoint: %v, %v; want one document", pending, err)
	}
	id = pending[0].ID
	if _, err := w.store.Record(context.Background(), id); err != nil {
		t.Fatalf("the document cut short is not archived: %v", err)
	}
	return id
}

// inbox pulls and acks a party's inbox; it returns the documents' ids and types.
func (w *world) inbox(t *testing.T, party string) (ids, types []string) {
	t.Helper()
	ctx := context.Background()
	msgs, err := w.svc.Pull(ctx, w.party(t, party), 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		ids = append(ids, m.DocumentID)
		types = append(types, m.Type)
	}
	if _, err := w.svc.Ack(ctx, w.party(t, party), ids); err != nil {
		t.Fatal(err)
	}
	return ids, types
}

// A document archived by a gateway that died before delivering it is
// indexed and queued by the outbox's sweep, with no retry from its sender;
// a second sweep finds nothing to do.
func TestOutboxCompletesADeliveryCutShort(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.svc.SetOutbox(w.store)
	id := w.died(t, "cq-mto", "one-bill", demoDoc(t, "01-one-bill.json"))
	rec, _ := w.store.Record(ctx, id)
	if len(rec.Recipients) == 0 {
		t.Fatal("the one bill has no recipients to deliver to")
	}
	if _, err := w.store.Doc(ctx, id); !errors.Is(err, exchange.ErrNotFound) {
		t.Fatalf("indexed before the sweep: %v", err)
	}
	for _, p := range rec.Recipients {
		if ids, _ := w.inbox(t, p); len(ids) != 0 {
			t.Fatalf("%s got %v before the sweep", p, ids)
		}
	}
	if n, err := w.svc.SweepOutbox(ctx, 0); n != 1 || err != nil {
		t.Fatalf("sweep = %d, %v; want 1 delivered", n, err)
	}
	if _, err := w.store.Doc(ctx, id); err != nil {
		t.Fatalf("not indexed after the sweep: %v", err)
	}
	for _, p := range rec.Recipients {
		if ids, _ := w.inbox(t, p); !slices.Equal(ids, []string{id}) {
			t.Fatalf("%s's inbox after the sweep: %v; want [%s]", p, ids, id)
		}
	}
	if n, err := w.svc.SweepOutbox(ctx, 0); n != 0 || err != nil {
		t.Fatalf("second sweep = %d, %v; want nothing to do", n, err)
	}
	// The sender's retry, had it come, changes nothing.
	if _, created, err := w.svc.Submit(ctx, w.party(t, "cq-mto"), exchange.Submission{Type: "one-bill", Body: demoDoc(t, "01-one-bill.json")}); created || err != nil {
		t.Fatalf("retry after the sweep: created %v, %v", created, err)
	}
	for _, p := range rec.Recipients {
		if ids, _ := w.inbox(t, p); len(ids) != 0 {
			t.Fatalf("%s got %v again after a retry", p, ids)
		}
	}
}

// The last answer that clears a declaration is cut short after its
// archive write: the sweep delivers the answer and works out, archives
// and delivers the clearance it brings.
func TestOutboxCompletesAClearance(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.svc.SetOutbox(w.store)
	w.mustSubmit(t, "cq-mto", "one-bill", demoDoc(t, "01-one-bill.json"))
	w.mustSubmit(t, "cq-autoparts", "customs-declaration", demoDoc(t, "03-export-declaration.json"))
	w.mustSubmit(t, "qz-msa", "customs-response", demoDoc(t, "04b-export-msa-released.json"))
	w.mustSubmit(t, "qz-port", "customs-response", demoDoc(t, "04c-export-port-released.json"))
	w.inbox(t, "cq-autoparts") // what came before
	id := w.died(t, "cq-customs", "customs-response", demoDoc(t, "04-export-released.json"))
	if _, types := w.inbox(t, "cq-autoparts"); len(types) != 0 {
		t.Fatalf("the declarant got %v before the sweep", types)
	}
	if n, err := w.svc.SweepOutbox(ctx, 0); n != 1 || err != nil {
		t.Fatalf("sweep = %d, %v; want 1 delivered", n, err)
	}
	ids, types := w.inbox(t, "cq-autoparts")
	if !slices.Contains(ids, id) || !slices.Contains(types, exchange.TypeClearance) {
		t.Fatalf("the declarant's inbox after the sweep: %v %v; want the answer %s and the clearance", ids, types, id)
	}
	v, err := w.svc.Shipment(ctx, w.party(t, "cq-autoparts"), bill, exchange.EventQuery{})
	if err != nil || v.Shipment.Customs[0].Status != "RELEASED" {
		t.Fatalf("clearance after the sweep: %+v, %v; want RELEASED", v.Shipment.Customs, err)
	}
}

// What was marked and never archived stays marked while its submission
// may still be running, and is forgotten once ClaimTimeout has passed.
func TestOutboxForgetsWhatNeverReachedTheArchive(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.svc.SetOutbox(w.store)
	young, old := exchange.DocumentID("a", "", []byte{1}), exchange.DocumentID("b", "", []byte{2})
	_, _ = w.store.Mark(ctx, young, time.Now().Add(-time.Second))
	_, _ = w.store.Mark(ctx, old, time.Now().Add(-exchange.ClaimTimeout-time.Second))
	if n, err := w.svc.SweepOutbox(ctx, 0); n != 0 || err != nil {
		t.Fatalf("sweep = %d, %v; want nothing delivered", n, err)
	}
	p, _ := w.store.Pending(ctx, time.Now().Add(time.Hour), 10)
	if len(p) != 1 || p[0].ID != young {
		t.Fatalf("still marked: %+v; want only %s", p, young)
	}
}

// failingOutbox refuses every mark, as Redis down would.
type failingOutbox struct{ exchange.Outbox }

func (failingOutbox) Mark(context.Context, string, time.Time) (bool, error) {
	return false, exchange.ErrUnavailable
}

// When the outbox cannot mark a document, nothing is archived and the
// sender is told to retry (a backend down).
func TestOutboxDownArchivesNothing(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.svc.SetOutbox(failingOutbox{w.store})
	_, err := w.submit(t, "cq-mto", "one-bill", demoDoc(t, "01-one-bill.json"))
	if !errors.Is(err, exchange.ErrUnavailable) {
		t.Fatalf("submit with the outbox down = %v; want ErrUnavailable", err)
	}
	n := 0
	_ = w.store.Walk(ctx, func(exchange.Record) error { n++; return nil })
	if n != 0 {
		t.Fatalf("%d records archived with the outbox down", n)
	}
}

package exchange_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/landsea/corridor/exchange"
)

// A submission refused once it has claimed its numbers (an
// Idempotency-Key used again for another document) gives them up: the
// document sent again without the key is accepted at once, not only once
// the claims are stale. Both where the first document's record is cold and
// where it is archived but not yet indexed (its gateway died after the
// archive write).
func TestRefusedSubmissionReleasesItsClaims(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name  string
		world func(t *testing.T) *world
		first func(t *testing.T, w *world, sub exchange.Submission)
	}{
		{"Cold", func(t *testing.T) *world { w, _ := coldWorld(t, 3*time.Hour); return w },
			func(t *testing.T, w *world, sub exchange.Submission) {
				if _, _, err := w.svc.Submit(ctx, w.party(t, "cq-rail"), sub); err != nil {
					t.Fatal(err)
				}
				w.setNow(time.Now()) // its record leaves Redis
			}},
		{"ArchivedNotIndexed", func(t *testing.T) *world { w := newWorld(t); w.svc.SetOutbox(w.store); return w },
			func(t *testing.T, w *world, sub exchange.Submission) { w.diedSubmitting(t, "cq-rail", sub) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := c.world(t)
			w.mustSubmit(t, "cq-mto", "one-bill", demoDoc(t, "01-one-bill.json"))
			ev := func(id string) []byte {
				return event(id, "cq-rail", "CQNL2026000187", "LOAD", "2026-11-06T10:00:00+08:00", "CNCKG")
			}
			c.first(t, w, exchange.Submission{Type: "tracking-event", Body: ev("first"), IdempotencyKey: "k-1"})
			rail := w.party(t, "cq-rail")
			_, _, err := w.svc.Submit(ctx, rail, exchange.Submission{Type: "tracking-event", Body: ev("second"), IdempotencyKey: "k-1"})
			if code(err) != exchange.CodeInvalid {
				t.Fatalf("another document with the key used: %v; want refused as invalid", err)
			}
			if _, created, err := w.svc.Submit(ctx, rail, exchange.Submission{Type: "tracking-event", Body: ev("second")}); err != nil || !created {
				t.Fatalf("the second document without the key: created=%v, %v; want accepted", created, err)
			}
		})
	}
}

// failingAddIndex fails every Add while fail is set.
type failingAddIndex struct {
	exchange.Index
	fail bool
}

var errIndexDied = errors.New("the index died here")

func (ix *failingAddIndex) Add(ctx context.Context, rec exchange.Record, entries []exchange.Entry) error {
	if ix.fail {
		return errIndexDied
	}
	return ix.Index.Add(ctx, rec, entries)
}

// A submission that fails once archived keeps its claims: its document
// is in the ledger, and another document cannot take its numbers.
func TestArchivedSubmissionKeepsItsClaims(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.mustSubmit(t, "cq-mto", "one-bill", demoDoc(t, "01-one-bill.json"))
	ix := &failingAddIndex{Index: w.store, fail: true}
	w.svc.Index = ix
	ev := event("kept", "cq-rail", "CQNL2026000187", "LOAD", "2026-11-06T10:00:00+08:00", "CNCKG")
	rail := w.party(t, "cq-rail")
	if _, _, err := w.svc.Submit(ctx, rail, exchange.Submission{Type: "tracking-event", Body: ev, IdempotencyKey: "k-1"}); !errors.Is(err, errIndexDied) {
		t.Fatalf("the first attempt: %v; want the index's failure", err)
	}
	ix.fail = false
	if _, _, err := w.svc.Submit(ctx, rail, exchange.Submission{Type: "tracking-event", Body: ev}); code(err) != exchange.CodeConflict {
		t.Fatalf("another document with the archived one's event id: %v; want a conflict", err)
	}
}

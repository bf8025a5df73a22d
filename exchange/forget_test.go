package exchange_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/landsea/corridor/exchange"
)

// On Redis, an acked message is remembered (so its document is not queued
// twice) only for the dedupe window after the document was received. A
// submission retried within the window completes a delivery cut short and
// delivers nothing twice; one retried after it gets its receipt and
// nothing more, although Redis no longer knows its recipients had it.
func TestRetriesAroundTheDedupeWindow(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	r := openRedis(t)
	w.svc.Queue = r
	w.svc.SetOutbox(w.store)
	setClock := func(at time.Time) {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.now = at
	}
	mto := w.party(t, "cq-mto")
	submit := func(body []byte) exchange.Receipt {
		t.Helper()
		rc, _, err := w.svc.Submit(ctx, mto, exchange.Submission{Type: "one-bill", Body: body})
		if err != nil {
			t.Fatal(err)
		}
		return rc
	}
	// inboxes pulls and acks every recipient's inbox: how often each got id.
	inboxes := func(rc exchange.Receipt) []int {
		t.Helper()
		got := make([]int, len(rc.Recipients))
		for i, p := range rc.Recipients {
			ids, _ := w.inbox(t, p)
			for _, id := range ids {
				if id == rc.ID {
					got[i]++
				}
			}
		}
		return got
	}
	once := func(rc exchange.Receipt) []int { return slices.Repeat([]int{1}, len(rc.Recipients)) }
	none := func(rc exchange.Receipt) []int { return make([]int, len(rc.Recipients)) }

	// Within the window: a delivery cut short is completed by the retry,
	// and a retry of a delivered document delivers nothing again.
	setClock(time.Now())
	bill := demoDoc(t, "01-one-bill.json")
	w.died(t, "cq-mto", "one-bill", bill)
	rc := submit(bill)
	if got := inboxes(rc); !slices.Equal(got, once(rc)) {
		t.Fatalf("after the retry of a delivery cut short, recipients %v got it %v times; want once each", rc.Recipients, got)
	}
	if again := submit(bill); !reflect.DeepEqual(again, rc) {
		t.Fatalf("receipt of the retry %+v, want %+v", again, rc)
	}
	if got := inboxes(rc); !slices.Equal(got, none(rc)) {
		t.Fatalf("a retry within the window delivered the document again: %v", got)
	}

	// Received two hours ago (the window is one hour), and Redis' marks of
	// it expired (flushed here, not waited for). A retry now gets the
	// receipt, no delivery.
	setClock(time.Now().Add(-2 * time.Hour))
	old := []byte(strings.Replace(string(bill), "CQNL2026000187", "CQNL2026000999", 1))
	rc = submit(old)
	if got := inboxes(rc); !slices.Equal(got, once(rc)) {
		t.Fatalf("recipients %v got the old bill %v times; want once each", rc.Recipients, got)
	}
	if err := r.FlushForTest(ctx); err != nil {
		t.Fatal(err)
	}
	setClock(time.Now())
	if again := submit(old); !reflect.DeepEqual(again, rc) {
		t.Fatalf("receipt of the late retry %+v, want %+v", again, rc)
	}
	if got := inboxes(rc); !slices.Equal(got, none(rc)) {
		t.Fatalf("a retry after the window delivered the document again: %v", got)
	}
}

var errQueueDied = errors.New("the gateway died before queuing")

// failingQueue fails Enqueue while fail is set, as a gateway that indexed
// a document and died before queuing it.
type failingQueue struct {
	exchange.ForgetfulQueue
	fail       bool
	failsAfter bool // the enqueue is made, then fails (a WAIT short of replicas)
}

func (q *failingQueue) Enqueue(ctx context.Context, m exchange.Message, parties ...string) error {
	if q.fail {
		return errQueueDied
	}
	if err := q.ForgetfulQueue.Enqueue(ctx, m, parties...); err != nil || !q.failsAfter {
		return err
	}
	return errQueueDied
}

// A delivery past the window whose enqueue is made but reported failed
// stays marked, and every sweep completes it again: the recipients get it
// once.
func TestSweepsPastTheWindowDeliverOnce(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	q := &failingQueue{ForgetfulQueue: openRedis(t), failsAfter: true}
	w.svc.Queue = q
	w.svc.SetOutbox(w.store)
	w.mu.Lock()
	w.now = time.Now().Add(-2 * time.Hour)
	w.mu.Unlock()
	bill := demoDoc(t, "01-one-bill.json")
	if _, _, err := w.svc.Submit(ctx, w.party(t, "cq-mto"), exchange.Submission{Type: "one-bill", Body: bill}); !errors.Is(err, errQueueDied) {
		t.Fatalf("submit: %v; want the queue's failure", err)
	}
	pending, err := w.store.Pending(ctx, time.Now().Add(time.Hour), 10)
	if err != nil || len(pending) != 1 {
		t.Fatalf("outbox %v, %v; want the bill marked", pending, err)
	}
	rec, err := w.store.Record(ctx, pending[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for range 3 {
		if _, err := w.svc.SweepOutbox(ctx, 0); err == nil {
			t.Fatal("a sweep succeeded; want the queue's failure again")
		}
		for _, p := range rec.Recipients {
			ids, _ := w.inbox(t, p)
			got[p] += len(ids)
		}
	}
	for _, p := range rec.Recipients {
		if got[p] != 1 {
			t.Errorf("%s got the bill %d times over three sweeps, want once", p, got[p])
		}
	}
}

// A document indexed but not queued stays marked in the outbox: a retry
// completes its delivery, within the window and after it; once delivered
// and unmarked, a retry after the window only gets its receipt.
func TestRetryAfterTheWindowCompletesAMarkedDelivery(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	q := &failingQueue{ForgetfulQueue: openRedis(t)}
	w.svc.Queue = q
	w.svc.SetOutbox(w.store)
	mto := w.party(t, "cq-mto")
	for _, c := range []struct {
		name, bill string
		ago        time.Duration // when the first attempt was
	}{{"WithinTheWindow", "CQNL2026100001", 0}, {"AfterTheWindow", "CQNL2026100002", 2 * time.Hour}} {
		t.Run(c.name, func(t *testing.T) {
			bill := []byte(strings.Replace(string(demoDoc(t, "01-one-bill.json")), "CQNL2026000187", c.bill, 1))
			w.mu.Lock()
			w.now = time.Now().Add(-c.ago)
			w.mu.Unlock()
			q.fail = true
			if _, _, err := w.svc.Submit(ctx, mto, exchange.Submission{Type: "one-bill", Body: bill}); !errors.Is(err, errQueueDied) {
				t.Fatalf("the first attempt: %v; want the queue's failure", err)
			}
			q.fail = false
			w.mu.Lock()
			w.now = time.Now()
			w.mu.Unlock()
			for i, want := range []int{1, 0} { // the retry delivers; the next retry does not
				rc, created, err := w.svc.Submit(ctx, mto, exchange.Submission{Type: "one-bill", Body: bill})
				if err != nil || created {
					t.Fatalf("retry %d: created %v, %v; want the receipt of the first attempt", i+1, created, err)
				}
				if marked, err := w.store.Marked(ctx, rc.ID); err != nil || marked {
					t.Fatalf("retry %d: still marked (%v); want the delivery ended", i+1, err)
				}
				for _, p := range rc.Recipients {
					ids, _ := w.inbox(t, p)
					if n := len(slices.DeleteFunc(ids, func(id string) bool { return id != rc.ID })); n != want {
						t.Errorf("retry %d: %s got the bill %d times, want %d", i+1, p, n, want)
					}
				}
			}
		})
	}
}

// reindex --requeue-since queues again only what was received since
// (and with the shipment that orders push): after Redis lost its data,
// the older documents would come again too.
func TestReindexRequeuesSince(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	r := openRedis(t)
	w.svc.Queue = r
	mto := w.party(t, "cq-mto")
	now := time.Now()
	var rcs []exchange.Receipt
	for i, ago := range []time.Duration{3 * time.Hour, 2 * time.Hour} {
		w.mu.Lock()
		w.now = now.Add(-ago)
		w.mu.Unlock()
		bill := []byte(strings.Replace(string(demoDoc(t, "01-one-bill.json")), "CQNL2026000187", fmt.Sprintf("CQNL202620000%d", i), 1))
		rc, _, err := w.svc.Submit(ctx, mto, exchange.Submission{Type: "one-bill", Body: bill})
		if err != nil {
			t.Fatal(err)
		}
		rcs = append(rcs, rc)
	}
	got := func() map[string]int {
		n := map[string]int{}
		for _, p := range rcs[0].Recipients {
			ids, _ := w.inbox(t, p)
			for _, id := range ids {
				n[id]++
			}
		}
		return n
	}
	if n := got(); n[rcs[0].ID] != len(rcs[0].Recipients) || n[rcs[1].ID] != len(rcs[1].Recipients) {
		t.Fatalf("delivered %v, want both bills to each recipient", n)
	}
	if err := r.FlushForTest(ctx); err != nil { // Redis lost its data
		t.Fatal(err)
	}
	if _, err := w.svc.Reindex(ctx, true, now.Add(-150*time.Minute), func() {}); err != nil {
		t.Fatal(err)
	}
	for _, p := range rcs[1].Recipients {
		msgs, err := r.Pull(ctx, p, 10, 0)
		if err != nil || len(msgs) != 1 || msgs[0].DocumentID != rcs[1].ID || msgs[0].Ref != "CQNL2026200001" {
			t.Fatalf("%s's inbox after reindex --requeue-since 150m: %+v, %v; want the newer bill alone, with its shipment", p, msgs, err)
		}
	}
}

package exchange_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/landsea/corridor/exchange"
	"github.com/landsea/corridor/internal/testenv"
)

// billWorld is a world with the demo one bill, and with outbox (nil: none).
func billWorld(t *testing.T, outbox func(w *world) exchange.Outbox) *world {
	t.Helper()
	w := newWorld(t)
	if outbox != nil {
		w.svc.SetOutbox(outbox(w))
	}
	w.mustSubmit(t, "cq-mto", "one-bill", demoDoc(t, "01-one-bill.json"))
	return w
}

// storeOutbox is the world's own store as its outbox.
func storeOutbox(w *world) exchange.Outbox { return w.store }

// railNote is the demo rail consignment note under the demo bill, numbered
// number (the natural key it claims); its train makes bytes differ.
// (Events, named by their ids, claim nothing: named_test.go.)
func railNote(t *testing.T, number, train string) exchange.Submission {
	t.Helper()
	b := bytes.Replace(demoDoc(t, "02-rail-consignment-note.json"), []byte(`"SMGS2611000451"`), []byte(`"`+number+`"`), 1)
	return exchange.Submission{Type: "rail-consignment-note", Body: bytes.Replace(b, []byte(`"X8017"`), []byte(`"`+train+`"`), 1)}
}

// keyed is sub sent with an Idempotency-Key.
func keyed(sub exchange.Submission, key string) exchange.Submission {
	sub.IdempotencyKey = key
	return sub
}

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
			c.first(t, w, keyed(railNote(t, "SMGS-FIRST", "X1"), "k-1"))
			rail := w.party(t, "cq-rail")
			_, _, err := w.svc.Submit(ctx, rail, keyed(railNote(t, "SMGS-SECOND", "X1"), "k-1"))
			if code(err) != exchange.CodeInvalid {
				t.Fatalf("another document with the key used: %v; want refused as invalid", err)
			}
			if _, created, err := w.svc.Submit(ctx, rail, railNote(t, "SMGS-SECOND", "X1")); err != nil || !created {
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
	w := billWorld(t, nil)
	ix := &failingAddIndex{Index: w.store, fail: true}
	w.svc.Index = ix
	rail := w.party(t, "cq-rail")
	if _, _, err := w.svc.Submit(ctx, rail, keyed(railNote(t, "SMGS-KEPT", "X1"), "k-1")); !errors.Is(err, errIndexDied) {
		t.Fatalf("the first attempt: %v; want the index's failure", err)
	}
	ix.fail = false
	if _, _, err := w.svc.Submit(ctx, rail, railNote(t, "SMGS-KEPT", "X1")); code(err) != exchange.CodeConflict {
		t.Fatalf("another document with the archived one's number: %v; want a conflict", err)
	}
}

// A refused attempt releases only the claims it made: one with the same id
// (an Idempotency-Key used again) that found the claim of an attempt
// archived but not yet indexed renewed it, and leaves it, or a third
// document could take the archived one's number.
func TestRefusedSubmissionKeepsAClaimItRenewed(t *testing.T) {
	ctx := context.Background()
	w := billWorld(t, storeOutbox)
	w.diedSubmitting(t, "cq-rail", keyed(railNote(t, "SMGS-RENEWED", "X1"), "k-1"))
	rail := w.party(t, "cq-rail")
	_, _, err := w.svc.Submit(ctx, rail, keyed(railNote(t, "SMGS-RENEWED", "X2"), "k-1"))
	if code(err) != exchange.CodeInvalid {
		t.Fatalf("another document with the key used: %v; want refused as invalid", err)
	}
	if _, _, err := w.svc.Submit(ctx, rail, railNote(t, "SMGS-RENEWED", "X3")); code(err) != exchange.CodeConflict {
		t.Fatalf("a third document with the archived one's number: %v; want a conflict", err)
	}
}

// An amendment refused once it claimed its document's revision slot gives
// the slot up: the amendment sent again is accepted at once.
func TestRefusedAmendmentReleasesTheRevisionSlot(t *testing.T) {
	ctx := context.Background()
	w := billWorld(t, storeOutbox)
	note := demoDoc(t, "02-rail-consignment-note.json")
	v1 := w.mustSubmit(t, "cq-rail", "rail-consignment-note", note)
	fixed := bytes.Replace(note, []byte(`"80150222"`), []byte(`"80150223"`), 1)
	// The key is used first by another document, archived but not indexed:
	// the amendment with it claims the slot, then the archive refuses it.
	w.diedSubmitting(t, "cq-rail", keyed(railNote(t, "SMGS-SLOT", "X1"), "k-1"))
	rail := w.party(t, "cq-rail")
	_, _, err := w.svc.Submit(ctx, rail, exchange.Submission{Type: "rail-consignment-note", Body: fixed, Amends: v1.ID, IdempotencyKey: "k-1"})
	if code(err) != exchange.CodeInvalid {
		t.Fatalf("the amendment with the key used: %v; want refused as invalid", err)
	}
	if _, created, err := w.svc.Submit(ctx, rail, exchange.Submission{Type: "rail-consignment-note", Body: fixed, Amends: v1.ID}); err != nil || !created {
		t.Fatalf("the amendment without the key: created=%v, %v; want accepted", created, err)
	}
}

// A document takes at most 1000 revisions (listing them reads each): the
// next amendment is refused.
func TestRevisionsBounded(t *testing.T) {
	w := billWorld(t, nil)
	note := demoDoc(t, "02-rail-consignment-note.json")
	latest := w.mustSubmit(t, "cq-rail", "rail-consignment-note", note)
	for i := 2; i <= 1001; i++ {
		body := bytes.Replace(note, []byte(`"80150222"`), []byte(fmt.Sprintf(`"8%07d"`, i)), 1)
		rc, err := w.amend(t, "cq-rail", "rail-consignment-note", latest.ID, body)
		if i <= 1000 && err != nil {
			t.Fatalf("revision %d: %v", i, err)
		}
		if i == 1001 {
			if code(err) != exchange.CodeConflict {
				t.Fatalf("revision 1001: %v; want a conflict", err)
			}
			break
		}
		latest = rc
	}
	revs, err := w.svc.Revisions(context.Background(), w.party(t, "cq-rail"), latest.ID)
	if err != nil || len(revs) != 1000 || revs[999].ID != latest.ID || revs[0].Revision != 0 {
		t.Fatalf("revisions: %d, %v", len(revs), err)
	}
}

// failingMarkOutbox fails Mark while fail is set.
type failingMarkOutbox struct {
	exchange.Outbox
	fail bool
}

func (o *failingMarkOutbox) Mark(ctx context.Context, id string, at time.Time) (bool, error) {
	if o.fail {
		return false, errors.New("redis: i/o timeout")
	}
	return o.Outbox.Mark(ctx, id, at)
}

// A document archived but not indexed (its gateway died after the
// archive write) keeps its number when a retry of it fails before its own
// archive write: the retry renewed the claim, it did not make it.
func TestFailedRetryOfAnArchivedDocumentKeepsItsClaim(t *testing.T) {
	var ob *failingMarkOutbox
	w := billWorld(t, func(w *world) exchange.Outbox { ob = &failingMarkOutbox{Outbox: w.store}; return ob })
	kept := railNote(t, "SMGS-KEPT", "X1")
	w.diedSubmitting(t, "cq-rail", kept) // archived, not indexed
	failedRetryKeepsTheNumber(t, w, ob, kept, railNote(t, "SMGS-KEPT", "X2"))
}

// Twins (a client's retry while its first attempt still runs) share one
// id: a twin that fails does not release the claim the first attempt,
// being archived, still holds.
func TestFailedTwinKeepsTheFirstAttemptsClaim(t *testing.T) {
	ctx := context.Background()
	var ob *failingMarkOutbox
	w := billWorld(t, func(w *world) exchange.Outbox { ob = &failingMarkOutbox{Outbox: w.store}; return ob })
	rail := w.party(t, "cq-rail")
	sub := keyed(railNote(t, "SMGS-TWIN", "X1"), "k-twin")
	twinDone := make(chan error, 1)
	first := make(chan error, 1)
	// The first attempt stops just after its archive write while the twin
	// (its retry) runs in full and fails at its mark.
	w.svc.Failpoint = func(p string) {
		if p == "after-archive" {
			w.svc.Failpoint = nil
			go func() { ob.fail = true; _, _, err := w.svc.Submit(ctx, rail, sub); ob.fail = false; twinDone <- err }()
			<-twinDone
			// meanwhile another document takes the number
			_, _, err := w.svc.Submit(ctx, rail, railNote(t, "SMGS-TWIN", "X2"))
			first <- err
		}
	}
	if _, _, err := w.svc.Submit(ctx, rail, sub); err != nil {
		t.Fatal(err)
	}
	if err := <-first; code(err) != exchange.CodeConflict {
		t.Fatalf("another document with the number of one being archived: %v; want a conflict", err)
	}
}

// An Idempotency-Key used before by a document archived but not yet
// indexed (its gateway died after the archive write) and used again for
// a one-bill amendment: the amendment is refused before its AMEND goes to
// the title chain (it would name the other document), and the honest
// amendment is accepted after it. (Found by a review: the AMEND was
// written, the revision slot released.)
func TestReusedKeyAmendmentOfADocumentNotYetIndexed(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.svc.SetOutbox(w.store)
	other := bytes.Replace(demoDoc(t, "01-one-bill.json"), []byte("CQNL2026000187"), []byte("CQNL2026000188"), 1)
	xid := w.diedSubmitting(t, "cq-mto", exchange.Submission{Type: "one-bill", Body: other, IdempotencyKey: "K-1"})
	v1 := w.mustSubmit(t, "cq-mto", "one-bill", demoDoc(t, "01-one-bill.json"))
	w.surrenderForAmendment(t)
	before := must(w.svc.Title(ctx, w.party(t, "cq-mto"), bill))(t)
	_, _, err := w.svc.Submit(ctx, w.party(t, "cq-mto"), exchange.Submission{Type: "one-bill", Body: billArriving(t, "17"), Amends: v1.ID, IdempotencyKey: "K-1"})
	if code(err) != exchange.CodeInvalid {
		t.Errorf("the amendment with a used key: %v; want invalid", err)
	}
	after := must(w.svc.Title(ctx, w.party(t, "cq-mto"), bill))(t)
	if len(after.Chain) != len(before.Chain) {
		last := after.Chain[len(after.Chain)-1]
		t.Errorf("the refused amendment added %s (document %s; the other bill is %s) to the title; status %s holder %s",
			last.Action, last.DocumentID, xid, after.Status, after.Holder)
	}
	// The honest amendment, sent next without the key.
	if _, err := w.amend(t, "cq-mto", "one-bill", v1.ID, billArriving(t, "18")); err != nil {
		t.Errorf("the amendment without the key: %v", err)
	}
}

// An amendment archived but not indexed (its gateway died) keeps its
// document's revision slot when its Idempotency-Key is used again for
// another body: that attempt renewed the slot (same id), did not make it,
// and does not release it.
func TestReusedKeyKeepsAnArchivedAmendmentsSlot(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.svc.SetOutbox(w.store)
	w.mustSubmit(t, "cq-mto", "one-bill", demoDoc(t, "01-one-bill.json"))
	note := demoDoc(t, "02-rail-consignment-note.json")
	v1 := w.mustSubmit(t, "cq-rail", "rail-consignment-note", note)
	fix := func(n string) []byte { return bytes.Replace(note, []byte(`"80150222"`), []byte(`"`+n+`"`), 1) }
	w.diedSubmitting(t, "cq-rail", exchange.Submission{Type: "rail-consignment-note", Body: fix("80150223"), Amends: v1.ID, IdempotencyKey: "k-2"})
	rail := w.party(t, "cq-rail")
	if _, _, err := w.svc.Submit(ctx, rail, exchange.Submission{Type: "rail-consignment-note", Body: fix("80150224"), Amends: v1.ID, IdempotencyKey: "k-2"}); code(err) != exchange.CodeInvalid {
		t.Fatalf("the key used again for another amendment: %v; want invalid", err)
	}
	if _, err := w.amend(t, "cq-rail", "rail-consignment-note", v1.ID, fix("80150225")); code(err) != exchange.CodeConflict {
		t.Fatalf("a second amendment of v1, whose first is archived: %v; want a conflict", err)
	}
}

// A failover lost the last writes, among them the claim of a document
// archived but not indexed (its gateway died after the archive write).
// Its retry makes the claim anew (made) and fails before its archive write
// (the outbox's Mark: Redis is flapping); it does not release the claim,
// which the archived document holds: a third document with the number is
// refused (for ClaimTimeout, long enough for the sweep to index the
// archived one).
func TestRetryAfterALostClaimKeepsAnArchivedDocumentsNumber(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	r := openRedis(t)
	w.svc.Index = r
	ob := &failingMarkOutbox{Outbox: w.store}
	w.svc.SetOutbox(ob)
	w.mustSubmit(t, "cq-mto", "one-bill", demoDoc(t, "01-one-bill.json"))
	kept := railNote(t, "SMGS-LOST", "X1")
	w.diedSubmitting(t, "cq-rail", kept) // archived, not indexed
	opts, err := goredis.ParseURL(testenv.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	rc := goredis.NewClient(opts)
	defer rc.Close()
	keys, err := rc.Keys(ctx, r.Prefix+":key:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	lost := 0
	for _, k := range keys { // the failover lost the pending claims
		if v, _ := rc.Get(ctx, k).Result(); strings.HasPrefix(v, "~") {
			rc.Del(ctx, k)
			lost++
		}
	}
	if lost != 1 {
		t.Fatalf("%d pending claims; want the archived note's", lost)
	}
	failedRetryKeepsTheNumber(t, w, ob, kept, railNote(t, "SMGS-LOST", "X2"))
}

// hookMarkOutbox runs before once before the first Mark, then fails it.
type hookMarkOutbox struct {
	exchange.Outbox
	before func()
}

func (o *hookMarkOutbox) Mark(ctx context.Context, id string, at time.Time) (bool, error) {
	if f := o.before; f != nil {
		o.before = nil
		f()
		return false, errors.New("redis: i/o timeout")
	}
	return o.Outbox.Mark(ctx, id, at)
}

// Two attempts of one document that read the same clock (two goroutines
// on one gateway, or two gateways) do not leave equal claims: the one that
// made the claim, failing, does not release the other's, archived. The
// clock is frozen here (the world's clock otherwise steps 1 ms a read).
func TestTwinsInOneMicrosecond(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	ob := &hookMarkOutbox{Outbox: w.store}
	w.svc.SetOutbox(ob)
	w.mustSubmit(t, "cq-mto", "one-bill", demoDoc(t, "01-one-bill.json"))
	frozen := time.Date(2026, 11, 27, 1, 0, 0, 0, time.UTC)
	w.svc.Now = func() time.Time { return frozen }
	rail := w.party(t, "cq-rail")
	sub := keyed(railNote(t, "SMGS-US", "X1"), "k-us")
	ob.before = func() { w.diedSubmitting(t, "cq-rail", sub) } // the twin: archived, not indexed
	if _, _, err := w.svc.Submit(ctx, rail, sub); err == nil {
		t.Fatal("the first attempt, its mark failing: accepted")
	}
	if _, _, err := w.svc.Submit(ctx, rail, railNote(t, "SMGS-US", "X2")); code(err) != exchange.CodeConflict {
		t.Fatalf("another document with the archived twin's number: %v; want a conflict", err)
	}
}

// failedRetryKeepsTheNumber retries kept (a document archived but not
// indexed) with the outbox failing at its mark, then checks that other,
// another document with its number, is refused.
func failedRetryKeepsTheNumber(t *testing.T, w *world, ob *failingMarkOutbox, kept, other exchange.Submission) {
	t.Helper()
	ctx := context.Background()
	rail := w.party(t, "cq-rail")
	ob.fail = true
	if _, _, err := w.svc.Submit(ctx, rail, kept); err == nil {
		t.Fatal("the retry with the outbox failing: accepted")
	}
	ob.fail = false
	if _, _, err := w.svc.Submit(ctx, rail, other); code(err) != exchange.CodeConflict {
		t.Fatalf("another document with the archived one's number: %v; want a conflict", err)
	}
}

// deadlineIndex records the deadline of each Release's context, and ends
// the caller's (leave) once a claim is made.
type deadlineIndex struct {
	exchange.Index
	leave     func()
	deadlines []time.Time
}

func (ix *deadlineIndex) Claim(ctx context.Context, key, id string, now, staleBefore time.Time) (string, bool, error) {
	holder, made, err := ix.Index.Claim(ctx, key, id, now, staleBefore)
	if made && ix.leave != nil {
		ix.leave()
	}
	return holder, made, err
}

func (ix *deadlineIndex) Release(ctx context.Context, key, id string, at time.Time) error {
	d, ok := ctx.Deadline()
	if !ok {
		d = time.Time{}
	}
	ix.deadlines = append(ix.deadlines, d)
	return ix.Index.Release(ctx, key, id, at)
}

// Releasing a refused submission's claims is bounded (its backends may
// be what refused it) and outlives the request: a caller gone once its
// claim is made (its read of the document archived under its id then
// fails) still has it released, within the bound. (Found writing this
// test: such a claim was left to go stale.)
func TestReleaseIsBounded(t *testing.T) {
	w := billWorld(t, storeOutbox)
	w.diedSubmitting(t, "cq-rail", keyed(railNote(t, "SMGS-B1", "X1"), "k-1")) // archived, not indexed
	ix := &deadlineIndex{Index: w.store}
	w.svc.Index = ix
	rail := w.party(t, "cq-rail")
	ctx, cancel := context.WithCancel(context.Background())
	ix.leave = cancel // the caller leaves once the claim is made
	before := time.Now()
	_, _, err := w.svc.Submit(ctx, rail, keyed(railNote(t, "SMGS-B2", "X1"), "k-1"))
	if err == nil {
		t.Fatal("a refused submission was accepted")
	}
	if ctx.Err() == nil {
		t.Fatal("the caller did not leave")
	}
	if len(ix.deadlines) != 1 {
		t.Fatalf("%d releases (%v); want the one claim made", len(ix.deadlines), err)
	}
	if d := ix.deadlines[0]; d.IsZero() || d.Before(before) || d.After(time.Now().Add(exchange.ReleaseTimeout)) {
		t.Fatalf("the release ran until %v (now %v); want a deadline within %v", d, time.Now(), exchange.ReleaseTimeout)
	}
	if _, created, err := w.svc.Submit(context.Background(), rail, railNote(t, "SMGS-B2", "X1")); err != nil || !created {
		t.Fatalf("the number released, sent again: created=%v, %v; want accepted", created, err)
	}
}

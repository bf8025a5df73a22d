package exchange_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/landsea/corridor/exchange"
	"github.com/landsea/corridor/internal/testenv"
)

// shipmentEvents lists the ids of the events a party sees in the demo shipment.
func shipmentEvents(t *testing.T, w *world, party string) []string {
	t.Helper()
	v, err := w.svc.Shipment(context.Background(), w.party(t, party), bill, exchange.EventQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range v.Shipment.Events {
		ids = append(ids, e.DocumentID)
	}
	return ids
}

// An event is named by its id: the same event sent again, whatever its
// Idempotency-Key, gets its receipt; another with that id is refused as a
// number taken; another publisher's event of the same id is its own. On
// the embedded backend and on Redis.
func TestEventNamedByItsID(t *testing.T) {
	ctx := context.Background()
	for _, name := range []string{"Embedded", "Redis"} {
		t.Run(name, func(t *testing.T) {
			w := newWorld(t)
			if name == "Redis" {
				r := openRedis(t)
				w.svc.Index, w.svc.Queue = r, r
			}
			w.mustSubmit(t, "cq-mto", "one-bill", demoDoc(t, "01-one-bill.json"))
			body := event("named", "cq-rail", bill, "LOAD", "2026-11-06T10:00:00+08:00", "CNCKG")
			rail := w.party(t, "cq-rail")
			first, created, err := w.svc.Submit(ctx, rail, exchange.Submission{Type: "tracking-event", Body: body, IdempotencyKey: "k-1"})
			if err != nil || !created || first.ID != exchange.NamedDocumentID("tracking-event:cq-rail:event-named") {
				t.Fatalf("the event: %s, created %v, %v", first.ID, created, err)
			}
			for _, key := range []string{"k-1", "k-2", ""} {
				rc, created, err := w.svc.Submit(ctx, rail, exchange.Submission{Type: "tracking-event", Body: body, IdempotencyKey: key})
				if err != nil || created || rc.ID != first.ID {
					t.Fatalf("the event again with key %q: %s, created %v, %v; want its receipt", key, rc.ID, created, err)
				}
			}
			other := event("named", "cq-rail", bill, "DISC", "2026-11-06T11:00:00+08:00", "CNCKG")
			_, _, err = w.svc.Submit(ctx, rail, exchange.Submission{Type: "tracking-event", Body: other, IdempotencyKey: "k-3"})
			if code(err) != exchange.CodeConflict || !slices.Equal(problemPointers(err), []string{"/eventID"}) {
				t.Fatalf("another event with its id: %v; want a conflict at /eventID", err)
			}
			theirs, created, err := w.svc.Submit(ctx, w.party(t, "beibu-line"), exchange.Submission{Type: "tracking-event",
				Body: event("named", "beibu-line", bill, "DISC", "2026-11-06T11:00:00+08:00", "CNCKG")})
			if err != nil || !created || theirs.ID == first.ID {
				t.Fatalf("another publisher's event of that id: %s, created %v, %v; want its own", theirs.ID, created, err)
			}
			if got := shipmentEvents(t, w, "cq-mto"); !slices.Equal(got, []string{first.ID, theirs.ID}) {
				t.Fatalf("the shipment's events: %v; want %s, %s", got, first.ID, theirs.ID)
			}
		})
	}
}

// Redis holds no natural key of an event (the archive's conditional write
// keeps its id unique); a rail note's number is still claimed there.
func TestEventClaimsNothingInRedis(t *testing.T) {
	w := newWorld(t)
	r := openRedis(t)
	w.svc.Index, w.svc.Queue = r, r
	w.mustSubmit(t, "cq-mto", "one-bill", demoDoc(t, "01-one-bill.json"))
	w.mustSubmit(t, "cq-rail", "rail-consignment-note", demoDoc(t, "02-rail-consignment-note.json"))
	for i := range 3 {
		w.mustSubmit(t, "cq-rail", "tracking-event", event(string(rune('a'+i))+"-claims", "cq-rail", bill, "LOAD", "2026-11-06T10:00:00+08:00", "CNCKG"))
	}
	rc := goredis.NewClient(mustParseURL(t, testenv.RedisURL(t)))
	defer rc.Close()
	count := func(pattern string) int {
		keys, err := rc.Keys(context.Background(), r.Prefix+pattern).Result()
		if err != nil {
			t.Fatal(err)
		}
		return len(keys)
	}
	if n, notes := count(":key:tracking-event:*"), count(":key:rail-consignment-note:*"); n != 0 || notes != 1 {
		t.Fatalf("Redis holds %d natural keys of events and %d of rail notes; want 0 and 1", n, notes)
	}
}

// An event archived but not indexed (its gateway died after the archive
// write): another event with its id is refused, and the event sent again
// is delivered.
func TestNamedEventArchivedNotIndexed(t *testing.T) {
	ctx := context.Background()
	w := billWorld(t, storeOutbox)
	body := event("died", "cq-rail", bill, "LOAD", "2026-11-06T10:00:00+08:00", "CNCKG")
	id := w.died(t, "cq-rail", "tracking-event", body)
	rail := w.party(t, "cq-rail")
	other := event("died", "cq-rail", bill, "DISC", "2026-11-06T11:00:00+08:00", "CNCKG")
	if _, _, err := w.svc.Submit(ctx, rail, exchange.Submission{Type: "tracking-event", Body: other}); code(err) != exchange.CodeConflict {
		t.Fatalf("another event with the id of one archived: %v; want a conflict", err)
	}
	rc, created, err := w.svc.Submit(ctx, rail, exchange.Submission{Type: "tracking-event", Body: body})
	if err != nil || created || rc.ID != id {
		t.Fatalf("the event again: %s, created %v, %v; want the receipt of %s", rc.ID, created, err, id)
	}
	if got := shipmentEvents(t, w, "cq-mto"); !slices.Equal(got, []string{id}) {
		t.Fatalf("the shipment's events: %v; want %s", got, id)
	}
	if ids, _ := w.inbox(t, "cq-mto"); !slices.Contains(ids, id) {
		t.Fatalf("cq-mto's inbox %v lacks the event", ids)
	}
}

// An event taken before events were named by their ids claimed its id as
// a natural key, under an id of its bytes or Idempotency-Key: sent again
// it gets that receipt, and another event with its id is refused.
func TestEventClaimedBeforeNaming(t *testing.T) {
	ctx := context.Background()
	for _, name := range []string{"Embedded", "Redis"} {
		t.Run(name, func(t *testing.T) {
			body := event("legacy", "cq-rail", bill, "LOAD", "2026-11-06T10:00:00+08:00", "CNCKG")
			// The record as taken then: taken on a scratch gateway, given
			// the id and natural key of then.
			scratch := billWorld(t, nil)
			named := scratch.mustSubmit(t, "cq-rail", "tracking-event", body)
			old, err := scratch.store.Record(ctx, named.ID)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(body)
			old.ID, old.Keys = exchange.DocumentID("cq-rail", "", sum[:]), []string{"tracking-event:cq-rail:event-legacy"}

			w := newWorld(t)
			if name == "Redis" {
				r := openRedis(t)
				w.svc.Index, w.svc.Queue = r, r
			}
			w.mustSubmit(t, "cq-mto", "one-bill", demoDoc(t, "01-one-bill.json"))
			if err := w.store.Put(ctx, old, body); err != nil {
				t.Fatal(err)
			}
			if err := w.svc.Index.Add(ctx, old, exchange.Entries(old)); err != nil {
				t.Fatal(err)
			}
			rail := w.party(t, "cq-rail")
			rc, created, err := w.svc.Submit(ctx, rail, exchange.Submission{Type: "tracking-event", Body: body, IdempotencyKey: "k-9"})
			if err != nil || created || rc.ID != old.ID {
				t.Fatalf("the event again: %s, created %v, %v; want the receipt of %s", rc.ID, created, err, old.ID)
			}
			other := event("legacy", "cq-rail", bill, "DISC", "2026-11-06T11:00:00+08:00", "CNCKG")
			_, _, err = w.svc.Submit(ctx, rail, exchange.Submission{Type: "tracking-event", Body: other})
			if code(err) != exchange.CodeConflict || !slices.Equal(problemPointers(err), []string{"/eventID"}) {
				t.Fatalf("another event with its id: %v; want a conflict at /eventID", err)
			}
			if got := shipmentEvents(t, w, "cq-mto"); !slices.Equal(got, []string{old.ID}) {
				t.Fatalf("the shipment's events: %v; want %s", got, old.ID)
			}
		})
	}
}

// An event retried after its record left Redis (and its marks expired) is
// found by the archive's conditional write: it gets its receipt, and
// nobody gets it again; another event with its id is refused.
func TestLateRetryOfAColdEvent(t *testing.T) {
	ctx := context.Background()
	w, r := coldWorld(t, 3*time.Hour)
	w.mustSubmit(t, "cq-mto", "one-bill", demoDoc(t, "01-one-bill.json"))
	body := event("late", "cq-rail", bill, "LOAD", "2026-11-06T10:00:00+08:00", "CNCKG")
	first := w.mustSubmit(t, "cq-rail", "tracking-event", body)
	for _, p := range first.Recipients {
		w.inbox(t, p) // everything acked
	}
	forgetMarks(t, r.Prefix)
	w.setNow(time.Now())
	ca := &countingArchive{Archive: w.store}
	w.svc.Archive = ca
	rail := w.party(t, "cq-rail")
	rc, created, err := w.svc.Submit(ctx, rail, exchange.Submission{Type: "tracking-event", Body: body, IdempotencyKey: "k-late"})
	if err != nil || created || rc.ID != first.ID {
		t.Fatalf("the retry: %s, created %v, %v; want the receipt of %s", rc.ID, created, err, first.ID)
	}
	if n := ca.puts.Load(); n != 1 {
		t.Fatalf("the retry tried %d archive writes; want the one that found it", n)
	}
	for _, p := range first.Recipients {
		if ids, _ := w.inbox(t, p); slices.Contains(ids, first.ID) {
			t.Errorf("%s got the event again", p)
		}
	}
	other := event("late", "cq-rail", bill, "DISC", "2026-11-06T11:00:00+08:00", "CNCKG")
	if _, _, err := w.svc.Submit(ctx, rail, exchange.Submission{Type: "tracking-event", Body: other}); code(err) != exchange.CodeConflict {
		t.Fatalf("another event with its id: %v; want a conflict", err)
	}
}

// legacyEvent is body as a gateway of an earlier build archived it: under
// the id of its bytes, its eventID a natural key (the record is made on a
// scratch gateway, then given that id and key).
func legacyEvent(t *testing.T, body []byte, eventID string) exchange.Record {
	t.Helper()
	scratch := billWorld(t, nil)
	old, err := scratch.store.Record(context.Background(), scratch.mustSubmit(t, "cq-rail", "tracking-event", body).ID)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	old.ID, old.Keys = exchange.DocumentID("cq-rail", "", sum[:]), []string{"tracking-event:cq-rail:" + eventID}
	return old
}

// A gateway of an earlier build died after archiving an event (its
// eventID claimed, not confirmed; marked in the outbox; not indexed), then
// the gateways were upgraded: the event sent again gets its receipt,
// another with its eventID is refused, and after the sweep the shipment
// and the inbox hold it once. (Found by a review: both were taken.)
func TestEventCutShortAcrossTheUpgrade(t *testing.T) {
	ctx := context.Background()
	body := event("cut", "cq-rail", bill, "LOAD", "2026-11-06T10:00:00+08:00", "CNCKG")
	for name, sent := range map[string][]byte{"Same": body, "Other": event("cut", "cq-rail", bill, "DISC", "2026-11-06T11:00:00+08:00", "CNCKG")} {
		t.Run(name, func(t *testing.T) {
			old := legacyEvent(t, body, "event-cut")
			w := billWorld(t, storeOutbox)
			now := w.svc.Now()
			if _, _, err := w.svc.Index.Claim(ctx, old.Keys[0], old.ID, now, now.Add(-exchange.ClaimTimeout)); err != nil {
				t.Fatal(err)
			}
			if _, err := w.store.Mark(ctx, old.ID, time.Now()); err != nil {
				t.Fatal(err)
			}
			if err := w.store.Put(ctx, old, body); err != nil {
				t.Fatal(err)
			}
			rc, created, err := w.svc.Submit(ctx, w.party(t, "cq-rail"), exchange.Submission{Type: "tracking-event", Body: sent})
			if name == "Same" && (err != nil || created || rc.ID != old.ID) {
				t.Errorf("the event again: %s created %v, %v; want the receipt of %s", rc.ID, created, err, old.ID)
			} else if name == "Other" && code(err) != exchange.CodeConflict {
				t.Errorf("another event with its eventID: %s created %v, %v; want a conflict", rc.ID, created, err)
			}
			if _, err := w.svc.SweepOutbox(ctx, 0); err != nil {
				t.Fatal(err)
			}
			if got := shipmentEvents(t, w, "cq-mto"); !slices.Equal(got, []string{old.ID}) {
				t.Errorf("the shipment lists %v; want %s once", got, old.ID)
			}
			if ids, _ := w.inbox(t, "cq-mto"); !slices.Equal(ids, []string{old.ID}) {
				t.Errorf("cq-mto received %v; want %s once", ids, old.ID)
			}
		})
	}
}

// A claim of an earlier build's attempt that never reached the archive
// holds its eventID while the attempt may still run, and gives way once
// stale.
func TestEventClaimOfAnAttemptNeverArchived(t *testing.T) {
	ctx := context.Background()
	w := billWorld(t, nil)
	key := "tracking-event:cq-rail:event-gone"
	now := w.svc.Now()
	if _, _, err := w.svc.Index.Claim(ctx, key, exchange.DocumentID("cq-rail", "gone", nil), now, now.Add(-exchange.ClaimTimeout)); err != nil {
		t.Fatal(err)
	}
	rail := w.party(t, "cq-rail")
	body := event("gone", "cq-rail", bill, "LOAD", "2026-11-06T10:00:00+08:00", "CNCKG")
	if _, _, err := w.svc.Submit(ctx, rail, exchange.Submission{Type: "tracking-event", Body: body}); code(err) != exchange.CodeConflict {
		t.Fatalf("an event whose eventID another attempt claimed just now: %v; want a conflict", err)
	}
	w.setNow(w.svc.Now().Add(exchange.ClaimTimeout + time.Second))
	if _, created, err := w.svc.Submit(ctx, rail, exchange.Submission{Type: "tracking-event", Body: body}); err != nil || !created {
		t.Fatalf("once the claim is stale: created %v, %v; want it taken", created, err)
	}
}

// On the embedded archive a document is two files: a body without its
// record is a write cut short (the gateway died between them), never
// archived nor acknowledged. Another event with its eventID takes its
// place, as the same event sent again does. (Found by a review: every
// attempt answered 500.)
func TestEventAfterAWriteCutShort(t *testing.T) {
	ctx := context.Background()
	for _, name := range []string{"Other", "Same"} {
		t.Run(name, func(t *testing.T) {
			w := billWorld(t, storeOutbox)
			body := event("split", "cq-rail", bill, "LOAD", "2026-11-06T10:00:00+08:00", "CNCKG")
			id := w.died(t, "cq-rail", "tracking-event", body)
			if err := os.Remove(filepath.Join(w.store.Dir, "archive", id[:2], id+".record.json")); err != nil {
				t.Fatal(err)
			}
			sent := body
			if name == "Other" {
				sent = event("split", "cq-rail", bill, "DISC", "2026-11-06T11:00:00+08:00", "CNCKG")
			}
			rc, created, err := w.svc.Submit(ctx, w.party(t, "cq-rail"), exchange.Submission{Type: "tracking-event", Body: sent})
			if err != nil || !created || rc.ID != id {
				t.Fatalf("the event after a write cut short: %s created %v, %v; want %s taken", rc.ID, created, err, id)
			}
			got, err := w.store.Body(ctx, id)
			if err != nil || !bytes.Equal(got, sent) {
				t.Fatalf("the archived bytes: %q, %v; want those sent", got, err)
			}
		})
	}
}

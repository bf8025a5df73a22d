package exchange_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/landsea/corridor/exchange"
)

// An archive of the oldest format (a bill and a rail note as the first
// builds wrote them: natural keys, no shipments), reindexed and viewed,
// with records kept and with a TTL they are past: the note's upgrade finds
// the bill by its number and reads it from the archive, upgraded (it used
// to be read as it was, without shipments, and reindex and the view
// panicked).
func TestOldestFormatArchiveWithARecordTTL(t *testing.T) {
	for _, ttl := range []time.Duration{0, time.Hour} {
		t.Run(fmt.Sprint(ttl), func(t *testing.T) {
			ctx := context.Background()
			src := newWorld(t)
			first := src.mustSubmit(t, "cq-mto", "one-bill", demoDoc(t, "01-one-bill.json"))
			note := src.mustSubmit(t, "cq-rail", "rail-consignment-note", demoDoc(t, "02-rail-consignment-note.json"))
			w := newWorld(t)
			w.svc.Index = openColdRedis(t, ttl)
			for _, id := range []string{first.ID, note.ID} {
				rec, err := src.store.Record(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := src.store.Body(ctx, id)
				rec.Format, rec.Shipments, rec.Members, rec.Refs, rec.Plan = 0, nil, nil, nil, nil
				if err := w.store.Put(ctx, rec, body); err != nil {
					t.Fatal(err)
				}
			}
			for range 2 {
				if _, err := w.svc.Reindex(ctx, false, time.Time{}, func() {}); err != nil {
					t.Fatalf("reindex: %v", err)
				}
				v, err := w.svc.Shipment(ctx, w.party(t, "cq-mto"), bill, exchange.EventQuery{Limit: 10})
				if err != nil || len(v.Shipment.Documents) != 2 {
					t.Fatalf("view after reindex: %d documents, %v; want the bill and the note", len(v.Shipment.Documents), err)
				}
			}
		})
	}
}

// An Idempotency-Key used again for an amendment of another bill is
// refused, and the bill's title is untouched, also once the record of the
// document that first used the key left Redis (the amendment's AMEND,
// which cannot be taken back, used to be written before the archive's
// write found the key taken).
func TestReusedKeyDoesNotAmendAnotherBillsTitle(t *testing.T) {
	for _, ttl := range []time.Duration{0, time.Hour} {
		t.Run(fmt.Sprint(ttl), func(t *testing.T) {
			ctx := context.Background()
			w := newWorld(t)
			r := openColdRedis(t, ttl)
			w.svc.Index, w.svc.Queue = r, r
			w.svc.SetOutbox(w.store)
			w.setNow(time.Now().Add(-3 * time.Hour))
			other := bytes.Replace(demoDoc(t, "01-one-bill.json"), []byte("CQNL2026000187"), []byte("CQNL2026000188"), 1)
			if _, _, err := w.svc.Submit(ctx, w.party(t, "cq-mto"), exchange.Submission{Type: "one-bill", Body: other, IdempotencyKey: "K-1"}); err != nil {
				t.Fatal(err)
			}
			v1 := w.mustSubmit(t, "cq-mto", "one-bill", demoDoc(t, "01-one-bill.json"))
			must(w.act(t, "cq-autoparts", "SURRENDER_FOR_AMENDMENT", ""))(t)
			must(w.answer(t, "cq-mto", true))(t)
			w.setNow(time.Now())
			before := must(w.svc.Title(ctx, w.party(t, "cq-mto"), bill))(t)
			rev := bytes.Replace(demoDoc(t, "01-one-bill.json"), []byte(`"plannedArrival": "2026-11-16T08:00:00+08:00"`),
				[]byte(`"plannedArrival": "2026-11-17T08:00:00+08:00"`), 1)
			_, _, err := w.svc.Submit(ctx, w.party(t, "cq-mto"), exchange.Submission{Type: "one-bill", Body: rev, Amends: v1.ID, IdempotencyKey: "K-1"})
			var e *exchange.Error
			if !errors.As(err, &e) || e.Code != exchange.CodeInvalid {
				t.Errorf("the amendment with a used key: %v; want it refused as invalid", err)
			}
			after := must(w.svc.Title(ctx, w.party(t, "cq-mto"), bill))(t)
			if len(after.Chain) != len(before.Chain) {
				last := after.Chain[len(after.Chain)-1]
				t.Errorf("the refused amendment added %s (document %s) to the title; status %s holder %s", last.Action, last.DocumentID, after.Status, after.Holder)
			}
		})
	}
}

// Reindex leaves a number with the latest revision, whatever the order the
// archive is walked in (by id: v1, v3, v2 here; a revision takes a number
// only from the one it amends, so v2 after v3 used to keep it).
func TestReindexKeepsTheLatestRevisionsNumber(t *testing.T) {
	ctx := context.Background()
	var k [3]string
	for i := 0; ; i++ {
		a, b, c := fmt.Sprint("a", i), fmt.Sprint("b", i), fmt.Sprint("c", i)
		ia, ib, ic := exchange.DocumentID("cq-rail", a, nil), exchange.DocumentID("cq-rail", b, nil), exchange.DocumentID("cq-rail", c, nil)
		if ia < ic && ic < ib {
			k = [3]string{a, b, c}
			break
		}
	}
	w := newWorld(t)
	r := openRedis(t)
	w.svc.Index = r
	w.mustSubmit(t, "cq-mto", "one-bill", demoDoc(t, "01-one-bill.json"))
	note := demoDoc(t, "02-rail-consignment-note.json")
	submit := func(body []byte, amends, key string) exchange.Receipt {
		rc, _, err := w.svc.Submit(ctx, w.party(t, "cq-rail"), exchange.Submission{Type: "rail-consignment-note", Body: body, Amends: amends, IdempotencyKey: key})
		if err != nil {
			t.Fatal(err)
		}
		return rc
	}
	v1 := submit(note, "", k[0])
	v2 := submit(bytes.Replace(note, []byte(`"80150222"`), []byte(`"80150223"`), 1), v1.ID, k[1])
	v3 := submit(bytes.Replace(note, []byte(`"80150222"`), []byte(`"80150224"`), 1), v2.ID, k[2])
	key := exchange.TypeRailNote + ":" + exchange.NormalizeRef("SMGS2611000451")
	if id, err := r.Lookup(ctx, key); err != nil || id != v3.ID {
		t.Fatalf("before reindex %s = %s, %v; want v3 %s", key, id, err, v3.ID)
	}
	if err := r.FlushForTest(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.Reindex(ctx, false, time.Time{}, func() {}); err != nil {
		t.Fatal(err)
	}
	id, err := r.Lookup(ctx, key)
	name := map[string]string{v1.ID: "v1", v2.ID: "v2", v3.ID: "v3"}[id]
	if err != nil || id != v3.ID {
		t.Errorf("after reindex %s is held by %s (%s), %v; want v3", key, id, name, err)
	}
}

// The delivery of an amendment cut short (its gateway died after the
// archive write), completed by a sweep of the outbox after a later
// amendment, adds nothing to the title chain (it used to try a second
// AMEND naming the superseded revision: refused while another party held
// the bill, so that every sweep failed and v2 was never delivered, and
// appended once the issuer had it again).
func TestCompletingASupersededAmendmentAddsNoAMEND(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.svc.SetOutbox(w.store)
	v1 := w.mustSubmit(t, "cq-mto", "one-bill", demoDoc(t, "01-one-bill.json"))
	w.surrenderForAmendment(t)
	v2 := w.diedSubmitting(t, "cq-mto", exchange.Submission{Type: "one-bill", Body: billArriving(t, "17"), Amends: v1.ID})
	w.surrenderForAmendment(t)
	if _, err := w.amend(t, "cq-mto", "one-bill", v2, billArriving(t, "18")); err != nil {
		t.Fatal(err)
	}
	before := must(w.svc.Title(ctx, w.party(t, "cq-mto"), bill))(t)
	if n, err := w.svc.SweepOutbox(ctx, 0); err != nil || n != 1 {
		t.Fatalf("the sweep delivered %d, %v; want v2", n, err)
	}
	after := must(w.svc.Title(ctx, w.party(t, "cq-mto"), bill))(t)
	if len(after.Chain) != len(before.Chain) {
		last := after.Chain[len(after.Chain)-1]
		t.Fatalf("completing v2 added %s (document %s) to the chain", last.Action, last.DocumentID)
	}
}

// billArriving is the demo one bill planned to arrive on day (of November
// 2026): a revision of it.
func billArriving(t *testing.T, day string) []byte {
	return bytes.Replace(demoDoc(t, "01-one-bill.json"), []byte(`"plannedArrival": "2026-11-16T08:00:00+08:00"`),
		[]byte(`"plannedArrival": "2026-11-`+day+`T08:00:00+08:00"`), 1)
}

// surrenderForAmendment gives the demo bill back to its issuer (from the
// shipper, who holds it), so that it may be amended.
func (w *world) surrenderForAmendment(t *testing.T) {
	t.Helper()
	must(w.act(t, "cq-autoparts", "SURRENDER_FOR_AMENDMENT", ""))(t)
	must(w.answer(t, "cq-mto", true))(t)
}

package exchange_test

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/landsea/corridor/exchange"
)

func (w *world) amend(t *testing.T, sender, typ, amends string, body []byte) (exchange.Receipt, error) {
	t.Helper()
	rc, _, err := w.svc.Submit(context.Background(), w.party(t, sender), exchange.Submission{Type: typ, Body: body, Amends: amends})
	return rc, err
}

// Amending a rail note: who may, which revision, what the receipt and the
// view say, and that every revision stays readable.
func TestAmendments(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.mustSubmit(t, "cq-mto", "one-bill", demoDoc(t, "01-one-bill.json"))
	note := demoDoc(t, "02-rail-consignment-note.json")
	v1 := w.mustSubmit(t, "cq-rail", "rail-consignment-note", note)
	fixed := bytes.Replace(note, []byte(`"80150222"`), []byte(`"80150223"`), 1)
	renumbered := bytes.Replace(fixed, []byte("SMGS2611000451"), []byte("SMGS2611000452"), 1)

	cases := []struct {
		name, sender, typ, amends string
		body                      []byte
		want                      exchange.Code
	}{
		{"by a recipient that did not issue it", "cq-mto", "rail-consignment-note", v1.ID, fixed, exchange.CodeForbidden},
		{"by a party that never saw it", "beibu-line", "rail-consignment-note", v1.ID, patch(t, fixed, "carrier", "beibu-line"), exchange.CodeNotFound},
		{"of an id that does not exist", "cq-rail", "rail-consignment-note", "aaaaaaaaaaaaaaaaaaaaaaaaaa", fixed, exchange.CodeNotFound},
		{"as another type", "cq-rail", "sea-bill", v1.ID, demoDoc(t, "09-sea-bill.json"), exchange.CodeForbidden}, // cq-rail is not the sea bill's carrier
		{"with another number", "cq-rail", "rail-consignment-note", v1.ID, renumbered, exchange.CodeInvalid},
	}
	for _, c := range cases {
		if _, err := w.amend(t, c.sender, c.typ, c.amends, c.body); exchange.ErrorCode(err) != c.want {
			t.Errorf("%s: %v, want %s", c.name, err, c.want)
		}
	}
	v2, err := w.amend(t, "cq-rail", "rail-consignment-note", v1.ID, fixed)
	if err != nil {
		t.Fatal(err)
	}
	if v2.Revision != 2 || v2.PreviousID != v1.ID || v2.PreviousSHA256 != v1.SHA256 || v2.ID == v1.ID {
		t.Fatalf("receipt of the amendment: %+v", v2)
	}
	if err := exchange.VerifyReceipt(w.svc.Signer.PublicKey(), v2); err != nil {
		t.Fatalf("the amendment's receipt: %v", err)
	}
	forged := v2
	forged.PreviousSHA256 = v2.SHA256
	if exchange.VerifyReceipt(w.svc.Signer.PublicKey(), forged) == nil {
		t.Fatal("a receipt with another previous SHA-256 verified: the signature does not cover it")
	}
	if _, err := w.amend(t, "cq-rail", "rail-consignment-note", v1.ID, bytes.Replace(fixed, []byte("X8017"), []byte("X8019"), 1)); exchange.ErrorCode(err) != exchange.CodeConflict {
		t.Fatalf("amending the first revision again: %v, want conflict", err)
	}
	// Both revisions stay readable; the list gives both receipts, from either id.
	for _, id := range []string{v1.ID, v2.ID} {
		revs, err := w.svc.Revisions(ctx, w.party(t, "cq-mto"), id)
		if err != nil || len(revs) != 2 || revs[0].ID != v1.ID || revs[1].ID != v2.ID {
			t.Fatalf("revisions from %s: %+v %v", id, revs, err)
		}
		if _, body, err := w.svc.Document(ctx, w.party(t, "cq-mto"), id); err != nil || len(body) == 0 {
			t.Fatalf("revision %s: %v", id, err)
		}
	}
	if _, err := w.svc.Revisions(ctx, w.party(t, "beibu-line"), v1.ID); exchange.ErrorCode(err) != exchange.CodeNotFound {
		t.Fatalf("revisions for an outsider: %v", err)
	}
	// The view shows the note once, as revision 2.
	v, _ := w.svc.Shipment(ctx, w.party(t, "cq-mto"), bill, exchange.EventQuery{})
	var notes []exchange.ShipmentDoc
	for _, d := range v.Shipment.Documents {
		if d.Type == "rail-consignment-note" {
			notes = append(notes, d)
		}
	}
	if len(notes) != 1 || notes[0].ID != v2.ID || notes[0].Revision != 2 {
		t.Fatalf("rail notes in the view: %+v", notes)
	}
	// The recipients of the earlier revision get the new one.
	for _, p := range v1.Recipients {
		if !slices.Contains(v2.Recipients, p) {
			t.Errorf("%s received revision 1 but not revision 2 (%v)", p, v2.Recipients)
		}
	}
}

// Only one amendment of a revision is taken, however many race.
func TestConcurrentAmendments(t *testing.T) {
	w := newWorld(t)
	w.mustSubmit(t, "cq-mto", "one-bill", demoDoc(t, "01-one-bill.json"))
	note := demoDoc(t, "02-rail-consignment-note.json")
	v1 := w.mustSubmit(t, "cq-rail", "rail-consignment-note", note)
	const n = 6
	codes := make([]exchange.Code, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			body := bytes.Replace(note, []byte(`"80150222"`), []byte(`"8015023`+string(rune('0'+i))+`"`), 1)
			_, err := w.amend(t, "cq-rail", "rail-consignment-note", v1.ID, body)
			codes[i] = exchange.ErrorCode(err)
		})
	}
	wg.Wait()
	if slices.Index(codes, "") < 0 || len(slices.DeleteFunc(slices.Clone(codes), func(c exchange.Code) bool { return c == exchange.CodeConflict })) != 1 {
		t.Fatalf("outcomes %v; want one success and the rest conflicts", codes)
	}
}

// A one bill is amended only while its title is with its issuer; the
// amendment returns the title to the party that surrendered it, and the
// view follows the new revision.
func TestAmendOneBill(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	v1 := w.mustSubmit(t, "cq-mto", "one-bill", demoDoc(t, "01-one-bill.json"))
	later := bytes.Replace(demoDoc(t, "01-one-bill.json"), []byte(`"plannedArrival": "2026-11-16T08:00:00+08:00"`), []byte(`"plannedArrival": "2026-11-17T08:00:00+08:00"`), 1)
	if bytes.Equal(later, demoDoc(t, "01-one-bill.json")) {
		t.Fatal("the test's edit did not apply")
	}
	if _, err := w.amend(t, "cq-mto", "one-bill", v1.ID, later); exchange.ErrorCode(err) != exchange.CodeConflict {
		t.Fatalf("amending a bill the shipper holds: %v, want conflict", err)
	}
	must(w.act(t, "cq-autoparts", "SURRENDER_FOR_AMENDMENT", ""))(t)
	if _, err := w.amend(t, "cq-mto", "one-bill", v1.ID, later); exchange.ErrorCode(err) != exchange.CodeConflict {
		t.Fatalf("amending while the surrender is pending: %v, want conflict", err)
	}
	must(w.answer(t, "cq-mto", true))(t)
	if _, err := w.act(t, "cq-mto", "TRANSFER", "sg-motors"); exchange.ErrorCode(err) != exchange.CodeConflict {
		t.Fatalf("an action while surrendered for amendment: %v", err)
	}
	v2, err := w.amend(t, "cq-mto", "one-bill", v1.ID, later)
	if err != nil || v2.Revision != 2 {
		t.Fatalf("amendment after the surrender: %+v %v", v2, err)
	}
	ti := must(w.svc.Title(ctx, w.party(t, "sg-motors"), bill))(t)
	last := ti.Chain[len(ti.Chain)-1]
	if ti.Status != exchange.TitleIssued || ti.Holder != "cq-autoparts" || last.Action != exchange.ActionAmend || last.DocumentID != v2.ID {
		t.Fatalf("title after the amendment: %s held by %s, last %+v", ti.Status, ti.Holder, last)
	}
	if err := exchange.VerifyTitle(w.svc.Signer.PublicKey(), ti); err != nil {
		t.Fatal(err)
	}
	// Entries after the amendment name the new revision.
	ti = must(w.act(t, "cq-autoparts", "PLEDGE", "sg-bank"))(t)
	if ti.Pending.DocumentID != v2.ID {
		t.Fatalf("pledge names %s, want revision 2 %s", ti.Pending.DocumentID, v2.ID)
	}
	v, _ := w.svc.Shipment(ctx, w.party(t, "sg-motors"), bill, exchange.EventQuery{})
	if v.Shipment.Legs[1].PlannedArrival != "2026-11-17T08:00:00+08:00" || v.Shipment.Documents[0].ID != v2.ID {
		t.Fatalf("view after the amendment: %+v", v.Shipment)
	}
	// A submit replayed after the amendment changes nothing in the title.
	if _, err := w.amend(t, "cq-mto", "one-bill", v1.ID, later); err != nil {
		t.Fatalf("replay of the amendment: %v", err)
	}
	if again := must(w.svc.Title(ctx, w.party(t, "sg-motors"), bill))(t); len(again.Chain) != len(ti.Chain) {
		t.Fatalf("replay added title entries: %d, want %d", len(again.Chain), len(ti.Chain))
	}
}

// A declaration amended after customs answered keeps the answer with the
// revision it answered; the new revision waits for answers of its own.
func TestAmendedDeclarationKeepsItsAnswer(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.mustSubmit(t, "cq-mto", "one-bill", demoDoc(t, "01-one-bill.json"))
	d1 := w.mustSubmit(t, "cq-autoparts", "customs-declaration", demoDoc(t, "03-export-declaration.json"))
	w.mustSubmit(t, "cq-customs", "customs-response", demoDoc(t, "04-export-released.json"))
	d2, err := w.amend(t, "cq-autoparts", "customs-declaration", d1.ID,
		bytes.Replace(demoDoc(t, "03-export-declaration.json"), []byte("Tuanjiecun office"), []byte("Tuanjiecun office, gate 2"), 1))
	if err != nil {
		t.Fatal(err)
	}
	v, _ := w.svc.Shipment(ctx, w.party(t, "cq-autoparts"), bill, exchange.EventQuery{})
	c := v.Shipment.Customs
	if len(c) != 1 || c[0].DeclarationID != d2.ID || c[0].Revision != 2 || c[0].Status != "PENDING" || c[0].Answers[0].Status != "PENDING" ||
		len(c[0].Responses) != 1 || c[0].Responses[0].DeclarationID != d1.ID {
		t.Fatalf("customs after the amendment: %+v", c)
	}
}

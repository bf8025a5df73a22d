package exchange_test

// Tests written during a review of the shipment timeline and the title:
// each names the finding it demonstrated, now fixed.

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/landsea/corridor/exchange"
)

// Finding: a grantee with publish posts a declaration (or a sea bill, a
// rail note, a manifest) naming the shipment, and its document makes it,
// and any customs party it names, a permanent member: revoking the grant
// no longer shuts it out, and it may now grant others.
func TestReviewPublishGranteeEscalatesToMember(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.mustSubmit(t, "cq-mto", "one-bill", demoDoc(t, "01-one-bill.json"))
	if _, err := w.svc.GrantAccess(ctx, w.party(t, "sg-motors"), bill, exchange.GrantRequest{Party: "rogue-line", Publish: true}); err != nil {
		t.Fatal(err)
	}
	decl := patch(t, demoDoc(t, "03-export-declaration.json"), "declarationNumber", "ROGUE0001", "declarant", "rogue-line",
		"customsAuthority", "rogue-customs")
	if _, err := w.submit(t, "rogue-line", "customs-declaration", decl); err == nil {
		t.Log("a publish grantee posted a customs declaration (a grant with publish is for events)")
	}
	if err := w.svc.RevokeGrant(ctx, w.party(t, "sg-motors"), bill, "rogue-line"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"rogue-line", "rogue-customs"} {
		if v, err := w.svc.Shipment(ctx, w.party(t, p), bill, exchange.EventQuery{}); code(err) != exchange.CodeNotFound {
			t.Errorf("%s after the grant was revoked: access %v, err %v; want not found", p, v.Shipment.Access, err)
		}
	}
	if _, err := w.svc.GrantAccess(ctx, w.party(t, "rogue-line"), bill, exchange.GrantRequest{Party: "sg-haulage"}); err == nil {
		t.Errorf("the revoked grantee granted access to another party")
	}
}

// Finding: an amended one bill drops out of GET /v1/shipments for every
// party that is not an operator: the party lists point at the first
// revision, and Shipments skips an entry whose record is not the latest.
func TestReviewAmendedBillStaysInPartyLists(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	v1 := w.mustSubmit(t, "cq-mto", "one-bill", demoDoc(t, "01-one-bill.json"))
	must(w.act(t, "cq-autoparts", "SURRENDER_FOR_AMENDMENT", ""))(t)
	must(w.answer(t, "cq-mto", true))(t)
	later := bytes.Replace(demoDoc(t, "01-one-bill.json"), []byte(`"plannedArrival": "2026-11-16T08:00:00+08:00"`), []byte(`"plannedArrival": "2026-11-17T08:00:00+08:00"`), 1)
	if _, err := w.amend(t, "cq-mto", "one-bill", v1.ID, later); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"cq-mto", "cq-autoparts", "sg-motors", "corridor-ops"} {
		list, err := w.svc.Shipments(ctx, w.party(t, p), exchange.ShipmentQuery{})
		if err != nil || len(list.Shipments) != 1 {
			t.Errorf("%s's list after the bill was amended: %+v %v, want the one shipment", p, list.Shipments, err)
		}
	}
}

// Finding: VerifyTitle accepts a chain cut short at the end: status,
// holder and pending are not signed, so whoever saved the chain drops the
// newest entries, writes the state the rest leads to, and it verifies.
// A former holder shows a chain that still names it holder.
func TestReviewVerifyTitleRefusesATruncatedChain(t *testing.T) {
	w := newWorld(t)
	w.mustSubmit(t, "cq-mto", "one-bill", demoDoc(t, "01-one-bill.json"))
	must(w.act(t, "cq-autoparts", "PLEDGE", "sg-bank"))(t)
	must(w.answer(t, "sg-bank", true))(t)
	full := must(w.act(t, "sg-bank", "TRANSFER", "sg-motors"))(t)
	full = must(w.answer(t, "sg-motors", true))(t)
	if full.Holder != "sg-motors" {
		t.Fatalf("holder %s", full.Holder)
	}
	cut := full
	cut.Chain = full.Chain[:3] // ISSUE, PLEDGE, ACCEPT: sg-bank holds it in pledge
	cut.Status, cut.Holder, cut.Pending = exchange.TitlePledged, "sg-bank", nil
	if err := exchange.VerifyTitle(w.svc.Signer.PublicKey(), cut); err == nil {
		t.Errorf("a chain with its last two entries dropped verifies, and says sg-bank holds the bill")
	}
}

// Finding: an amended tracking event did not replace the one it amended:
// both stayed in the timeline and the legs. Events are not amended now (a
// new event retracts the old one, as DCSA does), and an amendment cannot
// move a document to another shipment.
func TestReviewEventsAreRetractedNotAmended(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.mustSubmit(t, "cq-mto", "one-bill", demoDoc(t, "01-one-bill.json"))
	depa := event("depa", "cq-rail", bill, "DEPA", "2026-11-06T09:05:00+08:00", "CNCKG")
	v1 := w.mustSubmit(t, "cq-rail", "tracking-event", depa)
	fixed := bytes.Replace(depa, []byte("09:05"), []byte("08:05"), 1)
	if _, err := w.amend(t, "cq-rail", "tracking-event", v1.ID, fixed); code(err) != exchange.CodeConflict {
		t.Fatalf("amending an event: %v, want conflict", err)
	}
	w.mustSubmit(t, "cq-rail", "tracking-event", retract(event("depa-fix", "cq-rail", bill, "DEPA", "2026-11-06T08:05:00+08:00", "CNCKG"), "depa"))
	v, err := w.svc.Shipment(ctx, w.party(t, "sg-motors"), bill, exchange.EventQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if got := v.Shipment.Legs[0].ActualDeparture; got != "2026-11-06T08:05:00+08:00" {
		t.Errorf("actual departure %s, want the corrected 08:05", got)
	}
	// A sea bill amended to name another one bill: refused.
	second := patch(t, demoDoc(t, "01-one-bill.json"), "transportDocumentReference", "CQNL2026000999")
	w.mustSubmit(t, "cq-mto", "one-bill", second)
	sb := w.mustSubmit(t, "beibu-line", "sea-bill", demoDoc(t, "09-sea-bill.json"))
	moved := patch(t, demoDoc(t, "09-sea-bill.json"), "oneBillReference", "CQNL2026000999")
	if _, err := w.amend(t, "beibu-line", "sea-bill", sb.ID, moved); code(err) != exchange.CodeConflict {
		t.Fatalf("a sea bill amended into another shipment: %v, want conflict", err)
	}
}

// Finding: a container number resolves through the 100 OLDEST documents
// that name it, so once a container has travelled under 100 one bills (or
// anyone issued 100 bills naming it first), the shipment it travels in
// now is not found by its container number.
func TestReviewContainerFindsTheCurrentShipment(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	for i := 0; i < 100; i++ {
		old := patch(t, demoDoc(t, "01-one-bill.json"), "transportDocumentReference", fmt.Sprintf("CQNL2025%06d", i),
			"consignee", "sg-bank", "notifyParty", "sg-bank")
		w.mustSubmit(t, "cq-mto", "one-bill", old)
	}
	w.mustSubmit(t, "cq-mto", "one-bill", demoDoc(t, "01-one-bill.json"))
	v, err := w.svc.Shipment(ctx, w.party(t, "sg-motors"), "CSQU3054383", exchange.EventQuery{})
	if err != nil || v.Shipment == nil || v.Shipment.Ref != bill {
		t.Errorf("sg-motors by container after 100 earlier trips: %+v %v, want %s", v, err, bill)
	}
}

// Finding: the recipient of a title action becomes a member of the
// shipment when the action is asked, and stays one after it rejects it;
// a holder can so make any party a permanent, unrevocable member.
func TestReviewRejectedRecipientIsNoMember(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	if _, err := w.svc.CreateParty(ctx, exchange.Party{ID: "other-bank", Name: "Other", Roles: []exchange.Role{exchange.RoleBank}, Country: "SG"}); err != nil {
		t.Fatal(err)
	}
	w.mustSubmit(t, "cq-mto", "one-bill", demoDoc(t, "01-one-bill.json"))
	must(w.act(t, "cq-autoparts", "PLEDGE", "other-bank"))(t)
	must(w.answer(t, "other-bank", false))(t)
	if v, err := w.svc.Shipment(ctx, w.party(t, "other-bank"), bill, exchange.EventQuery{}); code(err) != exchange.CodeNotFound {
		t.Errorf("a bank that rejected the pledge: access %v, err %v; want not found", v.Shipment.Access, err)
	}
}

// Finding: the graph of a shipment was read up to its 1000 oldest
// documents, and an authority could answer a declaration without limit,
// so later documents (and the parties they make members) fell out of
// sight. Now answers per authority and declaration are bounded, and a
// graph that is full refuses more documents instead of hiding them.
func TestReviewGraphIsBounded(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.mustSubmit(t, "cq-mto", "one-bill", demoDoc(t, "01-one-bill.json"))
	w.mustSubmit(t, "cq-autoparts", "customs-declaration", demoDoc(t, "03-export-declaration.json"))
	resp := demoDoc(t, "04-export-released.json")
	for i := range exchange.MaxAnswers {
		w.mustSubmit(t, "cq-customs", "customs-response", patch(t, resp, "responseNumber", fmt.Sprintf("CQCR%010d", i)))
	}
	if _, err := w.submit(t, "cq-customs", "customs-response", patch(t, resp, "responseNumber", "CQCR-ONE-TOO-MANY")); code(err) != exchange.CodeConflict {
		t.Fatalf("answer %d: %v, want conflict", exchange.MaxAnswers+1, err)
	}
	w.mustSubmit(t, "sg-motors", "customs-declaration", demoDoc(t, "13-import-declaration.json"))
	if _, err := w.svc.Shipment(ctx, w.party(t, "sg-customs"), bill, exchange.EventQuery{}); err != nil {
		t.Errorf("sg-customs, named by the import declaration: %v", err)
	}
}

// Finding: one publisher could erase a shipment's progress by flooding
// old-dated transport events. Only the one bill's issuer and its legs'
// carriers move the legs now; a grantee's events are shown, not counted.
func TestReviewOnlyCarriersMoveTheLegs(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.scenario(t)
	if _, err := w.svc.GrantAccess(ctx, w.party(t, "sg-motors"), bill, exchange.GrantRequest{Party: "rogue-line", Publish: true}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		w.mustSubmit(t, "rogue-line", "tracking-event", patch(t, event(fmt.Sprintf("junk-%d", i), "rogue-line", bill, "DEPA", "2000-01-01T00:00:00+08:00", "CNCKG"), "eventClassifierCode", "EST"))
	}
	v, err := w.svc.Shipment(ctx, w.party(t, "sg-motors"), bill, exchange.EventQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if s := v.Shipment; s.Legs[0].Status != exchange.StatusArrived || s.Legs[0].EstimatedDeparture != "" || len(s.Events) != 10 {
		t.Fatalf("after a grantee's transport events: %+v, %d events", s.Legs[0], len(s.Events))
	}
}

package exchange_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/landsea/corridor/adapters/routing"
	"github.com/landsea/corridor/exchange"
	"github.com/landsea/corridor/storage/local"
	"github.com/landsea/corridor/storage/storagetest"
)

const demoDir = "../deploy/demo"

// world is a service on the embedded backend with the demo parties.
type world struct {
	svc   *exchange.Service
	store *local.Store
	mu    sync.Mutex // guards now: concurrent submits read the clock
	now   time.Time
}

func newWorld(t *testing.T) *world {
	t.Helper()
	store := storagetest.Local(t)
	signer, _ := exchange.NewSigner(bytes.Repeat([]byte{3}, 32))
	w := &world{svc: exchange.NewService(store, store, store, store, signer, nil), store: store,
		now: time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)}
	w.svc.SetRules(routing.Default()) // the corridor's rules, as serve loads them
	w.svc.Now = func() time.Time {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.now = w.now.Add(time.Millisecond)
		return w.now
	}
	parties := append(demoParties(t),
		exchange.Party{ID: "rogue-line", Name: "Rogue", Roles: []exchange.Role{exchange.RoleCarrier, exchange.RoleDeclarant}, Country: "SG"},
		exchange.Party{ID: "rogue-customs", Name: "Rogue customs", Roles: []exchange.Role{exchange.RoleCustoms}, Country: "SG"})
	for _, p := range parties {
		if _, err := w.svc.CreateParty(context.Background(), p); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// demoParties are the parties of the demo corridor (deploy/demo).
func demoParties(t testing.TB) []exchange.Party {
	var parties []exchange.Party
	readJSON(t, filepath.Join(demoDir, "parties.json"), &parties)
	return parties
}

func readJSON(t testing.TB, file string, v any) {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatal(err)
	}
}

func (w *world) party(t *testing.T, id string) exchange.Party {
	t.Helper()
	p, err := w.store.Party(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (w *world) submit(t *testing.T, sender, typ string, body []byte) (exchange.Receipt, error) {
	t.Helper()
	rc, _, err := w.svc.Submit(context.Background(), w.party(t, sender), exchange.Submission{Type: typ, Body: body})
	return rc, err
}

func (w *world) mustSubmit(t *testing.T, sender, typ string, body []byte) exchange.Receipt {
	t.Helper()
	rc, err := w.submit(t, sender, typ, body)
	if err != nil {
		t.Fatalf("%s by %s: %v", typ, sender, err)
	}
	return rc
}

// scenario replays the demo's document steps; it returns the receipts in order.
func (w *world) scenario(t *testing.T) []exchange.Receipt {
	t.Helper()
	var steps []struct {
		Sender, Type, File string
		Grant              *struct {
			Shipment, Party string
			Publish         bool
		}
		Title *struct{ Ref, Action, To string }
		Amend *struct{ Type, File, Of string }
	}
	readJSON(t, filepath.Join(demoDir, "scenario.json"), &steps)
	var out []exchange.Receipt
	for _, st := range steps {
		if a := st.Amend; a != nil {
			of, _ := os.ReadFile(filepath.Join(demoDir, a.Of))
			body, _ := os.ReadFile(filepath.Join(demoDir, a.File))
			sum := sha256.Sum256(of)
			rc, _, err := w.svc.Submit(context.Background(), w.party(t, st.Sender),
				exchange.Submission{Type: a.Type, Body: body, Amends: exchange.DocumentID(st.Sender, "", sum[:])})
			if err != nil {
				t.Fatalf("amend %s: %v", a.Of, err)
			}
			out = append(out, rc)
			continue
		}
		if ti := st.Title; ti != nil {
			var err error
			if ti.Action == exchange.ActionAccept || ti.Action == exchange.ActionReject {
				_, err = w.svc.AnswerTitle(context.Background(), w.party(t, st.Sender), ti.Ref, ti.Action == exchange.ActionAccept, "")
			} else {
				_, err = w.svc.RequestTitle(context.Background(), w.party(t, st.Sender), ti.Ref, exchange.TitleRequest{Action: ti.Action, To: ti.To})
			}
			if err != nil {
				t.Fatalf("title %s by %s: %v", ti.Action, st.Sender, err)
			}
			continue
		}
		if g := st.Grant; g != nil {
			req := exchange.GrantRequest{Party: g.Party, Publish: g.Publish}
			if _, err := w.svc.GrantAccess(context.Background(), w.party(t, st.Sender), g.Shipment, req); err != nil {
				t.Fatal(err)
			}
			continue
		}
		body, err := os.ReadFile(filepath.Join(demoDir, st.File))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, w.mustSubmit(t, st.Sender, st.Type, body))
	}
	return out
}

func demoDoc(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(demoDir, "documents", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// patch returns a document with top-level fields replaced.
func patch(t *testing.T, doc []byte, kv ...any) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	out, _ := json.Marshal(m)
	return out
}

func event(id, publisher, bill, code, at, loc string) []byte {
	typ := "EQUIPMENT"
	if code == "DEPA" || code == "ARRI" {
		typ = "TRANSPORT"
	}
	ev := map[string]any{"eventID": "event-" + id, "eventType": typ, "eventClassifierCode": "ACT", "eventCode": code,
		"eventDateTime": at, "eventLocation": map[string]any{"UNLocationCode": loc}, "publisher": publisher,
		"billReference": bill}
	if typ == "EQUIPMENT" {
		ev["containerNumber"] = "CSQU3054383"
	} else {
		ev["modeOfTransport"] = "RAIL"
	}
	b, _ := json.Marshal(ev)
	return b
}

func code(err error) exchange.Code { return exchange.ErrorCode(err) }

func problemPointers(err error) []string {
	var e *exchange.Error
	var out []string
	if ok := asError(err, &e); ok {
		for _, p := range e.Problems {
			out = append(out, p.Pointer)
		}
	}
	return out
}

func asError(err error, target **exchange.Error) bool {
	e, ok := err.(*exchange.Error)
	if ok {
		*target = e
	}
	return ok
}

// A document naming a shipment is taken only from its members (and
// grantees with publish): every route of entry, table-driven. A refused
// document is neither archived nor delivered, and the refused party's view
// does not grow.
func TestMembershipDecidesWhoPosts(t *testing.T) {
	w := newWorld(t)
	w.mustSubmit(t, "cq-mto", "one-bill", demoDoc(t, "01-one-bill.json"))
	w.mustSubmit(t, "beibu-line", "sea-bill", demoDoc(t, "09-sea-bill.json"))
	w.mustSubmit(t, "cq-autoparts", "customs-declaration", demoDoc(t, "03-export-declaration.json"))

	cases := []struct {
		name, sender, typ string
		body              []byte
		want              exchange.Code
		pointers          []string
	}{
		{"event by an outsider", "rogue-line", "tracking-event",
			event("rogue-1", "rogue-line", "CQNL2026000187", "GTOT", "2026-11-18T10:15:00+08:00", "SGSIN"), exchange.CodeForbidden, []string{"/billReference"}},
		{"event naming the sea bill by an outsider", "rogue-line", "tracking-event",
			event("rogue-2", "rogue-line", "BBLSIN2611001", "GTOT", "2026-11-18T10:15:00+08:00", "SGSIN"), exchange.CodeForbidden, []string{"/billReference"}},
		{"event naming a bill not issued yet", "rogue-line", "tracking-event",
			event("rogue-3", "rogue-line", "CQNL2099999999", "GTOT", "2026-11-18T10:15:00+08:00", "SGSIN"), exchange.CodeConflict, []string{"/billReference"}},
		{"event by a member naming a bill not issued yet", "cq-rail", "tracking-event",
			event("early-1", "cq-rail", "CQNL2099999999", "GTIN", "2026-11-05T16:10:00+08:00", "CNCKG"), exchange.CodeConflict, []string{"/billReference"}},
		{"declaration by an outsider", "rogue-line", "customs-declaration",
			patch(t, demoDoc(t, "13-import-declaration.json"), "declarant", "rogue-line", "declarationNumber", "RG2026IM1"), exchange.CodeForbidden, []string{"/billReference"}},
		{"manifest by an outsider", "rogue-line", "cargo-manifest",
			patch(t, demoDoc(t, "10-sea-manifest-qinzhou.json"), "carrier", "rogue-line", "manifestNumber", "RG-001"), exchange.CodeForbidden, []string{"/bills/0/transportDocumentReference"}},
		{"rail note by an outsider", "rogue-line", "rail-consignment-note",
			patch(t, demoDoc(t, "02-rail-consignment-note.json"), "carrier", "rogue-line"), exchange.CodeForbidden, []string{"/oneBillReference"}},
		{"sea bill by an outsider", "rogue-line", "sea-bill",
			patch(t, demoDoc(t, "09-sea-bill.json"), "carrier", "rogue-line", "transportDocumentReference", "RGSIN1"), exchange.CodeForbidden, []string{"/oneBillReference"}},
		// To an outsider, a declaration it takes no part in does not exist (as one that does not).
		{"response by a customs party of no part in the shipment", "rogue-customs", "customs-response",
			patch(t, demoDoc(t, "04-export-released.json"), "customsAuthority", "rogue-customs"), exchange.CodeConflict, []string{"/declarationReference"}},
		{"response by that party to a declaration that does not exist", "rogue-customs", "customs-response",
			patch(t, demoDoc(t, "04-export-released.json"), "customsAuthority", "rogue-customs", "declarationReference", "CQ2026EX0000001"), exchange.CodeConflict, []string{"/declarationReference"}},
		{"member declaring to a party that is not customs", "sg-motors", "customs-declaration",
			patch(t, demoDoc(t, "13-import-declaration.json"), "customsAuthority", "rogue-line"), exchange.CodeInvalid, []string{"/customsAuthority"}},
	}
	archived := func() int {
		n := 0
		_ = w.store.Walk(context.Background(), func(exchange.Record) error { n++; return nil })
		return n
	}
	n0 := archived()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := w.submit(t, c.sender, c.typ, c.body)
			if code(err) != c.want || !slices.Equal(problemPointers(err), c.pointers) {
				t.Fatalf("got %v (pointers %v); want %s at %v", err, problemPointers(err), c.want, c.pointers)
			}
		})
	}
	if n := archived(); n != n0 {
		t.Fatalf("refused documents were archived: %d records, want %d", n, n0)
	}
	for _, p := range []string{"cq-mto", "cq-autoparts", "sg-motors", "sg-bank", "cq-rail", "beibu-line", "cq-customs", "qz-customs", "sg-customs"} {
		msgs, err := w.store.Pull(context.Background(), p, 1000, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if m.Sender == "rogue-line" || m.Sender == "rogue-customs" || m.Sender == "sg-motors" {
				t.Errorf("%s received a refused %s from %s", p, m.Type, m.Sender)
			}
		}
	}
	if _, err := w.svc.Shipment(context.Background(), w.party(t, "rogue-line"), "CQNL2026000187", exchange.EventQuery{}); code(err) != exchange.CodeNotFound {
		t.Fatalf("outsider's view of the shipment: %v, want not found", err)
	}
	// A response from a customs party that is a member (through the import
	// declaration) but was not routed the export declaration: 403, and it
	// learns nothing of the export declaration's parties.
	w.mustSubmit(t, "sg-motors", "customs-declaration", demoDoc(t, "13-import-declaration.json"))
	_, err := w.submit(t, "sg-customs", "customs-response", patch(t, demoDoc(t, "04-export-released.json"), "customsAuthority", "sg-customs"))
	var e *exchange.Error
	if !asError(err, &e) || e.Code != exchange.CodeForbidden || bytes.Contains([]byte(e.Message+fmt.Sprint(e.Problems)), []byte("cq-customs")) {
		t.Fatalf("response by another member authority: %v; want a 403 that does not name cq-customs", err)
	}
}

// A grant lets a party read, and with publish post; revoked, neither, at once.
func TestGrants(t *testing.T) {
	w := newWorld(t)
	w.scenario(t)
	ctx := context.Background()
	haulier := w.party(t, "rogue-line")
	gtot := event("haul-1", "rogue-line", "CQNL2026000187", "GTOT", "2026-11-18T10:15:00+08:00", "SGSIN")

	// Reading: no access before, read after a grant without publish.
	if _, err := w.svc.Shipment(ctx, haulier, "CQNL2026000187", exchange.EventQuery{}); code(err) != exchange.CodeNotFound {
		t.Fatalf("before the grant: %v", err)
	}
	if _, err := w.svc.GrantAccess(ctx, w.party(t, "rogue-customs"), "CQNL2026000187", exchange.GrantRequest{Party: "rogue-line"}); code(err) != exchange.CodeNotFound {
		t.Fatalf("grant by an outsider: %v, want not found", err)
	}
	if _, err := w.svc.GrantAccess(ctx, w.party(t, "corridor-ops"), "CQNL2026000187", exchange.GrantRequest{Party: "rogue-line"}); code(err) != exchange.CodeForbidden {
		t.Fatalf("grant by an operator: %v, want forbidden", err)
	}
	past := w.now.Add(-time.Hour)
	if _, err := w.svc.GrantAccess(ctx, w.party(t, "sg-motors"), "CQNL2026000187", exchange.GrantRequest{Party: "rogue-line", Until: &past}); code(err) != exchange.CodeInvalid {
		t.Fatalf("grant until the past: %v, want invalid", err)
	}
	if _, err := w.svc.GrantAccess(ctx, w.party(t, "sg-motors"), "CQNL2026000187", exchange.GrantRequest{Party: "sg-bank"}); code(err) != exchange.CodeInvalid {
		t.Fatalf("grant to a member: %v, want invalid", err)
	}
	g, err := w.svc.GrantAccess(ctx, w.party(t, "sg-motors"), "CSQU3054383", exchange.GrantRequest{Party: "rogue-line"})
	if err != nil || !g.Active || g.Publish || g.Shipment != "CQNL2026000187" {
		t.Fatalf("grant = %+v, %v", g, err)
	}
	v, err := w.svc.Shipment(ctx, haulier, "CQNL2026000187", exchange.EventQuery{})
	if err != nil || v.Shipment.Access != "read" || len(v.Shipment.Events) != 7 {
		t.Fatalf("grantee's view: %+v %v", v.Shipment, err)
	}
	if _, err := w.submit(t, "rogue-line", "tracking-event", gtot); code(err) != exchange.CodeForbidden {
		t.Fatalf("event by a grantee without publish: %v", err)
	}
	// The grantee was told, in its inbox, with the grant as the document.
	msgs, _ := w.svc.Pull(ctx, haulier, 10, 0)
	if len(msgs) != 1 || msgs[0].Type != exchange.TypeGrant || !bytes.Contains(msgs[0].Document, []byte(`"party":"rogue-line"`)) {
		t.Fatalf("grantee's inbox: %+v", msgs)
	}
	// With publish it may post; the event reaches the bill's parties.
	if _, err := w.svc.GrantAccess(ctx, w.party(t, "sg-motors"), "CQNL2026000187", exchange.GrantRequest{Party: "rogue-line", Publish: true}); err != nil {
		t.Fatal(err)
	}
	rc := w.mustSubmit(t, "rogue-line", "tracking-event", gtot)
	if !slices.Contains(rc.Recipients, "sg-motors") {
		t.Fatalf("grantee's event went to %v", rc.Recipients)
	}
	gs, err := w.svc.Grants(ctx, w.party(t, "cq-mto"), "CQNL2026000187")
	// The demo's own grant to sg-haulage, and this one.
	if err != nil || len(gs) != 2 || gs[1].Party != "rogue-line" || !gs[1].Publish {
		t.Fatalf("grants = %+v, %v", gs, err)
	}
	// Only the granter or the bill's issuer revokes; then nothing, at once.
	if err := w.svc.RevokeGrant(ctx, w.party(t, "cq-rail"), "CQNL2026000187", "rogue-line"); code(err) != exchange.CodeForbidden {
		t.Fatalf("revoke by another member: %v", err)
	}
	if err := w.svc.RevokeGrant(ctx, w.party(t, "cq-mto"), "CQNL2026000187", "rogue-line"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.Shipment(ctx, haulier, "CQNL2026000187", exchange.EventQuery{}); code(err) != exchange.CodeNotFound {
		t.Fatalf("after revocation: %v", err)
	}
	if _, err := w.submit(t, "rogue-line", "tracking-event", event("haul-2", "rogue-line", "CQNL2026000187", "GTOT", "2026-11-18T11:15:00+08:00", "SGSIN")); code(err) != exchange.CodeForbidden {
		t.Fatalf("event after revocation: %v", err)
	}
	if list, _ := w.svc.Shipments(ctx, haulier, exchange.ShipmentQuery{}); len(list.Shipments) != 0 {
		t.Fatalf("revoked grantee's list: %+v", list.Shipments)
	}
	if err := w.svc.RevokeGrant(ctx, w.party(t, "cq-mto"), "CQNL2026000187", "rogue-line"); code(err) != exchange.CodeNotFound {
		t.Fatalf("second revocation: %v", err)
	}
	// A grant that runs out ends by itself.
	soon := w.now.Add(time.Minute)
	if _, err := w.svc.GrantAccess(ctx, w.party(t, "sg-motors"), "CQNL2026000187", exchange.GrantRequest{Party: "rogue-line", Until: &soon}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.Shipment(ctx, haulier, "CQNL2026000187", exchange.EventQuery{}); err != nil {
		t.Fatalf("within the grant: %v", err)
	}
	w.now = soon
	if _, err := w.svc.Shipment(ctx, haulier, "CQNL2026000187", exchange.EventQuery{}); code(err) != exchange.CodeNotFound {
		t.Fatalf("after the grant ran out: %v", err)
	}
}

// The one bill's view holds the whole graph: the union over the demo's
// parties covers all 15 demo documents, each party reads exactly what it
// sent or received, the manifest (which names only the sea bill) is in
// it, both customs borders are, and the legs carry planned and actual times.
func TestOneBillViewCoversTheDemo(t *testing.T) {
	w := newWorld(t)
	rcpts := w.scenario(t)
	ctx := context.Background()
	all := map[string]bool{}
	for _, r := range rcpts {
		all[r.ID] = true
	}
	readable := map[string]bool{}
	for _, p := range demoParties(t) {
		v, err := w.svc.Shipment(ctx, p, "CQNL2026000187", exchange.EventQuery{})
		if err != nil {
			t.Fatalf("%s: %v", p.ID, err)
		}
		sh := v.Shipment
		if len(sh.Documents)+len(sh.Events) != 17 {
			t.Errorf("%s sees %d documents and %d events; want the 17 of the demo (its rail note amended once)", p.ID, len(sh.Documents), len(sh.Events))
		}
		for _, d := range sh.Documents {
			rc, err := w.svc.Receipt(ctx, p, d.ID)
			if d.Readable != (err == nil) {
				t.Errorf("%s: %s readable=%v but receipt: %v", p.ID, d.Type, d.Readable, err)
			}
			if d.Readable {
				revs, _ := w.svc.Revisions(ctx, p, d.ID)
				for _, r := range append(revs, rc) {
					readable[r.ID] = true
				}
			}
		}
		for _, e := range sh.Events {
			if _, err := w.svc.Receipt(ctx, p, e.DocumentID); err == nil {
				readable[e.DocumentID] = true
			}
		}
		if p.ID == "corridor-ops" && (sh.Access != "read" || slices.ContainsFunc(sh.Documents, func(d exchange.ShipmentDoc) bool { return d.Readable })) {
			t.Errorf("operator: access %s, documents %+v", sh.Access, sh.Documents)
		}
	}
	for id := range all {
		if !readable[id] {
			t.Errorf("document %s is readable by no demo party", id)
		}
	}
	v, _ := w.svc.Shipment(ctx, w.party(t, "sg-motors"), "CQNL2026000187", exchange.EventQuery{})
	sh := v.Shipment
	if !slices.ContainsFunc(sh.Documents, func(d exchange.ShipmentDoc) bool { return d.Type == "cargo-manifest" && d.Number == "QZH2611S-001" }) {
		t.Errorf("the manifest is not in the one bill's view: %+v", sh.Documents)
	}
	var borders []string
	for _, c := range sh.Customs {
		borders = append(borders, c.Country+" "+c.DeclarationKind+" "+c.Status)
	}
	if want := []string{"CN EXPORT RELEASED", "SG IMPORT RELEASED"}; !slices.Equal(borders, want) {
		t.Errorf("customs = %v, want %v", borders, want)
	}
	if len(sh.Legs) != 2 || sh.Status != exchange.StatusArrived || sh.CurrentLeg != nil {
		t.Fatalf("legs %+v status %s", sh.Legs, sh.Status)
	}
	rail, sea := sh.Legs[0], sh.Legs[1]
	if rail.Status != exchange.StatusArrived || rail.ActualDeparture != "2026-11-06T08:05:00+08:00" || rail.ActualArrival != "2026-11-08T09:40:00+08:00" ||
		rail.PlannedDeparture != "2026-11-06T08:00:00+08:00" || rail.DelayMinutes != 0 {
		t.Errorf("rail leg = %+v", rail)
	}
	if sea.Status != exchange.StatusArrived || sea.ActualDeparture != "2026-11-10T18:30:00+08:00" || sea.ActualArrival != "2026-11-16T07:50:00+08:00" || sea.Vehicle != "BEIBU PIONEER 2611S" {
		t.Errorf("sea leg = %+v", sea)
	}
	// The demo's gate-out at Singapore delivers it.
	extra, _ := os.ReadFile(filepath.Join(demoDir, "extra", "gate-out-singapore.json"))
	w.mustSubmit(t, "beibu-line", "tracking-event", extra)
	v, _ = w.svc.Shipment(ctx, w.party(t, "sg-motors"), "CQNL2026000187", exchange.EventQuery{})
	if v.Shipment.Status != exchange.StatusDelivered {
		t.Errorf("after the gate-out: %s, want DELIVERED", v.Shipment.Status)
	}
	// Any number of the graph finds the same shipment.
	for _, ref := range []string{"BBLSIN2611001", "QZH2611S-001", "CQ2026EX0093412", "csqu3054383"} {
		if v, err := w.svc.Shipment(ctx, w.party(t, "cq-customs"), ref, exchange.EventQuery{}); err != nil || v.Shipment == nil || v.Shipment.Ref != "CQNL2026000187" {
			t.Errorf("by %s: %+v %v", ref, v, err)
		}
	}
}

// Legs: DELAYED when an actual or estimated time, or the clock, passes the plan.
func TestLegStatus(t *testing.T) {
	bill := demoDoc(t, "01-one-bill.json")
	cases := []struct {
		name   string
		events [][]byte
		clock  time.Time
		status string // of the rail leg
		delay  int
		ship   string
	}{
		{"before departure", nil, time.Date(2026, 11, 5, 0, 0, 0, 0, time.UTC), exchange.StatusPlanned, 0, exchange.StatusPlanned},
		{"departure overdue", nil, time.Date(2026, 11, 6, 1, 0, 0, 0, time.UTC), exchange.StatusDelayed, 60, exchange.StatusDelayed},
		{"departed on time", [][]byte{event("d1", "cq-rail", "CQNL2026000187", "DEPA", "2026-11-06T08:00:00+08:00", "CNCKG")},
			time.Date(2026, 11, 6, 1, 0, 0, 0, time.UTC), exchange.StatusInTransit, 0, exchange.StatusInTransit},
		{"estimate past the plan", [][]byte{event("d1", "cq-rail", "CQNL2026000187", "DEPA", "2026-11-06T08:00:00+08:00", "CNCKG"),
			estimate("e1", "ARRI", "2026-11-08T13:30:00+08:00", "CNQZH")},
			time.Date(2026, 11, 6, 1, 0, 0, 0, time.UTC), exchange.StatusDelayed, 210, exchange.StatusDelayed},
		{"arrived late", [][]byte{event("d1", "cq-rail", "CQNL2026000187", "DEPA", "2026-11-06T08:00:00+08:00", "CNCKG"),
			event("a1", "cq-rail", "CQNL2026000187", "ARRI", "2026-11-08T11:00:00+08:00", "CNQZH")},
			time.Date(2026, 11, 8, 4, 0, 0, 0, time.UTC), exchange.StatusArrived, 60, exchange.StatusPlanned},
		{"a retracted arrival does not count", [][]byte{event("d1", "cq-rail", "CQNL2026000187", "DEPA", "2026-11-06T08:00:00+08:00", "CNCKG"),
			event("a1", "cq-rail", "CQNL2026000187", "ARRI", "2026-11-08T09:00:00+08:00", "CNQZH"),
			retract(event("a2", "cq-rail", "CQNL2026000187", "GTIN", "2026-11-06T08:10:00+08:00", "CNCKG"), "a1")},
			time.Date(2026, 11, 7, 0, 0, 0, 0, time.UTC), exchange.StatusInTransit, 0, exchange.StatusInTransit},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t)
			w.now = time.Date(2026, 11, 5, 0, 0, 0, 0, time.UTC)
			w.mustSubmit(t, "cq-mto", "one-bill", bill)
			for _, e := range c.events {
				w.mustSubmit(t, "cq-rail", "tracking-event", e)
			}
			w.now = c.clock
			v, err := w.svc.Shipment(context.Background(), w.party(t, "sg-motors"), "CQNL2026000187", exchange.EventQuery{})
			if err != nil {
				t.Fatal(err)
			}
			rail := v.Shipment.Legs[0]
			if rail.Status != c.status || rail.DelayMinutes != c.delay {
				t.Errorf("rail leg %s, %d min; want %s, %d", rail.Status, rail.DelayMinutes, c.status, c.delay)
			}
			if c.ship != exchange.StatusPlanned && v.Shipment.Status != c.ship {
				t.Errorf("shipment %s, want %s", v.Shipment.Status, c.ship)
			}
		})
	}
}

func estimate(id, code, at, loc string) []byte {
	var m map[string]any
	_ = json.Unmarshal(event(id, "cq-rail", "CQNL2026000187", code, at, loc), &m)
	m["eventClassifierCode"] = "EST"
	b, _ := json.Marshal(m)
	return b
}

func retract(ev []byte, id string) []byte {
	var m map[string]any
	_ = json.Unmarshal(ev, &m)
	m["retractedEventID"] = "event-" + id
	b, _ := json.Marshal(m)
	return b
}

// A container reused by a second one bill: each shipment shows only its
// own events; the container resolves to the shipments the caller may see,
// and to a list, never a merge, when that is more than one.
func TestReusedContainer(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.mustSubmit(t, "cq-mto", "one-bill", demoDoc(t, "01-one-bill.json"))
	w.mustSubmit(t, "cq-rail", "tracking-event", event("first-gtin", "cq-rail", "CQNL2026000187", "GTIN", "2026-11-05T16:10:00+08:00", "CNCKG"))
	second := patch(t, demoDoc(t, "01-one-bill.json"), "transportDocumentReference", "CQNL2026000999", "consignee", "sg-bank", "notifyParty", "sg-bank")
	w.mustSubmit(t, "cq-mto", "one-bill", second)
	w.mustSubmit(t, "cq-rail", "tracking-event", event("second-gtin", "cq-rail", "CQNL2026000999", "GTIN", "2026-12-05T16:10:00+08:00", "CNCKG"))

	for bill, want := range map[string]string{"CQNL2026000187": "first-gtin", "CQNL2026000999": "second-gtin"} {
		v, err := w.svc.Shipment(ctx, w.party(t, "cq-mto"), bill, exchange.EventQuery{})
		if err != nil || len(v.Shipment.Events) != 1 || v.Shipment.Events[0].EventID != "event-"+want {
			t.Fatalf("%s events: %+v %v", bill, v.Shipment, err)
		}
	}
	// sg-motors takes part in the first only: the container is that shipment.
	v, err := w.svc.Shipment(ctx, w.party(t, "sg-motors"), "CSQU3054383", exchange.EventQuery{})
	if err != nil || v.Shipment == nil || v.Shipment.Ref != "CQNL2026000187" || len(v.Shipment.Events) != 1 {
		t.Fatalf("sg-motors by container: %+v %v", v, err)
	}
	// cq-mto issued both: it gets the two to choose from.
	v, err = w.svc.Shipment(ctx, w.party(t, "cq-mto"), "CSQU3054383", exchange.EventQuery{})
	if err != nil || v.Shipment != nil || len(v.Choices) != 2 {
		t.Fatalf("cq-mto by container: %+v %v", v, err)
	}
	refs := []string{v.Choices[0].Ref, v.Choices[1].Ref}
	slices.Sort(refs)
	if !slices.Equal(refs, []string{"CQNL2026000187", "CQNL2026000999"}) {
		t.Fatalf("choices = %v", refs)
	}
}

// Events page by cursor, in either order, each event once.
func TestEventPages(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.mustSubmit(t, "cq-mto", "one-bill", demoDoc(t, "01-one-bill.json"))
	const n = 25
	base := time.Date(2026, 11, 6, 0, 0, 0, 0, time.UTC)
	for i := range n {
		at := base.Add(time.Duration(n-i) * time.Minute).Format(time.RFC3339) // submitted newest first
		w.mustSubmit(t, "cq-rail", "tracking-event", event(fmt.Sprintf("ev-%02d", i), "cq-rail", "CQNL2026000187", "LOAD", at, "CNCKG"))
	}
	for _, desc := range []bool{false, true} {
		var got []string
		cursor := ""
		for pages := 0; ; pages++ {
			v, err := w.svc.Shipment(ctx, w.party(t, "sg-motors"), "CQNL2026000187", exchange.EventQuery{Limit: 10, Cursor: cursor, Desc: desc})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range v.Shipment.Events {
				got = append(got, e.EventDateTime)
			}
			if cursor = v.Shipment.Next; cursor == "" || pages > n {
				break
			}
		}
		sorted := slices.IsSorted(got)
		if desc {
			sorted = slices.IsSortedFunc(got, func(a, b string) int { return -compare(a, b) })
		}
		if len(got) != n || !sorted || len(slices.Compact(slices.Clone(got))) != n {
			t.Fatalf("desc=%v: %d events %v", desc, len(got), got)
		}
	}
	if _, err := w.svc.Shipment(ctx, w.party(t, "sg-motors"), "CQNL2026000187", exchange.EventQuery{Limit: exchange.MaxEventLimit + 1}); code(err) != exchange.CodeMalformed {
		t.Fatalf("limit over the maximum: %v", err)
	}
	if _, err := w.svc.Shipment(ctx, w.party(t, "sg-motors"), "CQNL2026000187", exchange.EventQuery{Cursor: "!!"}); code(err) != exchange.CodeMalformed {
		t.Fatalf("bad cursor: %v", err)
	}
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// The list: what the caller may see, newest first, with filters; the
// operator sees every shipment.
func TestShipmentList(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.scenario(t)
	second := patch(t, demoDoc(t, "01-one-bill.json"), "transportDocumentReference", "CQNL2026000999", "consignee", "sg-bank", "notifyParty", "sg-bank")
	w.mustSubmit(t, "cq-mto", "one-bill", second)
	refs := func(p string, q exchange.ShipmentQuery) []string {
		t.Helper()
		list, err := w.svc.Shipments(ctx, w.party(t, p), q)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range list.Shipments {
			out = append(out, s.Ref+" "+s.Status)
		}
		return out
	}
	// The second bill's copied plan left Chongqing on 6 November: overdue.
	both := []string{"CQNL2026000999 DELAYED", "CQNL2026000187 ARRIVED"}
	for _, c := range []struct {
		party string
		q     exchange.ShipmentQuery
		want  []string
	}{
		{"corridor-ops", exchange.ShipmentQuery{}, both},
		{"cq-mto", exchange.ShipmentQuery{}, both},
		{"sg-motors", exchange.ShipmentQuery{}, both[1:]},
		{"cq-customs", exchange.ShipmentQuery{}, both[1:]}, // a member through its declaration
		{"qz-customs", exchange.ShipmentQuery{}, both[1:]}, // through the manifest
		{"rogue-line", exchange.ShipmentQuery{}, nil},
		{"corridor-ops", exchange.ShipmentQuery{Status: "ARRIVED"}, both[1:]},
		{"corridor-ops", exchange.ShipmentQuery{Status: "DELAYED"}, both[:1]},
		{"corridor-ops", exchange.ShipmentQuery{Mode: "ROAD"}, nil},
		{"corridor-ops", exchange.ShipmentQuery{Location: "CNQZH"}, both},
		{"corridor-ops", exchange.ShipmentQuery{Location: "VNHPH"}, nil},
		{"corridor-ops", exchange.ShipmentQuery{Limit: 1}, both[:1]},
	} {
		if got := refs(c.party, c.q); !slices.Equal(got, c.want) {
			t.Errorf("%s %+v: %v, want %v", c.party, c.q, got, c.want)
		}
	}
	first, _ := w.svc.Shipments(ctx, w.party(t, "corridor-ops"), exchange.ShipmentQuery{Limit: 1})
	rest, _ := w.svc.Shipments(ctx, w.party(t, "corridor-ops"), exchange.ShipmentQuery{Limit: 1, Cursor: first.Next})
	if len(rest.Shipments) != 1 || rest.Shipments[0].Ref != "CQNL2026000187" {
		t.Fatalf("second page: %+v", rest)
	}
	list, _ := w.svc.Shipments(ctx, w.party(t, "corridor-ops"), exchange.ShipmentQuery{To: first.Shipments[0].OpenedAt.Add(-time.Nanosecond)})
	if len(list.Shipments) != 1 || list.Shipments[0].Ref != "CQNL2026000187" {
		t.Fatalf("to before the newest: %+v", list)
	}
	if s := list.Shipments[0]; s.LastEvent == nil || s.LastEvent.EventCode != "ARRI" || s.Holder != "cq-mto" || s.TitleStatus != exchange.TitleSurrendered {
		t.Fatalf("summary: %+v", s)
	}
	// Operators never read documents.
	if _, _, err := w.svc.Document(ctx, w.party(t, "corridor-ops"), list.Shipments[0].LastEvent.DocumentID); code(err) != exchange.CodeNotFound {
		t.Fatalf("operator reading a document: %v", err)
	}
}

// A list's last page carries no cursor, even when it is exactly full;
// every page before it does, and the pages hold every item once.
func TestNoCursorOnTheLastPage(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.mustSubmit(t, "cq-mto", "one-bill", demoDoc(t, "01-one-bill.json"))
	w.mustSubmit(t, "cq-mto", "one-bill", patch(t, demoDoc(t, "01-one-bill.json"), "transportDocumentReference", "CQNL2026000999"))
	const n = 3
	for i := range n {
		at := time.Date(2026, 11, 6, 0, i, 0, 0, time.UTC).Format(time.RFC3339)
		w.mustSubmit(t, "cq-rail", "tracking-event", event(fmt.Sprintf("last-%d", i), "cq-rail", "CQNL2026000187", "LOAD", at, "CNCKG"))
	}
	mto := w.party(t, "cq-mto")
	for limit := 1; limit <= 3; limit++ {
		var got []string
		cursor, pages := "", 0
		for {
			l, err := w.svc.Shipments(ctx, mto, exchange.ShipmentQuery{Limit: limit, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, s := range l.Shipments {
				got = append(got, s.Ref)
			}
			if len(l.Shipments) == 0 && pages > 1 {
				t.Fatalf("shipments, limit %d: page %d is empty; the one before should have had no cursor", limit, pages)
			}
			if cursor = l.Next; cursor == "" {
				break
			}
		}
		if len(got) != 2 || pages != (2+limit-1)/limit {
			t.Fatalf("shipments, limit %d: %v in %d pages", limit, got, pages)
		}
	}
	for limit := 1; limit <= n+1; limit++ {
		var got []string
		cursor, pages := "", 0
		for {
			l, err := w.svc.Events(ctx, mto, exchange.EventFilter{TransportDocumentReference: "CQNL2026000187", Limit: limit, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, e := range l.Events {
				got = append(got, e.EventID)
			}
			if cursor = l.Next; cursor == "" {
				break
			}
		}
		if len(got) != n || len(slices.Compact(slices.Clone(got))) != n || pages != (n+limit-1)/limit {
			t.Fatalf("events, limit %d: %v in %d pages", limit, got, pages)
		}
	}
}

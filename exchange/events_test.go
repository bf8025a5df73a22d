package exchange_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/landsea/corridor/exchange"
)

// The event query: filters, both orders, pages, and only the caller's shipments.
func TestEventQuery(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.scenario(t)
	second := patch(t, demoDoc(t, "01-one-bill.json"), "transportDocumentReference", "CQNL2026000999", "consignee", "sg-bank", "notifyParty", "sg-bank")
	w.mustSubmit(t, "cq-mto", "one-bill", second)
	w.mustSubmit(t, "cq-rail", "tracking-event", event("other-gtin", "cq-rail", "CQNL2026000999", "GTIN", "2026-12-05T16:10:00+08:00", "CNCKG"))
	codes := func(p string, q exchange.EventFilter) []string {
		t.Helper()
		l, err := w.svc.Events(ctx, w.party(t, p), q)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range l.Events {
			out = append(out, e.EventCode+"@"+e.Location)
		}
		return out
	}
	for _, c := range []struct {
		name  string
		party string
		q     exchange.EventFilter
		want  []string
	}{
		{"a bill, oldest first", "sg-motors", exchange.EventFilter{TransportDocumentReference: bill},
			[]string{"GTIN@CNCKG", "LOAD@CNCKG", "DEPA@CNCKG", "ARRI@CNQZH", "LOAD@CNQZH", "DEPA@CNQZH", "ARRI@SGSIN"}},
		{"transport only, newest first", "sg-motors", exchange.EventFilter{TransportDocumentReference: bill, EventType: "TRANSPORT", Desc: true},
			[]string{"ARRI@SGSIN", "DEPA@CNQZH", "ARRI@CNQZH", "DEPA@CNCKG"}},
		{"a code at a place", "sg-motors", exchange.EventFilter{TransportDocumentReference: "BBLSIN2611001", EventTypeCode: "LOAD", UNLocationCode: "CNQZH"},
			[]string{"LOAD@CNQZH"}},
		{"a time window", "sg-motors", exchange.EventFilter{TransportDocumentReference: bill,
			Min: time.Date(2026, 11, 5, 22, 0, 0, 0, time.UTC), Max: time.Date(2026, 11, 9, 0, 0, 0, 0, time.UTC)},
			[]string{"LOAD@CNCKG", "DEPA@CNCKG", "ARRI@CNQZH"}},
		{"a time window, newest first", "sg-motors", exchange.EventFilter{TransportDocumentReference: bill, Desc: true,
			Min: time.Date(2026, 11, 5, 22, 0, 0, 0, time.UTC), Max: time.Date(2026, 11, 9, 0, 0, 0, 0, time.UTC)},
			[]string{"ARRI@CNQZH", "DEPA@CNCKG", "LOAD@CNCKG"}},
		{"no reference: every shipment the operator sees", "corridor-ops", exchange.EventFilter{EventTypeCode: "GTIN"},
			[]string{"GTIN@CNCKG", "GTIN@CNCKG"}},
		{"no reference: only the caller's shipments", "sg-motors", exchange.EventFilter{EventTypeCode: "GTIN"},
			[]string{"GTIN@CNCKG"}},
		{"a container", "sg-motors", exchange.EventFilter{EquipmentReference: "CSQU3054383"},
			[]string{"GTIN@CNCKG", "LOAD@CNCKG", "LOAD@CNQZH"}},
		{"an outsider", "rogue-line", exchange.EventFilter{TransportDocumentReference: bill}, nil},
	} {
		if got := codes(c.party, c.q); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	// Pages of two cover the seven events once each.
	var got []string
	q := exchange.EventFilter{TransportDocumentReference: bill, Limit: 2}
	for i := 0; i < 10; i++ {
		l, err := w.svc.Events(ctx, w.party(t, "sg-motors"), q)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range l.Events {
			got = append(got, e.EventID)
		}
		if q.Cursor = l.Next; q.Cursor == "" {
			break
		}
	}
	if len(got) != 7 || len(slices.Compact(slices.Clone(got))) != 7 {
		t.Fatalf("paged: %v", got)
	}
}

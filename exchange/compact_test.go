package exchange_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/landsea/corridor/adapters/routing"
	"github.com/landsea/corridor/exchange"
	"github.com/landsea/corridor/internal/testenv"
)

// A shipment's timeline moved out of Redis (redis.Store.Compact) reads as
// it did: the shipment view's event pages both ways, the event query, the
// shipments' summaries; an event after it joins the timeline.
func TestCompactedTimelineViews(t *testing.T) {
	ctx := context.Background()
	arch, r, svc := onRedisMinIO(t)
	r.Segments, r.CompactAfter = arch, time.Hour
	svc.SetRules(routing.Default())
	parties := map[string]exchange.Party{}
	for _, p := range demoParties(t) {
		if _, err := svc.CreateParty(ctx, p); err != nil {
			t.Fatal(err)
		}
		parties[p.ID] = p
	}
	submit := func(sender, typ string, body []byte) {
		t.Helper()
		if _, _, err := svc.Submit(ctx, parties[sender], exchange.Submission{Type: typ, Body: body}); err != nil {
			t.Fatalf("%s by %s: %v", typ, sender, err)
		}
	}
	submit("cq-mto", "one-bill", demoDoc(t, "01-one-bill.json"))
	base := time.Date(2026, 11, 6, 0, 0, 0, 0, time.UTC)
	const ref = "CQNL2026000187"
	for i := range 25 {
		at := base.Add(time.Duration(25-i) * time.Minute).Format(time.RFC3339)
		submit("cq-rail", "tracking-event", event(fmt.Sprintf("ev-%02d", i), "cq-rail", ref, "LOAD", at, "CNCKG"))
	}
	viewer := parties["sg-motors"]
	views := func() string {
		t.Helper()
		var out []any
		for _, desc := range []bool{false, true} {
			for cursor := ""; ; {
				v, err := svc.Shipment(ctx, viewer, ref, exchange.EventQuery{Limit: 7, Cursor: cursor, Desc: desc})
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, v)
				if cursor = v.Shipment.Next; cursor == "" {
					break
				}
			}
			for cursor := ""; ; {
				l, err := svc.Events(ctx, viewer, exchange.EventFilter{TransportDocumentReference: ref, Limit: 10, Cursor: cursor, Desc: desc})
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, l)
				if cursor = l.Next; cursor == "" {
					break
				}
			}
		}
		l, err := svc.Shipments(ctx, viewer, exchange.ShipmentQuery{})
		if err != nil {
			t.Fatal(err)
		}
		raw, err := json.Marshal(append(out, l))
		if err != nil {
			t.Fatal(err)
		}
		return string(raw)
	}
	before := views()
	c, err := r.Compact(ctx, time.Now())
	if err != nil || c.Moved != 25 {
		t.Fatalf("Compact = %+v, %v; want the 25 events moved", c, err)
	}
	opt, _ := goredis.ParseURL(testenv.RedisURL(t))
	raw := goredis.NewClient(opt)
	defer raw.Close()
	left, err := raw.ZRangeArgs(ctx, goredis.ZRangeArgs{Key: r.Prefix + ":list:ship:" + ref + ":events", ByLex: true, Start: "-", Stop: "(~"}).Result()
	if err != nil || len(left) != 0 {
		t.Fatalf("the timeline keeps %d entries in Redis (%v); want none", len(left), err)
	}
	if after := views(); after != before {
		t.Fatalf("compacted, the views read\n%s\nwant\n%s", after, before)
	}
	submit("cq-rail", "tracking-event", event("ev-late", "cq-rail", ref, "DISC", base.Add(-time.Minute).Format(time.RFC3339), "CNCKG"))
	v, err := svc.Shipment(ctx, viewer, ref, exchange.EventQuery{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Shipment.Events) != 2 || v.Shipment.Events[0].EventCode != "DISC" || v.Shipment.Next == "" {
		t.Fatalf("after an event older than the segments, the first page is %+v", v.Shipment.Events)
	}
}

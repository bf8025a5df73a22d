package exchange_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/landsea/corridor/exchange"
	"github.com/landsea/corridor/internal/testenv"
	"github.com/landsea/corridor/storage/local"
	"github.com/landsea/corridor/storage/redis"
)

// BenchmarkShipmentFirstPage: the view of the demo shipment (first page
// of events) once 20,000 events were filed under it, 1 in 100 of them a
// departure or arrival (which the legs read), on the embedded backend and
// on Redis. The events are indexed directly (as reindex files them), not
// archived, so the set-up takes seconds, not minutes.
func BenchmarkShipmentFirstPage(b *testing.B) {
	const events = 20000
	b.Run("Embedded", func(b *testing.B) {
		store := local.New(b.TempDir())
		store.NoSync = true
		if err := store.Open(); err != nil {
			b.Fatal(err)
		}
		defer store.Close()
		benchView(b, store, store, events)
	})
	b.Run("Redis", func(b *testing.B) {
		arch := local.New(b.TempDir())
		if err := arch.Open(); err != nil {
			b.Fatal(err)
		}
		defer arch.Close()
		r := redis.New(testenv.RedisURL(b))
		r.Prefix = testenv.Prefix()
		if err := r.Open(context.Background()); err != nil {
			b.Fatal(err)
		}
		defer r.Close()
		benchView(b, arch, r, events)
	})
}

func benchView(b *testing.B, store *local.Store, ix exchange.Index, events int) {
	ctx := context.Background()
	signer, _ := exchange.NewSigner(bytes.Repeat([]byte{3}, 32))
	svc := exchange.NewService(store, store, ix, store, signer, nil)
	var parties []exchange.Party
	raw, _ := readFile(demoDir + "/parties.json")
	if err := json.Unmarshal(raw, &parties); err != nil {
		b.Fatal(err)
	}
	for _, p := range parties {
		if _, err := svc.CreateParty(ctx, p); err != nil {
			b.Fatal(err)
		}
	}
	mto, _ := store.Party(ctx, "cq-mto")
	bill, _ := readFile(demoDir + "/documents/01-one-bill.json")
	rc, _, err := svc.Submit(ctx, mto, exchange.Submission{Type: "one-bill", Body: bill})
	if err != nil {
		b.Fatal(err)
	}
	billRec, err := ix.Doc(ctx, rc.ID)
	if err != nil {
		b.Fatal(err)
	}
	link := billRec.Shipments[0]
	start := time.Date(2026, 11, 5, 8, 0, 0, 0, time.UTC)
	for i := range events {
		f := map[string]string{"eventID": fmt.Sprintf("bench-%06d", i), "eventType": "EQUIPMENT", "eventCode": "LOAD",
			"eventClassifierCode": "ACT", "eventDateTime": start.Add(time.Duration(i) * time.Minute).Format(time.RFC3339),
			"location": "CNCKG", "containerNumber": "CSQU3054383", "billReference": "CQNL2026000187"}
		if i%100 == 0 {
			f["eventType"], f["eventCode"], f["modeOfTransport"] = "TRANSPORT", "DEPA", "RAIL"
			delete(f, "containerNumber")
		}
		rec := exchange.Record{Receipt: exchange.Receipt{ID: exchange.DocumentID("cq-rail", f["eventID"], nil), Type: "tracking-event",
			SchemaVersion: 2, Sender: "cq-rail", SHA256: fmt.Sprintf("%064d", i), ReceivedAt: start.Add(time.Duration(i) * time.Second),
			Recipients: []string{"cq-autoparts", "cq-mto", "sg-bank", "sg-motors"}}, Format: exchange.RecordFormat, Size: 700,
			Facts: f, Shipments: []exchange.Link{link}}
		if err := ix.Add(ctx, rec, exchange.Entries(rec)); err != nil {
			b.Fatal(err)
		}
	}
	consignee, _ := store.Party(ctx, "sg-motors")
	var size int
	b.ResetTimer()
	for b.Loop() {
		v, err := svc.Shipment(ctx, consignee, "CQNL2026000187", exchange.EventQuery{})
		if err != nil || len(v.Shipment.Events) != exchange.DefaultEventLimit || v.Shipment.Next == "" {
			b.Fatalf("view: %v", err)
		}
		out, _ := json.Marshal(v.Shipment)
		size = len(out)
	}
	b.ReportMetric(float64(size), "bytes/view")
}

func readFile(name string) ([]byte, error) { return os.ReadFile(name) }

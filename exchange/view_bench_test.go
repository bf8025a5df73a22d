package exchange_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/landsea/corridor/exchange"
	"github.com/landsea/corridor/internal/testenv"
	"github.com/landsea/corridor/storage/local"
	"github.com/landsea/corridor/storage/redis"
	"github.com/landsea/corridor/storage/s3"
	"github.com/landsea/corridor/storage/storagetest"
)

// BenchmarkShipmentFirstPage: the view of the demo shipment (first page
// of events) once 20,000 events were filed under it, 1 in 100 of them a
// departure or arrival (which the legs read), on the embedded backend and
// on Redis. The events are indexed directly (as reindex files them), not
// archived, so the set-up takes seconds, not minutes.
func BenchmarkShipmentFirstPage(b *testing.B) {
	const events = 20000
	b.Run("Embedded", func(b *testing.B) {
		store := storagetest.Local(b, func(s *local.Store) { s.NoSync = true })
		benchView(b, store, store, events)
	})
	b.Run("Redis", func(b *testing.B) {
		arch, r := benchStores(b)
		benchView(b, arch, r, events)
	})
	// The timeline moved out of Redis (--redis-compact-after) into segments
	// on MinIO: read from the gateway's cache of segments, then (Cold) by a
	// gateway that read none yet (a store opened for each view, its opening
	// not timed).
	b.Run("RedisCompacted", func(b *testing.B) {
		arch, r := benchStores(b)
		r.Segments, r.CompactAfter = storagetest.MinIO(b), time.Hour
		benchView(b, arch, r, events)
	})
	b.Run("RedisCompactedCold", func(b *testing.B) {
		arch, r := benchStores(b)
		r.Segments, r.CompactAfter = storagetest.MinIO(b), time.Hour
		benchViewWith(b, arch, r, events, func() exchange.Index {
			b.StopTimer()
			defer b.StartTimer()
			fresh := redis.New(testenv.RedisURL(b))
			fresh.Prefix, fresh.Segments, fresh.CompactAfter = r.Prefix, r.Segments, r.CompactAfter
			if err := fresh.Open(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { fresh.Close() })
			return fresh
		})
	})
}

// benchStores opens an embedded archive (and queue and parties) and, on
// Redis, an index; they close when the benchmark ends.
func benchStores(b *testing.B) (*local.Store, *redis.Store) {
	return storagetest.Local(b), openRedis(b)
}

// benchDemo is a service with the demo parties and the demo one bill; it
// returns the bill's indexed record.
func benchDemo(b *testing.B, store *local.Store, ix exchange.Index) (*exchange.Service, exchange.Record) {
	signer, _ := exchange.NewSigner(bytes.Repeat([]byte{3}, 32))
	svc := exchange.NewService(store, store, ix, store, signer, nil)
	return svc, demoBill(b, svc)
}

// demoBill adds the demo parties and the demo one bill to svc; it returns
// the bill's indexed record.
func demoBill(b *testing.B, svc *exchange.Service) exchange.Record {
	ctx := context.Background()
	for _, p := range demoParties(b) {
		if _, err := svc.CreateParty(ctx, p); err != nil {
			b.Fatal(err)
		}
	}
	mto, _ := svc.Parties.Party(ctx, "cq-mto")
	bill, _ := os.ReadFile(demoDir + "/documents/01-one-bill.json")
	rc, _, err := svc.Submit(ctx, mto, exchange.Submission{Type: "one-bill", Body: bill})
	if err != nil {
		b.Fatal(err)
	}
	billRec, err := svc.Index.Doc(ctx, rc.ID)
	if err != nil {
		b.Fatal(err)
	}
	return billRec
}

// benchEvent is the i-th of a run of equipment events of a shipment (a
// departure every hundredth, which the legs read), happening a minute
// apart from start and received a second apart.
func benchEvent(i int, prefix string, start time.Time, link exchange.Link) exchange.Record {
	f := map[string]string{"eventID": fmt.Sprintf("%s-%06d", prefix, i), "eventType": "EQUIPMENT", "eventCode": "LOAD",
		"eventClassifierCode": "ACT", "eventDateTime": start.Add(time.Duration(i) * time.Minute).Format(time.RFC3339),
		"location": "CNCKG", "containerNumber": "CSQU3054383", "billReference": "CQNL2026000187"}
	if i%100 == 0 {
		f["eventType"], f["eventCode"], f["modeOfTransport"] = "TRANSPORT", "DEPA", "RAIL"
		delete(f, "containerNumber")
	}
	return exchange.Record{Receipt: exchange.Receipt{ID: exchange.DocumentID("cq-rail", f["eventID"], nil), Type: "tracking-event",
		SchemaVersion: 2, Sender: "cq-rail", SHA256: fmt.Sprintf("%064d", i), ReceivedAt: start.Add(time.Duration(i) * time.Second),
		Recipients: []string{"cq-autoparts", "cq-mto", "sg-bank", "sg-motors"}}, Format: exchange.RecordFormat, Size: 700,
		Facts: f, Shipments: []exchange.Link{link}}
}

func benchView(b *testing.B, store *local.Store, ix exchange.Index, events int) {
	benchViewWith(b, store, ix, events, nil)
}

// benchViewWith: each view on the index index() returns (nil: ix), after
// the timeline was compacted if ix compacts.
func benchViewWith(b *testing.B, store *local.Store, ix exchange.Index, events int, index func() exchange.Index) {
	ctx := context.Background()
	svc, billRec := benchDemo(b, store, ix)
	link := billRec.Shipments[0]
	start := time.Date(2026, 11, 5, 8, 0, 0, 0, time.UTC)
	for i := range events {
		rec := benchEvent(i, "bench", start, link)
		if err := ix.Add(ctx, rec, exchange.Entries(rec)); err != nil {
			b.Fatal(err)
		}
	}
	if r, ok := ix.(*redis.Store); ok && r.CompactAfter > 0 {
		if c, err := r.Compact(ctx, time.Now()); err != nil || c.Moved < events {
			b.Fatalf("Compact = %+v, %v", c, err)
		}
	}
	consignee, _ := store.Party(ctx, "sg-motors")
	var size int
	b.ResetTimer()
	for b.Loop() {
		if index != nil {
			svc.Index = index()
		}
		v, err := svc.Shipment(ctx, consignee, "CQNL2026000187", exchange.EventQuery{})
		if err != nil || len(v.Shipment.Events) != exchange.DefaultEventLimit || v.Shipment.Next == "" {
			b.Fatalf("view: %v", err)
		}
		out, _ := json.Marshal(v.Shipment)
		size = len(out)
	}
	b.ReportMetric(float64(size), "bytes/view")
}

// BenchmarkShipmentViewAmongMany: the first page of the demo shipment's
// view on Redis once CORRIDOR_BENCH_DOCS other documents (default 10,000)
// are indexed, a hundred to a shipment, by 8 seeders. The view reads only
// the index, so this is the figure that grows with the archive.
func BenchmarkShipmentViewAmongMany(b *testing.B) {
	total := 10000
	if v := os.Getenv("CORRIDOR_BENCH_DOCS"); v != "" {
		fmt.Sscan(v, &total)
	}
	arch, r := benchStores(b)
	ctx := context.Background()
	svc, billRec := benchDemo(b, arch, r)
	event := func(i int, link exchange.Link) exchange.Record {
		at := time.Date(2026, 11, 5, 8, 0, 0, 0, time.UTC).Add(time.Duration(i%100) * time.Minute)
		f := map[string]string{"eventID": fmt.Sprintf("many-%08d", i), "eventType": "EQUIPMENT", "eventCode": "LOAD",
			"eventClassifierCode": "ACT", "eventDateTime": at.Format(time.RFC3339), "location": "CNCKG", "containerNumber": "CSQU3054383"}
		return exchange.Record{Receipt: exchange.Receipt{ID: exchange.DocumentID("cq-rail", f["eventID"], nil), Type: "tracking-event",
			SchemaVersion: 2, Sender: "cq-rail", SHA256: fmt.Sprintf("%064d", i), ReceivedAt: at, Recipients: []string{"sg-motors"}},
			Format: exchange.RecordFormat, Size: 700, Facts: f, Shipments: []exchange.Link{link}}
	}
	start := time.Now()
	seed(b, total, func(i int) error {
		link := exchange.Link{Ref: fmt.Sprintf("OTHER%07d", i/100), Doc: exchange.DocumentID("x", fmt.Sprint(i/100), nil), Opened: start}
		rec := event(i, link)
		return r.Add(ctx, rec, exchange.Entries(rec))
	})
	for i := range 100 {
		rec := event(total+i, billRec.Shipments[0])
		if err := r.Add(ctx, rec, exchange.Entries(rec)); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("seeded %d documents in %s", total+100, time.Since(start).Round(time.Millisecond))
	consignee, _ := arch.Party(ctx, "sg-motors")
	b.ResetTimer()
	for range b.N {
		v, err := svc.Shipment(ctx, consignee, "CQNL2026000187", exchange.EventQuery{})
		if err != nil || len(v.Shipment.Events) != 100 {
			b.Fatalf("view: %v", err)
		}
	}
}

// seed runs fn for 0 to n-1 on 8 workers, so that a benchmark's set-up
// takes seconds, and fails b on the first error.
func seed(b *testing.B, n int, fn func(i int) error) {
	var g errgroup.Group
	for w := range 8 {
		g.Go(func() error {
			for i := w; i < n; i += 8 {
				if err := fn(i); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkShipmentFirstPageCold: the demo shipment's first page when the
// index on Redis keeps records an hour (--redis-record-ttl) and the
// shipment's 2,000 events were received long before, so that every record
// of the page is read from the archive (MinIO). Fresh: a gateway that has
// read none of them yet (a new service for each view); Cached: the same
// gateway again (its cache of archived records).
func BenchmarkShipmentFirstPageCold(b *testing.B) {
	const events = 2000
	ctx := context.Background()
	m := testenv.MinIO(b)
	arch := s3.New(m.Endpoint, m.Bucket, m.AccessKey, m.SecretKey)
	arch.Prefix = testenv.Prefix() + "/"
	if err := arch.Open(ctx); err != nil {
		b.Fatal(err)
	}
	r := openColdRedis(b, time.Hour)
	signer, _ := exchange.NewSigner(bytes.Repeat([]byte{3}, 32))
	gateway := func() *exchange.Service { return exchange.NewService(arch, r, r, arch, signer, nil) }
	billRec := demoBill(b, gateway())
	start := time.Date(2026, 11, 5, 8, 0, 0, 0, time.UTC) // long past the TTL: no record goes to Redis
	seed(b, events, func(i int) error {
		rec := benchEvent(i, "cold", start, billRec.Shipments[0])
		body := []byte(fmt.Sprintf(`{"eventID":%q}`, rec.Facts["eventID"]))
		rec.Size = int64(len(body))
		if err := arch.Put(ctx, rec, body); err != nil {
			return err
		}
		return r.Add(ctx, rec, exchange.Entries(rec))
	})
	consignee, _ := arch.Party(ctx, "sg-motors")
	view := func(b *testing.B, svc *exchange.Service) {
		v, err := svc.Shipment(ctx, consignee, "CQNL2026000187", exchange.EventQuery{})
		if err != nil || len(v.Shipment.Events) != exchange.DefaultEventLimit || v.Shipment.Next == "" {
			b.Fatalf("view: %d events, %v", len(v.Shipment.Events), err)
		}
	}
	b.Run("Fresh", func(b *testing.B) {
		for range b.N {
			b.StopTimer()
			svc := gateway()
			b.StartTimer()
			view(b, svc)
		}
	})
	b.Run("Cached", func(b *testing.B) {
		svc := gateway()
		view(b, svc)
		b.ResetTimer()
		for range b.N {
			view(b, svc)
		}
	})
}

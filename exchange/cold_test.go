package exchange_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/landsea/corridor/exchange"
	"github.com/landsea/corridor/internal/testenv"
	"github.com/landsea/corridor/storage/redis"
)

// openColdRedis is openRedis keeping records ttl after their receipt.
func openColdRedis(t testing.TB, ttl time.Duration) *redis.Store {
	t.Helper()
	r := redis.New(testenv.RedisURL(t))
	r.Prefix = testenv.Prefix()
	r.RecordTTL = ttl
	if err := r.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// coldWorld is a world whose index and queue are on Redis keeping records
// an hour, with an outbox, and whose clock stands ago before now.
func coldWorld(t *testing.T, ago time.Duration) (*world, *redis.Store) {
	t.Helper()
	w := newWorld(t)
	r := openColdRedis(t, time.Hour)
	w.svc.Index, w.svc.Queue = r, r
	w.svc.SetOutbox(w.store)
	w.setNow(time.Now().Add(-ago))
	return w, r
}

// setNow sets the world's clock.
func (w *world) setNow(at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.now = at
}

// A gateway whose index keeps records only for an hour (--redis-record-ttl)
// shows what one that keeps them shows: the demo corridor, played three
// hours ago on both, reads alike for every party, although the first
// index holds none of its records (the service read them from the archive).
func TestColdRecordsReadFromTheArchive(t *testing.T) {
	ctx := context.Background()
	start := time.Now().Add(-3 * time.Hour).Truncate(time.Second)
	play := func(ix exchange.Index) (*world, []exchange.Receipt) {
		w := newWorld(t)
		w.svc.Index = ix
		w.setNow(start)
		return w, w.scenario(t)
	}
	cold := openColdRedis(t, time.Hour)
	hotW, hotRcs := play(openRedis(t))
	coldW, coldRcs := play(cold)
	if !reflect.DeepEqual(hotRcs, coldRcs) {
		t.Fatalf("the scenario's receipts differ:\nhot  %+v\ncold %+v", hotRcs, coldRcs)
	}
	for _, rc := range coldRcs {
		if _, err := cold.Doc(ctx, rc.ID); !errors.Is(err, exchange.ErrNotFound) {
			t.Fatalf("the index past its record TTL holds %s (%v); want it in the archive only", rc.ID, err)
		}
	}
	type seen struct {
		Ships     exchange.ShipmentList
		Views     []exchange.ShipmentView
		Events    []exchange.EventList
		Titles    []exchange.Title
		Revisions [][]exchange.Receipt
		Refused   []string // the errors of those reads
	}
	look := func(w *world, party exchange.Party) seen {
		t.Helper()
		var s seen
		var err error
		if s.Ships, err = w.svc.Shipments(ctx, party, exchange.ShipmentQuery{Limit: 100}); err != nil {
			t.Fatal(err)
		}
		for _, sh := range s.Ships.Shipments {
			v, err := w.svc.Shipment(ctx, party, sh.Ref, exchange.EventQuery{Limit: 100})
			if err != nil {
				t.Fatalf("%s views %s: %v", party.ID, sh.Ref, err)
			}
			s.Views = append(s.Views, v)
			ev, err := w.svc.Events(ctx, party, exchange.EventFilter{TransportDocumentReference: sh.Ref, Limit: 100})
			if err != nil {
				t.Fatalf("%s reads the events of %s: %v", party.ID, sh.Ref, err)
			}
			s.Events = append(s.Events, ev)
			ti, err := w.svc.Title(ctx, party, sh.Ref) // not every party sees every title: compared as it comes
			s.Titles, s.Refused = append(s.Titles, ti), append(s.Refused, fmt.Sprint(err))
		}
		for _, rc := range coldRcs {
			revs, err := w.svc.Revisions(ctx, party, rc.ID)
			s.Revisions, s.Refused = append(s.Revisions, revs), append(s.Refused, fmt.Sprint(err))
		}
		return s
	}
	views := 0
	for _, p := range demoParties(t) {
		hot, cold := look(hotW, p), look(coldW, p)
		if !reflect.DeepEqual(hot, cold) {
			t.Errorf("%s sees on the gateway keeping records\n%+v\nand on the one reading them from the archive\n%+v", p.ID, hot, cold)
		}
		views += len(hot.Views)
	}
	if views == 0 {
		t.Fatal("no party saw a shipment: the comparison compared nothing")
	}
	// Every document of the scenario, submitted again, gets its receipt on
	// both, although on the second the state has moved on since (the
	// consignment note's number, say, is its amendment's now).
	var steps []struct {
		Sender, Type, File string
		Amend              *struct{ Type, File, Of string }
	}
	readJSON(t, filepath.Join(demoDir, "scenario.json"), &steps)
	again := 0
	for _, st := range steps {
		sub := exchange.Submission{Type: st.Type}
		file := st.File
		if a := st.Amend; a != nil {
			of, _ := os.ReadFile(filepath.Join(demoDir, a.Of))
			sum := sha256.Sum256(of)
			sub.Type, sub.Amends, file = a.Type, exchange.DocumentID(st.Sender, "", sum[:]), a.File
		}
		if file == "" {
			continue
		}
		body, err := os.ReadFile(filepath.Join(demoDir, file))
		if err != nil {
			t.Fatal(err)
		}
		sub.Body = body
		var rcs [2]exchange.Receipt
		for i, w := range []*world{hotW, coldW} {
			rc, created, err := w.svc.Submit(ctx, w.party(t, st.Sender), sub)
			if err != nil || created {
				t.Fatalf("%s submitted again to the %s gateway: created %v, %v; want its receipt", file, []string{"hot", "cold"}[i], created, err)
			}
			rcs[i] = rc
		}
		if !reflect.DeepEqual(rcs[0], rcs[1]) {
			t.Fatalf("%s submitted again: receipts differ:\nhot  %+v\ncold %+v", file, rcs[0], rcs[1])
		}
		again++
	}
	if again < 10 {
		t.Fatalf("submitted %d documents again; the scenario has more", again)
	}
}

// A submission retried after its record left the index is found by the
// number it holds there: it gets its receipt without an archive write, and
// its recipients, who had it and acked it, do not get it again; a delivery
// cut short (still marked in the outbox) is completed by the retry, once.
func TestLateRetryOfAColdDocument(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name, bill string
		cutShort   bool
		want       int // times each recipient gets the bill from the retry
	}{{"Delivered", "CQNL2026300001", false, 0}, {"CutShort", "CQNL2026300002", true, 1}} {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t)
			r := openColdRedis(t, time.Hour)
			q := &failingQueue{ForgetfulQueue: r}
			w.svc.Index, w.svc.Queue = r, q
			w.svc.SetOutbox(w.store)
			mto := w.party(t, "cq-mto")
			bill := []byte(strings.Replace(string(demoDoc(t, "01-one-bill.json")), "CQNL2026000187", c.bill, 1))
			w.setNow(time.Now().Add(-2 * time.Hour))
			q.fail = c.cutShort
			first, _, err := w.svc.Submit(ctx, mto, exchange.Submission{Type: "one-bill", Body: bill})
			if c.cutShort != errors.Is(err, errQueueDied) || (!c.cutShort && err != nil) {
				t.Fatalf("the first attempt: %v", err)
			}
			q.fail = false
			sum := sha256.Sum256(bill)
			rec, err := w.store.Record(ctx, exchange.DocumentID("cq-mto", "", sum[:]))
			if err != nil {
				t.Fatal(err)
			}
			if first.ID != "" && first.ID != rec.ID {
				t.Fatalf("receipt %s, archived %s", first.ID, rec.ID)
			}
			for _, p := range rec.Recipients {
				w.inbox(t, p) // acked
			}
			if _, err := r.Doc(ctx, rec.ID); !errors.Is(err, exchange.ErrNotFound) {
				t.Fatalf("the index holds the record received 2h ago with a 1h TTL (%v)", err)
			}
			if !c.cutShort { // (cut short, it was never queued)
				forgetMarks(t, r.Prefix) // as Redis does after the dedupe window
			}
			w.setNow(time.Now())
			ca := &countingArchive{Archive: w.store}
			w.svc.Archive = ca
			rc, created, err := w.svc.Submit(ctx, mto, exchange.Submission{Type: "one-bill", Body: bill})
			if err != nil || created || rc.ID != rec.ID {
				t.Fatalf("the retry: %s, created %v, %v; want the receipt of %s", rc.ID, created, err, rec.ID)
			}
			if n := ca.puts.Load(); n != 0 { // found by its number: nothing claimed, marked or written as for a new one
				t.Fatalf("the retry wrote to the archive %d times; want none", n)
			}
			if marked, err := w.store.Marked(ctx, rec.ID); err != nil || marked {
				t.Fatalf("still marked after the retry (%v); want the delivery ended", err)
			}
			for _, p := range rec.Recipients {
				ids, _ := w.inbox(t, p)
				if n := len(slices.DeleteFunc(ids, func(id string) bool { return id != rec.ID })); n != c.want {
					t.Errorf("%s got the bill %d times from the retry, want %d", p, n, c.want)
				}
			}
		})
	}
}

// forgetMarks deletes the inbox marks under prefix (the sets that make an
// enqueue idempotent), as their expiry after the dedupe window does.
func forgetMarks(t *testing.T, prefix string) {
	t.Helper()
	rc := goredis.NewClient(mustParseURL(t, testenv.RedisURL(t)))
	defer rc.Close()
	ctx := context.Background()
	n := 0
	iter := rc.Scan(ctx, 0, prefix+":{*}:delivered:*", 1000).Iterator()
	for iter.Next(ctx) {
		if err := rc.Del(ctx, iter.Val()).Err(); err != nil {
			t.Fatal(err)
		}
		n++
	}
	if err := iter.Err(); err != nil || n == 0 {
		t.Fatalf("deleted %d sets of marks (%v); want some", n, err)
	}
}

// A customs response has no number to be found by: retried after its
// record left the index (and its marks expired), it is found by the
// archive's conditional write, gets its receipt, and nobody gets it again.
func TestLateRetryOfAColdResponse(t *testing.T) {
	ctx := context.Background()
	w, r := coldWorld(t, 3*time.Hour)
	w.scenario(t)
	for _, p := range demoParties(t) {
		w.inbox(t, p.ID) // everything acked
	}
	forgetMarks(t, r.Prefix)
	w.setNow(time.Now())
	body := demoDoc(t, "04-export-released.json")
	ca := &countingArchive{Archive: w.store}
	w.svc.Archive = ca
	rc, created, err := w.svc.Submit(ctx, w.party(t, "cq-customs"), exchange.Submission{Type: "customs-response", Body: body})
	sum := sha256.Sum256(body)
	if err != nil || created || rc.ID != exchange.DocumentID("cq-customs", "", sum[:]) {
		t.Fatalf("the retry: %s, created %v, %v; want the receipt of the response", rc.ID, created, err)
	}
	if n := ca.puts.Load(); n != 1 {
		t.Fatalf("the retry tried %d archive writes; want the one that found it", n)
	}
	if marked, err := w.store.Marked(ctx, rc.ID); err != nil || marked {
		t.Fatalf("still marked after the retry (%v)", err)
	}
	for _, p := range rc.Recipients {
		ids, _ := w.inbox(t, p)
		if slices.Contains(ids, rc.ID) {
			t.Errorf("%s got the response again", p)
		}
	}
}

// A record of the oldest format, past the TTL, is upgraded when read from
// the archive, as reindex upgrades it; its upgrade reads its shipment's
// graph, which lists it, and reads it there as archived (it does not
// upgrade it again, without end). Reindex, run twice, ends too.
func TestColdRecordOfTheOldestFormat(t *testing.T) {
	ctx := context.Background()
	w, r := coldWorld(t, 2*time.Hour)
	w.mustSubmit(t, "cq-mto", "one-bill", demoDoc(t, "01-one-bill.json"))
	note := w.mustSubmit(t, "cq-rail", "rail-consignment-note", demoDoc(t, "02-rail-consignment-note.json"))
	orig, err := w.store.Record(ctx, note.ID)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := w.store.Body(ctx, note.ID)
	old := orig
	old.ID = exchange.DocumentID("cq-rail", "legacy", []byte("legacy"))
	old.Format, old.Shipments, old.Members, old.Refs, old.Keys = 0, nil, nil, nil, nil
	if err := w.store.Put(ctx, old, body); err != nil {
		t.Fatal(err)
	}
	filed := orig
	filed.ID = old.ID
	if err := r.Add(ctx, old, exchange.Entries(filed)); err != nil { // as reindex files it (past the TTL: no record)
		t.Fatal(err)
	}
	ca := &countingArchive{Archive: w.store}
	w.svc.Archive = ca
	tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	v, err := w.svc.Shipment(tctx, w.party(t, "cq-mto"), bill, exchange.EventQuery{Limit: 10})
	if err != nil || ca.records.Load() > 10 {
		t.Fatalf("the view: %v after %d archive reads; want it, after a few", err, ca.records.Load())
	}
	found := false
	for _, d := range v.Shipment.Documents {
		found = found || d.ID == old.ID
	}
	if !found {
		t.Fatalf("the view of %s does not list the upgraded note %s", bill, old.ID)
	}
	for i := range 2 {
		if _, err := w.svc.Reindex(tctx, false, time.Time{}, func() {}); err != nil {
			t.Fatalf("reindex %d: %v", i+1, err)
		}
	}
}

// A late retry of an earlier amendment of a one bill, after a later one,
// gets its receipt, whoever holds the title now, and adds nothing to the
// title chain (it was run as a new amendment: refused while the holder
// had the bill, an AMEND naming the superseded revision once the issuer
// had it again).
func TestLateRetryOfAnEarlierAmendment(t *testing.T) {
	ctx := context.Background()
	w, _ := coldWorld(t, 2*time.Hour)
	v1 := w.mustSubmit(t, "cq-mto", "one-bill", demoDoc(t, "01-one-bill.json"))
	rev := func(day string) []byte { return billArriving(t, day) }
	surrender := func() { w.surrenderForAmendment(t) }
	surrender()
	v2, err := w.amend(t, "cq-mto", "one-bill", v1.ID, rev("17"))
	if err != nil {
		t.Fatal(err)
	}
	surrender()
	if _, err := w.amend(t, "cq-mto", "one-bill", v2.ID, rev("18")); err != nil {
		t.Fatal(err)
	}
	w.setNow(time.Now())
	for _, holder := range []string{"the holder", "the issuer"} {
		if holder == "the issuer" {
			surrender()
		}
		before := must(w.svc.Title(ctx, w.party(t, "cq-mto"), bill))(t)
		rc, err := w.amend(t, "cq-mto", "one-bill", v1.ID, rev("17"))
		if err != nil || rc.ID != v2.ID {
			t.Fatalf("the retry of v2 with the title at %s: %s, %v; want v2's receipt", holder, rc.ID, err)
		}
		after := must(w.svc.Title(ctx, w.party(t, "cq-mto"), bill))(t)
		if len(after.Chain) != len(before.Chain) {
			last := after.Chain[len(after.Chain)-1]
			t.Fatalf("the retry of v2 with the title at %s added %s (document %s) to the chain", holder, last.Action, last.DocumentID)
		}
	}
}

// gatedArchive holds every record read until the test opens gate; it
// counts the reads by id and how many ran at once at most.
type gatedArchive struct {
	exchange.Archive
	gate    chan struct{}
	arrived chan string
	left    chan string // reads given up, their ctx done
	mu      sync.Mutex
	reads   map[string]int
	running int
	most    int
}

func newGatedArchive(a exchange.Archive) *gatedArchive {
	return &gatedArchive{Archive: a, gate: make(chan struct{}), arrived: make(chan string, 100), left: make(chan string, 100), reads: map[string]int{}}
}

func (g *gatedArchive) Record(ctx context.Context, id string) (exchange.Record, error) {
	g.mu.Lock()
	g.reads[id]++
	g.running++
	g.most = max(g.most, g.running)
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.running--
		g.mu.Unlock()
	}()
	g.arrived <- id
	select {
	case <-g.gate:
	case <-ctx.Done():
		g.left <- id
		return exchange.Record{}, ctx.Err()
	}
	return g.Archive.Record(ctx, id)
}

// coldReads plays the demo three hours ago on a gateway keeping records
// an hour, then gives it an empty memory of archived records, reads
// bounded to inFlight, and gated archive reads; waits receives a value
// each time a caller waits for an archive read.
func coldReads(t *testing.T, inFlight int) (w *world, rcs []exchange.Receipt, g *gatedArchive, waits chan string) {
	t.Helper()
	w, _ = coldWorld(t, 3*time.Hour)
	rcs = w.scenario(t)
	w.svc.ForgetColdRecordsForTest(inFlight)
	g = newGatedArchive(w.store)
	w.svc.Archive = g
	waits = make(chan string, 100)
	w.svc.Failpoint = func(p string) { waits <- p }
	return w, rcs, g, waits
}

// receive takes n values from c.
func receive[T any](c chan T, n int) {
	for range n {
		<-c
	}
}

// Callers asking at once for a record the index no longer holds share one
// archive read; one that gives up leaves the read to the others.
func TestColdReadsShared(t *testing.T) {
	w, rcs, g, waits := coldReads(t, 64)
	rc := rcs[0]
	gone, leave := context.WithCancel(context.Background())
	results := make(chan error, 4)
	for i := range 4 {
		ctx := context.Background()
		if i == 0 {
			ctx = gone // the first to ask: its read is the one the others share
		}
		go func() {
			got, err := w.svc.RecordForTest(ctx, rc.ID)
			if err == nil && !reflect.DeepEqual(got.Receipt, rc) {
				err = fmt.Errorf("receipt %+v; want %+v", got.Receipt, rc)
			}
			results <- err
		}()
		if i == 0 {
			receive(g.arrived, 1) // the first reaches the archive before the others ask
		}
		receive(waits, 1)
	}
	leave()
	if err := <-results; !errors.Is(err, context.Canceled) {
		t.Fatalf("the caller that gave up: %v; want context.Canceled", err)
	}
	close(g.gate)
	for range 3 {
		if err := <-results; err != nil {
			t.Fatal(err)
		}
	}
	if g.reads[rc.ID] != 1 {
		t.Fatalf("%d archive reads of %s for 4 callers at once; want 1", g.reads[rc.ID], rc.ID)
	}
}

// However many callers ask at once, the archive reads of records running
// at once in the process are bounded.
func TestColdReadsBounded(t *testing.T) {
	const inFlight = 2
	w, rcs, g, waits := coldReads(t, inFlight)
	results := make(chan error, len(rcs))
	for _, rc := range rcs {
		go func() {
			_, err := w.svc.RecordForTest(context.Background(), rc.ID)
			results <- err
		}()
	}
	receive(waits, len(rcs)) // every caller waits for its read
	receive(g.arrived, inFlight)
	close(g.gate)
	for range rcs {
		if err := <-results; err != nil {
			t.Fatal(err)
		}
	}
	if g.most > inFlight || len(g.reads) != len(rcs) {
		t.Fatalf("%d archive reads ran at once (of %d ids read); want at most %d", g.most, len(g.reads), inFlight)
	}
}

// A read every caller gave up stops, and frees its slot: reads nobody
// waits for cannot fill the process's slots.
func TestAbandonedColdReadStops(t *testing.T) {
	w, rcs, g, _ := coldReads(t, 1)
	gone, leave := context.WithCancel(context.Background())
	given := make(chan error, 1)
	go func() { _, err := w.svc.RecordForTest(gone, rcs[0].ID); given <- err }()
	receive(g.arrived, 1)
	leave()
	if err := <-given; !errors.Is(err, context.Canceled) {
		t.Fatalf("the caller that gave up: %v; want context.Canceled", err)
	}
	select {
	case <-g.left: // the read stopped with its last waiter
	case <-time.After(10 * time.Second):
		t.Fatal("the read nobody waits for still holds the only slot")
	}
	close(g.gate)
	if _, err := w.svc.RecordForTest(context.Background(), rcs[1].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.RecordForTest(context.Background(), rcs[0].ID); err != nil { // asked again: read again
		t.Fatal(err)
	}
}

// A record read from the archive is remembered: asked again, it is not
// read again.
func TestColdRecordRemembered(t *testing.T) {
	w, rcs, g, _ := coldReads(t, 64)
	close(g.gate)
	for range 3 {
		if _, err := w.svc.RecordForTest(context.Background(), rcs[0].ID); err != nil {
			t.Fatal(err)
		}
	}
	if n := g.reads[rcs[0].ID]; n != 1 {
		t.Fatalf("%d archive reads of a record asked 3 times; want 1", n)
	}
}

// recordArchive holds records as JSON, decoding one at each read, as an
// archive does, and counts the reads.
type recordArchive struct {
	exchange.Archive // (nil: only Record is called)
	mu               sync.Mutex
	recs             map[string][]byte
	reads            map[string]int
}

func newRecordArchive(recs ...[]byte) *recordArchive {
	a := &recordArchive{recs: map[string][]byte{}, reads: map[string]int{}}
	for _, raw := range recs {
		var rec exchange.Record
		if err := json.Unmarshal(raw, &rec); err != nil {
			panic(err)
		}
		a.recs[rec.ID] = raw
		a.reads[rec.ID] = 0 // (so that counting reads allocates nothing)
	}
	return a
}

func (a *recordArchive) Record(_ context.Context, id string) (exchange.Record, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.reads[id]++
	var rec exchange.Record
	raw, ok := a.recs[id]
	if !ok {
		return rec, exchange.ErrNotFound
	}
	err := json.Unmarshal(raw, &rec)
	return rec, err
}

// TestColdRecordsBudget: the records read from the archive are kept up to
// a budget of bytes, as recordCost reckons them by their JSON; the least
// recently used go first, and a record over the budget is read each time.
func TestColdRecordsBudget(t *testing.T) {
	ctx := context.Background()
	recs := records(t, 5)
	cost := exchange.RecordCostForTest(len(recs[0]))
	var big exchange.Record
	if err := json.Unmarshal(recs[0], &big); err != nil {
		t.Fatal(err)
	}
	big.ID = "big"
	for i := range 2000 {
		big.Refs = append(big.Refs, fmt.Sprintf("CSQU%07d", i))
	}
	rawBig, _ := json.Marshal(big)
	a := newRecordArchive(append(recs, rawBig)...)
	svc := exchange.NewService(a, nil, nil, nil, nil, nil)
	svc.BoundColdRecordsForTest(3*cost + cost/2) // room for 3
	ids := make([]string, len(recs))
	read := func(id string) {
		t.Helper()
		var want exchange.Record
		if err := json.Unmarshal(a.recs[id], &want); err != nil {
			t.Fatal(err)
		}
		got, err := svc.ArchivedRecordForTest(ctx, id)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("%s reads as %+v, %v; want %+v", id, got, err, want)
		}
	}
	usage := func(step string, n int) {
		t.Helper()
		if gotN, gotB := svc.ColdRecordsUsageForTest(); gotN != n || gotB != n*cost {
			t.Fatalf("%s: %d records of %d bytes kept; want %d of %d", step, gotN, gotB, n, n*cost)
		}
	}
	for i, raw := range recs {
		var rec exchange.Record
		if err := json.Unmarshal(raw, &rec); err != nil {
			t.Fatal(err)
		}
		ids[i] = rec.ID
	}
	for _, id := range ids[:3] {
		read(id)
	}
	usage("3 read", 3)
	read(ids[0]) // the oldest used again
	for _, id := range ids[3:] {
		read(id)
	}
	usage("5 read", 3)
	for _, id := range []string{ids[0], ids[3], ids[4], ids[1]} { // 1, evicted, read again (evicting 0)
		read(id)
	}
	for i, want := range []int{1, 2, 1, 1, 1} {
		if n := a.reads[ids[i]]; n != want {
			t.Errorf("record %d read %d times from the archive; want %d", i, n, want)
		}
	}
	usage("1 read again", 3)
	read("big")
	read("big")
	if n := a.reads["big"]; n != 2 {
		t.Errorf("a record over budget read %d times from the archive; want 2", n)
	}
	usage("one over budget read", 3)
}

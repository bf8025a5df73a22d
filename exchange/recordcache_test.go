package exchange_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"runtime"
	"testing"

	"github.com/landsea/corridor/exchange"
)

// fill sets every field reachable from v: one element in each slice and
// map, a value behind each pointer.
func fill(v reflect.Value, n *int) {
	*n++
	switch v.Kind() {
	case reflect.String:
		v.SetString("s")
	case reflect.Int, reflect.Int64:
		v.SetInt(int64(*n))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), n)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(v.Index(0), n)
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(k, n)
		fill(e, n)
		v.SetMapIndex(k, e)
	case reflect.Struct:
		if v.Type().PkgPath() == "time" {
			return
		}
		for i := range v.NumField() {
			fill(v.Field(i), n)
		}
	}
}

// shared names the first slice, map or pointer that a and b share.
func shared(a, b reflect.Value, path string) string {
	switch a.Kind() {
	case reflect.Pointer, reflect.Map:
		if a.Pointer() == b.Pointer() {
			return path
		}
		if a.Kind() == reflect.Pointer {
			return shared(a.Elem(), b.Elem(), path)
		}
	case reflect.Slice:
		if a.Len() > 0 && a.Pointer() == b.Pointer() {
			return path
		}
		for i := range a.Len() {
			if p := shared(a.Index(i), b.Index(i), path+"[i]"); p != "" {
				return p
			}
		}
	case reflect.Struct:
		if a.Type().PkgPath() == "time" {
			return "" // a time's zone is shared, as it is immutable
		}
		for i := range a.NumField() {
			if p := shared(a.Field(i), b.Field(i), path+"."+a.Type().Field(i).Name); p != "" {
				return p
			}
		}
	}
	return ""
}

// TestRecordCloneSharesNothing fails when a field added to Record is
// not copied deeply by what RecordCache hands out.
func TestRecordCloneSharesNothing(t *testing.T) {
	var rec exchange.Record
	fill(reflect.ValueOf(&rec).Elem(), new(int))
	c := exchange.CloneRecordForTest(rec)
	if !reflect.DeepEqual(c, rec) {
		t.Fatalf("clone %+v differs from %+v", c, rec)
	}
	if p := shared(reflect.ValueOf(rec), reflect.ValueOf(c), "Record"); p != "" {
		t.Fatalf("the clone shares %s with the record", p)
	}
	// Its slices share one array: an append to one must not reach the next.
	c.Recipients = append(c.Recipients, "appended")
	c.Refs = append(c.Refs, "appended")
	c.Plan.Containers = append(c.Plan.Containers, "appended")
	if c.RoutedBy[0] != rec.RoutedBy[0] || c.Keys[0] != rec.Keys[0] || c.Members[0] != rec.Members[0] {
		t.Fatalf("an append to one of the clone's slices changed another: %+v", c)
	}
}

// TestRecordCacheDecode: a cached record decodes as json.Unmarshal does,
// and changing one handed out changes nothing for the next caller.
func TestRecordCacheDecode(t *testing.T) {
	var full exchange.Record
	fill(reflect.ValueOf(&full).Elem(), new(int))
	rawFull, _ := json.Marshal(full)
	cases := map[string][]byte{
		"full":  rawFull,
		"empty": []byte(`{"id":"x","recipients":[],"facts":{},"refs":null}`),
		"other": []byte(`{"ID":"y","sender":"a","plan":{"legs":[]},"unknown":1}`),
	}
	cache := exchange.NewRecordCache(1<<20, nil)
	for name, raw := range cases {
		var want exchange.Record
		if err := json.Unmarshal(raw, &want); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			var none *exchange.RecordCache
			for _, decode := range []func([]byte) (exchange.Record, error){cache.Decode, none.Decode,
				func(b []byte) (exchange.Record, error) { return cache.DecodeString(string(b)) },
				func(b []byte) (exchange.Record, error) { return none.DecodeString(string(b)) }} {
				got, err := decode(raw)
				if err != nil || !reflect.DeepEqual(got, want) {
					t.Fatalf("%s, decode %d: %+v, %v; want %+v", name, i, got, err, want)
				}
				got.Recipients = append(got.Recipients[:0], "changed")
				if got.Facts != nil {
					got.Facts["s"] = "changed"
				}
				if got.Plan != nil {
					got.Plan.Legs = append(got.Plan.Legs[:0], exchange.LegPlan{Mode: "changed"})
				}
				if len(got.Shipments) > 0 {
					got.Shipments[0].Ref = "changed"
				}
			}
		}
	}
	var want exchange.Record
	wantErr := json.Unmarshal([]byte(`{"id":1}`), &want)
	if _, err := cache.Decode([]byte(`{"id":1}`)); err == nil || err.Error() != wantErr.Error() {
		t.Fatalf("decode of a bad record: %v, want %v", err, wantErr)
	}
	if _, err := cache.DecodeString(`{"id":1}`); err == nil || err.Error() != wantErr.Error() {
		t.Fatalf("decode of a bad record as a string: %v, want %v", err, wantErr)
	}
}

// records returns n records like testdata/record-v2.json, each with an id
// of its own and so as long as the others.
func records(t testing.TB, n int) [][]byte {
	t.Helper()
	var rec exchange.Record
	readJSON(t, "testdata/record-v2.json", &rec)
	out := make([][]byte, n)
	for i := range out {
		rec.ID = fmt.Sprintf("r%025d", i)
		var err error
		if out[i], err = json.Marshal(rec); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestRecordCacheBudget: a RecordCache holds records up to its budget of
// bytes, as recordCost reckons them with the bytes stored, not up to a
// count; the least recently used go first, a record over the budget is
// decoded but not held, and one decoded again is counted once.
func TestRecordCacheBudget(t *testing.T) {
	recs := records(t, 5)
	cost := len(recs[0]) + exchange.RecordCostForTest(len(recs[0]))
	c := exchange.NewRecordCache(3*cost+cost/2, nil) // room for 3
	usage := func(step string, n int) {
		t.Helper()
		if gotN, gotB := exchange.RecordCacheUsageForTest(c); gotN != n || gotB != n*cost {
			t.Fatalf("%s: %d records of %d bytes; want %d of %d", step, gotN, gotB, n, n*cost)
		}
	}
	for _, raw := range recs[:3] {
		if _, err := c.Decode(raw); err != nil {
			t.Fatal(err)
		}
	}
	usage("3 decoded", 3)
	if _, err := c.DecodeString(string(recs[0])); err != nil { // the oldest used again
		t.Fatal(err)
	}
	usage("the first decoded again", 3)
	for _, raw := range recs[3:] {
		if _, err := c.DecodeString(string(raw)); err != nil {
			t.Fatal(err)
		}
	}
	usage("5 decoded", 3)
	for i, held := range []bool{true, false, false, true, true} {
		if exchange.RecordCacheHoldsForTest(c, recs[i]) != held {
			t.Errorf("record %d held: %v; want %v", i, !held, held)
		}
	}

	// A record over the whole budget is decoded every time, and evicts nothing.
	var big exchange.Record
	if err := json.Unmarshal(recs[0], &big); err != nil {
		t.Fatal(err)
	}
	for i := range 2000 {
		big.Refs = append(big.Refs, fmt.Sprintf("CSQU%07d", i))
	}
	rawBig, _ := json.Marshal(big)
	for range 2 {
		got, err := c.Decode(rawBig)
		if err != nil || !reflect.DeepEqual(got, big) {
			t.Fatalf("a record over budget decodes as %+v, %v; want %+v", got, err, big)
		}
	}
	if exchange.RecordCacheHoldsForTest(c, rawBig) {
		t.Error("a record over budget is held")
	}
	usage("one over budget decoded", 3)
}

// TestRecordCacheCountsStoredBytes: a cache of packed records counts what
// it holds of them (the bytes stored) and their decoded form, which
// recordCost reckons by their JSON.
func TestRecordCacheCountsStoredBytes(t *testing.T) {
	raw := records(t, 1)[0]
	stored := append([]byte("packed:"), raw...)
	unpack := func(b []byte) ([]byte, error) { return bytes.TrimPrefix(b, []byte("packed:")), nil }
	c := exchange.NewRecordCache(1<<20, unpack)
	if _, err := c.DecodeString(string(stored)); err != nil {
		t.Fatal(err)
	}
	want := len(stored) + exchange.RecordCostForTest(len(raw))
	if n, b := exchange.RecordCacheUsageForTest(c); n != 1 || b != want {
		t.Fatalf("%d records of %d bytes; want 1 of %d", n, b, want)
	}
}

// heapAlloc returns the bytes of the heap's live objects.
func heapAlloc() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// sampleRecords returns a record of each type of document in the demo
// corridor, a one bill of a thousand containers and a manifest of 300
// bills, as JSON.
func sampleRecords(t *testing.T) map[string][]byte {
	t.Helper()
	w := newWorld(t)
	out := map[string][]byte{}
	var bill exchange.Record
	for _, rc := range w.scenario(t) {
		rec, err := w.store.Doc(context.Background(), rc.ID)
		if err != nil {
			t.Fatal(err)
		}
		out[rec.Type], _ = json.Marshal(rec)
		if rec.Type == exchange.TypeOneBill {
			bill = rec
		}
	}
	big := exchange.CloneRecordForTest(bill)
	big.Refs, big.Plan.Containers = big.Refs[:1], nil
	for i := range 1000 {
		c := fmt.Sprintf("CSQU%07d", 3054383+i)
		big.Refs = append(big.Refs, c)
		big.Plan.Containers = append(big.Plan.Containers, c)
	}
	out["one bill of 1000 containers"], _ = json.Marshal(big)
	manifest := exchange.CloneRecordForTest(bill)
	manifest.Type, manifest.Plan, manifest.Shipments = exchange.TypeManifest, nil, nil
	for i := range 300 {
		manifest.Shipments = append(manifest.Shipments, exchange.Link{Ref: fmt.Sprintf("CQNL2026%06d", i),
			Doc: fmt.Sprintf("%026d", i), Opened: bill.ReceivedAt})
	}
	out["manifest of 300 bills"], _ = json.Marshal(manifest)
	return out
}

// TestRecordCacheCostCoversTheHeap measures what the record caches hold
// (the heap's growth as they fill up, divided by the records held) and
// checks that recordCost reckons no less (or a budget would not bound
// them; 15% less is let pass, as the heap's growth counts whatever else
// the process allocated meanwhile), nor more than 2.5 times as much: for a RecordCache of an index
// storing JSON (the JSON, and the record decoded and copied), and for the
// records read from the archive (as decoded).
func TestRecordCacheCostCoversTheHeap(t *testing.T) {
	ctx := context.Background()
	for name, raw := range sampleRecords(t) {
		n := 1000
		if len(raw) > 10_000 {
			n = 100
		}
		var rec exchange.Record
		if err := json.Unmarshal(raw, &rec); err != nil {
			t.Fatal(err)
		}
		ids := make([]string, n)
		raws := make([][]byte, n) // each of the same length, an id of its own
		for i := range raws {
			rec.ID = fmt.Sprintf("x%025d", i)
			ids[i] = rec.ID
			var err error
			if raws[i], err = json.Marshal(rec); err != nil {
				t.Fatal(err)
			}
		}
		const budget = 1 << 30

		before := heapAlloc()
		cache := exchange.NewRecordCache(budget, nil)
		for _, raw := range raws {
			if _, err := cache.Decode(raw); err != nil {
				t.Fatal(err)
			}
		}
		held := float64(heapAlloc()-before) / float64(n)
		runtime.KeepAlive(raws) // (held before: not counted)
		if got, _ := exchange.RecordCacheUsageForTest(cache); got != n {
			t.Fatalf("%s: %d records held; want %d", name, got, n)
		}
		runtime.KeepAlive(cache)
		est := float64(len(raw) + exchange.RecordCostForTest(len(raw)))
		t.Logf("%-28s %6d B of JSON: RecordCache holds %6.0f B a record (%.2f B a byte decoded), reckoned %6.0f (%.2fx)",
			name, len(raw), held, (held-float64(len(raw)))/float64(len(raw)), est, est/held)
		if est < 0.85*held || est > 2.5*held {
			t.Errorf("%s: a RecordCache holds %.0f bytes a record; reckoned %.0f", name, held, est)
		}

		svc := exchange.NewService(newRecordArchive(raws...), nil, nil, nil, nil, nil)
		before = heapAlloc()
		svc.BoundColdRecordsForTest(budget)
		for _, id := range ids {
			if _, err := svc.ArchivedRecordForTest(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		held = float64(heapAlloc()-before) / float64(n)
		if got, _ := svc.ColdRecordsUsageForTest(); got != n {
			t.Fatalf("%s: %d archived records kept; want %d", name, got, n)
		}
		runtime.KeepAlive(svc)
		est = float64(exchange.RecordCostForTest(len(raw)))
		t.Logf("%-28s %6d B of JSON: archived, %6.0f B a record kept (%.2f B a byte), reckoned %6.0f (%.2fx)",
			name, len(raw), held, held/float64(len(raw)), est, est/held)
		if est < 0.85*held || est > 2.5*held {
			t.Errorf("%s: an archived record kept takes %.0f bytes; reckoned %.0f", name, held, est)
		}
	}
}

package exchange_test

import (
	"encoding/json"
	"reflect"
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
	cache := exchange.NewRecordCache(16, nil)
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

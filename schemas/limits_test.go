package schemas_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xeipuuv/gojsonschema"

	"github.com/landsea/corridor/schemas"
)

// Hostile bodies as an attacker would build them within the 4 MiB body
// limit. Each names the document type it is sent as.
type hostile struct {
	name, typ string
	body      func() []byte
}

var hostileBodies = []hostile{
	// 350,000 distinct keys: 16 s and 350,015 problems before the limits.
	{"wide-object", "one-bill", func() []byte { return wideObject(350_000) }},
	// 2,000,000 numbers in one array.
	{"huge-array", "one-bill", func() []byte {
		return []byte(`{"goods":[0` + strings.Repeat(",0", 2_000_000-1) + `]}`)
	}},
	// Arrays nested as deep as MaxDepth allows under {"goods":[, repeated until 4 MiB.
	{"deep-arrays", "one-bill", func() []byte {
		one := strings.Repeat("[", 30) + strings.Repeat("]", 30)
		n := (4<<20 - 20) / (len(one) + 1)
		return []byte(`{"goods":[` + one + strings.Repeat(","+one, n-1) + `]}`)
	}},
	// Many arrays just under MaxItems: the token limit stops them.
	{"many-arrays", "one-bill", func() []byte {
		var b strings.Builder
		b.WriteString("{")
		for i := range schemas.MaxMembers {
			fmt.Fprintf(&b, `%s"k%d":[0%s]`, sep(i), i, strings.Repeat(",0", schemas.MaxItems-1))
		}
		b.WriteString("}")
		return []byte(b.String())
	}},
	// Within every limit, and as many problems per token as we found:
	// every container number of every bill has the wrong type.
	{"many-problems", "cargo-manifest", func() []byte { return manyProblems(schemas.MaxTokens) }},
	// Within every limit and under MaxProblems, so nothing stops early: the
	// largest manifest the token limit lets through, every container number
	// valid (each costs a check digit), and 99 problems in the last bills.
	{"late-problems", "cargo-manifest", func() []byte {
		bills := billsWithin(schemas.MaxTokens, 48)
		return manifest(bills, 48, func(bill, c int) string {
			if bill >= bills-3 && c < 33 {
				return "0"
			}
			return ""
		})
	}},
	// As many bills as the token limit allows, each as small as a valid one
	// can be: the most parts (three gojsonschema runs a bill).
	{"many-bills", "cargo-manifest", func() []byte { return manifest(billsWithin(schemas.MaxTokens, 1), 1, nil) }},
	// Within every limit and valid to the schema, but for the rules: one
	// container number under every bill, 500 times each, so each but the
	// first is "already listed", a rule problem on every token.
	{"repeated-container", "cargo-manifest", func() []byte {
		same := `"` + validContainer(7) + `"`
		return manifest(billsWithin(schemas.MaxTokens, 500), 500, func(int, int) string { return same })
	}},
	// Within every limit: objects full of members no schema knows.
	{"unknown-members", "cargo-manifest", func() []byte {
		var obj strings.Builder
		obj.WriteString("{")
		for i := range schemas.MaxMembers {
			fmt.Fprintf(&obj, `%s"m%d":0`, sep(i), i)
		}
		obj.WriteString("}")
		n := (schemas.MaxTokens - 10) / (2*schemas.MaxMembers + 2)
		return []byte(`{"bills":[` + obj.String() + strings.Repeat(","+obj.String(), n-1) + `]}`)
	}},
}

func sep(i int) string {
	if i == 0 {
		return ""
	}
	return ","
}

func wideObject(keys int) []byte {
	var b strings.Builder
	b.WriteString("{")
	for i := range keys {
		fmt.Fprintf(&b, `%s"k%d":0`, sep(i), i)
	}
	b.WriteString("}")
	return []byte(b.String())
}

// filledBodies makes, for every array at the top of every type's example,
// the example with that array filled with copies of its first item to the
// token limit: valid but for what the rules say of the copies, so the schema
// never stops early and the rules see the most items.
func filledBodies(tb testing.TB) []hostile {
	var out []hostile
	for _, ti := range schemas.Types() {
		ex := example(tb, ti.Type, ti.Newest)
		var doc map[string]any
		if err := json.Unmarshal(ex, &doc); err != nil {
			tb.Fatal(err)
		}
		for _, name := range slices.Sorted(maps.Keys(doc)) {
			arr, ok := doc[name].([]any)
			if !ok || len(arr) == 0 {
				continue
			}
			item, err := json.Marshal(arr[0])
			if err != nil {
				tb.Fatal(err)
			}
			per := schemas.Tokens([]byte(`[`+string(item)+`]`)) - 2
			n := min(schemas.MaxItems, (schemas.MaxTokens-schemas.Tokens(ex))/per)
			filled := maps.Clone(doc)
			filled[name] = slices.Repeat([]any{arr[0]}, n)
			body, err := json.Marshal(filled)
			if err != nil {
				tb.Fatal(err)
			}
			out = append(out, hostile{"filled-" + ti.Type + "-" + name, ti.Type, func() []byte { return body }})
		}
	}
	return out
}

// manifest builds a cargo manifest of bills bills of containers container
// numbers each, with its totals: valid but for the numbers change returns
// ("": a valid one).
func manifest(bills, containers int, change func(bill, c int) string) []byte {
	var b strings.Builder
	b.WriteString(`{"documentType":"cargo-manifest","manifestNumber":"QZH2611S-001","manifestType":"ORIGINAL",
		"carrier":"beibu-line","customsAuthority":"qz-customs","modeOfTransport":"SEA","vesselName":"BEIBU PIONEER",
		"vesselIMONumber":"9811000","voyageNumber":"2611S",
		"placeOfDeparture":{"UNLocationCode":"CNQZH","locationName":"Qinzhou Port"},
		"placeOfArrival":{"UNLocationCode":"SGSIN","locationName":"Singapore"},
		"plannedDeparture":"2026-11-10T18:00:00+08:00","plannedArrival":"2026-11-16T08:00:00+08:00","bills":[`)
	for i := range bills {
		fmt.Fprintf(&b, `%s{"transportDocumentReference":"BBLSIN%07d","numberOfPackages":10,"grossWeight":1000.5,"containerNumbers":[`, sep(i), i)
		for j := range containers {
			c := ""
			if change != nil {
				c = change(i, j)
			}
			if c == "" {
				c = `"` + validContainer(i*containers+j) + `"`
			}
			b.WriteString(sep(j) + c)
		}
		b.WriteString("]}")
	}
	fmt.Fprintf(&b, `],"totalNumberOfPackages":%d,"totalGrossWeight":%.1f}`, 10*bills, 1000.5*float64(bills))
	return []byte(b.String())
}

// billsWithin is how many bills of containers container numbers each fit
// in a manifest of at most tokens tokens: a bill is 12 tokens and its
// numbers, and the rest of the manifest about 45.
func billsWithin(tokens, containers int) int { return (tokens - 45) / (12 + containers) }

// validContainer makes the n-th valid ISO 6346 number of a made-up owner.
func validContainer(n int) string {
	for d := range 10 {
		c := fmt.Sprintf("TSTU%06d%d", n, d)
		if schemas.CheckContainerNumber(c) == nil {
			return c
		}
	}
	panic(fmt.Sprintf("no check digit for %d", n))
}

// manyProblems builds a manifest of bills whose container numbers are all
// numbers, about tokens tokens long.
func manyProblems(tokens int) []byte {
	const perBill = 500
	bill := `{"containerNumbers":[0` + strings.Repeat(",0", perBill-1) + `]}`
	n := tokens / (perBill + 5)
	return []byte(`{"bills":[` + bill + strings.Repeat(","+bill, n-1) + `]}`)
}

func TestLimitsRefuseHostileBodies(t *testing.T) {
	want := map[string]struct{ pointer, detail string }{
		"wide-object": {"", "an object has more than 64 members; the limit is 64"},
		"huge-array":  {"/goods", "an array has more than 10000 items; the limit is 10000"},
		"deep-arrays": {"", "the document has more than 100000 tokens"},
		"many-arrays": {"", "the document has more than 100000 tokens"},
	}
	for _, h := range hostileBodies {
		w, ok := want[h.name]
		if !ok {
			continue
		}
		t.Run(h.name, func(t *testing.T) {
			body := h.body()
			if len(body) > 4<<20 {
				t.Fatalf("body is %d bytes, more than the gateway takes", len(body))
			}
			_, err := schemas.Validate(h.typ, 0, body)
			var mal *schemas.MalformedError
			if !errors.As(err, &mal) {
				t.Fatalf("Validate = %v, want a MalformedError", err)
			}
			if !strings.HasPrefix(mal.Pointer, w.pointer) || !strings.Contains(mal.Detail, w.detail) {
				t.Errorf("refused at %q: %q; want at %q: %q", mal.Pointer, mal.Detail, w.pointer, w.detail)
			}
		})
	}
}

// A hostile body within the limits gets the first MaxProblems problems, in
// document order, and how many were found before the check stopped.
func TestProblemListIsCapped(t *testing.T) {
	for _, name := range []string{"many-problems", "unknown-members", "repeated-container"} {
		t.Run(name, func(t *testing.T) {
			h := hostileBody(t, name)
			_, err := schemas.Validate(h.typ, 0, h.body())
			var inv *schemas.InvalidError
			if !errors.As(err, &inv) {
				t.Fatalf("Validate = %v, want an InvalidError", err)
			}
			if len(inv.Problems) != schemas.MaxProblems || inv.Total < schemas.MaxProblems || !inv.Stopped {
				t.Fatalf("%d problems of %d listed (stopped %v), want %d of at least as many, stopped", len(inv.Problems), inv.Total, inv.Stopped, schemas.MaxProblems)
			}
			if first := inv.Problems[0].Pointer; first != "/bills/0" && !strings.HasPrefix(first, "/bills/0/") {
				t.Errorf("first problem at %s, want one in the first bill", first)
			}
			if name == "many-problems" {
				// Document order compares indexes as numbers: 9 before 10.
				for i, p := range inv.Problems {
					if want := fmt.Sprintf("/bills/0/containerNumbers/%d", i); p.Pointer != want {
						t.Fatalf("problem %d at %s, want %s", i, p.Pointer, want)
					}
				}
			}
			if !strings.Contains(inv.Error(), fmt.Sprintf("at least %d problems (the check stopped there), the first 100 listed", inv.Total)) {
				t.Errorf("Error() = %q", inv.Error())
			}
		})
	}
}

func TestFewProblemsAreAllListed(t *testing.T) {
	body := []byte(`{"documentType":"customs-response","status":"NOPE","extra":1}`)
	_, err := schemas.Validate("customs-response", 0, body)
	var inv *schemas.InvalidError
	if !errors.As(err, &inv) {
		t.Fatalf("Validate = %v, want an InvalidError", err)
	}
	if inv.Total != len(inv.Problems) || inv.Total < 2 {
		t.Errorf("%d problems listed, Total %d", len(inv.Problems), inv.Total)
	}
}

func hostileBody(tb testing.TB, name string) hostile {
	tb.Helper()
	for _, h := range hostileBodies {
		if h.name == name {
			return h
		}
	}
	tb.Fatalf("no hostile body %q", name)
	return hostile{}
}

// The limits refuse nothing a corridor document needs: a manifest of as
// many bills as its schema allows, with 24,000 containers (a full load of
// the largest ships) among them.
func TestLimitsLetTheLargestManifestThrough(t *testing.T) {
	if _, err := schemas.Validate("cargo-manifest", 0, manifest(2000, 12, nil)); err != nil {
		t.Fatalf("a full manifest: %v", err)
	}
}

func TestValidateContextStopsWhenDone(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	for _, c := range []struct {
		name  string
		ctx   context.Context
		body  []byte
		want  error
		where string
	}{
		{"small", canceled, example(t, "cargo-manifest", 0), context.Canceled, "before the schema"},
		{"large", canceled, manyProblems(schemas.MaxTokens / 2), context.Canceled, "pre-scan"},
		{"expired", expired, example(t, "cargo-manifest", 0), context.DeadlineExceeded, "before the schema"},
	} {
		_, err := schemas.ValidateContext(c.ctx, "cargo-manifest", 0, c.body)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.where) {
			t.Errorf("%s: ValidateContext = %v, want %v %s", c.name, err, c.want, c.where)
		}
	}
}

// BenchmarkHostile measures what each hostile body costs, and for those
// within the limits what bare gojsonschema costs on the same bytes (the
// floor, since nothing interrupts it). For the peak memory, run one at a time
// under /usr/bin/time -v:
//
//	go test -c -o /tmp/schemas.test ./schemas
//	/usr/bin/time -v /tmp/schemas.test -test.run '^$' -test.bench 'Hostile/wide-object$' -test.benchtime 1x
func BenchmarkHostile(b *testing.B) {
	for _, h := range append(hostileBodies, filledBodies(b)...) {
		body := h.body()
		b.Run(h.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := schemas.Validate(h.typ, 0, body); err == nil {
					b.Fatal("accepted")
				}
			}
		})
		if schemas.Prescan(body) != nil {
			continue
		}
		bare := bareSchema(b, h.typ)
		if res, err := bare.Validate(gojsonschema.NewBytesLoader(body)); err == nil && res.Valid() {
			continue // only the rules refuse it (repeated-container)
		}
		b.Run(h.name+"/gojsonschema", func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if res, err := bare.Validate(gojsonschema.NewBytesLoader(body)); err != nil || res.Valid() {
					b.Fatal("accepted", err)
				}
			}
		})
	}
}

// The limits are derived from the schemas: every object a schema declares
// fits in MaxMembers and every maxItems in MaxItems with room to spare.
// (TestLimitsLetTheLargestManifestThrough checks MaxTokens.)
func TestSchemasStayWithinLimits(t *testing.T) {
	eachSchemaNode(t, func(schema, path string, n map[string]any) {
		if props, ok := n["properties"].(map[string]any); ok && len(props) > schemas.MaxMembers/2 {
			t.Errorf("%s: %s has %d properties; MaxMembers %d leaves too little room", schema, path, len(props), schemas.MaxMembers)
		}
		if m, ok := n["maxItems"].(float64); ok && m > schemas.MaxItems/2 {
			t.Errorf("%s: %s allows %v items; MaxItems %d leaves too little room", schema, path, m, schemas.MaxItems)
		}
	})
}

// Each limit lets through exactly as much as it says.
func TestLimitBoundaries(t *testing.T) {
	items := func(n int) []byte { return []byte(`{"a":[0` + strings.Repeat(",0", n-1) + `]}`) }
	for _, c := range []struct {
		name     string
		ok, over []byte
	}{
		{"members", wideObject(schemas.MaxMembers), wideObject(schemas.MaxMembers + 1)},
		{"items", items(schemas.MaxItems), items(schemas.MaxItems + 1)},
		{"tokens", tokens(schemas.MaxTokens), tokens(schemas.MaxTokens + 1)},
	} {
		if err := schemas.Prescan(c.ok); err != nil {
			t.Errorf("%s: at the limit: %v", c.name, err)
		}
		var mal *schemas.MalformedError
		if err := schemas.Prescan(c.over); !errors.As(err, &mal) || !strings.Contains(mal.Detail, "the limit is") {
			t.Errorf("%s: over the limit: %v", c.name, err)
		}
	}
}

// tokens builds a body of exactly n tokens: an object of arrays of zeros.
func tokens(n int) []byte {
	var b strings.Builder
	b.WriteString("{")
	n -= 2
	for i := 0; n > 0; i++ {
		items := min(n-3, schemas.MaxItems) // a name and two brackets
		fmt.Fprintf(&b, `%s"k%d":[`, sep(i), i)
		for j := range items {
			b.WriteString(sep(j) + "0")
		}
		b.WriteString("]")
		n -= items + 3
	}
	b.WriteString("}")
	return []byte(b.String())
}

// The hostile bodies meant to be within the limits are, and near the token
// limit, so what they cost is what the limits allow.
func TestHostileBodiesWithinLimits(t *testing.T) {
	for _, name := range []string{"many-problems", "late-problems", "many-bills", "unknown-members", "repeated-container"} {
		body := hostileBody(t, name).body()
		if err := schemas.Prescan(body); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if n := schemas.Tokens(body); n < schemas.MaxTokens*9/10 {
			t.Errorf("%s: %d tokens, want near %d", name, n, schemas.MaxTokens)
		}
	}
}

// A large document is checked in parts; the parts find what the whole does,
// at the same pointers, however far into an array a problem is (runs of
// items start at an offset) and however deep (bills hold arrays).
func TestLargeDocumentsInParts(t *testing.T) {
	var bill map[string]any
	if err := json.Unmarshal(example(t, "one-bill", 0), &bill); err != nil {
		t.Fatal(err)
	}
	var containers []any
	for i := range 500 {
		c := map[string]any{"containerNumber": validContainer(i), "ISOEquipmentCode": "45G1", "sealNumber": fmt.Sprint("S", i)}
		switch i {
		case 300:
			c["ISOEquipmentCode"] = "4"
		case 450:
			c["colour"] = "red"
		}
		containers = append(containers, c)
	}
	bill["containers"] = containers
	oneBill, err := json.Marshal(bill)
	if err != nil {
		t.Fatal(err)
	}
	bills := 1990
	for _, c := range []struct {
		name, typ string
		body      []byte
		want      []string
	}{
		{"one-bill", "one-bill", oneBill, []string{"/containers/300/ISOEquipmentCode", "/containers/450/colour"}},
		{"manifest", "cargo-manifest", manifest(bills, 12, func(b, c int) string {
			if b == 1500 && c == 7 || b == bills-1 && c == 11 {
				return `"TSTU0000000"`
			}
			return ""
		}), []string{"/bills/1500/containerNumbers/7", "/bills/1989/containerNumbers/11"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if n := schemas.Tokens(c.body); n < 2*1024 {
				t.Fatalf("%d tokens: too few to be checked in parts", n)
			}
			var got [2][]schemas.Problem
			for i, parts := range []bool{false, true} {
				schemas.InParts(t, parts)
				_, err := schemas.Validate(c.typ, 0, c.body)
				var inv *schemas.InvalidError
				if !errors.As(err, &inv) || inv.Stopped {
					t.Fatalf("in parts %v: Validate = %v, want an InvalidError that did not stop", parts, err)
				}
				got[i] = inv.Problems
			}
			if !slices.Equal(got[0], got[1]) {
				t.Errorf("in parts the problems differ:\nwhole: %+v\nparts: %+v", got[0], got[1])
			}
			for _, w := range c.want {
				if !slices.ContainsFunc(got[1], func(p schemas.Problem) bool { return p.Pointer == w }) {
					t.Errorf("no problem at %s: %+v", w, got[1])
				}
			}
		})
	}
}

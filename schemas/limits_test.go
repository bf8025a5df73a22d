package schemas_test

import (
	"context"
	"errors"
	"fmt"
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
// document order, and the count of all of them.
func TestProblemListIsCapped(t *testing.T) {
	for _, name := range []string{"many-problems", "unknown-members"} {
		t.Run(name, func(t *testing.T) {
			h := hostileBody(t, name)
			_, err := schemas.Validate(h.typ, 0, h.body())
			var inv *schemas.InvalidError
			if !errors.As(err, &inv) {
				t.Fatalf("Validate = %v, want an InvalidError", err)
			}
			if len(inv.Problems) != schemas.MaxProblems || inv.Total < 10_000 {
				t.Fatalf("%d problems of %d listed, want %d of more than 10,000", len(inv.Problems), inv.Total, schemas.MaxProblems)
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
			if !strings.Contains(inv.Error(), fmt.Sprintf("%d problems, the first 100 listed", inv.Total)) {
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
	var bills []string
	for i := range 2000 {
		var cs []string
		for j := range 12 {
			cs = append(cs, `"`+containerNumber(t, i*12+j)+`"`)
		}
		bills = append(bills, fmt.Sprintf(`{"transportDocumentReference":"BBLSIN%07d","containerNumbers":[%s],"numberOfPackages":10,"grossWeight":1000.5}`,
			i, strings.Join(cs, ",")))
	}
	body := fmt.Sprintf(`{"documentType":"cargo-manifest","manifestNumber":"QZH2611S-001","manifestType":"ORIGINAL",
		"carrier":"beibu-line","customsAuthority":"qz-customs","modeOfTransport":"SEA","vesselName":"BEIBU PIONEER",
		"vesselIMONumber":"9811000","voyageNumber":"2611S",
		"placeOfDeparture":{"UNLocationCode":"CNQZH","locationName":"Qinzhou Port"},
		"placeOfArrival":{"UNLocationCode":"SGSIN","locationName":"Singapore"},
		"plannedDeparture":"2026-11-10T18:00:00+08:00","plannedArrival":"2026-11-16T08:00:00+08:00",
		"bills":[%s],"totalNumberOfPackages":20000,"totalGrossWeight":2001000}`, strings.Join(bills, ","))
	if _, err := schemas.Validate("cargo-manifest", 0, []byte(body)); err != nil {
		t.Fatalf("a full manifest: %v", err)
	}
}

// containerNumber makes the n-th valid ISO 6346 number of a made-up owner.
func containerNumber(tb testing.TB, n int) string {
	tb.Helper()
	for d := range 10 {
		c := fmt.Sprintf("TSTU%06d%d", n, d)
		if schemas.CheckContainerNumber(c) == nil {
			return c
		}
	}
	tb.Fatalf("no check digit for %d", n)
	return ""
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
	for _, h := range hostileBodies {
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
